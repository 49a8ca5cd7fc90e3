//! Serving a trained detector: a dedicated thread owns the (BatchNorm-folded) YOLOv8 model;
//! queued requests are batched into one forward pass; every image is letterboxed like in
//! validation, and its detections come back in its own pixels.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::augment;
use super::head::HeadOutput;
use super::loss::host;
use super::model::{YoloSize, YoloV8};
use super::postprocess::{self, BoxPrediction, Letterbox, NmsOptions, Xyxy};
use super::weights::ULTRALYTICS;
use crate::artefact::{self, ArtefactConfig, TASK_DETECTION};
use crate::data::Normalization;
use crate::error::MlError;
use crate::infer::{
    EngineOptions, EngineThread, ImageInput, Request, answer, answer_blocking, prepare_requests,
};
use crate::nhwc::{FeatureMap, YoloNhwc};

/// One detected object in the original image's pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Class name.
    pub class: String,
    /// Class index.
    pub class_id: usize,
    /// Class probability.
    pub confidence: f32,
    /// `[x, y, width, height]` in pixels of the image as given.
    pub bbox_xywh_pixels: [f32; 4],
}

/// Loads a detector's artefact: its config and the model with its weights on `device`.
pub fn load_artefact(dir: &Path, device: &Device) -> Result<(ArtefactConfig, YoloV8), MlError> {
    let config = artefact::read_config(dir)?;
    if config.task != TASK_DETECTION {
        return Err(MlError::Weights(format!(
            "{}: a `{}` model, not a detector",
            dir.display(),
            config.task
        )));
    }
    if config.classes.is_empty() {
        return Err(MlError::Weights(format!("{}: no classes", dir.display())));
    }
    let model = YoloV8::new(YoloSize::of(config.model)?, config.classes.len(), device);
    let model = artefact::load_weights(dir, &config, model, ULTRALYTICS)?;
    Ok((config, model))
}

type Answer = Vec<Detection>;

/// A loaded detector on its own thread. Cheap to share behind an `Arc`; dropping the last handle
/// stops the thread.
pub struct DetectorEngine {
    engine: EngineThread<NmsOptions, Answer>,
    config: Arc<ArtefactConfig>,
}

impl std::fmt::Debug for DetectorEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectorEngine")
            .field("model", &self.config.model)
            .field("classes", &self.config.classes.len())
            .finish()
    }
}

struct Served {
    /// The model (its head decodes the raw outputs).
    model: YoloV8,
    /// The folded model as a channels-last plan, when serving on the CPU with folding.
    plan: Option<YoloNhwc>,
    device: Device,
    config: Arc<ArtefactConfig>,
}

impl DetectorEngine {
    /// Loads the detector artefact in `dir` on a new engine thread; returns once the model is
    /// ready (or failed to load). Blocking: from async code call it in `spawn_blocking`.
    pub fn load(dir: &Path, options: EngineOptions) -> Result<Self, MlError> {
        let config = Arc::new(artefact::read_config(dir)?);
        let device = options.device.device()?;
        let dir = dir.to_path_buf();
        let thread_config = config.clone();
        let setup = move || -> Result<Served, MlError> {
            let (_, model) = load_artefact(&dir, &device)?;
            let model = if options.fold_batchnorm {
                model.fold_batchnorm()
            } else {
                model
            };
            let plan = if options.channels_last() {
                Some(YoloNhwc::new(model.clone())?)
            } else {
                None
            };
            Ok(Served {
                model,
                plan,
                device,
                config: thread_config,
            })
        };
        let engine = EngineThread::spawn("ml-detect", options.max_batch, setup, serve)?;
        Ok(Self { engine, config })
    }

    /// The artefact's configuration (classes, input size).
    pub fn config(&self) -> &ArtefactConfig {
        &self.config
    }

    /// Queues `images`; the receiver yields each image's detections (by decreasing confidence)
    /// after NMS with `nms`.
    pub fn submit(
        &self,
        images: Vec<ImageInput>,
        nms: NmsOptions,
    ) -> oneshot::Receiver<Result<Vec<Answer>, MlError>> {
        self.engine.submit(images, nms)
    }

    /// Detections for every image (async).
    pub async fn predict(
        &self,
        images: Vec<ImageInput>,
        nms: NmsOptions,
    ) -> Result<Vec<Answer>, MlError> {
        answer(self.submit(images, nms)).await
    }

    /// Detections for every image, blocking the calling (non-async) thread.
    pub fn predict_blocking(
        &self,
        images: Vec<ImageInput>,
        nms: NmsOptions,
    ) -> Result<Vec<Answer>, MlError> {
        answer_blocking(self.submit(images, nms))
    }
}

fn serve(served: &Served, requests: Vec<Request<NmsOptions, Answer>>) {
    let size = served.config.image_size;
    let per_image = 3 * size * size;
    let accepted = prepare_requests(requests, |image| {
        let sample = augment::Sample {
            image: image.clone(),
            boxes: Vec::new(),
        };
        let (boxed, letterbox) = augment::letterbox(&sample, size as u32);
        let mut pixels = vec![0.0f32; per_image];
        Normalization::UNIT.to_chw(&boxed.image, &mut pixels);
        (pixels, letterbox)
    });
    let total: usize = accepted.iter().map(|(_, images)| images.len()).sum();
    if total == 0 {
        for (request, _) in accepted {
            let _ = request.reply.send(Ok(Vec::new()));
        }
        return;
    }
    let mut pixels = Vec::with_capacity(total * per_image);
    for (_, images) in &accepted {
        for (p, _) in images {
            pixels.extend_from_slice(p);
        }
    }
    let output = match &served.plan {
        Some(plan) => HeadOutput::from_levels(&plan.forward(
            &FeatureMap::from_nchw_values(&pixels, total, 3, size, size),
            &served.device,
        )),
        None => served.model.forward_flat(Tensor::<4>::from_data(
            TensorData::new(pixels, [total, 3, size, size]),
            &served.device,
        )),
    };
    let per_image: Vec<(Letterbox, NmsOptions)> = accepted
        .iter()
        .flat_map(|(request, images)| images.iter().map(|(_, lb)| (*lb, request.query)))
        .collect();
    let found = match detections_of(&served.model, &output, &per_image) {
        Ok(found) => found,
        Err(e) => {
            let message = e.to_string();
            for (request, _) in accepted {
                let _ = request.reply.send(Err(MlError::Weights(message.clone())));
            }
            return;
        }
    };
    let mut found = found.into_iter();
    for (request, images) in accepted {
        let answer = found
            .by_ref()
            .take(images.len())
            .map(|detections| {
                detections
                    .into_iter()
                    .map(|d| Detection {
                        class: served
                            .config
                            .classes
                            .get(d.class_id)
                            .cloned()
                            .unwrap_or_default(),
                        class_id: d.class_id,
                        confidence: d.score,
                        bbox_xywh_pixels: [
                            d.xyxy[0],
                            d.xyxy[1],
                            d.xyxy[2] - d.xyxy[0],
                            d.xyxy[3] - d.xyxy[1],
                        ],
                    })
                    .collect()
            })
            .collect();
        let _ = request.reply.send(Ok(answer));
    }
}

/// Detections of every image of one forward pass: decoded, NMS with that image's options, boxes
/// mapped to the original pixels through its letterbox.
pub(crate) fn detections_of(
    model: &YoloV8,
    output: &HeadOutput,
    images: &[(Letterbox, NmsOptions)],
) -> Result<Vec<Vec<BoxPrediction>>, MlError> {
    let (boxes, scores) = model.detect.decode(output);
    let [_, anchors, _] = boxes.dims();
    let nc = model.num_classes();
    let boxes = host(boxes)?;
    let scores = host(scores)?;
    Ok(images
        .iter()
        .enumerate()
        .map(|(i, (letterbox, nms))| {
            let xyxy: Vec<Xyxy> = boxes[i * anchors * 4..(i + 1) * anchors * 4]
                .chunks_exact(4)
                .map(|b| [b[0], b[1], b[2], b[3]])
                .collect();
            postprocess::detections(
                &xyxy,
                &scores[i * anchors * nc..(i + 1) * anchors * nc],
                nc,
                letterbox,
                nms,
            )
        })
        .collect())
}
