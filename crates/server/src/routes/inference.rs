//! `/inference/{workflow_id}/predict` and `/inference/{workflow_id}/batch[/{job_id}]`.

use crate::error::ApiResult;
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;
use api_types::error::ErrorResponse;
use api_types::inference::{
    BatchAccepted, BatchRequest, BatchStatusView, PredictRequest, PredictResponse,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// Classifies one image (`image_url` or `image_base64`) with a completed workflow's model.
#[utoipa::path(post, path = "/api/v1/inference/{workflow_id}/predict", tag = "inference", security(("bearer" = [])),
    params(("workflow_id" = String, Path)), request_body = PredictRequest,
    responses((status = 200, body = PredictResponse), (status = 400, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
              (status = 413, body = ErrorResponse)))]
pub async fn predict(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(workflow_id): Path<String>,
    ApiJson(body): ApiJson<PredictRequest>,
) -> ApiResult<Json<PredictResponse>> {
    Ok(Json(
        app::inference::predict(&state.app, &caller, &workflow_id, body).await?,
    ))
}

/// Queues a batch of images (durable job); poll its results.
#[utoipa::path(post, path = "/api/v1/inference/{workflow_id}/batch", tag = "inference", security(("bearer" = [])),
    params(("workflow_id" = String, Path)), request_body = BatchRequest,
    responses((status = 202, body = BatchAccepted), (status = 404, body = ErrorResponse),
              (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn batch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(workflow_id): Path<String>,
    ApiJson(body): ApiJson<BatchRequest>,
) -> ApiResult<(StatusCode, Json<BatchAccepted>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(app::batches::submit(&state.app, &caller, &workflow_id, body).await?),
    ))
}

/// A batch's status and per-image results.
#[utoipa::path(get, path = "/api/v1/inference/{workflow_id}/batch/{job_id}", tag = "inference", security(("bearer" = [])),
    params(("workflow_id" = String, Path), ("job_id" = String, Path)),
    responses((status = 200, body = BatchStatusView), (status = 404, body = ErrorResponse)))]
pub async fn batch_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((workflow_id, job_id)): Path<(String, String)>,
) -> ApiResult<Json<BatchStatusView>> {
    Ok(Json(
        app::batches::get(&state.app, &caller, &workflow_id, &job_id).await?,
    ))
}
