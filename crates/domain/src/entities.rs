//! Entities stored by the platform.

use crate::plan::Plan;
use chrono::{DateTime, Utc};

/// A user account.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `user_…` id.
    pub id: String,
    /// Normalised (trimmed, lower-case) e-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Subscription plan.
    pub plan: Plan,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Resource usage of one user.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// Compute seconds used by the user's jobs, whatever the device.
    pub compute_seconds: f64,
    /// Bytes of object storage held by the user's datasets, models and images.
    pub storage_bytes: i64,
}

/// A project grouping a user's datasets and workflows.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// `proj_…` id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Name, unique per user.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Workflows in the project.
    pub workflow_count: i64,
    /// Datasets in the project.
    pub dataset_count: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Processing state of an uploaded dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetStatus {
    /// Uploaded; the ingest job has not finished.
    Processing,
    /// Unpacked, checked and usable for training.
    Ready,
    /// The archive could not be used; see the dataset's error.
    Failed,
}

impl DatasetStatus {
    /// Lowercase name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            DatasetStatus::Processing => "processing",
            DatasetStatus::Ready => "ready",
            DatasetStatus::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Processing, Self::Ready, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// An uploaded dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `ds_…` id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Project it belongs to, if any.
    pub project_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Archive format (`coco`, `yolo`, `voc`, `imagefolder`; `auto` until detected).
    pub format: String,
    /// Processing state.
    pub status: DatasetStatus,
    /// Bytes of the uploaded archive.
    pub size_bytes: i64,
    /// Images in the dataset (0 until processed).
    pub file_count: i64,
    /// Statistics JSON once ready.
    pub statistics: Option<String>,
    /// Ingest report JSON (problems found while reading) once processed.
    pub report: Option<String>,
    /// Why processing failed.
    pub error: Option<String>,
    /// Upload time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// State of a background job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// Claimed by a worker holding a lease.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error (or gave up after its attempts).
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobStatus {
    /// Lowercase name used in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A unit of background work, claimed by workers with a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// `job_…` id.
    pub id: String,
    /// What to do (`dataset_ingest`, `training`, …).
    pub kind: String,
    /// Owner of the work.
    pub user_id: String,
    /// The entity worked on (`ds_…`, `wf_…`).
    pub subject_id: String,
    /// Kind-specific JSON.
    pub payload: String,
    /// State.
    pub status: JobStatus,
    /// Claims so far (a crash mid-run counts).
    pub attempts: i64,
    /// Claims allowed before giving up.
    pub max_attempts: i64,
    /// Last failure message.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}
