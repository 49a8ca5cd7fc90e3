//! Dataset intake and export, as a pure library (no web, no database, no object storage).
//!
//! * [`archive`]: safe extraction of zip / tar / tar.gz with [`Limits`].
//! * [`detect_format`] and the readers ([`coco`], [`yolo`], [`voc`], [`imagefolder`]) into the
//!   normalised [`Manifest`].
//! * [`images`]: every image decoded, size-checked and hashed, in parallel.
//! * [`split`], [`stats`], [`validate()`](validate::validate), [`export`].
//!
//! The upload job calls [`ingest`]; the API calls [`validate::validate`] and [`export::export_zip`].

pub mod archive;
pub mod bench;
mod bounded;
pub mod boxes;
pub mod coco;
mod collect;
pub mod detect;
pub mod error;
pub mod export;
pub mod imagefolder;
pub mod images;
pub mod problem;
pub mod split;
pub mod stats;
pub mod tree;
pub mod validate;
pub mod voc;
pub mod yolo;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use archive::{ArchiveKind, Extracted, Limits};
pub use bench::{BenchReport, bench_ingest};
pub use collect::Parsed;
pub use detect::detect_format;
pub use domain::dataset::{BoxAnnotation, ImageEntry, Manifest, Split, TaskType};
pub use error::{ArchiveError, DatasetError, ParseError};
pub use export::{export_dir, export_zip};
pub use images::{ImageCheck, ImageFacts, ImageIndex};
pub use problem::Problem;
pub use stats::{ClassCount, Statistics, statistics};
pub use validate::{Expectations, Issue, Lang, Severity, ValidationReport, validate};

use serde::{Deserialize, Serialize};

/// Annotation format of a dataset archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// COCO instances JSON.
    Coco,
    /// Ultralytics / Darknet YOLO text labels.
    Yolo,
    /// Pascal VOC XML.
    Voc,
    /// One folder per class (classification).
    #[serde(rename = "imagefolder")]
    ImageFolder,
}

impl DatasetFormat {
    /// Every format.
    pub const ALL: [Self; 4] = [Self::Coco, Self::Yolo, Self::Voc, Self::ImageFolder];

    /// API name: `coco`, `yolo`, `voc`, `imagefolder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coco => "coco",
            Self::Yolo => "yolo",
            Self::Voc => "voc",
            Self::ImageFolder => "imagefolder",
        }
    }

    /// Parses the upload form's `format`: a format name, or `auto` (→ `None`, detect).
    pub fn parse_choice(text: &str) -> Result<Option<Self>, DatasetError> {
        if text.trim().eq_ignore_ascii_case("auto") {
            Ok(None)
        } else {
            text.parse().map(Some)
        }
    }
}

impl fmt::Display for DatasetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetFormat {
    type Err = DatasetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "coco" => Ok(Self::Coco),
            "yolo" => Ok(Self::Yolo),
            "voc" | "pascal_voc" | "pascalvoc" => Ok(Self::Voc),
            "imagefolder" | "image_folder" => Ok(Self::ImageFolder),
            other => Err(DatasetError::UnknownFormatName(other.to_owned())),
        }
    }
}

/// A dataset read and checked, ready to be stored.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// Format it was read as (requested or detected).
    pub format: DatasetFormat,
    /// Directory holding the dataset (inside the work dir); `manifest.images[i].file` is relative to it.
    pub root: PathBuf,
    /// The normalised dataset (sound images only, splits assigned).
    pub manifest: Manifest,
    /// Absolute path of each manifest image, same order as `manifest.images`.
    pub files: Vec<PathBuf>,
    /// SHA-256 (hex) of each manifest image, same order.
    pub hashes: Vec<String>,
    /// Recoverable problems, to store with the dataset and pass to [`validate()`].
    pub problems: Vec<Problem>,
    /// Statistics in the API's shape.
    pub stats: Statistics,
    /// What the extraction wrote (`None` for [`ingest_dir`]).
    pub extracted: Option<Extracted>,
}

impl Ingested {
    /// Validation report of this dataset.
    pub fn report(&self, expect: &Expectations, lang: Lang) -> ValidationReport {
        validate(&self.manifest, self.format, &self.problems, expect, lang)
    }
}

/// Extracts `archive` into `work_dir` (created; must be empty if it exists), reads it as `format`
/// (`None` = detect), checks every image, assigns splits (`seed` when the archive has none) and
/// computes statistics.
///
/// Hostile or unreadable input is an error and leaves `work_dir` empty. Recoverable problems are
/// in [`Ingested::problems`]. On success the image files stay under `work_dir` for the caller to store.
pub fn ingest(
    archive: &Path,
    format: Option<DatasetFormat>,
    work_dir: &Path,
    limits: &Limits,
    seed: u64,
) -> Result<Ingested, DatasetError> {
    let extracted = archive::extract(archive, work_dir, limits)?;
    let result = archive::dataset_root(work_dir)
        .map_err(|e| DatasetError::io(work_dir, e))
        .and_then(|root| ingest_dir(&root, format, limits, seed));
    match result {
        Ok(mut ingested) => {
            ingested.extracted = Some(extracted);
            Ok(ingested)
        }
        Err(err) => {
            archive::clean_dir(work_dir, false);
            Err(err)
        }
    }
}

/// Reads an already extracted dataset directory (see [`ingest`]).
pub fn ingest_dir(
    root: &Path,
    format: Option<DatasetFormat>,
    limits: &Limits,
    seed: u64,
) -> Result<Ingested, DatasetError> {
    let tree = tree::Tree::scan(root)?;
    let format = match format {
        Some(format) => format,
        None => detect_format(&tree)?,
    };
    let index = ImageIndex::scan(&tree, limits.max_image_pixels)?;
    let parsed = read(format, &tree, &index, limits)?;
    let Parsed {
        mut manifest,
        has_splits,
        mut problems,
    } = parsed;
    if manifest.images.is_empty() {
        return Err(DatasetError::NoImages);
    }
    if !has_splits {
        split::assign_splits(&mut manifest, seed);
        problems.push(Problem::SplitsGenerated { seed });
    }

    let mut hashes = Vec::with_capacity(manifest.images.len());
    let mut by_hash: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut used = std::collections::HashSet::new();
    for image in &manifest.images {
        let hash = match index.get(&image.file) {
            Some(ImageCheck::Sound(facts)) => facts.sha256.clone(),
            _ => String::new(),
        };
        used.insert(image.file.as_str());
        hashes.push(hash);
    }
    for (image, hash) in manifest.images.iter().zip(&hashes) {
        by_hash
            .entry(hash.as_str())
            .or_default()
            .push(image.file.clone());
    }
    for (hash, files) in by_hash {
        if files.len() > 1 {
            problems.push(Problem::DuplicateImages {
                files,
                sha256: hash.to_owned(),
            });
        }
    }
    let unreferenced: Vec<String> = index
        .iter()
        .filter(|(file, _)| !used.contains(file))
        .filter(|(file, _)| {
            !problems.iter().any(|p| {
                matches!(p, Problem::CorruptImage { file: f, .. } | Problem::UnlabeledImage { file: f } if f == file)
            })
        })
        .map(|(file, _)| file.to_owned())
        .collect();
    if !unreferenced.is_empty() {
        problems.push(Problem::UnreferencedImages {
            files: unreferenced,
        });
    }
    let files = manifest.images.iter().map(|i| tree.path(&i.file)).collect();
    let stats = statistics(&manifest);
    Ok(Ingested {
        format,
        root: root.to_owned(),
        manifest,
        files,
        hashes,
        problems,
        stats,
        extracted: None,
    })
}

/// Runs the reader of `format` on a scanned tree; annotation files are read within `limits`
/// (see [`Limits::max_annotation_bytes`]).
pub fn read(
    format: DatasetFormat,
    tree: &tree::Tree,
    index: &ImageIndex,
    limits: &Limits,
) -> Result<Parsed, DatasetError> {
    match format {
        DatasetFormat::Coco => coco::read(tree, index, limits),
        DatasetFormat::Yolo => yolo::read(tree, index, limits),
        DatasetFormat::Voc => voc::read(tree, index, limits),
        DatasetFormat::ImageFolder => imagefolder::read(tree, index),
    }
}
