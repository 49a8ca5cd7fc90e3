//! The training loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use domain::dataset::{Manifest, Split};

use super::checkpoint::{self, LoopState, RunFingerprint};
use super::config::TrainConfig;
use super::events::{CancelToken, EpochMetrics, TrainingEvent};
use super::metrics::{Accumulator, topk_correct};
use super::optimizer::build_optimizer;
use super::schedule::LrSchedule;
use crate::artefact::{self, ArtefactConfig, ArtefactPaths};
use crate::data::{
    BatchMode, BatchStream, ImageSource, ManifestSource, Preprocess, SubsetSource, epoch_order,
};
use crate::error::MlError;
use crate::models::{Classifier, weights};
use crate::rng::Rng;

/// Batches prepared ahead of the model.
const PREFETCH: usize = 2;

/// One training job.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The dataset (classification; `train` split, plus `val` or a held-out fraction).
    pub manifest: Manifest,
    /// Directory the manifest's image paths are relative to.
    pub image_root: PathBuf,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Where the final artefact (`model.safetensors`, `config.json`) is written.
    pub output_dir: PathBuf,
    /// Where per-epoch checkpoints live.
    pub checkpoint_dir: PathBuf,
    /// Continue from the latest checkpoint in `checkpoint_dir` when there is one.
    pub resume: bool,
}

/// Outcome of a finished run.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Epochs trained in total (including those before a resume).
    pub epochs_completed: usize,
    /// Epoch whose weights were exported (the best `val_loss`, or the last without validation).
    pub exported_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Metrics of every epoch.
    pub history: Vec<EpochMetrics>,
    /// The exported files.
    pub artefact: ArtefactPaths,
    /// Wall time of this process's part of the run.
    pub elapsed_secs: f64,
}

/// A shared image source.
type Source = Arc<dyn ImageSource>;

/// Train/val sources: the manifest's `val` split, or a stratified, seeded hold-out of `train`.
fn sources(request: &TrainRequest) -> Result<(Source, Option<Source>), MlError> {
    let config = &request.config;
    let train = ManifestSource::new(&request.manifest, &request.image_root, Split::Train)?;
    let val = ManifestSource::new(&request.manifest, &request.image_root, Split::Val)?;
    if train.is_empty() {
        return Err(MlError::InvalidDataset("no training images".into()));
    }
    if !val.is_empty() {
        return Ok((Arc::new(train), Some(Arc::new(val))));
    }
    if config.val_fraction <= 0.0 || train.len() < 2 {
        return Ok((Arc::new(train), None));
    }
    let labels = train.labels();
    let classes = request.manifest.classes.len();
    let mut rng = Rng::derive(config.seed, 0x5_1117);
    let (mut train_idx, mut val_idx) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut members);
        let held = ((members.len() as f64) * config.val_fraction).round() as usize;
        let held = held.min(members.len().saturating_sub(1));
        val_idx.extend_from_slice(&members[..held]);
        train_idx.extend_from_slice(&members[held..]);
    }
    train_idx.sort_unstable();
    val_idx.sort_unstable();
    let all: Arc<dyn ImageSource> = Arc::new(train);
    let val: Option<Arc<dyn ImageSource>> = (!val_idx.is_empty())
        .then(|| Arc::new(SubsetSource::new(all.clone(), val_idx)) as Arc<dyn ImageSource>);
    Ok((Arc::new(SubsetSource::new(all, train_idx)), val))
}

/// Evaluates `model` (non-autodiff) on `source`: mean loss, top-1 and top-5 accuracy.
fn evaluate(
    model: &Classifier,
    source: &Arc<dyn ImageSource>,
    preprocess: Preprocess,
    batch_size: usize,
    classes: usize,
    device: &Device,
    cancel: &CancelToken,
) -> Result<Accumulator, MlError> {
    let loss_fn = CrossEntropyLoss::new(None, device);
    let order = epoch_order(source.len(), None);
    let stream = BatchStream::spawn(
        source.clone(),
        order,
        batch_size,
        false,
        preprocess,
        BatchMode::Eval,
        PREFETCH,
    );
    let mut acc = Accumulator::default();
    for batch in stream {
        if cancel.is_cancelled() {
            return Err(MlError::Cancelled);
        }
        let batch = batch?;
        let logits = model.forward(batch.images_tensor(device));
        let loss = loss_fn
            .forward(logits.clone(), batch.labels_tensor(device))
            .into_scalar::<f32>() as f64;
        let host = logits
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| MlError::InvalidConfig(format!("logits readback: {e:?}")))?;
        let (top1, top5) = topk_correct(&host, classes, &batch.labels, 5);
        acc.add(loss, top1, top5, batch.len());
    }
    Ok(acc)
}

/// Runs (or resumes) a training job, reporting through `on_event`, checking `cancel` before every
/// step, checkpointing every epoch, and finally exporting the best weights as an artefact.
pub fn train(
    request: &TrainRequest,
    cancel: &CancelToken,
    on_event: &mut dyn FnMut(TrainingEvent),
) -> Result<TrainSummary, MlError> {
    let config = &request.config;
    config.validate()?;
    let classes = request.manifest.classes.clone();
    if classes.len() < 2 {
        return Err(MlError::InvalidDataset(format!(
            "classification needs at least 2 classes, the dataset has {}",
            classes.len()
        )));
    }
    let (train_source, val_source) = sources(request)?;
    let image_size = config.image_size();
    let preprocess = Preprocess {
        image_size,
        crop_pct: config.crop_pct,
        normalization: config.normalization,
    };
    let batch_size = config.batch_size.min(train_source.len()).max(1);
    let mut steps_per_epoch = train_source.len().div_ceil(batch_size);
    if train_source.len() % batch_size == 1 && train_source.len() > 1 {
        steps_per_epoch -= 1; // the stream drops a trailing single-image batch
    }
    let total_steps = steps_per_epoch * config.epochs;
    let schedule = LrSchedule::new(config, steps_per_epoch);

    let plain_device = config.device.device()?;
    let device = plain_device.clone().autodiff();
    device.seed(config.seed);
    let mut model = Classifier::seeded(config.model, classes.len(), config.seed, &device)?;
    if let Some(path) = &config.pretrained_weights {
        let (loaded, report) = weights::load_safetensors(model, path)?;
        tracing::info!(
            loaded = report.loaded,
            replaced_head = ?report.replaced_head,
            unused = report.unused.len(),
            "pretrained weights loaded from {}",
            path.display()
        );
        model = loaded;
    }
    let mut optimizer = build_optimizer(config);
    let fingerprint = RunFingerprint {
        model: config.model,
        classes: classes.clone(),
        image_size,
        batch_size,
        train_images: train_source.len(),
        seed: config.seed,
    };
    let mut state = LoopState {
        epoch: 0,
        global_step: 0,
        rng_state: Rng::derive(config.seed, 0xE90C).state(),
        best_val_loss: None,
        best_epoch: None,
        epochs_without_improvement: 0,
        history: Vec::new(),
        fingerprint: fingerprint.clone(),
    };
    let checkpoint_dir: &Path = &request.checkpoint_dir;
    if request.resume
        && let Some(latest) = checkpoint::latest(checkpoint_dir)?
    {
        let (m, o, s) = checkpoint::load(&latest, model, optimizer, &fingerprint)?;
        model = m;
        optimizer = o;
        state = s;
        tracing::info!(epoch = state.epoch, "resumed from {}", latest.display());
    }

    on_event(TrainingEvent::Started {
        start_epoch: state.epoch + 1,
        epochs: config.epochs,
        steps_per_epoch,
        total_steps,
        train_images: train_source.len(),
        val_images: val_source.as_ref().map_or(0, |v| v.len()),
        classes: classes.clone(),
    });

    let loss_fn = CrossEntropyLoss::new(None, &device);
    let started = Instant::now();
    let mut steps_this_process = 0usize;
    let mut stopped_early = false;
    let mut epoch_rng = Rng::new(state.rng_state);

    while state.epoch < config.epochs {
        let epoch = state.epoch + 1;
        let epoch_seed = epoch_rng.next_u64();
        let order = epoch_order(train_source.len(), Some(epoch_seed));
        let mode = BatchMode::Train {
            augment: config.augment,
            seed: epoch_seed.rotate_left(17) ^ 0xA5A5_A5A5,
        };
        let stream = BatchStream::spawn(
            train_source.clone(),
            order,
            batch_size,
            true,
            preprocess,
            mode,
            PREFETCH,
        );
        let epoch_started = Instant::now();
        let mut train_acc = Accumulator::default();
        let mut lr = schedule.lr(state.global_step);
        for (index, batch) in stream.enumerate() {
            if cancel.is_cancelled() {
                return Err(MlError::Cancelled);
            }
            let step_started = Instant::now();
            let batch = batch?;
            lr = schedule.lr(state.global_step);
            let logits = model.forward(batch.images_tensor(&device));
            let loss = loss_fn.forward(logits.clone(), batch.labels_tensor(&device));
            let loss_value = loss.clone().into_scalar::<f32>() as f64;
            if !loss_value.is_finite() {
                return Err(MlError::InvalidConfig(format!(
                    "training diverged at epoch {epoch} step {} (loss {loss_value}); lower the learning rate",
                    index + 1
                )));
            }
            let host = logits
                .detach()
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| MlError::InvalidConfig(format!("logits readback: {e:?}")))?;
            let (correct, _) = topk_correct(&host, classes.len(), &batch.labels, 1);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
            train_acc.add(loss_value, correct, 0, batch.len());
            state.global_step += 1;
            steps_this_process += 1;
            let elapsed = started.elapsed().as_secs_f64();
            let step_secs = step_started.elapsed().as_secs_f64().max(1e-9);
            let remaining = total_steps.saturating_sub(state.global_step);
            on_event(TrainingEvent::Step {
                epoch,
                step: index + 1,
                steps_per_epoch,
                global_step: state.global_step,
                total_steps,
                loss: loss_value,
                accuracy: correct as f64 / batch.len().max(1) as f64,
                lr,
                elapsed_secs: elapsed,
                images_per_sec: batch.len() as f64 / step_secs,
                eta_secs: elapsed / steps_this_process as f64 * remaining as f64,
            });
        }
        let train_secs = epoch_started.elapsed().as_secs_f64().max(1e-9);

        let val = match &val_source {
            Some(source) => Some(evaluate(
                &model.valid(),
                source,
                preprocess,
                batch_size,
                classes.len(),
                &plain_device,
                cancel,
            )?),
            None => None,
        };
        let metrics = EpochMetrics {
            epoch,
            loss: train_acc.loss(),
            accuracy: train_acc.accuracy(),
            val_loss: val.map(|v| v.loss()),
            val_accuracy: val.map(|v| v.accuracy()),
            val_top5: val.filter(|_| classes.len() > 5).map(|v| v.top5()),
            lr,
        };
        state.epoch = epoch;
        state.rng_state = epoch_rng.state();
        state.history.push(metrics.clone());
        if let Some(val_loss) = metrics.val_loss {
            let improved = state
                .best_val_loss
                .is_none_or(|best| val_loss < best - config.early_stopping_min_delta);
            if improved {
                state.best_val_loss = Some(val_loss);
                state.best_epoch = Some(epoch);
                state.epochs_without_improvement = 0;
                checkpoint::save_best(checkpoint_dir, &model)?;
            } else {
                state.epochs_without_improvement += 1;
            }
        }
        let checkpoint_path = checkpoint::save(checkpoint_dir, &model, &optimizer, &state)?;
        let elapsed = started.elapsed().as_secs_f64();
        let remaining_epochs = config.epochs - epoch;
        on_event(TrainingEvent::Epoch {
            epochs: config.epochs,
            metrics,
            elapsed_secs: elapsed,
            images_per_sec: train_acc.count as f64 / train_secs,
            eta_secs: epoch_started.elapsed().as_secs_f64() * remaining_epochs as f64,
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
            stopped_early = true;
            on_event(TrainingEvent::EarlyStopped {
                epoch,
                best_epoch: state.best_epoch.unwrap_or(epoch),
                best_val_loss: state.best_val_loss.unwrap_or(f64::NAN),
            });
            break;
        }
    }

    let exported_epoch = state.best_epoch.unwrap_or(state.epoch);
    let export_model = match state.best_epoch {
        Some(_) => checkpoint::load_best(checkpoint_dir, model.valid())?,
        None => model.valid(),
    };
    let mut artefact_config = ArtefactConfig::new(config.model, classes, preprocess);
    artefact_config.epoch = Some(exported_epoch);
    artefact_config.metrics = state
        .history
        .iter()
        .find(|m| m.epoch == exported_epoch)
        .cloned();
    artefact_config.training = Some(config.clone());
    let artefact = artefact::write(&request.output_dir, &export_model, &artefact_config)?;
    on_event(TrainingEvent::Finished {
        epochs_completed: state.epoch,
        exported_epoch,
        artefact_dir: artefact.dir.clone(),
    });
    Ok(TrainSummary {
        epochs_completed: state.epoch,
        exported_epoch,
        stopped_early,
        history: state.history,
        artefact,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}
