//! `/internal/*`: service-to-service calls guarded by `X-Internal-Auth`. Mounted only when
//! `internal.token` is configured.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use api_types::error::ErrorResponse;
use api_types::workflows::{
    CreateWorkflowResponse, OrchestratorCreateRequest, PrepareModelRequest, PrepareModelResponse,
};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

/// Rejects calls without the configured `X-Internal-Auth` token (401).
pub async fn require_internal_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get("x-internal-auth")
        .and_then(|v| v.to_str().ok());
    app::internal::check_token(&state.app, presented)?;
    Ok(next.run(request).await)
}

/// Creates a workflow on behalf of a user (the chat/orchestration service).
#[utoipa::path(post, path = "/internal/orchestrator/create-workflow", tag = "internal",
    request_body = OrchestratorCreateRequest,
    params(("X-Internal-Auth" = String, Header)),
    responses((status = 201, body = CreateWorkflowResponse), (status = 401, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn create_workflow(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OrchestratorCreateRequest>,
) -> ApiResult<(StatusCode, Json<CreateWorkflowResponse>)> {
    Ok((
        StatusCode::CREATED,
        Json(app::internal::create_workflow(&state.app, body).await?),
    ))
}

/// Instantiates a catalogue model (checks it builds; counts its parameters).
#[utoipa::path(post, path = "/internal/models/prepare", tag = "internal",
    request_body = PrepareModelRequest,
    params(("X-Internal-Auth" = String, Header)),
    responses((status = 200, body = PrepareModelResponse), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn prepare_model(
    ApiJson(body): ApiJson<PrepareModelRequest>,
) -> ApiResult<Json<PrepareModelResponse>> {
    Ok(Json(app::internal::prepare_model(body).await?))
}
