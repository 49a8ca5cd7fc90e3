//! The API guard: verifies the bearer token, counts the request against the plan's limits and
//! adds the `X-RateLimit-*` headers to the response.

use crate::error::ApiError;
use crate::state::AppState;
use app::AppError;
use app::ratelimit::Decision;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware for every authenticated route.
pub async fn require_auth(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = match bearer_token(request.headers()) {
        Ok(token) => token,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let principal = match app::auth::authenticate(&state.app, token) {
        Ok(principal) => principal,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let decision = state.app.count_request(&principal).await;
    request.extensions_mut().insert(principal);
    let mut response = match decision.map(Decision::into_result) {
        Some(Err(refused)) => ApiError::from(refused).into_response(),
        _ => next.run(request).await,
    };
    if let Some(decision) = decision {
        add_rate_limit_headers(response.headers_mut(), &decision);
    }
    response
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, AppError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| AppError::unauthorized("Missing bearer token"))?
        .to_str()
        .map_err(|_| AppError::unauthorized("Malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| AppError::unauthorized("Malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::unauthorized(
            "Authorization scheme must be Bearer",
        ));
    }
    Ok(token.trim())
}

/// Writes `X-RateLimit-Limit`, `-Remaining` and `-Reset` (Unix seconds).
pub fn add_rate_limit_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(decision.reset_unix));
}
