//! The SAM3 engine of this process: loaded once from `segmentation.weights_dir`, on its own
//! thread (see `ml::sam3::Sam3Engine`); async callers wait on a blocking-pool thread.

use crate::settings::Settings;
use crate::{AppError, AppResult};
use ml::sam3::{
    BoxPrompt, EngineOptions, PostProcessOptions, PromptSpec, RgbImage, Sam3Engine, Sam3Error,
    SegmentRequest, SegmentResponse, WeightSummary,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::OnceCell;

/// Lazily loaded SAM3 engine.
pub struct Segmenter {
    dir: Option<PathBuf>,
    device: String,
    cache_images: usize,
    engine: OnceCell<Result<Arc<Sam3Engine>, String>>,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("dir", &self.dir)
            .field("loaded", &self.loaded().is_some())
            .finish()
    }
}

/// What one segmentation call produced.
#[derive(Debug)]
pub struct Segmented {
    /// The decoded image's size.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// One result per prompt.
    pub response: SegmentResponse,
    /// Model time (preprocessing to post-processing) in milliseconds.
    pub elapsed_ms: f64,
}

impl Segmenter {
    /// The engine the settings describe (nothing is loaded yet).
    pub fn new(settings: &Settings) -> Self {
        let dir = &settings.segmentation.weights_dir;
        Self {
            dir: (!dir.is_empty()).then(|| PathBuf::from(dir)),
            device: settings.training.device.clone(),
            cache_images: settings.segmentation.feature_cache_images,
            engine: OnceCell::new(),
        }
    }

    /// Version string of the configured weights: the name of their directory.
    pub fn model_version(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| d.file_name())
            .map_or_else(|| "sam3".to_owned(), |n| n.to_string_lossy().into_owned())
    }

    /// The compute device of the engine.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The engine when it is already loaded.
    pub fn loaded(&self) -> Option<Arc<Sam3Engine>> {
        self.engine.get().and_then(|r| r.as_ref().ok().cloned())
    }

    /// Figures of the loaded checkpoint.
    pub fn weights(&self) -> Option<WeightSummary> {
        self.loaded().and_then(|e| e.weights())
    }

    /// Loads the weights on first use. A failed load is remembered (and logged once): fixing
    /// the weights needs a restart.
    pub async fn engine(&self) -> AppResult<Arc<Sam3Engine>> {
        let Some(dir) = self.dir.clone() else {
            return Err(AppError::ModelNotLoaded(
                "No SAM3 weights are configured (segmentation.weights_dir)".into(),
            ));
        };
        let device = self.device.clone();
        let cache_size = self.cache_images;
        let loaded = self
            .engine
            .get_or_init(|| async move {
                let started = Instant::now();
                let result = tokio::task::spawn_blocking(move || {
                    let spec: ml::DeviceSpec = device.parse().map_err(|e| format!("{e}"))?;
                    let device = spec.device().map_err(|e| e.to_string())?;
                    let options = EngineOptions {
                        cache_size,
                        ..EngineOptions::default()
                    };
                    Sam3Engine::load(&dir, &device, options).map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                match &result {
                    Ok(_) => tracing::info!(
                        seconds = started.elapsed().as_secs_f64(),
                        "SAM3 weights loaded"
                    ),
                    Err(e) => tracing::error!(error = %e, "cannot load the SAM3 weights"),
                }
                result.map(Arc::new)
            })
            .await;
        loaded
            .clone()
            .map_err(|e| AppError::ModelNotLoaded(format!("SAM3 weights failed to load: {e}")))
    }

    /// Decodes `image` and answers every prompt from one backbone pass.
    pub async fn segment(
        &self,
        image: Vec<u8>,
        prompts: Vec<String>,
        bbox: Option<[f64; 4]>,
        threshold: f32,
        max_pixels: u64,
    ) -> AppResult<Segmented> {
        let engine = self.engine().await?;
        tokio::task::spawn_blocking(move || {
            let image = decode(&image, max_pixels)?;
            let (width, height) = (image.width, image.height);
            let exemplar = bbox.map(|b| box_prompt(b, width, height));
            let started = Instant::now();
            let response = engine
                .segment(SegmentRequest {
                    image,
                    prompts: prompts
                        .into_iter()
                        .map(|text| PromptSpec {
                            text,
                            boxes: exemplar.into_iter().collect(),
                        })
                        .collect(),
                    options: PostProcessOptions {
                        threshold,
                        top_k: None,
                    },
                })
                .map_err(|e| match e {
                    Sam3Error::Image(m) | Sam3Error::InvalidInput(m) => {
                        AppError::invalid_field("image_url", m)
                    }
                    other => AppError::InferenceFailed(other.to_string()),
                })?;
            Ok(Segmented {
                width,
                height,
                response,
                elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
            })
        })
        .await
        .map_err(AppError::internal)?
    }
}

/// Decodes an image after checking its pixel count from the header.
fn decode(bytes: &[u8], max_pixels: u64) -> AppResult<RgbImage> {
    let (width, height) = crate::segmentation::edge::dimensions(bytes)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(AppError::invalid_field(
            "image_url",
            format!("{width}×{height} exceeds {max_pixels} pixels"),
        ));
    }
    RgbImage::decode(bytes).map_err(|e| AppError::invalid_field("image_url", e.to_string()))
}

/// `[x, y, width, height]` in pixels as SAM3's box prompt; a box reaching past the image is cut
/// at its edges.
fn box_prompt([x, y, w, h]: [f64; 4], width: usize, height: usize) -> BoxPrompt {
    let (iw, ih) = (width as f64, height as f64);
    let (x0, y0) = (x.clamp(0.0, iw), y.clamp(0.0, ih));
    let corners = [x0, y0, (x + w).clamp(x0, iw), (y + h).clamp(y0, ih)];
    BoxPrompt::from_xyxy_pixels(corners.map(|v| v as f32), width as u32, height as u32, true)
}
