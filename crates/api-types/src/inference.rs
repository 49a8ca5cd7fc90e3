//! `/inference` bodies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /inference/{workflow_id}/predict` request: exactly one of the two fields.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// An http(s) URL the platform downloads (public addresses only unless configured).
    pub image_url: Option<String>,
    /// The image as base64, raw or as a `data:image/…;base64,` URL.
    pub image_base64: Option<String>,
}

/// One class of an answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct PredictionView {
    /// Class name.
    pub class: String,
    /// Probability in [0, 1].
    pub confidence: f64,
    /// Class index.
    pub class_id: usize,
    /// Detection models only: the object's box as `[x, y, width, height]` in pixels of the
    /// image as sent (absent for classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
}

/// `POST /inference/{workflow_id}/predict` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct PredictResponse {
    /// Most confident first: the top classes of a classifier, or the objects a detector found.
    pub predictions: Vec<PredictionView>,
    /// Decode + forward time in the engine, milliseconds.
    pub inference_time_ms: f64,
    /// `wf_…_epoch_N`: the workflow and the epoch its weights come from.
    pub model_version: String,
}

/// `POST /inference/{workflow_id}/batch` request.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 100 images, each with `image_url` or `image_base64`.
    pub images: Vec<PredictRequest>,
}

/// `POST /inference/{workflow_id}/batch` response (202).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// Id to poll.
    pub job_id: String,
    /// `processing`.
    pub status: String,
    /// Images queued.
    pub total_images: usize,
    /// Expected end.
    pub estimated_completion_time: String,
}

/// `GET /inference/{workflow_id}/batch/{job_id}` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BatchStatusView {
    /// Id.
    pub job_id: String,
    /// `processing`, `completed` or `failed`.
    pub status: String,
    /// Images requested.
    pub total_images: i64,
    /// Images answered so far.
    pub completed_images: i64,
    /// One entry per answered image, in request order: `image_url` (or `index` for base64
    /// images) with `predictions`, or with `error`.
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<serde_json::Value>,
    /// When the last image was answered.
    pub completed_at: Option<String>,
}
