//! The edge API's use-cases: upload, submit, task status, results, and the signed files.

use super::execute::ImageSource;
use super::urls::FileKind;
use super::{SEGMENT_JOB, image_key};
use crate::auth::Principal;
use crate::{App, AppError, AppResult};
use api_types::segmentation::{
    InstanceView, ResultDetailResponse, ResultMetadata, ResultSummary, ResultsListResponse,
    ResultsQuery, SegmentRequest, SegmentResponse, TaskResponse, UploadResponse,
};
use api_types::time::rfc3339;
use bytes::Bytes;
use chrono::Utc;
use std::io::Cursor;
use store::{NewJob, Page, SegImageRow, SegTaskRow};

/// Width and height from an image's header (PNG, JPEG or WebP).
pub fn dimensions(bytes: &[u8]) -> AppResult<(u32, u32)> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| AppError::invalid_field("file", e.to_string()))?
        .into_dimensions()
        .map_err(|e| AppError::invalid_field("file", format!("Cannot read the image: {e}")))
}

/// The MIME type of a PNG, JPEG or WebP image, judged by its content.
fn content_type(bytes: &[u8]) -> AppResult<&'static str> {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => Ok("image/png"),
        Ok(image::ImageFormat::Jpeg) => Ok("image/jpeg"),
        Ok(image::ImageFormat::WebP) => Ok("image/webp"),
        _ => Err(AppError::invalid_field(
            "file",
            "The file is not a PNG, JPEG or WebP image",
        )),
    }
}

/// A project of the caller, or 404.
async fn owned_project(app: &App, principal: &Principal, id: Option<&str>) -> AppResult<()> {
    if let Some(id) = id
        && app
            .store
            .get_project(&principal.user_id, id)
            .await?
            .is_none()
    {
        return Err(AppError::not_found("project", id));
    }
    Ok(())
}

/// The signed URL of a file, valid for `segmentation.url_ttl_secs`.
pub fn file_url(app: &App, base: &str, kind: FileKind, id: &str) -> String {
    let expires = Utc::now().timestamp() + app.settings.segmentation.url_ttl_secs.max(1);
    app.urls.url(base, kind, id, expires)
}

/// `POST /upload`: checks the image by its content (format, header, pixel count, full decode)
/// and the caller's storage quota (403 `FORBIDDEN` past it), then stores it and counts its bytes
/// in the caller's storage usage.
pub async fn upload(
    app: &App,
    principal: &Principal,
    base: &str,
    file: Bytes,
    project_id: Option<String>,
) -> AppResult<UploadResponse> {
    let limit = app.settings.segmentation.max_upload_bytes;
    if file.len() as u64 > limit {
        return Err(AppError::PayloadTooLarge { limit_bytes: limit });
    }
    if file.is_empty() {
        return Err(AppError::invalid_field("file", "The file is empty"));
    }
    crate::datasets::check_storage_quota(app, principal, file.len() as u64).await?;
    let content_type = content_type(&file)?;
    owned_project(app, principal, project_id.as_deref()).await?;
    let max_pixels = app.settings.datasets.max_image_pixels;
    let checked = file.clone();
    let (width, height) = tokio::task::spawn_blocking(move || -> AppResult<(u32, u32)> {
        let (width, height) = dimensions(&checked)?;
        if u64::from(width) * u64::from(height) > max_pixels {
            return Err(AppError::invalid_field(
                "file",
                format!("{width}×{height} exceeds {max_pixels} pixels"),
            ));
        }
        // A header can be fine while the rest is truncated or corrupt.
        image::load_from_memory(&checked)
            .map_err(|e| AppError::invalid_field("file", format!("Corrupt image: {e}")))?;
        Ok((width, height))
    })
    .await
    .map_err(AppError::internal)??;

    let id = uuid::Uuid::new_v4().to_string();
    let row = SegImageRow {
        id: id.clone(),
        user_id: principal.user_id.clone(),
        project_id,
        object_key: image_key(&principal.user_id, &id),
        content_type: content_type.to_owned(),
        size_bytes: file.len() as i64,
        width: i64::from(width),
        height: i64::from(height),
        created_at: Utc::now(),
    };
    let size_bytes = file.len() as u64;
    app.objects.put(&row.object_key, file).await?;
    if let Err(e) = app.store.insert_seg_image(&row).await {
        // Nothing may point at an object whose row failed; the upload is lost either way.
        let _ = app.objects.delete(&row.object_key).await;
        return Err(e.into());
    }
    app.store
        .add_usage(&principal.user_id, 0.0, size_bytes as i64)
        .await?;
    Ok(UploadResponse {
        image_url: file_url(app, base, FileKind::Image, &id),
        image_id: id,
        size_bytes,
        content_type: content_type.to_owned(),
    })
}

/// `POST /segment`: validates, reserves the credits and queues the task, atomically.
pub async fn submit(
    app: &App,
    principal: &Principal,
    request: SegmentRequest,
) -> AppResult<SegmentResponse> {
    let settings = &app.settings.segmentation;
    let prompt = request.text_prompt.trim();
    let chars = prompt.chars().count();
    if chars == 0 || chars > settings.max_prompt_chars {
        return Err(AppError::invalid_field(
            "text_prompt",
            format!(
                "Must be between 1 and {} characters",
                settings.max_prompt_chars
            ),
        ));
    }
    if !settings.available() {
        return Err(AppError::ModelNotLoaded(
            "No SAM3 model is configured on this deployment".into(),
        ));
    }
    let box_prompt = match request.bbox {
        Some(b)
            if b.iter().all(|v| v.is_finite())
                && b[0] >= 0.0
                && b[1] >= 0.0
                && b[2] > 0.0
                && b[3] > 0.0 =>
        {
            Some(serde_json::to_string(&b).map_err(AppError::internal)?)
        }
        Some(_) => {
            return Err(AppError::invalid_field(
                "box",
                "Must be [x, y, width, height] in pixels: x, y ≥ 0 and width, height > 0",
            ));
        }
        None => None,
    };
    owned_project(app, principal, request.project_id.as_deref()).await?;
    let source = ImageSource::resolve(app, &principal.user_id, &request.image_url).await?;
    let now = Utc::now();
    let id = uuid::Uuid::new_v4().to_string();
    let task = SegTaskRow {
        id: id.clone(),
        user_id: principal.user_id.clone(),
        project_id: request.project_id,
        image_id: match &source {
            ImageSource::Stored(image) => Some(image.id.clone()),
            ImageSource::External(_) => None,
        },
        source_image_url: request.image_url.trim().to_owned(),
        text_prompt: prompt.to_owned(),
        box_prompt,
        status: "pending".to_owned(),
        error_message: None,
        credits: settings.credits_per_prompt.max(0),
        labels: "[]".to_owned(),
        instances: "[]".to_owned(),
        mask_key: None,
        inference_time_ms: None,
        confidence: None,
        model_version: None,
        created_at: now,
        updated_at: now,
    };
    let job_id = domain::IdKind::Job.new_id();
    let job = NewJob {
        id: &job_id,
        kind: SEGMENT_JOB,
        user_id: &principal.user_id,
        subject_id: &id,
        payload: "{}",
        max_attempts: settings.max_attempts.max(1),
        max_concurrent: None,
        now,
    };
    if !app.store.insert_seg_task_with_job(&task, job).await? {
        return Err(AppError::InsufficientCredits {
            required: task.credits,
            balance: app.store.credits(&principal.user_id).await?,
        });
    }
    tracing::info!(task_id = %id, "segmentation task queued");
    Ok(SegmentResponse {
        task_id: id,
        status: "pending".to_owned(),
    })
}

async fn owned_task(app: &App, principal: &Principal, id: &str) -> AppResult<SegTaskRow> {
    app.store
        .get_seg_task(&principal.user_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("task", id))
}

/// `GET /tasks/{id}`.
pub async fn task(app: &App, principal: &Principal, id: &str) -> AppResult<TaskResponse> {
    let task = owned_task(app, principal, id).await?;
    Ok(TaskResponse {
        result_id: (task.status == "done").then(|| task.id.clone()),
        error_message: (task.status == "error")
            .then(|| task.error_message.clone().unwrap_or_default()),
        task_id: task.id,
        status: task.status,
        created_at: rfc3339(task.created_at),
        updated_at: rfc3339(task.updated_at),
    })
}

fn source_url(app: &App, base: &str, task: &SegTaskRow) -> String {
    match &task.image_id {
        Some(id) => file_url(app, base, FileKind::Image, id),
        None => task.source_image_url.clone(),
    }
}

fn mask_url(app: &App, base: &str, task: &SegTaskRow) -> Option<String> {
    task.mask_key
        .as_ref()
        .map(|_| file_url(app, base, FileKind::Mask, &task.id))
}

/// `GET /results`.
pub async fn list(
    app: &App,
    principal: &Principal,
    base: &str,
    query: ResultsQuery,
) -> AppResult<ResultsListResponse> {
    let page = query.page.unwrap_or(1);
    let limit = query.limit.unwrap_or(20);
    if page == 0 {
        return Err(AppError::invalid_field("page", "Must be at least 1"));
    }
    if !(1..=100).contains(&limit) {
        return Err(AppError::invalid_field(
            "limit",
            "Must be between 1 and 100",
        ));
    }
    let (tasks, total) = app
        .store
        .list_seg_tasks(
            &principal.user_id,
            query.project_id.as_deref(),
            Page { page, limit },
        )
        .await?;
    Ok(ResultsListResponse {
        results: tasks
            .iter()
            .map(|t| ResultSummary {
                id: t.id.clone(),
                source_image_url: source_url(app, base, t),
                mask_image_url: mask_url(app, base, t),
                text_prompt: t.text_prompt.clone(),
                status: t.status.clone(),
                created_at: rfc3339(t.created_at),
            })
            .collect(),
        total,
        page,
        limit,
    })
}

/// `GET /results/{id}`.
pub async fn detail(
    app: &App,
    principal: &Principal,
    base: &str,
    id: &str,
) -> AppResult<ResultDetailResponse> {
    let task = owned_task(app, principal, id).await?;
    let labels: Vec<String> = serde_json::from_str(&task.labels).map_err(AppError::internal)?;
    let instances: Vec<InstanceView> =
        serde_json::from_str(&task.instances).map_err(AppError::internal)?;
    Ok(ResultDetailResponse {
        source_image_url: source_url(app, base, &task),
        mask_image_url: mask_url(app, base, &task),
        id: task.id,
        project_id: task.project_id,
        text_prompt: task.text_prompt,
        labels,
        metadata: ResultMetadata {
            inference_time_ms: task.inference_time_ms,
            confidence: task.confidence,
            model_version: task.model_version,
        },
        instances,
        status: task.status,
        created_at: rfc3339(task.created_at),
        updated_at: rfc3339(task.updated_at),
    })
}

/// A file behind a signed URL: its MIME type and bytes. A bad or expired signature is 403.
pub async fn file(
    app: &App,
    kind: FileKind,
    id: &str,
    expires: i64,
    signature: &str,
) -> AppResult<(String, Bytes)> {
    if !app
        .urls
        .verify(kind, id, expires, signature, Utc::now().timestamp())
    {
        return Err(AppError::Forbidden(
            "The link is invalid or has expired".into(),
        ));
    }
    let missing = || AppError::not_found("file", id);
    match kind {
        FileKind::Image => {
            let image = app.store.seg_image_by_id(id).await?.ok_or_else(missing)?;
            Ok((
                image.content_type,
                app.objects.get(&image.object_key).await?,
            ))
        }
        FileKind::Mask => {
            // `{task}` is the union mask, `{task}-p{i}` one prompt's of a batch.
            let (task_id, prompt) = match id.rsplit_once("-p") {
                Some((task, i)) if i.parse::<usize>().is_ok() => (task, i.parse().ok()),
                _ => (id, None),
            };
            let task = app
                .store
                .seg_task_by_id(task_id)
                .await?
                .ok_or_else(missing)?;
            let key = super::mask_key(&task.user_id, &task.id, prompt);
            let bytes = app.objects.get(&key).await.map_err(|_| missing())?;
            Ok(("image/png".to_owned(), bytes))
        }
    }
}
