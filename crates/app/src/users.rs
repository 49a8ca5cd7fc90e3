//! The caller's profile and usage.

use crate::App;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use api_types::time::rfc3339;
use api_types::users::{ProfileResponse, UsageResponse};

const BYTES_PER_GB: f64 = 1_000_000_000.0;

/// Profile of the caller with usage against the plan's limits.
pub async fn profile(app: &App, principal: &Principal) -> AppResult<ProfileResponse> {
    let user = app
        .store
        .user_by_id(&principal.user_id)
        .await?
        .ok_or_else(|| AppError::unauthorized("Account no longer exists"))?;
    let usage = app.store.usage(&user.id).await?;
    let limits = user.plan.limits();
    let credits = app.store.credits(&user.id).await?;
    Ok(ProfileResponse {
        user_id: user.id,
        email: user.email,
        name: user.name,
        plan: user.plan.to_string(),
        created_at: rfc3339(user.created_at),
        credits,
        usage: UsageResponse {
            gpu_hours_used: round4(usage.compute_seconds / 3600.0),
            gpu_hours_limit: limits.compute_hours,
            storage_gb_used: round2(usage.storage_bytes.max(0) as f64 / BYTES_PER_GB),
            storage_gb_limit: limits.storage_gb,
        },
    })
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
