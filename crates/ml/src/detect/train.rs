//! Training a YOLOv8 detector: the same request, events, checkpoints, resume, cancellation,
//! early stopping and artefact as classification ([`crate::train`]), with mosaic / scale / flip
//! augmentation, the YOLOv8 loss, and per epoch the loss parts plus COCO mAP on the validation
//! images.

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;

use super::augment::DetectionOptions;
use super::blocks::BN_MOMENTUM;
use super::data::{DetectionBatch, DetectionMode, load_detection_batch};
use super::engine::detections_of;
use super::loss::{DetectionLoss, LossConfig, LossParts};
use super::metrics::{CocoEvaluator, EvalBox};
use super::model::{YoloSize, YoloV8};
use super::postprocess::{Letterbox, NmsOptions};
use super::weights::{self, ULTRALYTICS};
use crate::artefact;
use crate::data::{ImageSource, Normalization, Prefetch, Preprocess, batch_chunks, epoch_order};
use crate::error::MlError;
use crate::rng::Rng;
use crate::train::checkpoint::RunFingerprint;
use crate::train::run::{self, EpochEnd, Progress};
use crate::train::{
    CancelToken, EpochMetrics, LrSchedule, TrainRequest, TrainSummary, TrainingEvent,
    build_optimizer,
};

/// Batches prepared ahead of the model.
const PREFETCH: usize = 2;

/// Running sums of the loss parts over one pass.
#[derive(Debug, Default, Clone, Copy)]
struct LossSums {
    parts: LossParts,
    images: usize,
}

impl LossSums {
    fn add(&mut self, parts: &LossParts, images: usize) {
        let n = images as f64;
        self.parts.box_loss += parts.box_loss * n;
        self.parts.cls_loss += parts.cls_loss * n;
        self.parts.dfl_loss += parts.dfl_loss * n;
        self.images += images;
    }

    fn mean(&self) -> LossParts {
        let n = self.images.max(1) as f64;
        LossParts {
            box_loss: self.parts.box_loss / n,
            cls_loss: self.parts.cls_loss / n,
            dfl_loss: self.parts.dfl_loss / n,
        }
    }
}

/// Validation results: mean loss and COCO mAPs.
#[derive(Debug, Clone, Copy)]
struct Validation {
    loss: f64,
    map50: Option<f64>,
    map50_95: Option<f64>,
}

/// Images of `source` in `order`, letterboxed without augmentation, in batches (prefetched).
fn eval_batches(
    source: &Arc<dyn ImageSource>,
    order: &[usize],
    image_size: usize,
    batch_size: usize,
) -> Prefetch<DetectionBatch> {
    let stream_source = source.clone();
    Prefetch::spawn(
        batch_chunks(order, batch_size, false),
        PREFETCH,
        move |chunk| {
            load_detection_batch(
                stream_source.as_ref(),
                chunk,
                image_size,
                &DetectionMode::Eval,
            )
        },
    )
}

/// Training images whose activations re-estimate the BatchNorm statistics after each epoch.
const CALIBRATION_IMAGES: usize = 128;

/// Re-estimates every BatchNorm's running mean and variance as the plain average over up to
/// [`CALIBRATION_IMAGES`] training images (a fixed seeded sample, letterboxed as for
/// validation), forward only. Why: with Ultralytics' momentum of 0.03 the running averages
/// still carry the first steps' activations a hundred steps later, so a short run validated
/// and exported with statistics of weights long gone (mAP stuck at 0 while the training loss
/// fell). The averages then go on from these values during training.
fn recalibrate_batchnorm(
    model: YoloV8,
    source: &Arc<dyn ImageSource>,
    seed: u64,
    image_size: usize,
    batch_size: usize,
    device: &Device,
    cancel: &CancelToken,
) -> Result<YoloV8, MlError> {
    let mut order = epoch_order(source.len(), Some(seed));
    order.truncate(CALIBRATION_IMAGES);
    let mut model = model;
    for (k, batch) in eval_batches(source, &order, image_size, batch_size).enumerate() {
        if cancel.is_cancelled() {
            return Err(MlError::Cancelled);
        }
        let batch = batch?;
        // Momentum 1/(k+1): after batch k the running value is the mean of batches 0..=k.
        model = model.with_batchnorm_momentum(1.0 / (k as f64 + 1.0));
        drop(model.forward(batch.images_tensor(device)));
    }
    Ok(model.with_batchnorm_momentum(BN_MOMENTUM))
}

/// Loss and COCO mAP of `model` (inference mode) on `source`.
fn validate(
    model: &YoloV8,
    loss: &DetectionLoss,
    source: &Arc<dyn ImageSource>,
    image_size: usize,
    batch_size: usize,
    device: &Device,
    cancel: &CancelToken,
) -> Result<Validation, MlError> {
    let stream = eval_batches(
        source,
        &epoch_order(source.len(), None),
        image_size,
        batch_size,
    );
    let mut sums = LossSums::default();
    let mut evaluator = CocoEvaluator::new();
    for batch in stream {
        if cancel.is_cancelled() {
            return Err(MlError::Cancelled);
        }
        let batch = batch?;
        let output = model.forward_flat(batch.images_tensor(device));
        let (_, parts) = loss.forward(&model.detect, &output, &batch.targets)?;
        sums.add(&parts, batch.len());
        let images: Vec<(Letterbox, NmsOptions)> = batch
            .letterboxes
            .iter()
            .map(|lb| (*lb, NmsOptions::EVALUATION))
            .collect();
        let found = detections_of(model, &output, &images)?;
        for (&index, detections) in batch.indices.iter().zip(found) {
            let truth: Vec<EvalBox> = source
                .boxes(index)
                .iter()
                .map(|b| EvalBox {
                    class_id: b.class_id,
                    bbox: b.bbox,
                    score: 0.0,
                })
                .collect();
            let detections: Vec<EvalBox> = detections
                .iter()
                .map(|d| EvalBox {
                    class_id: d.class_id,
                    bbox: [
                        d.xyxy[0] as f64,
                        d.xyxy[1] as f64,
                        (d.xyxy[2] - d.xyxy[0]) as f64,
                        (d.xyxy[3] - d.xyxy[1]) as f64,
                    ],
                    score: d.score as f64,
                })
                .collect();
            evaluator.add_image(index as u64, &truth, &detections);
        }
    }
    let coco = evaluator.evaluate();
    Ok(Validation {
        loss: sums.mean().total(),
        map50: coco.map50,
        map50_95: coco.map50_95,
    })
}

/// The preprocessing a detector's artefact records: letterbox to `image_size`, `x / 255`.
pub fn detection_preprocess(image_size: usize) -> Preprocess {
    Preprocess {
        image_size,
        crop_pct: 1.0,
        normalization: Normalization::UNIT,
    }
}

/// Trains (or resumes) a YOLOv8 detector on a detection manifest, reporting through `on_event`,
/// checking `cancel` before every step, checkpointing every epoch and exporting the best weights
/// (lowest `val_loss`, else the last) as an artefact (`model.safetensors` in Ultralytics layout,
/// `config.json` with task `detection`).
pub fn train_detector(
    request: &TrainRequest,
    cancel: &CancelToken,
    on_event: &mut dyn FnMut(TrainingEvent),
) -> Result<TrainSummary, MlError> {
    let config = &request.config;
    config.validate()?;
    let size = YoloSize::of(config.model)?;
    run::check_task(config, &request.manifest)?;
    let classes = request.manifest.classes.clone();
    if classes.is_empty() {
        return Err(MlError::InvalidDataset(
            "detection needs at least 1 class".into(),
        ));
    }
    let options: DetectionOptions = config.detection.unwrap_or_default();
    let (train_source, val_source) = crate::train::sources(request)?;
    let image_size = config.image_size();
    let preprocess = detection_preprocess(image_size);
    let batch_size = config.batch_size.min(train_source.len()).max(1);
    let steps_per_epoch = run::steps_per_epoch(train_source.len(), batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    let schedule = LrSchedule::new(config, steps_per_epoch);

    let plain_device = config.device.device()?;
    let device = plain_device.clone().autodiff();
    device.seed(config.seed);
    let mut model = YoloV8::seeded(size, classes.len(), config.seed, &device);
    if let Some(path) = &config.pretrained_weights {
        let (loaded, report) = weights::load_safetensors(model, path)?;
        tracing::info!(
            loaded = report.loaded,
            replaced_head = report.replaced_head.len(),
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
    let checkpoint_dir = request.checkpoint_dir.as_path();
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

    let loss = DetectionLoss {
        config: LossConfig {
            box_gain: options.box_gain,
            cls_gain: options.cls_gain,
            dfl_gain: options.dfl_gain,
            ..LossConfig::default()
        },
    };
    let mut progress = Progress::new(steps_per_epoch, total_steps);
    let mut stopped_early = false;
    let mut epoch_rng = Rng::new(state.rng_state);

    while state.epoch < config.epochs {
        let epoch = state.epoch + 1;
        let epoch_seed = epoch_rng.next_u64();
        let order = epoch_order(train_source.len(), Some(epoch_seed));
        let mode = DetectionMode::Train {
            options,
            mosaic: epoch + options.close_mosaic_epochs <= config.epochs,
            hflip: config.augment.hflip_probability,
            seed: epoch_seed.rotate_left(17) ^ 0xA5A5_A5A5,
        };
        let stream_source = train_source.clone();
        let stream = Prefetch::spawn(
            batch_chunks(&order, batch_size, true),
            PREFETCH,
            move |chunk| load_detection_batch(stream_source.as_ref(), chunk, image_size, &mode),
        );
        let epoch_started = Instant::now();
        let mut sums = LossSums::default();
        let mut lr = schedule.lr(state.global_step);
        for (index, batch) in stream.enumerate() {
            if cancel.is_cancelled() {
                return Err(MlError::Cancelled);
            }
            let step_started = Instant::now();
            let batch = batch?;
            lr = schedule.lr(state.global_step);
            let output = model.forward_flat(batch.images_tensor(&device));
            let (total, parts) = loss.forward(&model.detect, &output, &batch.targets)?;
            crate::train::check_finite(parts.total(), epoch, index)?;
            let grads = GradientsParams::from_grads(total.backward(), &model);
            model = optimizer.step(lr, model, grads);
            sums.add(&parts, batch.len());
            state.global_step += 1;
            on_event(progress.step(
                &state,
                epoch,
                index,
                parts.total(),
                f64::NAN,
                lr,
                batch.len(),
                step_started,
            ));
        }
        let train_secs = epoch_started.elapsed().as_secs_f64().max(1e-9);
        model = recalibrate_batchnorm(
            model,
            &train_source,
            config.seed,
            image_size,
            batch_size,
            &device,
            cancel,
        )?;

        let val = match &val_source {
            Some(source) => Some(validate(
                &model.valid(),
                &loss,
                source,
                image_size,
                batch_size,
                &plain_device,
                cancel,
            )?),
            None => None,
        };
        let mean = sums.mean();
        let metrics = EpochMetrics {
            val_loss: val.map(|v| v.loss),
            box_loss: Some(mean.box_loss),
            cls_loss: Some(mean.cls_loss),
            dfl_loss: Some(mean.dfl_loss),
            val_map50: val.and_then(|v| v.map50),
            val_map50_95: val.and_then(|v| v.map50_95),
            ..EpochMetrics::new(epoch, mean.total(), lr)
        };
        let end = EpochEnd {
            config,
            checkpoint_dir,
            rng_state: epoch_rng.state(),
            epoch_started,
            train_secs,
            images: sums.images,
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
    let artefact = artefact::write_with(
        &request.output_dir,
        &export_model,
        &artefact_config,
        ULTRALYTICS,
    )?;
    Ok(run::finish(
        state,
        exported_epoch,
        stopped_early,
        artefact,
        &progress,
        on_event,
    ))
}
