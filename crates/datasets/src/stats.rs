//! Dataset statistics, in the shape of the API's `statistics` object.

use domain::dataset::{Manifest, Split, TaskType};
use serde::{Deserialize, Serialize};

/// Count of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    /// Class name.
    pub name: String,
    /// Images of the class (classification) or boxes of the class (detection).
    pub count: u64,
}

/// `statistics` of `GET /datasets/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    /// All images.
    pub total_images: u64,
    /// Images in the train split.
    pub train_images: u64,
    /// Images in the val split.
    pub val_images: u64,
    /// Images in the test split.
    pub test_images: u64,
    /// One entry per class, in class order.
    pub classes: Vec<ClassCount>,
}

/// Per-class counts: images per class for classification, boxes per class otherwise.
/// Out-of-range class ids are not counted.
pub fn class_counts(manifest: &Manifest) -> Vec<u64> {
    let mut counts = vec![0u64; manifest.classes.len()];
    for image in &manifest.images {
        if manifest.task == TaskType::Classification {
            if let Some(count) = image.label.and_then(|l| counts.get_mut(l)) {
                *count += 1;
            }
        } else {
            for b in &image.boxes {
                if let Some(count) = counts.get_mut(b.class_id) {
                    *count += 1;
                }
            }
        }
    }
    counts
}

/// Computes the statistics of a manifest.
pub fn statistics(manifest: &Manifest) -> Statistics {
    let count = |split| manifest.split(split).count() as u64;
    Statistics {
        total_images: manifest.images.len() as u64,
        train_images: count(Split::Train),
        val_images: count(Split::Val),
        test_images: count(Split::Test),
        classes: manifest
            .classes
            .iter()
            .zip(class_counts(manifest))
            .map(|(name, count)| ClassCount {
                name: name.clone(),
                count,
            })
            .collect(),
    }
}
