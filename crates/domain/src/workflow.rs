//! Training workflows: a named training run of one model on one dataset, executed as a job.

use chrono::{DateTime, Utc};

/// State of a workflow as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowStatus {
    /// Waiting in the queue (also while the plan's concurrency limit holds it back).
    Pending,
    /// A worker is training it.
    Training,
    /// Finished; the model is stored.
    Completed,
    /// Ended with an error.
    Failed,
    /// Stopped by its owner.
    Cancelled,
}

impl WorkflowStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [WorkflowStatus; 5] = [
        WorkflowStatus::Pending,
        WorkflowStatus::Training,
        WorkflowStatus::Completed,
        WorkflowStatus::Failed,
        WorkflowStatus::Cancelled,
    ];

    /// Lowercase name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Pending => "pending",
            WorkflowStatus::Training => "training",
            WorkflowStatus::Completed => "completed",
            WorkflowStatus::Failed => "failed",
            WorkflowStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the workflow can no longer change.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            WorkflowStatus::Completed | WorkflowStatus::Failed | WorkflowStatus::Cancelled
        )
    }
}

/// A training workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// `wf_…` id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Project it belongs to, if any.
    pub project_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `classification`, `detection`, …
    pub task_type: String,
    /// Catalogue model id.
    pub model: String,
    /// Dataset trained on.
    pub dataset_id: String,
    /// The normalised training configuration (JSON).
    pub config: String,
    /// State.
    pub status: WorkflowStatus,
    /// Last finished epoch (0 before the first).
    pub current_epoch: i64,
    /// Epochs of the run.
    pub total_epochs: i64,
    /// Optimisation steps done.
    pub step: i64,
    /// Steps of the whole run (0 until training starts).
    pub total_steps: i64,
    /// Latest metrics (JSON object), if any.
    pub metrics: Option<String>,
    /// The compute really used (JSON object), once training started.
    pub resources: Option<String>,
    /// Estimated run time in seconds (at submission; refined while training).
    pub estimated_seconds: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// Epoch whose weights form the final model.
    pub exported_epoch: Option<i64>,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When training first started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed or failed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// One point of a workflow's metric history.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// When it was recorded.
    pub timestamp: DateTime<Utc>,
    /// 1-based epoch.
    pub epoch: i64,
    /// Global optimisation step.
    pub step: i64,
    /// Metric values (JSON object of numbers).
    pub values: String,
}

/// One line of a workflow's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When it was written.
    pub timestamp: DateTime<Utc>,
    /// `INFO`, `WARN`, `ERROR`.
    pub level: String,
    /// The text.
    pub message: String,
}
