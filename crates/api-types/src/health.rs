//! `/health` response.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Liveness and readiness of the server.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` or `degraded`.
    pub status: String,
    /// Server version.
    pub version: String,
    /// `ok` or the database error.
    pub database: String,
    /// Database backend (`sqlite`, `postgres`).
    pub database_backend: String,
    /// Object store backend (`filesystem`, `s3`).
    pub objects_backend: String,
    /// Rate-limit counter backend (`memory`, `redis`).
    pub rate_limit_backend: String,
}
