//! Running one segmentation task: the pipeline shared by the in-process worker and the backend
//! API. `pending/processing → processing`, fetch the image, run SAM3, store the mask PNG and the
//! instances, `→ done`. Credits were reserved at submit; failures are recorded by the caller
//! with `fail_seg_task`, which refunds them.

use super::urls::{FileKind, own_file};
use super::{instance_views, mask_key, union_mask_png};
use crate::{App, AppError, AppResult};
use bytes::Bytes;
use chrono::Utc;
use store::{SegImageRow, SegOutcome, SegTaskRow};

/// Where a task's image comes from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// An upload of the task's owner.
    Stored(SegImageRow),
    /// A public URL, fetched under the SSRF rules.
    External(String),
}

impl ImageSource {
    /// Resolves `url` for `user_id`: one of their uploads (by the platform's file URL) or an
    /// external URL. A file URL of someone else's image, or of a mask, is refused.
    pub async fn resolve(app: &App, user_id: &str, url: &str) -> AppResult<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(AppError::invalid_field("image_url", "Must not be empty"));
        }
        match own_file(url) {
            Some((FileKind::Image, id)) => app
                .store
                .get_seg_image(user_id, &id)
                .await?
                .map(ImageSource::Stored)
                .ok_or_else(|| AppError::invalid_field("image_url", "Not an image you uploaded")),
            Some((FileKind::Mask, _)) => Err(AppError::invalid_field(
                "image_url",
                "A mask cannot be segmented; give an uploaded image",
            )),
            None => {
                crate::fetch::check_url(url, &fetch_settings(app)).await?;
                Ok(ImageSource::External(url.to_owned()))
            }
        }
    }

    /// The source of a queued task.
    pub async fn of_task(app: &App, task: &SegTaskRow) -> AppResult<Self> {
        match &task.image_id {
            Some(id) => app
                .store
                .get_seg_image(&task.user_id, id)
                .await?
                .map(ImageSource::Stored)
                .ok_or_else(|| AppError::invalid_field("image_url", "The image was deleted")),
            None => Ok(ImageSource::External(task.source_image_url.clone())),
        }
    }

    async fn bytes(&self, app: &App) -> AppResult<Vec<u8>> {
        match self {
            ImageSource::Stored(image) => Ok(app.objects.get(&image.object_key).await?.to_vec()),
            ImageSource::External(url) => crate::fetch::download(url, &fetch_settings(app))
                .await
                .map_err(|e| match e {
                    AppError::PayloadTooLarge { limit_bytes } => AppError::invalid_field(
                        "image_url",
                        format!("The image is larger than {limit_bytes} bytes"),
                    ),
                    other => other,
                }),
        }
    }
}

/// Downloads follow the inference rules with the upload size limit.
fn fetch_settings(app: &App) -> crate::settings::InferenceSettings {
    let mut settings = app.settings.inference.clone();
    settings.max_image_bytes = app.settings.segmentation.max_upload_bytes;
    settings
}

/// What a task produced, per prompt and overall.
#[derive(Debug, Clone)]
pub struct TaskResult {
    /// Labels of every instance.
    pub labels: Vec<String>,
    /// Best score (0 without instances).
    pub confidence: f64,
    /// Model time in milliseconds.
    pub inference_time_ms: f64,
    /// Per prompt: object key of its mask, its labels and best score.
    pub prompts: Vec<PromptMask>,
}

/// One prompt's part of a [`TaskResult`].
#[derive(Debug, Clone)]
pub struct PromptMask {
    /// Mask file id (for signed URLs).
    pub file_id: String,
    /// Labels of its instances.
    pub labels: Vec<String>,
    /// Best score.
    pub confidence: f64,
}

/// Runs `task` on `source` for `prompts` (the task's own prompt for edge tasks). `Ok(None)`
/// when the task had already finished (a retry after success): nothing is changed.
pub async fn run(
    app: &App,
    task: &SegTaskRow,
    source: &ImageSource,
    prompts: Vec<String>,
) -> AppResult<Option<TaskResult>> {
    if !app.store.start_seg_task(&task.id, Utc::now()).await? {
        return Ok(None);
    }
    let image = source.bytes(app).await?;
    let bbox: Option<[f64; 4]> = match &task.box_prompt {
        Some(text) => Some(serde_json::from_str(text).map_err(AppError::internal)?),
        None => None,
    };
    let segmented = app
        .segmenter
        .segment(
            image,
            prompts.clone(),
            bbox,
            app.settings.segmentation.score_threshold,
            app.settings.datasets.max_image_pixels,
        )
        .await?;
    let (width, height) = (segmented.width, segmented.height);
    let results = &segmented.response.results;

    let mut instances = Vec::new();
    let mut per_prompt = Vec::with_capacity(results.len());
    let several = results.len() > 1;
    for (i, (prompt, result)) in prompts.iter().zip(results).enumerate() {
        let views = instance_views(prompt, &result.instances);
        let file_id = if several {
            format!("{}-p{i}", task.id)
        } else {
            task.id.clone()
        };
        if several {
            let png = union_mask_png(width, height, &result.instances)?;
            app.objects
                .put(
                    &mask_key(&task.user_id, &task.id, Some(i)),
                    Bytes::from(png),
                )
                .await?;
        }
        per_prompt.push(PromptMask {
            file_id,
            labels: views.iter().map(|v| v.label.clone()).collect(),
            confidence: best(&views),
        });
        instances.extend(views);
    }
    let all: Vec<_> = results
        .iter()
        .flat_map(|r| r.instances.iter().cloned())
        .collect();
    let png = union_mask_png(width, height, &all)?;
    let key = mask_key(&task.user_id, &task.id, None);
    app.objects.put(&key, Bytes::from(png)).await?;

    let labels: Vec<String> = instances.iter().map(|v| v.label.clone()).collect();
    let confidence = best(&instances);
    let inference_time_ms = (segmented.elapsed_ms * 100.0).round() / 100.0;
    let labels_json = serde_json::to_string(&labels).map_err(AppError::internal)?;
    let instances_json = serde_json::to_string(&instances).map_err(AppError::internal)?;
    let version = app.segmenter.model_version();
    let finished = app
        .store
        .finish_seg_task(
            &task.id,
            SegOutcome {
                labels: &labels_json,
                instances: &instances_json,
                mask_key: &key,
                inference_time_ms,
                confidence,
                model_version: &version,
                now: Utc::now(),
            },
        )
        .await?;
    if !finished {
        // Another attempt finished it meanwhile; its result stands.
        return Ok(None);
    }
    Ok(Some(TaskResult {
        labels,
        confidence,
        inference_time_ms,
        prompts: per_prompt,
    }))
}

fn best(views: &[api_types::segmentation::InstanceView]) -> f64 {
    views.iter().map(|v| v.score).fold(0.0, f64::max)
}
