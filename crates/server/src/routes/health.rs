//! `/health` and `/metrics`.

use crate::state::AppState;
use api_types::health::HealthResponse;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// Liveness and readiness: 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let database = state.app.database_ok().await;
    let status = if database.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if let Err(e) = &database {
        tracing::error!(error = %e, "health check: database unavailable");
    }
    let body = HealthResponse {
        status: if database.is_ok() { "ok" } else { "degraded" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        database: if database.is_ok() {
            "ok"
        } else {
            "unavailable"
        }
        .into(),
        database_backend: state.app.store.backend().into(),
        objects_backend: state.app.objects.backend().into(),
        rate_limit_backend: state.app.limiter.backend().into(),
    };
    (status, Json(body))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
