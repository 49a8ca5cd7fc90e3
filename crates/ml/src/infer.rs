//! The inference engine: a dedicated thread owns the model and answers prediction requests sent
//! over a channel (never on tokio worker threads). Requests waiting in the queue are batched into
//! one forward pass. Replies come back on a `tokio::sync::oneshot`, so async callers `.await`
//! them and blocking callers use [`InferenceEngine::predict_blocking`].

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
use crate::nhwc::{ClassifierNhwc, FeatureMap};

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
    /// On the CPU the folded model then runs as a channels-last plan ([`crate::nhwc`]).
    pub fold_batchnorm: bool,
    /// Most images in one forward pass when queued requests are batched together.
    pub max_batch: usize,
}

impl EngineOptions {
    /// Whether engines run the folded model as a channels-last plan ([`crate::nhwc`]): when
    /// BatchNorm is folded and the device is the CPU (other devices keep burn's forward).
    pub fn channels_last(&self) -> bool {
        self.fold_batchnorm && self.device == DeviceSpec::Cpu
    }
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

/// Where a request's answer goes: one answer per image.
pub(crate) type Reply<A> = oneshot::Sender<Result<Vec<A>, MlError>>;

/// One queued request: images, a per-request parameter and the reply channel.
pub(crate) struct Request<Q, A> {
    /// The images.
    pub images: Vec<ImageInput>,
    /// Per-request settings (top-k, NMS thresholds, …).
    pub query: Q,
    /// Answer channel.
    pub reply: Reply<A>,
}

/// A model owned by a dedicated thread that answers batches of queued requests (shared by
/// [`InferenceEngine`] and [`crate::detect::DetectorEngine`]). Dropping it stops the thread.
pub(crate) struct EngineThread<Q, A> {
    sender: Option<Sender<Request<Q, A>>>,
    worker: Option<JoinHandle<()>>,
}

impl<Q: Send + 'static, A: Send + 'static> EngineThread<Q, A> {
    /// Starts the thread: `setup` builds the served state there (returns once it is ready or has
    /// failed); then every batch of waiting requests (up to `max_batch` images) goes to `serve`.
    pub(crate) fn spawn<S, F, G>(
        name: &str,
        max_batch: usize,
        setup: F,
        serve: G,
    ) -> Result<Self, MlError>
    where
        S: Sync,
        F: FnOnce() -> Result<S, MlError> + Send + 'static,
        G: Fn(&S, Vec<Request<Q, A>>) + Send + Sync + 'static,
    {
        let (sender, receiver) = mpsc::channel::<Request<Q, A>>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), MlError>>();
        let max_batch = max_batch.max(1);
        let worker = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let state = match setup() {
                    Ok(state) => state,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut next = receiver.recv().ok();
                while let Some(first) = next {
                    let requests = batch(first, &receiver, max_batch);
                    // On a compute thread, so that the model's parallel operations start there
                    // (work-stealing) instead of each being handed over from this thread and
                    // waited for: one hand-over per batch instead of one per layer.
                    rayon::scope(|_| serve(&state, requests));
                    next = poll(&receiver).or_else(|| receiver.recv().ok());
                }
            })
            .map_err(|e| MlError::io(format!("{name} thread"), e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                sender: Some(sender),
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

    /// Queues a request; the receiver yields its answer.
    pub(crate) fn submit(
        &self,
        images: Vec<ImageInput>,
        query: Q,
    ) -> oneshot::Receiver<Result<Vec<A>, MlError>> {
        let (reply, receiver) = oneshot::channel();
        let request = Request {
            images,
            query,
            reply,
        };
        if let Some(sender) = &self.sender
            && let Err(mpsc::SendError(request)) = sender.send(request)
        {
            let _ = request.reply.send(Err(MlError::EngineStopped));
        }
        receiver
    }
}

impl<Q, A> Drop for EngineThread<Q, A> {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// How long the engine thread keeps polling for the next request after a batch before it
/// sleeps: back-to-back requests (a client waiting for each answer before it sends the next)
/// then skip a thread wake-up, which costs tens of µs on a virtual machine.
const POLL: Duration = Duration::from_micros(200);

/// `first` and whatever else is already queued, up to `max_batch` images.
fn batch<Q, A>(
    first: Request<Q, A>,
    receiver: &mpsc::Receiver<Request<Q, A>>,
    max_batch: usize,
) -> Vec<Request<Q, A>> {
    let mut images = first.images.len();
    let mut requests = vec![first];
    while images < max_batch {
        match receiver.try_recv() {
            Ok(request) => {
                images += request.images.len();
                requests.push(request);
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    requests
}

/// The next request if one arrives within [`POLL`], yielding the core to other threads
/// meanwhile.
fn poll<T>(receiver: &mpsc::Receiver<T>) -> Option<T> {
    let deadline = Instant::now() + POLL;
    loop {
        match receiver.try_recv() {
            Ok(request) => return Some(request),
            Err(TryRecvError::Empty) if Instant::now() < deadline => std::thread::yield_now(),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return None,
        }
    }
}

/// Awaits an engine's answer.
pub(crate) async fn answer<A>(
    receiver: oneshot::Receiver<Result<Vec<A>, MlError>>,
) -> Result<Vec<A>, MlError> {
    receiver.await.map_err(|_| MlError::EngineStopped)?
}

/// Waits for an engine's answer on a blocking (non-async) thread.
pub(crate) fn answer_blocking<A>(
    receiver: oneshot::Receiver<Result<Vec<A>, MlError>>,
) -> Result<Vec<A>, MlError> {
    receiver
        .blocking_recv()
        .map_err(|_| MlError::EngineStopped)?
}

/// A loaded classifier on its own thread. Cheap to share behind an `Arc`; dropping the last
/// handle stops the thread.
pub struct InferenceEngine {
    engine: EngineThread<usize, Vec<Prediction>>,
    config: Arc<ArtefactConfig>,
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
        let dir = dir.to_path_buf();
        let thread_config = config.clone();
        let setup = move || -> Result<(ServedClassifier, Device), MlError> {
            let (_, model) = artefact::load(&dir, &device)?;
            let model = if options.channels_last() {
                ServedClassifier::ChannelsLast(ClassifierNhwc::new(model)?)
            } else if options.fold_batchnorm {
                ServedClassifier::Burn(model.fold_batchnorm())
            } else {
                ServedClassifier::Burn(model)
            };
            Ok((model, device))
        };
        let serve = move |(model, device): &(ServedClassifier, Device), requests| {
            serve(model, &thread_config, device, requests)
        };
        let engine = EngineThread::spawn("ml-infer", options.max_batch, setup, serve)?;
        Ok(Self { engine, config })
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
        self.engine.submit(images, top_k.max(1))
    }

    /// Top-`k` predictions for every image (async).
    pub async fn predict(
        &self,
        images: Vec<ImageInput>,
        top_k: usize,
    ) -> Result<Vec<Vec<Prediction>>, MlError> {
        answer(self.submit(images, top_k)).await
    }

    /// Top-`k` predictions for every image, blocking the calling (non-async) thread.
    pub fn predict_blocking(
        &self,
        images: Vec<ImageInput>,
        top_k: usize,
    ) -> Result<Vec<Vec<Prediction>>, MlError> {
        answer_blocking(self.submit(images, top_k))
    }
}

pub(crate) fn decode(input: &ImageInput) -> Result<RgbImage, MlError> {
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

/// Decodes and preprocesses every request's images in parallel with `prepare`; requests with an
/// undecodable image are answered with the error at once. Returns the accepted requests with their
/// prepared images, in order.
pub(crate) fn prepare_requests<Q, A, P: Send>(
    requests: Vec<Request<Q, A>>,
    prepare: impl Fn(&RgbImage) -> P + Sync,
) -> Vec<(Request<Q, A>, Vec<P>)> {
    let mut accepted = Vec::new();
    for request in requests {
        let prepared: Result<Vec<P>, MlError> = request
            .images
            .par_iter()
            .map(|input| Ok(prepare(&decode(input)?)))
            .collect();
        match prepared {
            Ok(images) => accepted.push((request, images)),
            Err(e) => {
                let _ = request.reply.send(Err(e));
            }
        }
    }
    accepted
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

/// How the engine thread runs its classifier.
// One value per loaded model: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum ServedClassifier {
    /// burn's forward (on any device).
    Burn(Classifier),
    /// The folded model as a channels-last plan (CPU).
    ChannelsLast(ClassifierNhwc),
}

/// Class probabilities `[n, classes]` for preprocessed pixels.
fn run_model(
    model: &ServedClassifier,
    device: &Device,
    pixels: Vec<f32>,
    count: usize,
    image_size: usize,
) -> Result<Vec<f32>, MlError> {
    match model {
        ServedClassifier::Burn(model) => {
            let input = Tensor::<4>::from_data(
                TensorData::new(pixels, [count, 3, image_size, image_size]),
                device,
            );
            softmax(model.forward(input), 1)
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| MlError::Weights(format!("reading probabilities: {e:?}")))
        }
        ServedClassifier::ChannelsLast(plan) => {
            let input = FeatureMap::from_nchw_values(&pixels, count, 3, image_size, image_size);
            let mut logits = plan.forward(&input);
            softmax_rows(&mut logits, count);
            Ok(logits)
        }
    }
}

/// Softmax of each of the `rows` rows of `values`, in place.
fn softmax_rows(values: &mut [f32], rows: usize) {
    let width = values.len() / rows.max(1);
    for row in values.chunks_exact_mut(width.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

fn serve(
    model: &ServedClassifier,
    config: &ArtefactConfig,
    device: &Device,
    requests: Vec<Request<usize, Vec<Prediction>>>,
) {
    let classes = config.classes.len();
    let preprocess = config.preprocess();
    let per_image = 3 * preprocess.image_size * preprocess.image_size;
    let accepted = prepare_requests(requests, |image| {
        let mut out = vec![0.0f32; per_image];
        preprocess.eval_into(image, &mut out);
        out
    });
    let total: usize = accepted.iter().map(|(_, images)| images.len()).sum();
    if total == 0 {
        for (request, _) in accepted {
            let _ = request.reply.send(Ok(Vec::new()));
        }
        return;
    }
    let mut counts = Vec::with_capacity(accepted.len());
    let mut pixels = Vec::with_capacity(total * per_image);
    let mut replies = Vec::with_capacity(accepted.len());
    for (request, images) in accepted {
        counts.push((images.len(), request.query));
        pixels.extend(images.into_iter().flatten());
        replies.push(request.reply);
    }
    match run_model(model, device, pixels, total, config.image_size) {
        Ok(probabilities) => {
            let mut rows = probabilities.chunks_exact(classes);
            for (reply, (count, k)) in replies.into_iter().zip(counts) {
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
            for reply in replies {
                let _ = reply.send(Err(MlError::Weights(message.clone())));
            }
        }
    }
}
