//! The backend API's use-cases (`vision segment-backend`, `X-API-Key`), and the client workers
//! use to hand tasks to remote backends.

use super::edge::file_url;
use super::execute::{self, ImageSource, TaskResult};
use super::urls::FileKind;
use crate::{App, AppError, AppResult};
use api_types::segmentation::{
    BackendBatchRequest, BackendBatchResponse, BackendError, BackendHealth, BackendPredictRequest,
    BackendPredictResponse, ModelInfoResponse,
};
use std::time::Duration;
use store::SegTaskRow;

/// Most prompts in one batch request.
const MAX_BATCH_PROMPTS: usize = 32;

/// Base of the URLs a backend hands out: `server.public_url`, else the edge's bind address.
pub fn public_base(app: &App) -> String {
    let configured = app.settings.server.public_url.trim_end_matches('/');
    if configured.is_empty() {
        format!("http://{}", app.settings.server.bind)
    } else {
        configured.to_owned()
    }
}

/// `GET /health`: model state and real memory figures (no GPU in this build's CPU engine).
pub fn health(app: &App) -> BackendHealth {
    let (rss, total) = memory_mb();
    let gpu = app.segmenter.device().starts_with("cuda");
    BackendHealth {
        status: "ok".to_owned(),
        model_loaded: app.segmenter.loaded().is_some(),
        gpu_available: gpu,
        gpu_name: None,
        vram_used_mb: None,
        vram_total_mb: None,
        ram_used_mb: rss,
        ram_total_mb: total,
    }
}

/// Resident memory of this process and the machine's memory, in MB (Linux `/proc`).
fn memory_mb() -> (Option<f64>, Option<f64>) {
    fn kb(text: &str, key: &str) -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let value: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some((value / 1024.0 * 10.0).round() / 10.0)
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| kb(&s, "VmRSS:"));
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| kb(&s, "MemTotal:"));
    (rss, total)
}

/// `GET /api/v1/model/info`.
pub fn model_info(app: &App) -> AppResult<ModelInfoResponse> {
    let weights = app
        .segmenter
        .weights()
        .ok_or_else(|| AppError::ModelNotLoaded("No SAM3 weights are loaded".into()))?;
    Ok(ModelInfoResponse {
        model_name: "SAM3".to_owned(),
        model_version: app.segmenter.model_version(),
        parameters: weights.parameters,
        weights_size_gb: (weights.bytes as f64 / 1e9 * 1e4).round() / 1e4,
        device: app.segmenter.device().to_owned(),
        dtype: weights.dtype.to_owned(),
    })
}

async fn task_of(app: &App, user_id: &str, task_id: &str) -> AppResult<SegTaskRow> {
    app.store
        .get_seg_task(user_id, task_id)
        .await?
        .ok_or_else(|| AppError::not_found("task", task_id))
}

fn check_prompt(app: &App, prompt: &str) -> AppResult<String> {
    let max = app.settings.segmentation.max_prompt_chars;
    let chars = prompt.chars().count();
    let prompt = prompt.trim();
    if prompt.is_empty() || chars > max {
        return Err(AppError::invalid_field(
            "text_prompt",
            format!("Must be between 1 and {max} characters"),
        ));
    }
    Ok(prompt.to_owned())
}

/// Runs the task on failure-recording terms: an error marks the task `error` (refunding its
/// credits) before it is returned.
async fn run_recorded(
    app: &App,
    task: &SegTaskRow,
    image_url: &str,
    prompts: Vec<String>,
) -> AppResult<Option<TaskResult>> {
    app.segmenter.engine().await?;
    let outcome = match ImageSource::resolve(app, &task.user_id, image_url).await {
        Ok(source) => execute::run(app, task, &source, prompts).await,
        Err(e) => Err(e),
    };
    if let Err(error) = &outcome {
        let message = super::public_message(error);
        app.store
            .fail_seg_task(&task.id, &message, chrono::Utc::now())
            .await?;
    }
    outcome
}

/// The answer for a task that is already done (a retried call): its stored result.
async fn stored_answer(app: &App, task_id: &str) -> AppResult<BackendPredictResponse> {
    let task = app
        .store
        .seg_task_by_id(task_id)
        .await?
        .ok_or_else(|| AppError::not_found("task", task_id))?;
    if task.status != "done" {
        return Err(AppError::invalid_field(
            "task_id",
            format!("The task has already ended in status '{}'", task.status),
        ));
    }
    Ok(BackendPredictResponse {
        mask_url: file_url(app, &public_base(app), FileKind::Mask, &task.id),
        labels: serde_json::from_str(&task.labels).map_err(AppError::internal)?,
        inference_time_ms: task.inference_time_ms.unwrap_or_default(),
        confidence: task.confidence.unwrap_or_default(),
        task_id: task.id,
    })
}

/// `POST /api/v1/predict`: runs the task and updates its row.
pub async fn predict(
    app: &App,
    request: BackendPredictRequest,
) -> AppResult<BackendPredictResponse> {
    let prompt = check_prompt(app, &request.text_prompt)?;
    let task = task_of(app, &request.user_id, &request.task_id).await?;
    match run_recorded(app, &task, &request.image_url, vec![prompt]).await? {
        Some(result) => Ok(BackendPredictResponse {
            task_id: task.id.clone(),
            mask_url: file_url(app, &public_base(app), FileKind::Mask, &task.id),
            labels: result.labels,
            inference_time_ms: result.inference_time_ms,
            confidence: result.confidence,
        }),
        None => stored_answer(app, &task.id).await,
    }
}

/// `POST /api/v1/predict/batch`: every prompt from one backbone pass; one mask per prompt, and
/// the task row holds their union.
pub async fn predict_batch(
    app: &App,
    request: BackendBatchRequest,
) -> AppResult<BackendBatchResponse> {
    if request.prompts.is_empty() || request.prompts.len() > MAX_BATCH_PROMPTS {
        return Err(AppError::invalid_field(
            "prompts",
            format!("Give between 1 and {MAX_BATCH_PROMPTS} prompts"),
        ));
    }
    let prompts = request
        .prompts
        .iter()
        .map(|p| check_prompt(app, p))
        .collect::<AppResult<Vec<_>>>()?;
    let task = task_of(app, &request.user_id, &request.task_id).await?;
    let result = run_recorded(app, &task, &request.image_url, prompts)
        .await?
        .ok_or_else(|| AppError::invalid_field("task_id", "The task has already been processed"))?;
    let base = public_base(app);
    Ok(BackendBatchResponse {
        task_id: task.id.clone(),
        results: result
            .prompts
            .into_iter()
            .map(|p| BackendPredictResponse {
                task_id: task.id.clone(),
                mask_url: file_url(app, &base, FileKind::Mask, &p.file_id),
                labels: p.labels,
                inference_time_ms: result.inference_time_ms,
                confidence: p.confidence,
            })
            .collect(),
        total_inference_time_ms: result.inference_time_ms,
    })
}

/// Hands `task` to the configured backends in turn until one answers. The backend updates
/// the task row itself; a refusal of the input (4xx) is final, other failures try the next.
pub async fn remote_predict(app: &App, task: &SegTaskRow) -> AppResult<()> {
    let settings = &app.settings.segmentation;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.backend_timeout_secs.max(1)))
        .build()
        .map_err(AppError::internal)?;
    let image_url = match &task.image_id {
        Some(id) => file_url(app, &public_base(app), FileKind::Image, id),
        None => task.source_image_url.clone(),
    };
    let body = BackendPredictRequest {
        image_url,
        text_prompt: task.text_prompt.clone(),
        user_id: task.user_id.clone(),
        task_id: task.id.clone(),
    };
    let mut last = String::from("no backend configured");
    for base in &settings.backends {
        let url = format!("{}/api/v1/predict", base.trim_end_matches('/'));
        let response = match client
            .post(&url)
            .header("X-API-Key", &settings.api_key)
            .json(&body)
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) => {
                last = format!("{base}: {e}");
                tracing::warn!(backend = %base, error = %e, "segmentation backend unreachable");
                continue;
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let error: Option<BackendError> = response.json().await.ok();
        let detail = error.map_or_else(
            || status.to_string(),
            |e| format!("{}: {}", e.code, e.detail),
        );
        let misconfigured = matches!(status.as_u16(), 401 | 403 | 404);
        if status.is_client_error() && !misconfigured {
            return Err(AppError::invalid_field("image_url", detail));
        }
        tracing::warn!(backend = %base, %detail, "segmentation backend failed");
        last = format!("{base}: {detail}");
    }
    Err(AppError::Unavailable(format!(
        "every segmentation backend failed; last: {last}"
    )))
}
