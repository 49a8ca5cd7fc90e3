//! Errors of the use-cases, mapped to HTTP in one place by the server.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// Field name (dotted path for nested fields).
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
    /// The offending value, when it helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl FieldError {
    /// A field error without the value.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            value: None,
        }
    }

    /// A field error echoing the offending value.
    pub fn with_value(field: impl Into<String>, message: impl Into<String>, value: Value) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            value: Some(value),
        }
    }
}

/// Why a use-case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or names something that does not exist in a registry.
    #[error("{message}")]
    InvalidRequest {
        /// Human-readable summary.
        message: String,
        /// Structured details.
        details: Value,
    },
    /// Missing, malformed, expired or wrongly signed credentials.
    #[error("{message}")]
    Unauthorized {
        /// Human-readable summary.
        message: String,
        /// Structured details (e.g. `expired_at`).
        details: Value,
    },
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource for this caller (also for other users' resources).
    #[error("{resource} '{id}' not found")]
    NotFound {
        /// Kind of resource.
        resource: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The change conflicts with existing state.
    #[error("{message}")]
    Conflict {
        /// Human-readable summary.
        message: String,
        /// Structured details.
        details: Value,
    },
    /// Fields failed validation.
    #[error("Request validation failed")]
    Validation(Vec<FieldError>),
    /// Too many requests in the current window.
    #[error("Rate limit exceeded")]
    RateLimited {
        /// The limit of the exhausted window.
        limit: u64,
        /// When the window resets.
        reset_at: DateTime<Utc>,
    },
    /// The body is larger than allowed.
    #[error("Payload too large: the limit is {limit_bytes} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit_bytes: u64,
    },
    /// The user's credit balance cannot pay for the request.
    #[error("Insufficient credits: {required} needed, {balance} left")]
    InsufficientCredits {
        /// Credits the request costs.
        required: i64,
        /// Credits the user has.
        balance: i64,
    },
    /// No model is loaded to serve the request.
    #[error("{0}")]
    ModelNotLoaded(String),
    /// The model failed on valid input; the cause is logged, never sent to clients.
    #[error("Inference failed")]
    InferenceFailed(String),
    /// A dependency is down or the service is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// An unexpected failure; the cause is logged, never sent to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A 401 with a message and no details.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        AppError::Unauthorized {
            message: message.into(),
            details: json!({}),
        }
    }

    /// A 400 naming the field at fault.
    pub fn invalid_field(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        AppError::InvalidRequest {
            message: format!("Invalid {field}"),
            details: json!({ "field": field, "reason": reason }),
        }
    }

    /// A 404 for `resource` `id`.
    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        AppError::NotFound {
            resource,
            id: id.into(),
        }
    }

    /// An internal error from any displayable cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }
}

impl From<store::StoreError> for AppError {
    fn from(error: store::StoreError) -> Self {
        match error {
            // The database's own words (constraint and table names) stay in the log.
            store::StoreError::Conflict(message) => {
                tracing::info!(reason = %message, "conflict");
                AppError::Conflict {
                    message: "Resource already exists".into(),
                    details: json!({}),
                }
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<objects::ObjectsError> for AppError {
    fn from(error: objects::ObjectsError) -> Self {
        AppError::Internal(error.to_string())
    }
}

/// Shorthand for use-case results.
pub type AppResult<T> = Result<T, AppError>;

/// Collects field errors and turns them into one [`AppError::Validation`].
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// Records `error` when `ok` is false.
    pub fn check(&mut self, ok: bool, error: impl FnOnce() -> FieldError) -> &mut Self {
        if !ok {
            self.errors.push(error());
        }
        self
    }

    /// Checks that `value` has at most `max` characters and, trimmed, at least `min` (the
    /// OpenAPI document says the same with `maxLength`, `minLength` and a not-blank pattern).
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> &mut Self {
        let ok = value.trim().chars().count() >= min && value.chars().count() <= max;
        self.check(ok, || {
            FieldError::new(field, format!("Must be between {min} and {max} characters"))
        })
    }

    /// `Ok` when nothing was recorded, the collected errors otherwise.
    pub fn finish(&mut self) -> AppResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(std::mem::take(&mut self.errors)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_words_do_not_reach_the_client() {
        let error = AppError::from(store::StoreError::Conflict(
            "UNIQUE constraint failed: users.email".into(),
        ));
        let AppError::Conflict { message, details } = error else {
            panic!("not a conflict: {error:?}");
        };
        let shown = format!("{message} {details}");
        assert!(
            !shown.contains("UNIQUE") && !shown.contains("users"),
            "{shown}"
        );
    }
}
