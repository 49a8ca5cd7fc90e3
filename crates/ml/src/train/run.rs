//! The parts of a training run every task shares: steps per epoch, resume, step/epoch events,
//! early-stopping bookkeeping, checkpoints and the choice of the weights to export.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::ModuleOptimizer;

use domain::dataset::Manifest;

use super::checkpoint::{self, LoopState, RunFingerprint};
use super::config::TrainConfig;
use super::events::{EpochMetrics, TrainingEvent};
use super::trainer::TrainSummary;
use crate::artefact::{ArtefactConfig, ArtefactPaths};
use crate::data::Preprocess;
use crate::error::MlError;
use crate::rng::Rng;

/// Steps of an epoch over `len` images in batches of `batch_size` (the batch streams drop a
/// trailing single-image batch, which BatchNorm cannot train on).
pub(crate) fn steps_per_epoch(len: usize, batch_size: usize) -> usize {
    let mut steps = len.div_ceil(batch_size.max(1));
    if len % batch_size.max(1) == 1 && len > 1 {
        steps -= 1;
    }
    steps
}

/// The loop state of a fresh run, or the one restored (with model and optimizer) from the latest
/// checkpoint in `checkpoint_dir` when `resume` is set and there is one.
pub(crate) fn start_or_resume<M: Module>(
    config: &TrainConfig,
    fingerprint: RunFingerprint,
    checkpoint_dir: &Path,
    resume: bool,
    model: M,
    optimizer: ModuleOptimizer,
) -> Result<(M, ModuleOptimizer, LoopState), MlError> {
    if resume && let Some(latest) = checkpoint::latest(checkpoint_dir)? {
        let (model, optimizer, state) = checkpoint::load(&latest, model, optimizer, &fingerprint)?;
        tracing::info!(epoch = state.epoch, "resumed from {}", latest.display());
        return Ok((model, optimizer, state));
    }
    let state = LoopState {
        epoch: 0,
        global_step: 0,
        rng_state: Rng::derive(config.seed, 0xE90C).state(),
        best_val_loss: None,
        best_epoch: None,
        epochs_without_improvement: 0,
        history: Vec::new(),
        fingerprint,
    };
    Ok((model, optimizer, state))
}

/// Wall-clock bookkeeping of this process's part of a run.
pub(crate) struct Progress {
    started: Instant,
    steps_this_process: usize,
    steps_per_epoch: usize,
    total_steps: usize,
}

impl Progress {
    /// Starts the clock.
    pub(crate) fn new(steps_per_epoch: usize, total_steps: usize) -> Self {
        Self {
            started: Instant::now(),
            steps_this_process: 0,
            steps_per_epoch,
            total_steps,
        }
    }

    /// Seconds since the start.
    pub(crate) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Records a finished step (`state.global_step` already advanced) and returns its event.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &mut self,
        state: &LoopState,
        epoch: usize,
        index: usize,
        loss: f64,
        accuracy: f64,
        lr: f64,
        images: usize,
        step_started: Instant,
    ) -> TrainingEvent {
        self.steps_this_process += 1;
        let elapsed = self.elapsed();
        let step_secs = step_started.elapsed().as_secs_f64().max(1e-9);
        let remaining = self.total_steps.saturating_sub(state.global_step);
        TrainingEvent::Step {
            epoch,
            step: index + 1,
            steps_per_epoch: self.steps_per_epoch,
            global_step: state.global_step,
            total_steps: self.total_steps,
            loss,
            accuracy,
            lr,
            elapsed_secs: elapsed,
            images_per_sec: images as f64 / step_secs,
            eta_secs: elapsed / self.steps_this_process.max(1) as f64 * remaining as f64,
        }
    }
}

/// What the end of an epoch needs besides the model.
pub(crate) struct EpochEnd<'a> {
    /// The run's configuration.
    pub config: &'a TrainConfig,
    /// Checkpoint directory.
    pub checkpoint_dir: &'a Path,
    /// State of the epoch-seed generator after this epoch.
    pub rng_state: u64,
    /// When the epoch started.
    pub epoch_started: Instant,
    /// Seconds of training (without validation) this epoch.
    pub train_secs: f64,
    /// Images trained on this epoch.
    pub images: usize,
}

/// Closes an epoch: records `metrics`, keeps the best weights by `val_loss`, writes the
/// checkpoint, emits `Epoch` and `Checkpoint` (and `EarlyStopped`). Returns whether early stopping
/// ends the run.
pub(crate) fn finish_epoch<M: Module>(
    end: EpochEnd<'_>,
    state: &mut LoopState,
    metrics: EpochMetrics,
    model: &M,
    optimizer: &ModuleOptimizer,
    progress: &Progress,
    on_event: &mut dyn FnMut(TrainingEvent),
) -> Result<bool, MlError> {
    let config = end.config;
    let epoch = metrics.epoch;
    state.epoch = epoch;
    state.rng_state = end.rng_state;
    state.history.push(metrics.clone());
    if let Some(val_loss) = metrics.val_loss {
        let improved = state
            .best_val_loss
            .is_none_or(|best| val_loss < best - config.early_stopping_min_delta);
        if improved {
            state.best_val_loss = Some(val_loss);
            state.best_epoch = Some(epoch);
            state.epochs_without_improvement = 0;
            checkpoint::save_best(end.checkpoint_dir, model)?;
        } else {
            state.epochs_without_improvement += 1;
        }
    }
    let checkpoint_path = checkpoint::save(end.checkpoint_dir, model, optimizer, state)?;
    let remaining_epochs = config.epochs - epoch;
    on_event(TrainingEvent::Epoch {
        epochs: config.epochs,
        metrics,
        elapsed_secs: progress.elapsed(),
        images_per_sec: end.images as f64 / end.train_secs.max(1e-9),
        eta_secs: end.epoch_started.elapsed().as_secs_f64() * remaining_epochs as f64,
    });
    on_event(TrainingEvent::Checkpoint {
        epoch,
        path: checkpoint_path,
    });
    if let Some(patience) = config.early_stopping_patience
        && state.best_val_loss.is_some()
        && state.epochs_without_improvement >= patience
        && epoch < config.epochs
    {
        on_event(TrainingEvent::EarlyStopped {
            epoch,
            best_epoch: state.best_epoch.unwrap_or(epoch),
            best_val_loss: state.best_val_loss.unwrap_or(f64::NAN),
        });
        return Ok(true);
    }
    Ok(false)
}

/// The epoch whose weights are exported (best `val_loss`, or the last without validation) and
/// those weights (`model` is the last epoch's, inference mode).
pub(crate) fn exported<M: Module>(
    checkpoint_dir: &Path,
    state: &LoopState,
    model: M,
) -> Result<(usize, M), MlError> {
    let epoch = state.best_epoch.unwrap_or(state.epoch);
    let model = match state.best_epoch {
        Some(_) => checkpoint::load_best(checkpoint_dir, model)?,
        None => model,
    };
    Ok((epoch, model))
}

/// Fails unless the manifest's task is the architecture's.
pub(crate) fn check_task(config: &TrainConfig, manifest: &Manifest) -> Result<(), MlError> {
    if manifest.task == config.model.task() {
        Ok(())
    } else {
        Err(MlError::InvalidDataset(format!(
            "{} is a {:?} model but the dataset is a {:?} dataset",
            config.model,
            config.model.task(),
            manifest.task
        )))
    }
}

/// The artefact's `config.json` for the exported epoch of a run.
pub(crate) fn artefact_config(
    config: &TrainConfig,
    classes: Vec<String>,
    preprocess: Preprocess,
    state: &LoopState,
    exported_epoch: usize,
) -> ArtefactConfig {
    let mut artefact = ArtefactConfig::new(config.model, classes, preprocess);
    artefact.epoch = Some(exported_epoch);
    artefact.metrics = state
        .history
        .iter()
        .find(|m| m.epoch == exported_epoch)
        .cloned();
    artefact.training = Some(config.clone());
    artefact
}

/// Emits `Finished` and sums the run up.
pub(crate) fn finish(
    state: LoopState,
    exported_epoch: usize,
    stopped_early: bool,
    artefact: ArtefactPaths,
    progress: &Progress,
    on_event: &mut dyn FnMut(TrainingEvent),
) -> TrainSummary {
    on_event(TrainingEvent::Finished {
        epochs_completed: state.epoch,
        exported_epoch,
        artefact_dir: artefact.dir.clone(),
    });
    TrainSummary {
        epochs_completed: state.epoch,
        exported_epoch,
        stopped_early,
        history: state.history,
        artefact,
        elapsed_secs: progress.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_drop_a_trailing_single_image() {
        assert_eq!(steps_per_epoch(10, 4), 3);
        assert_eq!(steps_per_epoch(9, 4), 2);
        assert_eq!(steps_per_epoch(1, 4), 1);
        assert_eq!(steps_per_epoch(8, 4), 2);
    }
}
