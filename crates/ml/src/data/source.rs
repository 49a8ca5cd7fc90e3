//! Where images come from: a dataset manifest plus its image root directory, or memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::dataset::{BoxAnnotation, ImageEntry, Manifest, Split, TaskType};
use image::RgbImage;

use crate::error::MlError;

/// A labelled collection of images, readable from several threads.
pub trait ImageSource: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Class index of image `index` (0 for detection sources).
    fn label(&self, index: usize) -> usize;
    /// Boxes of image `index` in its own pixels (detection sources; empty otherwise).
    fn boxes(&self, _index: usize) -> Vec<BoxAnnotation> {
        Vec::new()
    }
    /// Decodes image `index` as 8-bit RGB.
    fn load(&self, index: usize) -> Result<RgbImage, MlError>;
}

#[derive(Debug, Clone)]
struct Item {
    file: String,
    label: usize,
    boxes: Vec<BoxAnnotation>,
}

/// The images of one split of a classification or detection [`Manifest`], read from `root`.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    root: PathBuf,
    items: Vec<Item>,
}

fn checked_label(image: &ImageEntry, classes: usize) -> Result<usize, MlError> {
    let label = image.label.ok_or_else(|| {
        MlError::InvalidDataset(format!("image {} has no class label", image.file))
    })?;
    if label >= classes {
        return Err(MlError::InvalidDataset(format!(
            "image {} has label {label} but there are only {classes} classes",
            image.file
        )));
    }
    Ok(label)
}

/// The image's boxes with a valid class; boxes without area are dropped.
fn checked_boxes(image: &ImageEntry, classes: usize) -> Result<Vec<BoxAnnotation>, MlError> {
    let mut boxes = Vec::with_capacity(image.boxes.len());
    for b in &image.boxes {
        if b.class_id >= classes {
            return Err(MlError::InvalidDataset(format!(
                "image {} has a box of class {} but there are only {classes} classes",
                image.file, b.class_id
            )));
        }
        let [_, _, w, h] = b.bbox;
        if b.bbox.iter().all(|v| v.is_finite()) && w > 0.0 && h > 0.0 {
            boxes.push(*b);
        }
    }
    Ok(boxes)
}

impl ManifestSource {
    /// The images of `split`: for a classification dataset every image must carry a valid label,
    /// for a detection dataset every box a valid class (images without boxes are background).
    pub fn new(manifest: &Manifest, root: &Path, split: Split) -> Result<Self, MlError> {
        let classes = manifest.classes.len();
        let mut items = Vec::new();
        for image in manifest.split(split) {
            let (label, boxes) = match manifest.task {
                TaskType::Classification => (checked_label(image, classes)?, Vec::new()),
                TaskType::Detection => (0, checked_boxes(image, classes)?),
                TaskType::Segmentation => {
                    return Err(MlError::InvalidDataset(
                        "segmentation datasets cannot be trained on".into(),
                    ));
                }
            };
            if image.file.split('/').any(|part| part == "..") || image.file.starts_with('/') {
                return Err(MlError::InvalidDataset(format!(
                    "image path {} leaves the dataset root",
                    image.file
                )));
            }
            items.push(Item {
                file: image.file.clone(),
                label,
                boxes,
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            items,
        })
    }

    /// Label of every image, in order.
    pub fn labels(&self) -> Vec<usize> {
        self.items.iter().map(|item| item.label).collect()
    }
}

impl ImageSource for ManifestSource {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn label(&self, index: usize) -> usize {
        self.items[index].label
    }

    fn boxes(&self, index: usize) -> Vec<BoxAnnotation> {
        self.items[index].boxes.clone()
    }

    fn load(&self, index: usize) -> Result<RgbImage, MlError> {
        let path = self.root.join(&self.items[index].file);
        let image = image::open(&path).map_err(|e| MlError::Image {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(image.into_rgb8())
    }
}

/// Decoded images held in memory (tests, generated data, inference batches).
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    items: Vec<(Arc<RgbImage>, usize, Vec<BoxAnnotation>)>,
}

impl MemorySource {
    /// A source over `(image, label)` pairs.
    pub fn new(items: Vec<(RgbImage, usize)>) -> Self {
        Self {
            items: items
                .into_iter()
                .map(|(image, label)| (Arc::new(image), label, Vec::new()))
                .collect(),
        }
    }

    /// A detection source over `(image, boxes)` pairs.
    pub fn with_boxes(items: Vec<(RgbImage, Vec<BoxAnnotation>)>) -> Self {
        Self {
            items: items
                .into_iter()
                .map(|(image, boxes)| (Arc::new(image), 0, boxes))
                .collect(),
        }
    }
}

impl ImageSource for MemorySource {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn label(&self, index: usize) -> usize {
        self.items[index].1
    }

    fn boxes(&self, index: usize) -> Vec<BoxAnnotation> {
        self.items[index].2.clone()
    }

    fn load(&self, index: usize) -> Result<RgbImage, MlError> {
        Ok(self.items[index].0.as_ref().clone())
    }
}

/// A subset of another source (e.g. a validation split carved out of the training images).
#[derive(Clone)]
pub struct SubsetSource {
    inner: Arc<dyn ImageSource>,
    indices: Vec<usize>,
}

impl SubsetSource {
    /// The images `indices` of `inner`, in that order.
    pub fn new(inner: Arc<dyn ImageSource>, indices: Vec<usize>) -> Self {
        Self { inner, indices }
    }
}

impl ImageSource for SubsetSource {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn label(&self, index: usize) -> usize {
        self.inner.label(self.indices[index])
    }

    fn boxes(&self, index: usize) -> Vec<BoxAnnotation> {
        self.inner.boxes(self.indices[index])
    }

    fn load(&self, index: usize) -> Result<RgbImage, MlError> {
        self.inner.load(self.indices[index])
    }
}
