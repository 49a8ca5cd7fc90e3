//! The segmentation service (`shared/spec/segmentation-api.md`): the edge API, whose every
//! response is wrapped in [`Envelope`], and the plain-JSON backend API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{success, data, error, meta}`: every edge API response, success and error alike.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Whether the request succeeded.
    pub success: bool,
    /// The payload on success, `null` on error.
    pub data: Option<T>,
    /// The error, `null` on success.
    pub error: Option<EnvelopeError>,
    /// Request id and time.
    pub meta: EnvelopeMeta,
}

/// An edge API error as documented: the [`Envelope`] with `success: false`, `data: null` and
/// the error set (what every 4xx/5xx of the edge API carries).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EdgeErrorResponse {
    /// Always `false`.
    #[schema(example = false)]
    pub success: bool,
    /// Always `null`.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
    /// What went wrong.
    pub error: EnvelopeError,
    /// Request id and time.
    pub meta: EnvelopeMeta,
}

/// The error part of an [`Envelope`].
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EnvelopeError {
    /// One of the spec's codes (`AUTH_REQUIRED`, `INSUFFICIENT_CREDITS`, …).
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// The `meta` part of an [`Envelope`].
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EnvelopeMeta {
    /// UUID v4 of the request, also in the `X-Request-Id` header.
    pub request_id: String,
    /// ISO 8601 time of the response.
    pub timestamp: String,
}

/// `POST /api/v1/upload` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct UploadResponse {
    /// UUID of the image.
    pub image_id: String,
    /// Signed, expiring URL the image can be fetched from (and given to `/segment`).
    pub image_url: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// `image/png`, `image/jpeg` or `image/webp`, detected from the content.
    pub content_type: String,
}

/// `POST /api/v1/segment` body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SegmentRequest {
    /// The `image_url` of an upload of the caller, or a public http(s) image URL.
    pub image_url: String,
    /// What to segment, e.g. `the red car`: 1–200 characters (the default
    /// `segmentation.max_prompt_chars`), not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub text_prompt: String,
    /// Project of the caller the result belongs to.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Optional box around an example of what to segment, `[x, y, width, height]` in the
    /// image's pixels (an extension of the spec): SAM3 then finds the prompt's objects like it.
    #[serde(default, rename = "box")]
    #[schema(value_type = Option<Vec<f64>>, min_items = 4, max_items = 4)]
    pub bbox: Option<[f64; 4]>,
}

/// `POST /api/v1/segment` answer (202).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SegmentResponse {
    /// UUID to poll `/tasks/{id}` with.
    pub task_id: String,
    /// Always `pending`.
    pub status: String,
}

/// `GET /api/v1/tasks/{id}` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TaskResponse {
    /// The task id.
    pub task_id: String,
    /// `pending`, `processing`, `done` or `error`.
    pub status: String,
    /// The result id, when `done`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_id: Option<String>,
    /// Why it failed, when `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Submit time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// `GET /api/v1/results` query.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Only results of this project.
    pub project_id: Option<String>,
    /// 1-based page (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Page size (default 20, at most 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/results` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ResultsListResponse {
    /// One page of results, newest first.
    pub results: Vec<ResultSummary>,
    /// Results in total.
    pub total: i64,
    /// The page.
    pub page: u32,
    /// The page size.
    pub limit: u32,
}

/// One result of a listing.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ResultSummary {
    /// Result id (= task id).
    pub id: String,
    /// Signed URL of the uploaded image, or the external URL segmented.
    pub source_image_url: String,
    /// Signed URL of the mask PNG; `null` until the task is done.
    pub mask_image_url: Option<String>,
    /// The prompt.
    pub text_prompt: String,
    /// Task status.
    pub status: String,
    /// Submit time.
    pub created_at: String,
}

/// `GET /api/v1/results/{id}` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ResultDetailResponse {
    /// Result id (= task id).
    pub id: String,
    /// Project, if any.
    pub project_id: Option<String>,
    /// Signed URL of the uploaded image, or the external URL segmented.
    pub source_image_url: String,
    /// Signed URL of the mask PNG (white = any instance); `null` until done.
    pub mask_image_url: Option<String>,
    /// The prompt.
    pub text_prompt: String,
    /// One label per detected instance.
    pub labels: Vec<String>,
    /// Model figures.
    pub metadata: ResultMetadata,
    /// Every instance: score, box and mask.
    pub instances: Vec<InstanceView>,
    /// Task status.
    pub status: String,
    /// Submit time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// `metadata` of a result; `null` figures until the task is done.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ResultMetadata {
    /// Model time in milliseconds.
    pub inference_time_ms: Option<f64>,
    /// Best instance score (`sigmoid(logit) × sigmoid(presence)`), 0 without instances.
    pub confidence: Option<f64>,
    /// The weights that produced the result.
    pub model_version: Option<String>,
}

/// One segmented instance.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct InstanceView {
    /// The prompt it answers.
    pub label: String,
    /// Score in [0, 1].
    pub score: f64,
    /// `[x, y, width, height]` in pixels of the source image.
    pub bbox: [f64; 4],
    /// Pixel area of the mask.
    pub area: u64,
    /// The mask as COCO RLE (column-major counts, `size` = `[height, width]`).
    pub segmentation: CocoRleView,
    /// Outer contours as `[x1, y1, x2, y2, …]` pixel coordinates.
    pub polygons: Vec<Vec<f32>>,
}

/// COCO run-length encoding of a binary mask.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct CocoRleView {
    /// `[height, width]`.
    pub size: [usize; 2],
    /// Alternating run lengths of 0s and 1s, column-major, starting with 0s.
    pub counts: Vec<u32>,
}

/// Backend `GET /health` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BackendHealth {
    /// `ok`.
    pub status: String,
    /// Whether SAM3 weights are loaded.
    pub model_loaded: bool,
    /// Whether a GPU serves the model.
    pub gpu_available: bool,
    /// The GPU's name (`null` on CPU).
    pub gpu_name: Option<String>,
    /// GPU memory used (`null` on CPU).
    pub vram_used_mb: Option<f64>,
    /// GPU memory size (`null` on CPU).
    pub vram_total_mb: Option<f64>,
    /// Resident memory of this process.
    pub ram_used_mb: Option<f64>,
    /// Memory of the machine.
    pub ram_total_mb: Option<f64>,
}

/// Backend `POST /api/v1/predict` body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BackendPredictRequest {
    /// Image URL (the edge's upload URL or a public URL).
    pub image_url: String,
    /// The prompt.
    pub text_prompt: String,
    /// Owner of the task.
    pub user_id: String,
    /// The task to update.
    pub task_id: String,
}

/// Backend `POST /api/v1/predict` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BackendPredictResponse {
    /// The task.
    pub task_id: String,
    /// Signed URL of the stored mask PNG.
    pub mask_url: String,
    /// One label per instance.
    pub labels: Vec<String>,
    /// Model time in milliseconds.
    pub inference_time_ms: f64,
    /// Best instance score.
    pub confidence: f64,
}

/// Backend `POST /api/v1/predict/batch` body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BackendBatchRequest {
    /// Image URL.
    pub image_url: String,
    /// Prompts, all answered from one backbone pass.
    pub prompts: Vec<String>,
    /// Owner of the task.
    pub user_id: String,
    /// The task to update.
    pub task_id: String,
}

/// Backend `POST /api/v1/predict/batch` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BackendBatchResponse {
    /// The task.
    pub task_id: String,
    /// One answer per prompt, in order.
    pub results: Vec<BackendPredictResponse>,
    /// Model time of the whole request in milliseconds.
    pub total_inference_time_ms: f64,
}

/// Backend `GET /api/v1/model/info` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ModelInfoResponse {
    /// `SAM3`.
    pub model_name: String,
    /// Version of the loaded weights.
    pub model_version: String,
    /// Parameters counted from the loaded model.
    pub parameters: u64,
    /// Size of the weight files.
    pub weights_size_gb: f64,
    /// `cpu`, `cuda:0`, …
    pub device: String,
    /// Storage dtype of the weights (`float32`, `float16`, `bfloat16`).
    pub dtype: String,
}

/// Backend error body: FastAPI's `detail` plus the spec's code.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BackendError {
    /// What went wrong.
    pub detail: String,
    /// One of the spec's codes.
    pub code: String,
}

/// `POST /api/v1/upload` form (`multipart/form-data`; any other field is a 400).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageUploadForm {
    /// The image: PNG, JPEG or WebP, at most 10 MB.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// Project of the caller the image belongs to (404 when it is not one).
    #[schema(value_type = String, required = false)]
    pub project_id: Option<String>,
}
