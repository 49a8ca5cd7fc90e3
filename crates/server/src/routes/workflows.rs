//! `/workflows` and `/workflows/{workflow_id}/…`.

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, Caller};
use crate::state::AppState;
use api_types::error::ErrorResponse;
use api_types::workflows::{
    CancelWorkflowResponse, CreateWorkflowRequest, CreateWorkflowResponse, LogsQuery, LogsResponse,
    MetricsQuery, MetricsResponse, WorkflowDetail, WorkflowListQuery, WorkflowListResponse,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// Submits a training workflow.
#[utoipa::path(post, path = "/api/v1/workflows", tag = "workflows", security(("bearer" = [])),
    request_body = CreateWorkflowRequest,
    responses((status = 201, body = CreateWorkflowResponse), (status = 400, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CreateWorkflowRequest>,
) -> ApiResult<(StatusCode, Json<CreateWorkflowResponse>)> {
    Ok((
        StatusCode::CREATED,
        Json(app::workflows::create(&state.app, &caller, body).await?),
    ))
}

/// The caller's workflows.
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows", security(("bearer" = [])),
    params(WorkflowListQuery),
    responses((status = 200, body = WorkflowListResponse), (status = 422, body = ErrorResponse)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<WorkflowListQuery>,
) -> ApiResult<Json<WorkflowListResponse>> {
    let query = app::workflows::list_query(&query)?;
    Ok(Json(
        app::workflows::list(&state.app, &caller, query).await?,
    ))
}

/// One workflow: progress, latest metrics, resources, timestamps.
#[utoipa::path(get, path = "/api/v1/workflows/{workflow_id}", tag = "workflows", security(("bearer" = [])),
    params(("workflow_id" = String, Path)),
    responses((status = 200, body = WorkflowDetail), (status = 404, body = ErrorResponse)))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(workflow_id): Path<String>,
) -> ApiResult<Json<WorkflowDetail>> {
    Ok(Json(
        app::workflows::get(&state.app, &caller, &workflow_id).await?,
    ))
}

/// Metric history (per epoch).
#[utoipa::path(get, path = "/api/v1/workflows/{workflow_id}/metrics", tag = "workflows", security(("bearer" = [])),
    params(("workflow_id" = String, Path), MetricsQuery),
    responses((status = 200, body = MetricsResponse), (status = 400, body = ErrorResponse),
              (status = 404, body = ErrorResponse)))]
pub async fn metrics(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(workflow_id): Path<String>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> ApiResult<Json<MetricsResponse>> {
    Ok(Json(
        app::workflows::metrics(
            &state.app,
            &caller,
            &workflow_id,
            query.metric.as_deref(),
            query.start_time.as_deref(),
        )
        .await?,
    ))
}

/// The last log lines.
#[utoipa::path(get, path = "/api/v1/workflows/{workflow_id}/logs", tag = "workflows", security(("bearer" = [])),
    params(("workflow_id" = String, Path), LogsQuery),
    responses((status = 200, body = LogsResponse), (status = 404, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
pub async fn logs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(workflow_id): Path<String>,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> ApiResult<Json<LogsResponse>> {
    Ok(Json(
        app::workflows::logs(&state.app, &caller, &workflow_id, query.tail).await?,
    ))
}

/// Cancels a pending or training workflow (training stops within one step).
#[utoipa::path(delete, path = "/api/v1/workflows/{workflow_id}", tag = "workflows", security(("bearer" = [])),
    params(("workflow_id" = String, Path)),
    responses((status = 200, body = CancelWorkflowResponse), (status = 404, body = ErrorResponse),
              (status = 409, body = ErrorResponse)))]
pub async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(workflow_id): Path<String>,
) -> ApiResult<Json<CancelWorkflowResponse>> {
    Ok(Json(
        app::workflows::cancel(&state.app, &caller, &workflow_id).await?,
    ))
}
