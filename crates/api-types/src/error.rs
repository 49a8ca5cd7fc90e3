//! The platform API's error envelope.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `{"error": {...}}`, the body of every platform API error.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorBody,
}

/// Contents of an error response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `VALIDATION_ERROR`.
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Structured details; `{}` when there are none.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Id of the request, also in the `X-Request-Id` header.
    #[schema(example = "req_abc123")]
    pub request_id: Option<String>,
}
