//! ImageFolder classification datasets: one folder per class (`cat/1.jpg`, `dog/2.jpg`),
//! optionally under `train/`, `val/` (or `valid/`, `validation/`) and `test/`.

use std::collections::BTreeSet;

use domain::dataset::{Split, TaskType};

use crate::DatasetFormat;
use crate::collect::{Collector, Label, Parsed, split_from_name};
use crate::error::DatasetError;
use crate::images::ImageIndex;
use crate::problem::Problem;
use crate::tree::Tree;

/// Split named by a top-level folder, if it is one of the split folder names.
fn split_folder(name: &str) -> Option<Split> {
    matches!(
        name.to_lowercase().as_str(),
        "train" | "training" | "val" | "valid" | "validation" | "test" | "testing"
    )
    .then(|| split_from_name(name))
    .flatten()
}

/// Whether some image sits in a class folder (at least one folder level below the root or a split).
pub fn looks_like_imagefolder(tree: &Tree) -> bool {
    tree.images().any(|f| {
        let parts: Vec<&str> = f.split('/').collect();
        match parts.as_slice() {
            [first, _, _, ..] if split_folder(first).is_some() => true,
            [first, _] => split_folder(first).is_none(),
            [first, _, ..] => split_folder(first).is_none(),
            _ => false,
        }
    })
}

/// Reads an ImageFolder dataset. Classes are the folder names, sorted.
pub fn read(tree: &Tree, index: &ImageIndex) -> Result<Parsed, DatasetError> {
    if !looks_like_imagefolder(tree) {
        return Err(DatasetError::NotThisFormat {
            format: DatasetFormat::ImageFolder,
            reason: "no images inside class folders".into(),
        });
    }
    let has_splits = tree.images().any(|f| {
        f.split('/').next().and_then(split_folder).is_some() && f.matches('/').count() >= 2
    });
    // (image, split, class folder) for every image.
    let mut placed: Vec<(String, Split, Option<String>)> = Vec::new();
    for (rel, _) in index.iter() {
        let parts: Vec<&str> = rel.split('/').collect();
        let (split, rest) = match parts.split_first() {
            Some((first, rest)) if has_splits => match split_folder(first) {
                Some(split) => (split, rest),
                // Outside the split folders: not part of the dataset.
                None => continue,
            },
            _ => (Split::Train, parts.as_slice()),
        };
        let class = (rest.len() >= 2).then(|| rest[0].to_owned());
        placed.push((rel.to_owned(), split, class));
    }
    let classes: Vec<String> = placed
        .iter()
        .filter_map(|(_, _, c)| c.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut collector = Collector::new(index, TaskType::Classification);
    for (rel, split, class) in placed {
        match class.and_then(|c| classes.iter().position(|k| *k == c)) {
            Some(i) => collector.add(&rel, split, Label::Class(i), None),
            None => collector.problem(Problem::UnlabeledImage { file: rel }),
        }
    }
    Ok(collector.finish(classes, has_splits))
}
