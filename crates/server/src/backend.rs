//! The segmentation backend API (`vision segment-backend`): SAM3 inference for the edge,
//! guarded by `X-API-Key`, plain JSON without the envelope (errors: `{detail, code}`).

use crate::envelope::classify;
use crate::extract::parse_json;
use crate::state::AppState;
use api_types::segmentation::{
    BackendBatchRequest, BackendBatchResponse, BackendError, BackendHealth, BackendPredictRequest,
    BackendPredictResponse, ModelInfoResponse,
};
use app::AppError;
use app::segmentation::backend;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

/// An error of the backend API.
#[derive(Debug)]
pub struct BackendFailure(AppError);

impl From<AppError> for BackendFailure {
    fn from(error: AppError) -> Self {
        Self(error)
    }
}

impl IntoResponse for BackendFailure {
    fn into_response(self) -> Response {
        let (status, code, detail) = classify(self.0);
        let body = BackendError {
            detail,
            code: code.to_owned(),
        };
        (status, Json(body)).into_response()
    }
}

type BackendResult<T> = Result<Json<T>, BackendFailure>;

fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BackendFailure> {
    parse_json(bytes).map_err(BackendFailure)
}

/// Rejects calls without the configured `X-API-Key` (401).
async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, BackendFailure> {
    let presented = request
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok());
    app::internal::check_secret(
        &state.app.settings.segmentation.api_key,
        presented,
        "X-API-Key",
    )?;
    Ok(next.run(request).await)
}

/// `GET /health` (no key needed).
async fn health(State(state): State<AppState>) -> Json<BackendHealth> {
    Json(backend::health(&state.app))
}

/// `POST /api/v1/predict`.
async fn predict(
    State(state): State<AppState>,
    bytes: Bytes,
) -> BackendResult<BackendPredictResponse> {
    let request: BackendPredictRequest = body(&bytes)?;
    Ok(Json(backend::predict(&state.app, request).await?))
}

/// `POST /api/v1/predict/batch`.
async fn predict_batch(
    State(state): State<AppState>,
    bytes: Bytes,
) -> BackendResult<BackendBatchResponse> {
    let request: BackendBatchRequest = body(&bytes)?;
    Ok(Json(backend::predict_batch(&state.app, request).await?))
}

/// `GET /api/v1/model/info`.
async fn model_info(State(state): State<AppState>) -> BackendResult<ModelInfoResponse> {
    Ok(Json(backend::model_info(&state.app)?))
}

async fn no_route() -> BackendFailure {
    BackendFailure(AppError::not_found("route", "this path"))
}

/// The backend API's router.
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/api/v1/predict", post(predict))
        .route("/api/v1/predict/batch", post(predict_batch))
        .route("/api/v1/model/info", get(model_info))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    Router::new()
        .route("/health", get(health))
        .merge(guarded)
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::context::request_context,
        ))
        .with_state(state)
}
