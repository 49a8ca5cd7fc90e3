//! The normalised dataset manifest: what every archive format is read into and what training reads.

use serde::{Deserialize, Serialize};

/// Kind of task a dataset or a model serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    /// One label per image.
    Classification,
    /// Boxes with a class each.
    Detection,
    /// Masks with a class each.
    Segmentation,
}

/// Which subset an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Used to fit the model.
    Train,
    /// Used for validation metrics and early stopping.
    Val,
    /// Held out, never seen during training.
    Test,
}

/// An axis-aligned box in pixels, COCO convention: top-left corner, width and height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoxAnnotation {
    /// Index into [`Manifest::classes`].
    pub class_id: usize,
    /// `[x, y, width, height]` in pixels.
    pub bbox: [f64; 4],
}

/// One image of a dataset and its annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// Path of the image relative to the dataset's image root (always `/`-separated).
    pub file: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Subset this image belongs to.
    pub split: Split,
    /// Class index for classification datasets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<usize>,
    /// Boxes for detection datasets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boxes: Vec<BoxAnnotation>,
}

/// A dataset in the platform's own normalised form, independent of the archive format it came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Task the annotations serve.
    pub task: TaskType,
    /// Class names; annotations refer to them by index.
    pub classes: Vec<String>,
    /// Every image with its annotations.
    pub images: Vec<ImageEntry>,
}

impl Manifest {
    /// Images of one split, in manifest order.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &ImageEntry> {
        self.images.iter().filter(move |image| image.split == split)
    }
}
