//! `/user/profile` response.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The caller's profile.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ProfileResponse {
    /// `user_…` id.
    pub user_id: String,
    /// E-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Plan.
    pub plan: String,
    /// Creation time.
    pub created_at: String,
    /// Segmentation credits left (one per prompt).
    pub credits: i64,
    /// Usage against the plan's limits.
    pub usage: UsageResponse,
}

/// Usage figures of a profile.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct UsageResponse {
    /// Compute hours used by the user's jobs (whatever the device).
    pub gpu_hours_used: f64,
    /// Compute hours the plan allows.
    pub gpu_hours_limit: u32,
    /// Object storage used, GB.
    pub storage_gb_used: f64,
    /// Object storage the plan allows, GB.
    pub storage_gb_limit: u32,
}
