//! The inference engine: a dedicated thread owns the model and answers prediction requests sent
//! over a channel (never on tokio worker threads). Requests waiting in the queue are batched into
//! one forward pass. Replies come back on a `tokio::sync::oneshot`, so async callers `.await`
//! them and blocking callers use [`InferenceEngine::predict_blocking`].

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::artefact::{self, ArtefactConfig};
use crate::device::DeviceSpec;
use crate::error::MlError;
use crate::models::Classifier;

/// One image to classify.
#[derive(Debug, Clone)]
pub enum ImageInput {
    /// Encoded bytes (PNG, JPEG, …), decoded on the engine's threads.
    Encoded(Vec<u8>),
    /// Already decoded RGB pixels.
    Rgb(RgbImage),
}

/// One class of a top-k answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Class index.
    pub class_index: usize,
    /// Class name.
    pub class_name: String,
    /// Softmax probability.
    pub probability: f32,
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Device the model runs on.
    pub device: DeviceSpec,
    /// Fold BatchNorm into the convolutions at load time (faster, same results up to rounding).
    pub fold_batchnorm: bool,
    /// Most images in one forward pass when queued requests are batched together.
    pub max_batch: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            device: DeviceSpec::Cpu,
            fold_batchnorm: true,
            max_batch: 32,
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Vec<Prediction>>, MlError>>;

struct Request {
    images: Vec<ImageInput>,
    top_k: usize,
    reply: Reply,
}

/// A loaded model on its own thread. Cheap to share behind an `Arc`; dropping the last handle
/// stops the thread.
pub struct InferenceEngine {
    sender: Option<Sender<Request>>,
    config: Arc<ArtefactConfig>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for InferenceEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceEngine")
            .field("model", &self.config.model)
            .field("classes", &self.config.classes.len())
            .finish()
    }
}

impl InferenceEngine {
    /// Loads the artefact in `dir` on a new engine thread; returns once the model is ready
    /// (or failed to load). Blocking: from async code call it in `spawn_blocking`.
    pub fn load(dir: &Path, options: EngineOptions) -> Result<Self, MlError> {
        let config = Arc::new(artefact::read_config(dir)?);
        let device = options.device.device()?;
        let (sender, receiver) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), MlError>>();
        let dir = dir.to_path_buf();
        let thread_config = config.clone();
        let worker = std::thread::Builder::new()
            .name("ml-infer".into())
            .spawn(move || {
                let model = match artefact::load(&dir, &device) {
                    Ok((_, model)) => {
                        if options.fold_batchnorm {
                            model.fold_batchnorm()
                        } else {
                            model
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                serve(
                    &model,
                    &thread_config,
                    &device,
                    options.max_batch.max(1),
                    receiver,
                );
            })
            .map_err(|e| MlError::io("ml-infer thread", e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                sender: Some(sender),
                config,
                worker: Some(worker),
            }),
            Ok(Err(e)) => {
                let _ = worker.join();
                Err(e)
            }
            Err(_) => {
                let _ = worker.join();
                Err(MlError::EngineStopped)
            }
        }
    }

    /// The artefact's configuration (classes, preprocessing).
    pub fn config(&self) -> &ArtefactConfig {
        &self.config
    }

    /// Queues `images` and returns the receiver of their top-`k` predictions (one list per image,
    /// most probable first). Await it from async code; nothing runs on the caller's thread.
    pub fn submit(
        &self,
        images: Vec<ImageInput>,
        top_k: usize,
    ) -> oneshot::Receiver<Result<Vec<Vec<Prediction>>, MlError>> {
        let (reply, receiver) = oneshot::channel();
        let request = Request {
            images,
            top_k: top_k.max(1),
            reply,
        };
        if let Some(sender) = &self.sender
            && let Err(mpsc::SendError(request)) = sender.send(request)
        {
            let _ = request.reply.send(Err(MlError::EngineStopped));
        }
        receiver
    }

    /// Top-`k` predictions for every image (async).
    pub async fn predict(
        &self,
        images: Vec<ImageInput>,
        top_k: usize,
    ) -> Result<Vec<Vec<Prediction>>, MlError> {
        self.submit(images, top_k)
            .await
            .map_err(|_| MlError::EngineStopped)?
    }

    /// Top-`k` predictions for every image, blocking the calling (non-async) thread.
    pub fn predict_blocking(
        &self,
        images: Vec<ImageInput>,
        top_k: usize,
    ) -> Result<Vec<Vec<Prediction>>, MlError> {
        self.submit(images, top_k)
            .blocking_recv()
            .map_err(|_| MlError::EngineStopped)?
    }
}

impl Drop for InferenceEngine {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn decode(input: &ImageInput) -> Result<RgbImage, MlError> {
    match input {
        ImageInput::Rgb(image) => Ok(image.clone()),
        ImageInput::Encoded(bytes) => image::load_from_memory(bytes)
            .map(|img| img.into_rgb8())
            .map_err(|e| MlError::Image {
                path: "<request body>".into(),
                message: e.to_string(),
            }),
    }
}

/// Preprocesses requests' images into one batch; per-request decode errors are answered at once.
fn preprocess_batch(
    requests: Vec<Request>,
    config: &ArtefactConfig,
) -> (Vec<(Reply, usize, usize)>, Vec<f32>) {
    let preprocess = config.preprocess();
    let per_image = 3 * preprocess.image_size * preprocess.image_size;
    let mut accepted = Vec::new();
    let mut pixels = Vec::new();
    for request in requests {
        let decoded: Result<Vec<Vec<f32>>, MlError> = request
            .images
            .par_iter()
            .map(|input| {
                let image = decode(input)?;
                let mut out = vec![0.0f32; per_image];
                preprocess.eval_into(&image, &mut out);
                Ok(out)
            })
            .collect();
        match decoded {
            Ok(images) => {
                let count = images.len();
                pixels.extend(images.into_iter().flatten());
                accepted.push((request.reply, count, request.top_k));
            }
            Err(e) => {
                let _ = request.reply.send(Err(e));
            }
        }
    }
    (accepted, pixels)
}

fn top_k(probabilities: &[f32], k: usize, classes: &[String]) -> Vec<Prediction> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    order
        .into_iter()
        .take(k)
        .map(|i| Prediction {
            class_index: i,
            class_name: classes.get(i).cloned().unwrap_or_default(),
            probability: probabilities[i],
        })
        .collect()
}

/// Class probabilities `[n, classes]` for preprocessed pixels.
fn run_model(
    model: &Classifier,
    device: &Device,
    pixels: Vec<f32>,
    count: usize,
    image_size: usize,
) -> Result<Vec<f32>, MlError> {
    let input = Tensor::<4>::from_data(
        TensorData::new(pixels, [count, 3, image_size, image_size]),
        device,
    );
    softmax(model.forward(input), 1)
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| MlError::Weights(format!("reading probabilities: {e:?}")))
}

fn serve(
    model: &Classifier,
    config: &ArtefactConfig,
    device: &Device,
    max_batch: usize,
    receiver: Receiver<Request>,
) {
    let classes = config.classes.len();
    while let Ok(first) = receiver.recv() {
        // Batch whatever else is already waiting, up to `max_batch` images.
        let mut requests = vec![first];
        let mut images = requests[0].images.len();
        while images < max_batch {
            match receiver.try_recv() {
                Ok(request) => {
                    images += request.images.len();
                    requests.push(request);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let (accepted, pixels) = preprocess_batch(requests, config);
        let total: usize = accepted.iter().map(|(_, n, _)| n).sum();
        if total == 0 {
            for (reply, _, _) in accepted {
                let _ = reply.send(Ok(Vec::new()));
            }
            continue;
        }
        match run_model(model, device, pixels, total, config.image_size) {
            Ok(probabilities) => {
                let mut rows = probabilities.chunks_exact(classes);
                for (reply, count, k) in accepted {
                    let answer = rows
                        .by_ref()
                        .take(count)
                        .map(|row| top_k(row, k, &config.classes))
                        .collect();
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for (reply, _, _) in accepted {
                    let _ = reply.send(Err(MlError::Weights(message.clone())));
                }
            }
        }
    }
}
