//! What a training run reports while it runs, and how it is cancelled.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// Cooperative cancellation: clone it into the training thread, call [`CancelToken::cancel`]
/// anywhere; the loop checks it before every step and returns [`crate::MlError::Cancelled`].
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// `accuracy` of a task without one (detection): NaN in Rust, absent from JSON.
fn not_applicable() -> f64 {
    f64::NAN
}

fn is_nan(value: &f64) -> bool {
    value.is_nan()
}

/// Metrics of one finished epoch. Classification fills `accuracy`, `val_accuracy`, `val_top5`;
/// detection leaves `accuracy` NaN (omitted from JSON) and fills the box/cls/dfl loss parts and
/// the validation mAPs, which classification omits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training top-1 accuracy in `[0, 1]` (classification; NaN and absent from JSON otherwise).
    #[serde(default = "not_applicable", skip_serializing_if = "is_nan")]
    pub accuracy: f64,
    /// Mean validation loss (absent without validation images).
    pub val_loss: Option<f64>,
    /// Validation top-1 accuracy.
    pub val_accuracy: Option<f64>,
    /// Validation top-5 accuracy (only with more than 5 classes).
    pub val_top5: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Detection: mean box (CIoU) part of the training loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub box_loss: Option<f64>,
    /// Detection: mean class (BCE) part of the training loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cls_loss: Option<f64>,
    /// Detection: mean DFL part of the training loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dfl_loss: Option<f64>,
    /// Detection: validation COCO mAP at IoU 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_map50: Option<f64>,
    /// Detection: validation COCO mAP averaged over IoU 0.5:0.95.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_map50_95: Option<f64>,
}

impl EpochMetrics {
    /// Metrics with only the epoch, loss and learning rate set (`accuracy` NaN).
    pub fn new(epoch: usize, loss: f64, lr: f64) -> Self {
        Self {
            epoch,
            loss,
            accuracy: f64::NAN,
            val_loss: None,
            val_accuracy: None,
            val_top5: None,
            lr,
            box_loss: None,
            cls_loss: None,
            dfl_loss: None,
            val_map50: None,
            val_map50_95: None,
        }
    }
}

/// Progress of a training run, in order: `Started`, then `Step`s and per epoch an `Epoch` and a
/// `Checkpoint`, finally `EarlyStopped` (maybe) and `Finished`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrainingEvent {
    /// The run starts (or resumes after `start_epoch − 1` finished epochs).
    Started {
        /// First epoch this process runs (1-based).
        start_epoch: usize,
        /// Total epochs of the run.
        epochs: usize,
        /// Optimisation steps per epoch.
        steps_per_epoch: usize,
        /// Steps of the whole run.
        total_steps: usize,
        /// Training images.
        train_images: usize,
        /// Validation images.
        val_images: usize,
        /// Class names.
        classes: Vec<String>,
    },
    /// One optimisation step finished.
    Step {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// 1-based step over the whole run.
        global_step: usize,
        /// Steps of the whole run.
        total_steps: usize,
        /// Loss of this batch.
        loss: f64,
        /// Accuracy on this batch (classification; NaN and absent from JSON for detection).
        #[serde(default = "not_applicable", skip_serializing_if = "is_nan")]
        accuracy: f64,
        /// Learning rate used.
        lr: f64,
        /// Seconds since this process started training.
        elapsed_secs: f64,
        /// Training throughput of this step.
        images_per_sec: f64,
        /// Estimated seconds left in the run.
        eta_secs: f64,
    },
    /// An epoch (training and validation) finished.
    Epoch {
        /// Total epochs of the run.
        epochs: usize,
        /// The epoch's metrics.
        metrics: EpochMetrics,
        /// Seconds since this process started training.
        elapsed_secs: f64,
        /// Training images per second over the epoch.
        images_per_sec: f64,
        /// Estimated seconds left in the run.
        eta_secs: f64,
    },
    /// A checkpoint to resume from was written.
    Checkpoint {
        /// Epoch it holds.
        epoch: usize,
        /// Its directory.
        path: PathBuf,
    },
    /// Early stopping ended the run.
    EarlyStopped {
        /// Last epoch trained.
        epoch: usize,
        /// Epoch with the lowest `val_loss` (its weights are the result).
        best_epoch: usize,
        /// That loss.
        best_val_loss: f64,
    },
    /// The final artefact is written.
    Finished {
        /// Epochs trained in total.
        epochs_completed: usize,
        /// Epoch whose weights were exported.
        exported_epoch: usize,
        /// Directory holding `model.safetensors` and `config.json`.
        artefact_dir: PathBuf,
    },
}
