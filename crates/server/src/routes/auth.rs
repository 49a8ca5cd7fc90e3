//! `/auth/*`: tokens, refresh, registration, revocation.

use crate::error::ApiResult;
use crate::extract::{ApiJson, Caller, ClientAddr};
use crate::state::AppState;
use api_types::auth::{
    RefreshRequest, RefreshResponse, RegisterRequest, RegisterResponse, TokenRequest, TokenResponse,
};
use api_types::error::ErrorResponse;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// Exchanges e-mail and password for an access and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "Wrong e-mail or password", body = ErrorResponse),
              (status = 429, description = "Too many failed logins", body = ErrorResponse)))]
pub async fn token(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let pair = app::auth::login(&state.app, &body.email, body.password, &client).await?;
    Ok(Json(TokenResponse {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: "bearer".into(),
        expires_in: pair.expires_in,
    }))
}

/// Exchanges a refresh token (single use) for a new access token and a new refresh token.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = RefreshResponse),
              (status = 401, description = "Invalid, expired, used or revoked refresh token", body = ErrorResponse)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<RefreshResponse>> {
    let pair = app::auth::refresh(&state.app, &body.refresh_token).await?;
    Ok(Json(RefreshResponse {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: "bearer".into(),
        expires_in: pair.expires_in,
    }))
}

/// Creates an account on the server's default plan (when registration is enabled).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = RegisterResponse),
              (status = 403, description = "Registration disabled", body = ErrorResponse),
              (status = 409, description = "E-mail taken", body = ErrorResponse),
              (status = 422, body = ErrorResponse),
              (status = 429, description = "Too many registrations from this client", body = ErrorResponse)))]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<RegisterResponse>)> {
    let user =
        app::auth::register(&state.app, body.email, body.password, body.name, &client).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            user_id: user.id,
            email: user.email,
            name: user.name,
            plan: user.plan.to_string(),
        }),
    ))
}

/// Revokes one of the caller's refresh tokens (logout).
#[utoipa::path(post, path = "/api/v1/auth/revoke", tag = "auth", request_body = RefreshRequest,
    security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
pub async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    app::auth::revoke(&state.app, &caller, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
