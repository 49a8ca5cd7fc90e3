//! Shared by the readers: turns "this annotation refers to that image" into manifest entries,
//! using the image checks, and records the recoverable problems on the way.

use std::collections::HashSet;

use domain::dataset::{BoxAnnotation, ImageEntry, Manifest, Split, TaskType};

use crate::boxes;
use crate::images::{ImageCheck, ImageIndex};
use crate::problem::Problem;

/// What a reader produced: the manifest (files relative to the dataset root) and its problems.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Normalised dataset.
    pub manifest: Manifest,
    /// Whether the archive carried split information (otherwise every image is `Train` for now).
    pub has_splits: bool,
    /// Recoverable problems found.
    pub problems: Vec<Problem>,
}

/// The annotation of one image as a reader found it.
#[derive(Debug, Clone)]
pub enum Label {
    /// Classification label.
    Class(usize),
    /// Boxes in pixels (COCO `xywh`).
    Boxes(Vec<BoxAnnotation>),
    /// Boxes as YOLO normalised `cx cy w h`, converted once the image size is known.
    Normalised(Vec<(usize, [f64; 4])>),
}

/// Accumulates manifest entries.
#[derive(Debug)]
pub struct Collector<'a> {
    index: &'a ImageIndex,
    task: TaskType,
    images: Vec<ImageEntry>,
    seen: HashSet<String>,
    problems: Vec<Problem>,
}

impl<'a> Collector<'a> {
    /// Starts a manifest of `task`.
    pub fn new(index: &'a ImageIndex, task: TaskType) -> Self {
        Self {
            index,
            task,
            images: Vec::new(),
            seen: HashSet::new(),
            problems: Vec::new(),
        }
    }

    /// Records a problem.
    pub fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Adds image `rel` (already resolved, relative to the root). Corrupt images become problems;
    /// an image added twice keeps its first entry. `declared` is the size an annotation states.
    pub fn add(&mut self, rel: &str, split: Split, label: Label, declared: Option<(u32, u32)>) {
        let facts = match self.index.get(rel) {
            Some(ImageCheck::Sound(facts)) => facts,
            Some(ImageCheck::Corrupt(reason)) => {
                if self.seen.insert(rel.to_owned()) {
                    self.problems.push(Problem::CorruptImage {
                        file: rel.to_owned(),
                        reason: reason.clone(),
                    });
                }
                return;
            }
            None => {
                self.problems.push(Problem::MissingImage {
                    file: rel.to_owned(),
                    referenced_by: String::new(),
                });
                return;
            }
        };
        if !self.seen.insert(rel.to_owned()) {
            return;
        }
        if let Some((w, h)) = declared
            && (w, h) != (facts.width, facts.height)
            && w > 0
            && h > 0
        {
            self.problems.push(Problem::SizeMismatch {
                file: rel.to_owned(),
                declared: [w, h],
                actual: [facts.width, facts.height],
            });
        }
        let (label, boxes) = match label {
            Label::Class(class) => (Some(class), Vec::new()),
            Label::Boxes(boxes) => (None, boxes),
            Label::Normalised(normalised) => (
                None,
                normalised
                    .into_iter()
                    .map(|(class_id, b)| BoxAnnotation {
                        class_id,
                        bbox: boxes::yolo_to_coco(b, facts.width, facts.height),
                    })
                    .collect(),
            ),
        };
        self.images.push(ImageEntry {
            file: rel.to_owned(),
            width: facts.width,
            height: facts.height,
            split,
            label,
            boxes,
        });
    }

    /// Finishes the manifest.
    pub fn finish(self, classes: Vec<String>, has_splits: bool) -> Parsed {
        Parsed {
            manifest: Manifest {
                task: self.task,
                classes,
                images: self.images,
            },
            has_splits,
            problems: self.problems,
        }
    }
}

/// Split named by a file or folder name: `train`, `val`/`valid`/`validation`, `test`
/// (also `instances_train2017`, `_annotations.coco` inside `valid/`, …). `None` when no word matches.
pub fn split_from_name(name: &str) -> Option<Split> {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| *w == "train" || *w == "training") {
        Some(Split::Train)
    } else if words
        .iter()
        .any(|w| matches!(*w, "val" | "valid" | "validation" | "dev"))
    {
        Some(Split::Val)
    } else if words.iter().any(|w| *w == "test" || *w == "testing") {
        Some(Split::Test)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names() {
        assert_eq!(split_from_name("instances_train2017"), Some(Split::Train));
        assert_eq!(split_from_name("valid"), Some(Split::Val));
        assert_eq!(split_from_name("instances_val.json"), Some(Split::Val));
        assert_eq!(split_from_name("test"), Some(Split::Test));
        assert_eq!(split_from_name("instances"), None);
        assert_eq!(split_from_name("trainval"), None);
    }
}
