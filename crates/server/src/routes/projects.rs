//! `/projects` and `/projects/{project_id}`.

use crate::error::ApiResult;
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;
use api_types::error::ErrorResponse;
use api_types::projects::{
    CreateProjectRequest, ProjectListResponse, ProjectResponse, UpdateProjectRequest,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// The caller's projects.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    responses((status = 200, body = ProjectListResponse), (status = 401, body = ErrorResponse)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<ProjectListResponse>> {
    Ok(Json(app::projects::list(&state.app, &caller).await?))
}

/// Creates a project.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    request_body = CreateProjectRequest,
    responses((status = 201, body = ProjectResponse), (status = 409, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CreateProjectRequest>,
) -> ApiResult<(StatusCode, Json<ProjectResponse>)> {
    Ok((
        StatusCode::CREATED,
        Json(app::projects::create(&state.app, &caller, body).await?),
    ))
}

/// One project.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}", tag = "projects", security(("bearer" = [])),
    params(("project_id" = String, Path)),
    responses((status = 200, body = ProjectResponse), (status = 404, body = ErrorResponse)))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(project_id): Path<String>,
) -> ApiResult<Json<ProjectResponse>> {
    Ok(Json(
        app::projects::get(&state.app, &caller, &project_id).await?,
    ))
}

/// Renames or re-describes a project.
#[utoipa::path(patch, path = "/api/v1/projects/{project_id}", tag = "projects", security(("bearer" = [])),
    params(("project_id" = String, Path)), request_body = UpdateProjectRequest,
    responses((status = 200, body = ProjectResponse), (status = 404, body = ErrorResponse),
              (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(project_id): Path<String>,
    ApiJson(body): ApiJson<UpdateProjectRequest>,
) -> ApiResult<Json<ProjectResponse>> {
    Ok(Json(
        app::projects::update(&state.app, &caller, &project_id, body).await?,
    ))
}

/// Deletes a project; its datasets and workflows are kept outside any project.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}", tag = "projects", security(("bearer" = [])),
    params(("project_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(project_id): Path<String>,
) -> ApiResult<StatusCode> {
    app::projects::delete(&state.app, &caller, &project_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
