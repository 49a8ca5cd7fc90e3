//! `/workflows` bodies, the WebSocket messages and the internal orchestration API.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// Hyper-parameters of a training run; absent ones are chosen from the dataset by the training
/// recipe (image size from the images' median side, augmentation from image size, dataset size
/// and task, learning rate from optimizer, batch size and model), and the workflow's `config.recipe`
/// lists every value used with its reason. Numbers are read as given (even out of range) so
/// validation can name every bad field.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hyperparameters {
    /// Passes over the training images (1–1000; default 10, more for small datasets so the run
    /// has at least 300 steps, at most 30).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::int::option")]
    pub epochs: Option<i64>,
    /// Images per step (1–1024; default 64 for inputs ≤ 64 px, 32 above, 16 for detection, halved
    /// for small datasets).
    #[schema(minimum = 1, maximum = 1024)]
    #[serde(default, deserialize_with = "crate::int::option")]
    pub batch_size: Option<i64>,
    /// Peak learning rate (0 < lr ≤ 1; default scaled to optimizer, batch size and model: AdamW
    /// √(batch/64) × 1e-2 for the small CNN, × 1.5e-3 for ResNets; SGD 0.1·batch/256; ×0.1 from
    /// pretrained weights; detection 0.002·5/(4 + classes)).
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub learning_rate: Option<f64>,
    /// `adam`, `adamw` (default) or `sgd`.
    #[schema(value_type = Option<crate::vocab::Optimizer>)]
    pub optimizer: Option<String>,
    /// Square input side in pixels (16–1024; default: the images' median shorter side within the
    /// model's range — small CNN 16–128, ResNets 32–224; detection: the longer side rounded down
    /// to a multiple of 32, 128–640).
    #[schema(minimum = 16, maximum = 1024)]
    #[serde(default, deserialize_with = "crate::int::option")]
    pub image_size: Option<i64>,
    /// `constant`, `step` or `cosine` (default).
    #[schema(value_type = Option<crate::vocab::LrSchedule>)]
    pub lr_schedule: Option<String>,
    /// Weight decay (≥ 0; default AdamW 0.05, SGD 5e-4, detection 5e-4).
    #[schema(minimum = 0, maximum = 1)]
    pub weight_decay: Option<f64>,
    /// SGD momentum in [0, 1) (default 0.9 with Nesterov).
    #[schema(minimum = 0, exclusive_maximum = 1)]
    pub momentum: Option<f64>,
    /// Linear warm-up in epochs (≥ 0; default 5 % of the epochs, 10 % for detection).
    #[schema(minimum = 0, maximum = 100)]
    pub warmup_epochs: Option<f64>,
    /// Stop after this many epochs without `val_loss` improvement; the best epoch's weights are
    /// exported (default max(3, epochs/4); 0 switches early stopping off).
    #[schema(minimum = 0, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::int::option")]
    pub early_stopping_patience: Option<i64>,
    /// Fraction of training images held out when the dataset has no `val` split, in [0, 0.9].
    #[schema(minimum = 0, maximum = 0.9)]
    pub val_fraction: Option<f64>,
    /// Seed of initialisation, shuffling and augmentation.
    #[serde(default, deserialize_with = "crate::int::option")]
    pub seed: Option<u64>,
    /// `false` switches every training augmentation off (a setting below still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<bool>,
    /// Probability of a horizontal flip in [0, 1] (default 0 for images under 48 px, which are
    /// often glyphs whose mirror image is another class; 0.25 above; 0.5 for detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub hflip_probability: Option<f64>,
    /// Classification: smallest random crop as a fraction of the image area, in (0, 1]; 1 turns
    /// the crop off (default 0.85 under 48 px, 0.65 or 0.5 to 128 px, 0.5 above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub crop_min_scale: Option<f64>,
    /// Largest random shift as a fraction of the input side, in [0, 0.5] (default 0.0625 for
    /// images under 48 px, 0.125 with fewer than 100 per class, else 0; detection 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 0.5)]
    pub translate: Option<f64>,
    /// Classification: largest random rotation in degrees either way, in [0, 180] (default 10
    /// for images under 48 px, which are often hand-drawn; else 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 180)]
    pub rotate_degrees: Option<f64>,
    /// Classification: label smoothing of the training loss in [0, 1) (default 0.1 from scratch,
    /// 0 for detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, exclusive_maximum = 1)]
    pub label_smoothing: Option<f64>,
    /// Detection: probability of a 4-image mosaic in [0, 1] (default 1 when the median box covers
    /// under 20 % of its image, else 0; closed for the last fifth of the epochs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub mosaic: Option<f64>,
    /// Detection: scale jitter in [0, 1), the scale drawn from [1 − s, 1 + s] (default 0.5 from
    /// 320 px, 0.25 below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, exclusive_maximum = 1)]
    pub scale_jitter: Option<f64>,
}

/// What to train.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// `classification` (and, as models land, `detection`, `segmentation`).
    #[schema(value_type = crate::vocab::TaskType)]
    pub task_type: String,
    /// A model id of `GET /models` serving `task_type`.
    #[schema(value_type = crate::vocab::ModelName)]
    pub model: String,
    /// A ready dataset of the caller.
    pub dataset_id: String,
    /// Training hyper-parameters.
    #[serde(default)]
    pub hyperparameters: Hyperparameters,
}

/// `POST /workflows` request.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkflowRequest {
    /// Display name, 1–200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Free text, up to 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Project of the caller to file it under.
    #[serde(default)]
    pub project_id: Option<String>,
    /// What to train.
    pub config: WorkflowConfig,
}

/// `POST /workflows` response (201).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct CreateWorkflowResponse {
    /// `wf_…` id.
    pub workflow_id: String,
    /// Display name.
    pub name: String,
    /// `pending`.
    pub status: String,
    /// Submission time.
    pub created_at: String,
    /// Expected training time from measured throughput of the model on the worker device.
    pub estimated_duration_minutes: f64,
    /// 1-based position among all queued training jobs (0 when a worker already took it).
    pub queue_position: i64,
}

/// A workflow in listings.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct WorkflowSummary {
    /// `wf_…` id.
    pub workflow_id: String,
    /// Display name.
    pub name: String,
    /// `pending`, `training`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Percent done (0–100).
    pub progress: u32,
    /// Submission time.
    pub created_at: String,
    /// First start of training.
    pub started_at: Option<String>,
}

/// `GET /workflows` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct WorkflowListResponse {
    /// This page.
    pub workflows: Vec<WorkflowSummary>,
    /// All matching workflows.
    pub total: i64,
    /// Page number.
    pub page: u32,
    /// Page size.
    pub limit: u32,
    /// Whether a next page exists.
    pub has_next: bool,
}

/// `GET /workflows` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkflowListQuery {
    /// Only workflows in this status.
    #[param(value_type = Option<crate::vocab::WorkflowStatus>)]
    pub status: Option<String>,
    /// 1-based page (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Page size (default 20, at most 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `created_at` or `-created_at` (default).
    #[param(value_type = Option<crate::vocab::WorkflowSort>)]
    pub sort: Option<String>,
}

/// Progress of a workflow.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct WorkflowProgressView {
    /// Last finished epoch.
    pub current_epoch: i64,
    /// Epochs of the run.
    pub total_epochs: i64,
    /// Percent done (by optimisation steps once training started).
    pub percentage: u32,
}

/// `GET /workflows/{id}` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct WorkflowDetail {
    /// `wf_…` id.
    pub workflow_id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Status.
    pub status: String,
    /// Progress.
    pub progress: WorkflowProgressView,
    /// Latest metrics (`loss`, `accuracy`, `val_loss`, `val_accuracy`, …).
    #[schema(value_type = Object)]
    pub metrics: Map<String, Value>,
    /// The compute really used: device, backend, threads, memory (null until started).
    #[schema(value_type = Option<Object>)]
    pub resources: Option<Value>,
    /// Submission time.
    pub created_at: String,
    /// First start of training.
    pub started_at: Option<String>,
    /// When it completed or failed.
    pub completed_at: Option<String>,
    /// Expected end while training.
    pub estimated_completion_at: Option<String>,
    /// Task type.
    pub task_type: String,
    /// Model id.
    pub model: String,
    /// Dataset trained on.
    pub dataset_id: String,
    /// Position in the queue while pending.
    pub queue_position: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<String>,
    /// The effective training configuration.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// `GET /workflows/{id}/metrics` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// Comma-separated metric names (default: all).
    pub metric: Option<String>,
    /// Only points recorded at or after this RFC 3339 time.
    #[param(format = DateTime)]
    pub start_time: Option<String>,
}

/// `GET /workflows/{id}/metrics` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct MetricsResponse {
    /// `wf_…` id.
    pub workflow_id: String,
    /// One object per recorded epoch: `timestamp`, `epoch`, `step` and the metric values.
    #[schema(value_type = Vec<Object>)]
    pub metrics: Vec<Map<String, Value>>,
}

/// `GET /workflows/{id}/logs` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Last lines to return (default 100, at most 10000).
    #[param(minimum = 1, maximum = 10000)]
    pub tail: Option<u32>,
}

/// One log line.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct LogLineView {
    /// When.
    pub timestamp: String,
    /// `INFO`, `WARN` or `ERROR`.
    pub level: String,
    /// Text.
    pub message: String,
}

/// `GET /workflows/{id}/logs` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct LogsResponse {
    /// `wf_…` id.
    pub workflow_id: String,
    /// The last lines, oldest first.
    pub logs: Vec<LogLineView>,
    /// Lines logged in total.
    pub total_lines: i64,
}

/// `DELETE /workflows/{id}` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct CancelWorkflowResponse {
    /// `wf_…` id.
    pub workflow_id: String,
    /// `cancelled`.
    pub status: String,
    /// When.
    pub cancelled_at: String,
}

/// A live message on `/ws/workflows/{id}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct WorkflowEvent {
    /// `training_progress`, `checkpoint_saved`, `training_complete` or `training_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `wf_…` id.
    pub workflow_id: String,
    /// When it happened.
    pub timestamp: String,
    /// Type-specific payload.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// `POST /internal/orchestrator/create-workflow` request.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrchestratorCreateRequest {
    /// Workflow name, 1–200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub experiment_name: String,
    /// Owner.
    pub user_id: String,
    /// What to train (same shape as `config` of `POST /workflows`).
    pub training_config: WorkflowConfig,
}

/// `POST /internal/models/prepare` request.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareModelRequest {
    /// Catalogue model id.
    #[schema(value_type = crate::vocab::ModelName)]
    pub model_name: String,
    /// Task type the model serves.
    #[schema(value_type = crate::vocab::TaskType)]
    pub task_type: String,
    /// `num_classes` (default 1000) and `image_size` (default: the model's).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
}

/// `POST /internal/models/prepare` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct PrepareModelResponse {
    /// Catalogue model id.
    pub model_name: String,
    /// Task type.
    pub task_type: String,
    /// Parameters of the instantiated model.
    pub parameters: u64,
    /// Classes of its head.
    pub num_classes: usize,
    /// Input side in pixels.
    pub input_size: usize,
    /// Device it was built on.
    pub device: String,
    /// Always `ready` (the model was instantiated).
    pub status: String,
}
