//! The platform error envelope: every error response is
//! `{"error":{"code","message","details","request_id"}}` with the spec's codes.

use crate::context::current_request_id;
use api_types::error::{ErrorBody, ErrorResponse};
use app::AppError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    retry_after: Option<i64>,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        details: Value,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details,
            retry_after: None,
        }
    }

    /// 400 `INVALID_REQUEST`.
    pub fn invalid_request(message: impl Into<String>, details: Value) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message, details)
    }

    /// 405 `METHOD_NOT_ALLOWED`.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("Method {method} is not allowed on {path}"),
            json!({ "method": method, "path": path }),
        )
    }

    /// 500 `INTERNAL_ERROR`; the cause is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal server error",
            json!({}),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let message = error.to_string();
        let (status, code, details) = match &error {
            AppError::InvalidRequest { details, .. } => {
                (StatusCode::BAD_REQUEST, "INVALID_REQUEST", details.clone())
            }
            AppError::Unauthorized { details, .. } => {
                (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", details.clone())
            }
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN", json!({})),
            AppError::NotFound { resource, id } => (
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                json!({ "resource": resource, "id": id }),
            ),
            AppError::Conflict { details, .. } => {
                (StatusCode::CONFLICT, "CONFLICT", details.clone())
            }
            AppError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
                json!({ "errors": errors }),
            ),
            AppError::RateLimited { limit, reset_at } => {
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMIT_EXCEEDED",
                    message,
                    json!({ "limit": limit, "reset_at": api_types::time::rfc3339(*reset_at) }),
                );
                e.retry_after = Some((*reset_at - chrono::Utc::now()).num_seconds().max(1));
                return e;
            }
            AppError::PayloadTooLarge { limit_bytes } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                json!({ "limit_bytes": limit_bytes }),
            ),
            AppError::InsufficientCredits { required, balance } => (
                StatusCode::PAYMENT_REQUIRED,
                "INSUFFICIENT_CREDITS",
                json!({ "required": required, "balance": balance }),
            ),
            AppError::ModelNotLoaded(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "MODEL_NOT_LOADED",
                json!({}),
            ),
            AppError::InferenceFailed(cause) => {
                tracing::error!(%cause, "inference failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INFERENCE_FAILED",
                    json!({}),
                )
            }
            AppError::Unavailable(cause) => {
                tracing::error!(%cause, "service unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "Service temporarily unavailable",
                    json!({}),
                );
            }
            AppError::Internal(cause) => return Self::internal(cause),
        };
        Self::new(status, code, message, details)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
                request_id: current_request_id(),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
