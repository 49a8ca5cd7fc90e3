//! `/user/profile`.

use crate::error::ApiResult;
use crate::extract::Caller;
use crate::state::AppState;
use api_types::error::ErrorResponse;
use api_types::users::ProfileResponse;
use axum::Json;
use axum::extract::State;

/// The caller's profile with plan and usage.
#[utoipa::path(get, path = "/api/v1/user/profile", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = ProfileResponse), (status = 401, body = ErrorResponse)))]
pub async fn profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<ProfileResponse>> {
    Ok(Json(app::users::profile(&state.app, &caller).await?))
}
