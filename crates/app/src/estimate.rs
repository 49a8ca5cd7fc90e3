//! How long a training run will take: measured throughput × images × epochs.
//!
//! Every finished epoch records the training images/s of its (model, device, input size) in the
//! database; estimates use that running mean, so they follow the hardware the workers really
//! run on. Before the first run of a combination the reference figures below stand in, scaled by
//! pixel count from 64×64: ResNet-18's is measured with `vision bench train` (release build,
//! 2-core reference machine); the others are derived from it by their ratio of multiply-adds.

use crate::App;
use ml::Architecture;

/// Training images/s at 64×64 on the pure-Rust CPU backend of the reference machine.
fn reference_images_per_sec(architecture: Architecture) -> f64 {
    match architecture {
        Architecture::SmallCnn => 175.0,
        Architecture::Resnet18 => 35.0,
        Architecture::Resnet34 => 18.0,
        Architecture::Resnet50 => 12.0,
        // Detectors: `vision bench detect` gives YOLOv8n ≈ 1.6 img/s at 320² (× 25 for 64²);
        // YOLOv8s has about 3× its multiply-adds.
        Architecture::Yolov8n => 40.0,
        Architecture::Yolov8s => 13.0,
    }
}

/// Evaluation costs about a third of a training step per image (forward only).
const EVAL_COST: f64 = 1.0 / 3.0;

/// Fixed cost of a run: loading images, building the model, writing the artefact.
const SETUP_SECS: f64 = 5.0;

/// The size of a training run.
#[derive(Debug, Clone, Copy)]
pub struct RunShape {
    /// Model trained.
    pub architecture: Architecture,
    /// Input side.
    pub image_size: usize,
    /// Training images per epoch.
    pub train_images: usize,
    /// Validation images per epoch.
    pub val_images: usize,
    /// Epochs.
    pub epochs: usize,
}

/// Training images/s expected for `shape` on `device`: measured when known, else the reference.
pub async fn images_per_sec(app: &App, shape: &RunShape, device: &str) -> f64 {
    let measured = app
        .store
        .throughput(shape.architecture.name(), device, shape.image_size as i64)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read measured throughput");
            None
        });
    measured.unwrap_or_else(|| {
        let scale = (64.0 * 64.0) / (shape.image_size as f64 * shape.image_size as f64);
        reference_images_per_sec(shape.architecture) * scale
    })
}

/// Expected wall time of the whole run in seconds.
pub fn seconds(shape: &RunShape, images_per_sec: f64) -> f64 {
    let per_epoch = (shape.train_images as f64 + EVAL_COST * shape.val_images as f64)
        / images_per_sec.max(1e-6);
    SETUP_SECS + per_epoch * shape.epochs as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_with_images_and_epochs() {
        let shape = RunShape {
            architecture: Architecture::Resnet18,
            image_size: 64,
            train_images: 350,
            val_images: 0,
            epochs: 2,
        };
        assert!((seconds(&shape, 35.0) - (SETUP_SECS + 20.0)).abs() < 1e-9);
        let longer = RunShape { epochs: 4, ..shape };
        assert!(seconds(&longer, 35.0) > seconds(&shape, 35.0));
    }
}
