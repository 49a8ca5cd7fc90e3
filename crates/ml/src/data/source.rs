//! Where images come from: a dataset manifest plus its image root directory, or memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::dataset::{Manifest, Split, TaskType};
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
    /// Class index of image `index`.
    fn label(&self, index: usize) -> usize;
    /// Decodes image `index` as 8-bit RGB.
    fn load(&self, index: usize) -> Result<RgbImage, MlError>;
}

/// The images of one split of a classification [`Manifest`], read from `root`.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    root: PathBuf,
    items: Vec<(String, usize)>,
}

impl ManifestSource {
    /// The images of `split`; fails unless the manifest is a classification dataset whose images
    /// all carry a valid label.
    pub fn new(manifest: &Manifest, root: &Path, split: Split) -> Result<Self, MlError> {
        if manifest.task != TaskType::Classification {
            return Err(MlError::InvalidDataset(format!(
                "expected a classification dataset, got {:?}",
                manifest.task
            )));
        }
        let mut items = Vec::new();
        for image in manifest.split(split) {
            let label = image.label.ok_or_else(|| {
                MlError::InvalidDataset(format!("image {} has no class label", image.file))
            })?;
            if label >= manifest.classes.len() {
                return Err(MlError::InvalidDataset(format!(
                    "image {} has label {label} but there are only {} classes",
                    image.file,
                    manifest.classes.len()
                )));
            }
            if image.file.split('/').any(|part| part == "..") || image.file.starts_with('/') {
                return Err(MlError::InvalidDataset(format!(
                    "image path {} leaves the dataset root",
                    image.file
                )));
            }
            items.push((image.file.clone(), label));
        }
        Ok(Self {
            root: root.to_path_buf(),
            items,
        })
    }

    /// Label of every image, in order.
    pub fn labels(&self) -> Vec<usize> {
        self.items.iter().map(|(_, label)| *label).collect()
    }
}

impl ImageSource for ManifestSource {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn label(&self, index: usize) -> usize {
        self.items[index].1
    }

    fn load(&self, index: usize) -> Result<RgbImage, MlError> {
        let path = self.root.join(&self.items[index].0);
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
    items: Vec<(Arc<RgbImage>, usize)>,
}

impl MemorySource {
    /// A source over `(image, label)` pairs.
    pub fn new(items: Vec<(RgbImage, usize)>) -> Self {
        Self {
            items: items
                .into_iter()
                .map(|(image, label)| (Arc::new(image), label))
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

    fn load(&self, index: usize) -> Result<RgbImage, MlError> {
        self.inner.load(self.indices[index])
    }
}
