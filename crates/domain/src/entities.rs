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
