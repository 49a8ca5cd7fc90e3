//! Per-epoch checkpoints: model record, optimizer state and loop state (epoch, RNG, early-stopping
//! bookkeeping, metric history), plus the best weights so far.
//!
//! Layout: `<dir>/epoch-0003/{model.bpk, optimizer.bpk, state.json}`, `<dir>/latest.json` naming
//! the newest complete one (written last, so a crash mid-write leaves the previous one in force),
//! and `<dir>/best.bpk`.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use super::events::EpochMetrics;
use crate::error::MlError;
use crate::models::Architecture;

/// What must match for a checkpoint to be resumed by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFingerprint {
    /// Architecture.
    pub model: Architecture,
    /// Class names.
    pub classes: Vec<String>,
    /// Input size.
    pub image_size: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Number of training images.
    pub train_images: usize,
    /// Seed.
    pub seed: u64,
}

/// The training loop's own state at the end of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Epochs finished.
    pub epoch: usize,
    /// Global steps finished.
    pub global_step: usize,
    /// State of the epoch-seed generator.
    pub rng_state: u64,
    /// Lowest validation loss so far.
    pub best_val_loss: Option<f64>,
    /// Epoch of `best_val_loss`.
    pub best_epoch: Option<usize>,
    /// Epochs since the last improvement.
    pub epochs_without_improvement: usize,
    /// Metrics of every finished epoch.
    pub history: Vec<EpochMetrics>,
    /// The run this state belongs to.
    pub fingerprint: RunFingerprint,
}

#[derive(Debug, Serialize, Deserialize)]
struct Latest {
    epoch: usize,
    dir: String,
}

fn record_error(context: &str, e: impl std::fmt::Display) -> MlError {
    MlError::Checkpoint(format!("{context}: {e}"))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), MlError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| MlError::json(path, e))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(|e| MlError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| MlError::io(path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, MlError> {
    let bytes = std::fs::read(path).map_err(|e| MlError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| MlError::json(path, e))
}

/// Writes the checkpoint of `state.epoch` and makes it the latest; returns its directory.
/// Older epoch directories are removed once the new one is in force.
pub fn save<M: Module>(
    dir: &Path,
    model: &M,
    optimizer: &ModuleOptimizer,
    state: &LoopState,
) -> Result<PathBuf, MlError> {
    let name = format!("epoch-{:04}", state.epoch);
    let epoch_dir = dir.join(&name);
    std::fs::create_dir_all(&epoch_dir).map_err(|e| MlError::io(&epoch_dir, e))?;
    // `valid()` first: it synchronises BatchNorm running statistics, which a plain record of the
    // training module may hold stale; parameter ids (the optimizer's keys) are kept.
    model
        .valid()
        .into_record()
        .save(epoch_dir.join("model.bpk"))
        .map_err(|e| record_error("saving model", e))?;
    optimizer
        .save(epoch_dir.join("optimizer.bpk"))
        .map_err(|e| record_error("saving optimizer", e))?;
    write_json(&epoch_dir.join("state.json"), state)?;
    write_json(
        &dir.join("latest.json"),
        &Latest {
            epoch: state.epoch,
            dir: name.clone(),
        },
    )?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().to_string();
            if file_name.starts_with("epoch-") && file_name != name {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(epoch_dir)
}

/// Saves the best weights so far.
pub fn save_best<M: Module>(dir: &Path, model: &M) -> Result<(), MlError> {
    std::fs::create_dir_all(dir).map_err(|e| MlError::io(dir, e))?;
    model
        .valid()
        .into_record()
        .save(dir.join("best.bpk"))
        .map_err(|e| record_error("saving best weights", e))
}

/// Loads the best weights saved by [`save_best`] into `model`, if there are any.
pub fn load_best<M: Module>(dir: &Path, model: M) -> Result<M, MlError> {
    let path = dir.join("best.bpk");
    if !path.is_file() {
        return Ok(model);
    }
    let record = ModuleRecord::load(&path).map_err(|e| record_error("reading best weights", e))?;
    model
        .try_load_record(record)
        .map_err(|e| record_error("loading best weights", e))
}

/// The directory of the latest complete checkpoint in `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>, MlError> {
    let path = dir.join("latest.json");
    if !path.is_file() {
        return Ok(None);
    }
    let latest: Latest = read_json(&path)?;
    Ok(Some(dir.join(latest.dir)))
}

/// Restores model, optimizer and loop state from a checkpoint directory, refusing one made for a
/// different run.
pub fn load<M: Module>(
    epoch_dir: &Path,
    model: M,
    optimizer: ModuleOptimizer,
    expected: &RunFingerprint,
) -> Result<(M, ModuleOptimizer, LoopState), MlError> {
    let state: LoopState = read_json(&epoch_dir.join("state.json"))?;
    if &state.fingerprint != expected {
        return Err(MlError::Checkpoint(format!(
            "{} belongs to a different run (checkpoint: {:?}; this run: {:?})",
            epoch_dir.display(),
            state.fingerprint,
            expected
        )));
    }
    let record = ModuleRecord::load(epoch_dir.join("model.bpk"))
        .map_err(|e| record_error("reading model", e))?;
    let model = model
        .try_load_record(record)
        .map_err(|e| record_error("loading model", e))?;
    let optimizer = optimizer
        .load(epoch_dir.join("optimizer.bpk"))
        .map_err(|e| record_error("loading optimizer", e))?;
    Ok((model, optimizer, state))
}
