//! Recoverable problems found while reading a dataset, kept language-neutral so they can be stored
//! (as JSON) with the dataset and rendered later by [`crate::validate()`] in the user's language.

use serde::{Deserialize, Serialize};

/// One recoverable problem found while reading a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The image could not be decoded, or is truncated. It is left out of the manifest.
    CorruptImage {
        /// Image path relative to the dataset root.
        file: String,
        /// Decoder message.
        reason: String,
    },
    /// An annotation refers to an image file that is not in the archive. Left out of the manifest.
    MissingImage {
        /// File name as written in the annotation.
        file: String,
        /// Annotation file that refers to it.
        referenced_by: String,
    },
    /// An annotation uses a class/category id that is not declared. The annotation is dropped.
    UnknownClass {
        /// Annotation file.
        file: String,
        /// The undeclared id, as written.
        class: String,
    },
    /// An annotation entry is unusable (bad label line, object without a box, …) and was dropped.
    MalformedAnnotation {
        /// Annotation file.
        file: String,
        /// 1-based line, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
        /// Field at fault, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The annotation declares another size than the image has. The real size is kept.
    SizeMismatch {
        /// Image path relative to the dataset root.
        file: String,
        /// `[width, height]` from the annotation.
        declared: [u32; 2],
        /// `[width, height]` of the decoded image.
        actual: [u32; 2],
    },
    /// Images with the same content (SHA-256).
    DuplicateImages {
        /// The files sharing one content hash.
        files: Vec<String>,
        /// The hash, hex.
        sha256: String,
    },
    /// A classification image outside any class folder: it has no label and is left out of the
    /// manifest (training needs a label on every classification image).
    UnlabeledImage {
        /// Image path relative to the dataset root.
        file: String,
    },
    /// Image files in the archive that no annotation refers to (not part of the dataset).
    UnreferencedImages {
        /// The files (relative to the dataset root).
        files: Vec<String>,
    },
    /// The archive had no split information: a seeded, class-stratified 80/15/5 split was made.
    SplitsGenerated {
        /// Seed of the split.
        seed: u64,
    },
}
