//! The segmentation edge API's envelope: every response, success or error, is
//! `{success, data, error, meta{request_id, timestamp}}`, with the segmentation spec's codes.

use crate::context::current_request_id;
use crate::extract::parse_json;
use crate::state::AppState;
use api_types::segmentation::{Envelope, EnvelopeError, EnvelopeMeta};
use app::AppError;
use app::auth::Principal;
use app::ratelimit::{Decision, Window};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn meta() -> EnvelopeMeta {
    EnvelopeMeta {
        request_id: current_request_id().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// A successful edge response with its status.
#[derive(Debug)]
pub struct EdgeOk<T>(pub StatusCode, pub T);

impl<T: Serialize> IntoResponse for EdgeOk<T> {
    fn into_response(self) -> Response {
        let body = Envelope {
            success: true,
            data: Some(self.1),
            error: None,
            meta: meta(),
        };
        (self.0, axum::Json(body)).into_response()
    }
}

/// An edge error on its way to the client.
#[derive(Debug)]
pub struct EdgeError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<i64>,
}

impl EdgeError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `INVALID_REQUEST`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// 413 `FILE_TOO_LARGE`.
    pub fn too_large(limit_bytes: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "FILE_TOO_LARGE",
            format!("The file exceeds {limit_bytes} bytes"),
        )
    }
}

/// Status, code and message of an [`AppError`] in the segmentation API's terms; shared with
/// the backend API, which reports them without the envelope. Causes of 5xx are logged here
/// and never sent.
pub fn classify(error: AppError) -> (StatusCode, &'static str, String) {
    let message = error.to_string();
    match error {
        AppError::InvalidRequest { details, .. } => {
            let reason = details.get("reason").and_then(|r| r.as_str());
            let message = reason.map_or(message.clone(), |r| format!("{message}: {r}"));
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
        }
        AppError::Validation(errors) => {
            let fields: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                fields.join("; "),
            )
        }
        AppError::Conflict { .. } => (StatusCode::BAD_REQUEST, "INVALID_REQUEST", message),
        AppError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "AUTH_INVALID", message),
        AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN", message),
        AppError::NotFound { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND", message),
        AppError::PayloadTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "FILE_TOO_LARGE", message)
        }
        AppError::InsufficientCredits { .. } => (
            StatusCode::PAYMENT_REQUIRED,
            "INSUFFICIENT_CREDITS",
            message,
        ),
        AppError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message),
        AppError::ModelNotLoaded(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "MODEL_NOT_LOADED", message)
        }
        AppError::InferenceFailed(cause) => {
            tracing::error!(%cause, "inference failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INFERENCE_FAILED",
                message,
            )
        }
        AppError::Unavailable(cause) | AppError::Internal(cause) => {
            tracing::error!(%cause, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "Internal server error".to_owned(),
            )
        }
    }
}

impl From<AppError> for EdgeError {
    fn from(error: AppError) -> Self {
        let retry_after = match &error {
            AppError::RateLimited { reset_at, .. } => {
                Some((*reset_at - chrono::Utc::now()).num_seconds().max(1))
            }
            _ => None,
        };
        let (status, code, message) = classify(error);
        Self {
            status,
            code,
            message,
            retry_after,
        }
    }
}

impl IntoResponse for EdgeError {
    fn into_response(self) -> Response {
        let body: Envelope<()> = Envelope {
            success: false,
            data: None,
            error: Some(EnvelopeError {
                code: self.code.to_owned(),
                message: self.message,
            }),
            meta: meta(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Result type of edge handlers.
pub type EdgeResult<T> = Result<EdgeOk<T>, EdgeError>;

/// The spec's route groups, each with its own per-minute limit per plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    /// `POST /upload`.
    Upload,
    /// `POST /segment`.
    Segment,
    /// `GET /tasks/*`, `GET /results*`.
    Results,
}

impl RouteGroup {
    fn window(self, principal: &Principal) -> Window {
        let limits = principal.plan.limits();
        Window::per_minute(match self {
            RouteGroup::Upload => limits.seg_upload_per_minute,
            RouteGroup::Segment => limits.seg_segment_per_minute,
            RouteGroup::Results => limits.seg_results_per_minute,
        })
    }

    fn name(self) -> &'static str {
        match self {
            RouteGroup::Upload => "upload",
            RouteGroup::Segment => "segment",
            RouteGroup::Results => "results",
        }
    }
}

/// Middleware of the edge routes: bearer token (`AUTH_REQUIRED` when absent, `AUTH_INVALID`
/// when bad or expired), then the route group's rate limit (`RATE_LIMITED`).
pub async fn require_auth(
    State((state, group)): State<(AppState, RouteGroup)>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return EdgeError::new(
            StatusCode::UNAUTHORIZED,
            "AUTH_REQUIRED",
            "Missing bearer token",
        )
        .into_response();
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .unwrap_or_default();
    let principal = match app::auth::authenticate(&state.app, &token) {
        Ok(principal) => principal,
        Err(e) => return EdgeError::from(e).into_response(),
    };
    let decision = if state.app.settings.rate_limit.enabled {
        let key = format!("seg:{}:{}", group.name(), principal.user_id);
        Some(
            state
                .app
                .limiter
                .hit(&key, &[group.window(&principal)])
                .await,
        )
    } else {
        None
    };
    request.extensions_mut().insert(principal);
    let mut response = match decision.map(Decision::into_result) {
        Some(Err(refused)) => EdgeError::from(refused).into_response(),
        _ => next.run(request).await,
    };
    if let Some(decision) = decision {
        crate::guard::add_rate_limit_headers(response.headers_mut(), &decision);
    }
    response
}

/// The authenticated caller of an edge route.
#[derive(Debug, Clone)]
pub struct EdgeCaller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for EdgeCaller {
    type Rejection = EdgeError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(EdgeCaller)
            .ok_or_else(|| {
                EdgeError::new(
                    StatusCode::UNAUTHORIZED,
                    "AUTH_REQUIRED",
                    "Missing bearer token",
                )
            })
    }
}

/// Base URL of the links handed out: `server.public_url`, else from the `Host` header.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = EdgeError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let configured = state.app.settings.server.public_url.trim_end_matches('/');
        if !configured.is_empty() {
            return Ok(BaseUrl(configured.to_owned()));
        }
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| state.app.settings.server.bind.clone(), str::to_owned);
        Ok(BaseUrl(format!("http://{host}")))
    }
}

/// A JSON body of an edge route; anything malformed is a 400 `INVALID_REQUEST`.
#[derive(Debug)]
pub struct EdgeJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for EdgeJson<T> {
    type Rejection = EdgeError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if !is_json {
            return Err(EdgeError::invalid("Expected an application/json body"));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| EdgeError::invalid(format!("Cannot read the body: {}", e.body_text())))?;
        parse_json(&bytes).map(EdgeJson).map_err(EdgeError::from)
    }
}

/// An error in the envelope of the API `path` belongs to: the edge API's
/// `{success, data, error, meta}` (which has no details) or the platform's `{"error": …}`.
pub fn error_for_path(
    path: &str,
    status: StatusCode,
    code: &'static str,
    message: String,
    details: serde_json::Value,
) -> Response {
    if is_edge_path(path) {
        EdgeError::new(status, code, message).into_response()
    } else {
        crate::error::ApiError::new(status, code, message, details).into_response()
    }
}

/// Whether `path` belongs to the edge API (its request ids are UUIDs, as the spec says).
pub fn is_edge_path(path: &str) -> bool {
    ["upload", "segment", "tasks", "results", "files"]
        .iter()
        .any(|p| {
            path.strip_prefix("/api/v1/")
                .and_then(|rest| rest.strip_prefix(p))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_error_has_its_spec_code_and_5xx_causes_stay_private() {
        let cases = [
            (
                AppError::invalid_field("text_prompt", "empty"),
                400,
                "INVALID_REQUEST",
            ),
            (
                AppError::Validation(vec![app::FieldError::new("image_url", "missing")]),
                400,
                "INVALID_REQUEST",
            ),
            (AppError::unauthorized("expired"), 401, "AUTH_INVALID"),
            (AppError::Forbidden("no".into()), 403, "FORBIDDEN"),
            (AppError::not_found("task", "t"), 404, "NOT_FOUND"),
            (
                AppError::PayloadTooLarge { limit_bytes: 10 },
                413,
                "FILE_TOO_LARGE",
            ),
            (
                AppError::InsufficientCredits {
                    required: 1,
                    balance: 0,
                },
                402,
                "INSUFFICIENT_CREDITS",
            ),
            (
                AppError::RateLimited {
                    limit: 5,
                    reset_at: chrono::Utc::now(),
                },
                429,
                "RATE_LIMITED",
            ),
            (
                AppError::ModelNotLoaded("none".into()),
                503,
                "MODEL_NOT_LOADED",
            ),
            (
                AppError::InferenceFailed("NaN in layer 3".into()),
                500,
                "INFERENCE_FAILED",
            ),
            (
                AppError::Internal("disk /var full".into()),
                500,
                "INTERNAL_ERROR",
            ),
        ];
        for (error, status, code) in cases {
            let (s, c, message) = classify(error);
            assert_eq!((s.as_u16(), c), (status, code));
            assert!(
                !message.contains("NaN") && !message.contains("/var"),
                "{message}"
            );
        }
    }

    #[test]
    fn edge_paths() {
        for path in [
            "/api/v1/upload",
            "/api/v1/tasks/x",
            "/api/v1/results",
            "/api/v1/files/images/a",
        ] {
            assert!(is_edge_path(path), "{path}");
        }
        for path in [
            "/api/v1/uploads",
            "/api/v1/datasets/upload",
            "/api/v1/resultsx",
            "/upload",
        ] {
            assert!(!is_edge_path(path), "{path}");
        }
    }
}
