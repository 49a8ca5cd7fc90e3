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

/// Metrics of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training top-1 accuracy in `[0, 1]`.
    pub accuracy: f64,
    /// Mean validation loss (absent without validation images).
    pub val_loss: Option<f64>,
    /// Validation top-1 accuracy.
    pub val_accuracy: Option<f64>,
    /// Validation top-5 accuracy (only with more than 5 classes).
    pub val_top5: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
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
        /// Accuracy on this batch.
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
