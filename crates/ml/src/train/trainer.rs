//! The training loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::GradientsParams;
use burn::tensor::Device;
use domain::dataset::{Manifest, Split, TaskType};

use super::checkpoint::RunFingerprint;
use super::config::TrainConfig;
use super::events::{CancelToken, EpochMetrics, TrainingEvent};
use super::metrics::{Accumulator, topk_correct};
use super::optimizer::build_optimizer;
use super::run::{self, EpochEnd, Progress};
use super::schedule::LrSchedule;
use crate::artefact::{self, ArtefactPaths};
use crate::data::{
    BatchMode, BatchStream, CacheBudget, CachedSource, DEFAULT_CACHE_BYTES, ImageSource,
    ManifestSource, Preprocess, SubsetSource, epoch_order,
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
pub(crate) type Source = Arc<dyn ImageSource>;

/// Train/val sources: the manifest's `val` split, or a stratified (by class label; detection
/// sources all have label 0), seeded hold-out of `train`.
pub(crate) fn sources(request: &TrainRequest) -> Result<(Source, Option<Source>), MlError> {
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

/// The sources behind one decode-once cache ([`DEFAULT_CACHE_BYTES`]): training images kept
/// just large enough that the smallest random crop is at their own resolution, validation images
/// at the size the evaluation transform resizes them to (so later epochs only crop).
fn cached(
    train: Source,
    val: Option<Source>,
    config: &TrainConfig,
    preprocess: &Preprocess,
) -> (Source, Option<Source>) {
    let budget = CacheBudget::new(DEFAULT_CACHE_BYTES);
    let size = preprocess.image_size as f64;
    let crop_min = config
        .augment
        .random_resized_crop
        .map_or(1.0, |rrc| rrc.scale.0.clamp(0.01, 1.0));
    let train_side = (size / crop_min.sqrt()).ceil() as u32;
    let eval_side = (size / preprocess.crop_pct.clamp(0.05, 1.0)).round() as u32;
    let val = val.map(|v| Arc::new(CachedSource::new(v, eval_side, budget.clone())) as Source);
    (Arc::new(CachedSource::new(train, train_side, budget)), val)
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

/// Runs (or resumes) a training job (a detection architecture is handed to
/// [`crate::detect::train_detector`]), reporting through `on_event`, checking `cancel` before every
/// step, checkpointing every epoch, and finally exporting the best weights as an artefact.
pub fn train(
    request: &TrainRequest,
    cancel: &CancelToken,
    on_event: &mut (dyn FnMut(TrainingEvent) + Send),
) -> Result<TrainSummary, MlError> {
    crate::device::on_training_pool(|| train_here(request, cancel, on_event))
}

/// [`train`] on the current thread.
fn train_here(
    request: &TrainRequest,
    cancel: &CancelToken,
    on_event: &mut (dyn FnMut(TrainingEvent) + Send),
) -> Result<TrainSummary, MlError> {
    let config = &request.config;
    if config.model.task() == TaskType::Detection {
        return crate::detect::train_detector(request, cancel, on_event);
    }
    config.validate()?;
    run::check_task(config, &request.manifest)?;
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
    let (train_source, val_source) = cached(train_source, val_source, config, &preprocess);
    let batch_size = config.batch_size.min(train_source.len()).max(1);
    let steps_per_epoch = run::steps_per_epoch(train_source.len(), batch_size);
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
    let fingerprint = RunFingerprint {
        model: config.model,
        classes: classes.clone(),
        image_size,
        batch_size,
        train_images: train_source.len(),
        seed: config.seed,
    };
    let checkpoint_dir: &Path = &request.checkpoint_dir;
    let (mut model, mut optimizer, mut state) = run::start_or_resume(
        config,
        fingerprint,
        checkpoint_dir,
        request.resume,
        model,
        build_optimizer(config),
    )?;

    on_event(TrainingEvent::Started {
        start_epoch: state.epoch + 1,
        epochs: config.epochs,
        steps_per_epoch,
        total_steps,
        train_images: train_source.len(),
        val_images: val_source.as_ref().map_or(0, |v| v.len()),
        classes: classes.clone(),
    });

    let smoothing = (config.label_smoothing > 0.0).then_some(config.label_smoothing as f32);
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing(smoothing)
        .init(&device);
    let mut progress = Progress::new(steps_per_epoch, total_steps);
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
            check_finite(loss_value, epoch, index)?;
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
            let accuracy = correct as f64 / batch.len().max(1) as f64;
            on_event(progress.step(
                &state,
                epoch,
                index,
                loss_value,
                accuracy,
                lr,
                batch.len(),
                step_started,
            ));
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
            accuracy: train_acc.accuracy(),
            val_loss: val.map(|v| v.loss()),
            val_accuracy: val.map(|v| v.accuracy()),
            val_top5: val.filter(|_| classes.len() > 5).map(|v| v.top5()),
            ..EpochMetrics::new(epoch, train_acc.loss(), lr)
        };
        let end = EpochEnd {
            config,
            checkpoint_dir,
            rng_state: epoch_rng.state(),
            epoch_started,
            train_secs,
            images: train_acc.count,
        };
        if run::finish_epoch(
            end, &mut state, metrics, &model, &optimizer, &progress, on_event,
        )? {
            stopped_early = true;
            break;
        }
    }

    let (exported_epoch, export_model) = run::exported(checkpoint_dir, &state, model.valid())?;
    let artefact_config = run::artefact_config(config, classes, preprocess, &state, exported_epoch);
    let artefact = artefact::write(&request.output_dir, &export_model, &artefact_config)?;
    Ok(run::finish(
        state,
        exported_epoch,
        stopped_early,
        artefact,
        &progress,
        on_event,
    ))
}

/// Fails the run when a step's loss is not finite.
pub(crate) fn check_finite(loss: f64, epoch: usize, index: usize) -> Result<(), MlError> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(MlError::InvalidConfig(format!(
            "training diverged at epoch {epoch} step {} (loss {loss}); lower the learning rate",
            index + 1
        )))
    }
}
