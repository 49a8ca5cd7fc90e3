//! `/inference/{workflow_id}/predict`.

use crate::error::ApiResult;
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;
use api_types::error::ErrorResponse;
use api_types::inference::{PredictRequest, PredictResponse};
use axum::Json;
use axum::extract::{Path, State};

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
