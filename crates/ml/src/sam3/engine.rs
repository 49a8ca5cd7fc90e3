//! Inference engine: a dedicated thread owns the weights and serves segmentation requests.
//! Several prompts on one image share one backbone pass, and a small cache keyed by the image
//! content reuses it across requests.

use std::collections::VecDeque;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use burn::tensor::Device;

use crate::models::activation::sigmoid_one;

use super::config::Sam3Config;
use super::error::{Result, Sam3Error};
use super::geometry::BoxPrompt;
use super::model::{ImageFeatures, Sam3Model, TextOnlyMode};
use super::postprocess::{Instance, PostProcessOptions, post_process, scores};
use super::tokenizer::ClipTokenizer;
use super::weights::{WeightStore, WeightSummary};

/// An RGB8 image, row-major `height × width × 3`.
#[derive(Debug, Clone)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Pixel bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Decodes an encoded image (PNG, JPEG, BMP, GIF, WebP) to RGB8.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let img = image::load_from_memory(bytes)
            .map_err(|e| Sam3Error::Image(e.to_string()))?
            .to_rgb8();
        Ok(Self {
            width: img.width() as usize,
            height: img.height() as usize,
            data: img.into_raw(),
        })
    }

    /// Reads and decodes an image file.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Sam3Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::decode(&bytes)
    }
}

/// One prompt: a noun phrase and optional exemplar boxes.
#[derive(Debug, Clone, Default)]
pub struct PromptSpec {
    /// Text (use `"visual"` for box-only prompts, like the reference processor).
    pub text: String,
    /// Positive/negative exemplar boxes.
    pub boxes: Vec<BoxPrompt>,
}

/// A segmentation request.
#[derive(Debug, Clone)]
pub struct SegmentRequest {
    /// The image.
    pub image: RgbImage,
    /// One or more prompts evaluated on the same image.
    pub prompts: Vec<PromptSpec>,
    /// Selection settings.
    pub options: PostProcessOptions,
}

/// Result for one prompt.
#[derive(Debug, Clone)]
pub struct PromptResult {
    /// Selected instances, best first.
    pub instances: Vec<Instance>,
    /// `sigmoid(presence_logit)`: how likely the concept is in the image at all.
    pub presence: f32,
    /// Score of every query (for callers that apply their own selection).
    pub all_scores: Vec<f32>,
}

/// Result of a request.
#[derive(Debug, Clone)]
pub struct SegmentResponse {
    /// One entry per prompt, in request order.
    pub results: Vec<PromptResult>,
    /// Whether the image features came from the cache.
    pub cache_hit: bool,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Images whose features are kept (each costs ~110 MB at full size).
    pub cache_size: usize,
    /// Text-only prompt semantics.
    pub text_only_mode: TextOnlyMode,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_size: 2,
            text_only_mode: TextOnlyMode::Meta,
        }
    }
}

type Reply = mpsc::Sender<Result<SegmentResponse>>;

/// Handle to the engine thread. Dropping it stops the thread.
#[derive(Debug)]
pub struct Sam3Engine {
    tx: Option<mpsc::Sender<(SegmentRequest, Reply)>>,
    handle: Option<JoinHandle<()>>,
    weights: Option<WeightSummary>,
}

/// Finds `tokenizer.json` in a weights directory (`tokenizer.json` or `tokenizer/tokenizer.json`).
pub fn tokenizer_path(dir: &Path) -> Result<PathBuf> {
    [
        dir.join("tokenizer.json"),
        dir.join("tokenizer").join("tokenizer.json"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| Sam3Error::Tokenizer(format!("no tokenizer.json in {}", dir.display())))
}

struct Worker {
    model: Sam3Model,
    tokenizer: ClipTokenizer,
    options: EngineOptions,
    cache: VecDeque<(u64, ImageFeatures)>,
}

impl Worker {
    fn image_key(image: &RgbImage) -> u64 {
        let mut h = DefaultHasher::new();
        (image.width, image.height).hash(&mut h);
        image.data.hash(&mut h);
        h.finish()
    }

    fn serve(&mut self, req: SegmentRequest) -> Result<SegmentResponse> {
        if req.prompts.is_empty() {
            return Err(Sam3Error::InvalidInput(
                "a request needs at least one prompt".into(),
            ));
        }
        let img = &req.image;
        let key = Self::image_key(img);
        let (features, cache_hit) = match self.cache.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let entry = self.cache.remove(i).ok_or(Sam3Error::EngineStopped)?;
                let f = entry.1.clone();
                self.cache.push_back(entry);
                (f, true)
            }
            None => {
                let pixels = self.model.preprocess(&img.data, img.width, img.height)?;
                let f = self.model.encode_image(pixels)?;
                if self.options.cache_size > 0 {
                    if self.cache.len() >= self.options.cache_size {
                        self.cache.pop_front();
                    }
                    self.cache.push_back((key, f.clone()));
                }
                (f, false)
            }
        };
        let mut results = Vec::with_capacity(req.prompts.len());
        for prompt in &req.prompts {
            let tokens = self.tokenizer.encode(&prompt.text)?;
            let text = self.model.encode_text(&tokens.ids, &tokens.valid)?;
            let out =
                self.model
                    .predict(&features, &text, &prompt.boxes, self.options.text_only_mode)?;
            let host = out.to_host()?;
            results.push(PromptResult {
                instances: post_process(&out, img.width, img.height, &req.options)?,
                presence: sigmoid_one(host.presence),
                all_scores: scores(&out)?,
            });
        }
        Ok(SegmentResponse { results, cache_hit })
    }
}

impl Sam3Engine {
    /// Loads `config.json`, the checkpoint and `tokenizer.json` from `dir` and starts the thread.
    pub fn load(dir: &Path, device: &Device, options: EngineOptions) -> Result<Self> {
        let config = Sam3Config::from_file(&dir.join("config.json"))?;
        let store = WeightStore::open_dir(dir)?;
        let summary = store.summary();
        let model = Sam3Model::from_store(config, &store, device)?;
        drop(store);
        let t = &model.config().text_config;
        let tokenizer = ClipTokenizer::from_file(
            &tokenizer_path(dir)?,
            t.max_position_embeddings,
            t.eos_token_id,
            t.pad_token_id,
        )?;
        let mut engine = Self::spawn(model, tokenizer, options);
        engine.weights = Some(summary);
        Ok(engine)
    }

    /// Starts the engine thread with an already loaded model.
    pub fn spawn(model: Sam3Model, tokenizer: ClipTokenizer, options: EngineOptions) -> Self {
        let (tx, rx) = mpsc::channel::<(SegmentRequest, Reply)>();
        let mut worker = Worker {
            model,
            tokenizer,
            options,
            cache: VecDeque::new(),
        };
        let handle = std::thread::Builder::new()
            .name("sam3-engine".into())
            .spawn(move || {
                // Requests run on SAM3's own compute threads (see `device::compute_pool`); on
                // the shared ones when those cannot be started.
                let pool = crate::device::compute_pool_if_possible("sam3");
                while let Ok((req, reply)) = rx.recv() {
                    let response =
                        crate::device::on_pool_or_here(pool.as_ref(), || worker.serve(req));
                    // The caller may have gone away; nothing to do then.
                    let _ = reply.send(response);
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            handle,
            weights: None,
        }
    }

    /// Parameter count, size and dtype of the checkpoint the engine was loaded from (`None`
    /// when spawned from an already built model).
    pub fn weights(&self) -> Option<WeightSummary> {
        self.weights
    }

    /// Runs a request on the engine thread and waits for the result.
    pub fn segment(&self, request: SegmentRequest) -> Result<SegmentResponse> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.tx
            .as_ref()
            .ok_or(Sam3Error::EngineStopped)?
            .send((request, reply_tx))
            .map_err(|_| Sam3Error::EngineStopped)?;
        reply_rx.recv().map_err(|_| Sam3Error::EngineStopped)?
    }
}

impl Drop for Sam3Engine {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    #[test]
    fn decodes_png() {
        let img = image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let decoded = RgbImage::decode(&png).unwrap();
        assert_eq!((decoded.width, decoded.height), (3, 2));
        assert_eq!(&decoded.data[..6], &[0, 0, 9, 1, 0, 9]);
        assert!(matches!(
            RgbImage::decode(b"nope"),
            Err(Sam3Error::Image(_))
        ));
    }

    #[test]
    fn engine_serves_prompts_and_caches_the_image() {
        let engine = Sam3Engine::load(&fixture_dir(), &dev(), EngineOptions::default()).unwrap();
        let image = RgbImage {
            width: 50,
            height: 40,
            data: (0..50 * 40 * 3).map(|i| (i * 7 % 251) as u8).collect(),
        };
        let options = PostProcessOptions {
            threshold: 0.0,
            top_k: Some(2),
        };
        let req = SegmentRequest {
            image: image.clone(),
            prompts: vec![
                PromptSpec {
                    text: "a red car".into(),
                    boxes: vec![],
                },
                PromptSpec {
                    text: "visual".into(),
                    boxes: vec![BoxPrompt::from_xyxy_pixels(
                        [5.0, 5.0, 30.0, 25.0],
                        50,
                        40,
                        true,
                    )],
                },
            ],
            options,
        };
        let first = engine.segment(req.clone()).unwrap();
        assert!(!first.cache_hit);
        assert_eq!(first.results.len(), 2);
        for r in &first.results {
            assert_eq!(r.instances.len(), 2);
            assert_eq!(r.all_scores.len(), 10);
            let m = &r.instances[0].mask;
            assert_eq!((m.width, m.height), (50, 40));
        }
        let weights = engine.weights().unwrap();
        assert!(weights.parameters > 0 && weights.bytes >= 4 * weights.parameters);
        assert_eq!(weights.dtype, "float32");
        let second = engine.segment(req).unwrap();
        assert!(second.cache_hit);
        assert_eq!(first.results[0].all_scores, second.results[0].all_scores);
        let err = engine
            .segment(SegmentRequest {
                image,
                prompts: vec![],
                options,
            })
            .unwrap_err();
        assert!(matches!(err, Sam3Error::InvalidInput(_)));
    }
}
