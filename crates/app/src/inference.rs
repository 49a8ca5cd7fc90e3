//! Serving trained models: images by URL or base64 → top classes (classifiers) or boxes
//! (detectors), on engines kept loaded in a least-recently-used cache under a memory budget.
//! Each engine owns its model on a dedicated thread and batches concurrent requests (see
//! `ml::infer`).

use crate::auth::Principal;
use crate::{App, AppError, AppResult};
use api_types::inference::{PredictRequest, PredictResponse, PredictionView};
use base64::Engine as _;
use domain::{Workflow, WorkflowStatus};
use ml::detect::{DetectorEngine, NmsOptions};
use ml::infer::{EngineOptions, ImageInput, InferenceEngine};
use objects::keys;
use serde_json::json;
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

/// Classes returned per image at most.
const TOP_K: usize = 5;

/// A loaded model of either task, ready to answer.
#[derive(Clone)]
pub enum ServedModel {
    /// A classifier: the top classes of each image.
    Classifier(Arc<InferenceEngine>),
    /// A detector: the objects of each image with their boxes, after NMS with these options.
    Detector(Arc<DetectorEngine>, NmsOptions),
}

impl ServedModel {
    /// The answer for one encoded image, most confident first.
    pub(crate) async fn predict(&self, image: Vec<u8>) -> Result<Vec<PredictionView>, ml::MlError> {
        let images = vec![ImageInput::Encoded(image)];
        Ok(match self {
            Self::Classifier(engine) => {
                let mut answers = engine.predict(images, TOP_K).await?;
                answers
                    .pop()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| PredictionView {
                        class: p.class_name,
                        confidence: f64::from(p.probability),
                        class_id: p.class_index,
                        bbox: None,
                    })
                    .collect()
            }
            Self::Detector(engine, nms) => {
                let mut answers = engine.predict(images, *nms).await?;
                answers
                    .pop()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| PredictionView {
                        class: d.class,
                        confidence: f64::from(d.confidence),
                        class_id: d.class_id,
                        bbox: Some(
                            d.bbox_xywh_pixels
                                .map(|v| (f64::from(v) * 100.0).round() / 100.0),
                        ),
                    })
                    .collect()
            }
        })
    }
}

struct Loaded<T> {
    /// The workflow's owner.
    user_id: String,
    /// `wf_…_epoch_N`.
    version: String,
    engine: T,
    bytes: u64,
    last_used: Instant,
}

/// Loaded engines by workflow id, evicted least recently used first beyond the budget.
///
/// The list's lock is only held to look up or insert: a model is loaded (seconds for a large
/// one) outside it, so predictions on other models never wait for a load. Requests for the
/// same model wait on that model's own gate and find it loaded, instead of loading it again.
pub struct ModelCache<T = ServedModel> {
    loaded: Mutex<Vec<(String, Loaded<T>)>>,
    loading: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl<T> Default for ModelCache<T> {
    fn default() -> Self {
        Self {
            loaded: Mutex::default(),
            loading: Mutex::default(),
        }
    }
}

impl<T> std::fmt::Debug for ModelCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCache").finish_non_exhaustive()
    }
}

impl<T: Clone> ModelCache<T> {
    /// The loaded engine of `workflow_id` when `user_id` owns it, without the database: only
    /// completed workflows are loaded, and a completed workflow stays completed, keeps its
    /// owner and is never deleted, so the answer is the one the database would give.
    pub(crate) async fn owned_loaded(
        &self,
        workflow_id: &str,
        user_id: &str,
    ) -> Option<(T, String)> {
        touch(&mut self.loaded.lock().await, workflow_id, user_id)
    }

    /// The engine of `workflow_id` (owned by `user_id`), started by `load` when it is not
    /// loaded, evicting least recently used ones beyond `budget` bytes.
    async fn get_or_load<F>(
        &self,
        workflow_id: &str,
        user_id: &str,
        version: String,
        budget: u64,
        load: F,
    ) -> AppResult<(T, String)>
    where
        F: Future<Output = AppResult<(T, u64)>>,
    {
        if let Some(hit) = self.owned_loaded(workflow_id, user_id).await {
            return Ok(hit);
        }
        let gate = self
            .loading
            .lock()
            .await
            .entry(workflow_id.to_owned())
            .or_default()
            .clone();
        let _loading = gate.lock().await;
        if let Some(hit) = self.owned_loaded(workflow_id, user_id).await {
            return Ok(hit);
        }
        let result = load.await;
        self.loading.lock().await.remove(workflow_id);
        let (engine, bytes) = result?;
        let mut loaded = self.loaded.lock().await;
        while !loaded.is_empty()
            && loaded.iter().map(|(_, l)| l.bytes).sum::<u64>() + bytes > budget
        {
            let oldest = loaded
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, l))| l.last_used)
                .map(|(i, _)| i)
                .unwrap_or(0);
            let (id, _) = loaded.remove(oldest);
            tracing::info!(workflow_id = %id, "model unloaded (cache budget)");
        }
        loaded.push((
            workflow_id.to_owned(),
            Loaded {
                user_id: user_id.to_owned(),
                version: version.clone(),
                engine: engine.clone(),
                bytes,
                last_used: Instant::now(),
            },
        ));
        Ok((engine, version))
    }
}

impl ModelCache<ServedModel> {
    /// The engine of a completed workflow, loading it (and evicting others) when needed.
    pub(crate) async fn engine(
        &self,
        app: &App,
        workflow: &Workflow,
    ) -> AppResult<(ServedModel, String)> {
        let version = format!(
            "{}_epoch_{}",
            workflow.id,
            workflow.exported_epoch.unwrap_or(workflow.current_epoch)
        );
        let budget = app.settings.inference.cache_bytes;
        self.get_or_load(
            &workflow.id,
            &workflow.user_id,
            version,
            budget,
            load(app, workflow),
        )
        .await
    }
}

/// The loaded engine of `workflow_id` owned by `user_id`, marked as just used.
fn touch<T: Clone>(
    loaded: &mut [(String, Loaded<T>)],
    workflow_id: &str,
    user_id: &str,
) -> Option<(T, String)> {
    let (_, entry) = loaded
        .iter_mut()
        .find(|(id, entry)| id == workflow_id && entry.user_id == user_id)?;
    entry.last_used = Instant::now();
    Some((entry.engine.clone(), entry.version.clone()))
}

/// Copies the stored model to the local scratch directory and starts an engine on it.
async fn load(app: &App, workflow: &Workflow) -> AppResult<(ServedModel, u64)> {
    let prefix = format!(
        "{}model/",
        keys::workflow_prefix(&workflow.user_id, &workflow.id)
    );
    let dir = app.settings.work_dir().join("models").join(&workflow.id);
    let mut bytes = 0u64;
    for (key, size) in app.objects.list(&prefix).await? {
        let path = dir.join(key.trim_start_matches(&prefix));
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(AppError::internal)?;
        }
        tokio::fs::write(&path, app.objects.get(&key).await?)
            .await
            .map_err(AppError::internal)?;
        bytes += size;
    }
    let device = app
        .settings
        .training
        .device
        .parse()
        .map_err(|e: ml::MlError| AppError::internal(e))?;
    let options = EngineOptions {
        device,
        ..EngineOptions::default()
    };
    let settings = &app.settings.inference;
    let nms = NmsOptions {
        score_threshold: settings.detection_score_threshold,
        iou_threshold: settings.detection_iou_threshold,
        max_detections: settings.detection_max_objects,
        ..NmsOptions::default()
    };
    let engine = tokio::task::spawn_blocking(move || {
        let config = ml::artefact::read_config(&dir)?;
        if config.task == ml::artefact::TASK_DETECTION {
            DetectorEngine::load(&dir, options).map(|e| ServedModel::Detector(Arc::new(e), nms))
        } else {
            InferenceEngine::load(&dir, options).map(|e| ServedModel::Classifier(Arc::new(e)))
        }
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    tracing::info!(workflow_id = %workflow.id, bytes, "model loaded");
    Ok((engine, bytes))
}

/// The image bytes of a request: downloaded or base64-decoded, size-checked.
async fn image_bytes(app: &App, request: &PredictRequest) -> AppResult<Vec<u8>> {
    let limit = app.settings.inference.max_image_bytes;
    let bytes = match (&request.image_url, &request.image_base64) {
        (Some(url), None) => crate::fetch::download(url, &app.settings.inference).await?,
        (None, Some(data)) => decode_base64(data, limit)?,
        _ => {
            return Err(AppError::invalid_field(
                "image_url",
                "Give exactly one of image_url and image_base64",
            ));
        }
    };
    if bytes.len() as u64 > limit {
        return Err(AppError::PayloadTooLarge { limit_bytes: limit });
    }
    Ok(bytes)
}

/// The bytes of `image_base64`: raw base64 or a `data:…;base64,` URL, line breaks allowed;
/// refused before decoding when it would exceed `limit` bytes.
fn decode_base64(data: &str, limit: u64) -> AppResult<Vec<u8>> {
    let payload = match data.split_once(";base64,") {
        Some((head, rest)) if head.starts_with("data:") => rest,
        _ => data,
    };
    if payload.len() as u64 > limit.saturating_mul(4) / 3 + 4 {
        return Err(AppError::PayloadTooLarge { limit_bytes: limit });
    }
    // Copied only when there are line breaks (MIME-style base64) to drop.
    let payload = payload.as_bytes();
    let compact: std::borrow::Cow<'_, [u8]> = if payload.iter().any(u8::is_ascii_whitespace) {
        payload
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect::<Vec<u8>>()
            .into()
    } else {
        payload.into()
    };
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| AppError::invalid_field("image_base64", format!("not base64: {e}")))
}

/// Refuses what is not a decodable image of a supported format within the pixel limit,
/// reading only the header.
fn check_image(bytes: &[u8], max_pixels: u64) -> AppResult<()> {
    let field = "image";
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| AppError::invalid_field(field, e.to_string()))?;
    let Some(format) = reader.format() else {
        return Err(AppError::invalid_field(
            field,
            "Unsupported image format (PNG, JPEG, WebP, BMP or GIF)",
        ));
    };
    let (width, height) = reader.into_dimensions().map_err(|e| {
        AppError::invalid_field(field, format!("Cannot read the {format:?} image: {e}"))
    })?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(AppError::InvalidRequest {
            message: "Image too large".into(),
            details: json!({
                "field": field,
                "reason": format!("{width}×{height} exceeds {max_pixels} pixels"),
            }),
        });
    }
    Ok(())
}

/// A completed workflow of the caller (404 for others', 409 when not completed).
pub(crate) async fn serving(
    app: &App,
    principal: &Principal,
    workflow_id: &str,
) -> AppResult<Workflow> {
    let workflow = crate::workflows::owned(app, principal, workflow_id).await?;
    if workflow.status != WorkflowStatus::Completed {
        return Err(AppError::Conflict {
            message: format!(
                "Workflow '{workflow_id}' is {}, not completed",
                workflow.status.as_str()
            ),
            details: json!({ "status": workflow.status.as_str() }),
        });
    }
    Ok(workflow)
}

/// The request's image, fetched or decoded, within the size, format and pixel limits.
pub(crate) async fn checked_image(app: &App, request: &PredictRequest) -> AppResult<Vec<u8>> {
    let bytes = image_bytes(app, request).await?;
    check_image(&bytes, app.settings.datasets.max_image_pixels)?;
    Ok(bytes)
}

/// `POST /inference/{workflow_id}/predict`.
pub async fn predict(
    app: &App,
    principal: &Principal,
    workflow_id: &str,
    request: PredictRequest,
) -> AppResult<PredictResponse> {
    // A loaded model answers without the database (see `ModelCache::owned_loaded`); otherwise
    // the workflow is checked (404, 409) before the image (400, 413), as always.
    let (bytes, (engine, version)) = match app
        .models
        .owned_loaded(workflow_id, &principal.user_id)
        .await
    {
        Some(hit) => (checked_image(app, &request).await?, hit),
        None => {
            let workflow = serving(app, principal, workflow_id).await?;
            let bytes = checked_image(app, &request).await?;
            (bytes, app.models.engine(app, &workflow).await?)
        }
    };
    let started = Instant::now();
    let predictions = engine.predict(bytes).await.map_err(|e| match e {
        ml::MlError::Image { message, .. } => AppError::invalid_field("image", message),
        other => AppError::internal(other),
    })?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    Ok(PredictResponse {
        predictions,
        inference_time_ms: (elapsed * 100.0).round() / 100.0,
        model_version: version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn base64_decodes_raw_wrapped_and_data_urls(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            width in 1usize..80,
        ) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let wrapped = encoded
                .as_bytes()
                .chunks(width)
                .map(|line| std::str::from_utf8(line).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\r\n");
            for data in [encoded.clone(), wrapped, format!("data:image/png;base64,{encoded}")] {
                prop_assert_eq!(&decode_base64(&data, 1 << 20).unwrap(), &bytes);
            }
        }
    }

    #[tokio::test]
    async fn a_slow_load_does_not_hold_up_other_models() {
        let cache = Arc::new(ModelCache::<&'static str>::default());
        let loaded = cache
            .get_or_load("wf_a", "user_1", "a".into(), 100, async { Ok(("A", 10)) })
            .await
            .unwrap();
        assert_eq!(loaded.0, "A");
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let slow = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load("wf_b", "user_1", "b".into(), 100, async {
                        let _ = released.await;
                        Ok(("B", 10))
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // While B loads, A answers at once and a second request for B does not load it again.
        let hit = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            cache.get_or_load("wf_a", "user_1", "a".into(), 100, async {
                Err(AppError::internal("must not load again"))
            }),
        )
        .await
        .expect("A must not wait for B's load")
        .unwrap();
        assert_eq!(hit.0, "A");
        let waiter = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load("wf_b", "user_1", "b".into(), 100, async {
                        Err(AppError::internal("loaded twice"))
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        release.send(()).unwrap();
        assert_eq!(slow.await.unwrap().unwrap().0, "B");
        assert_eq!(waiter.await.unwrap().unwrap().0, "B");
        // Another user's id is not served from the cache.
        assert!(cache.owned_loaded("wf_b", "user_2").await.is_none());
    }

    #[test]
    fn base64_refuses_garbage_and_oversized_payloads() {
        assert!(matches!(
            decode_base64("not base64!", 1 << 20),
            Err(AppError::InvalidRequest { .. })
        ));
        let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 4000]);
        assert!(matches!(
            decode_base64(&big, 1000),
            Err(AppError::PayloadTooLarge { limit_bytes: 1000 })
        ));
    }
}
