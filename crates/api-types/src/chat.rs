//! `/chat` bodies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `POST /chat/message` request.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessageRequest {
    /// Session to continue; a new `sess_…` is created when absent.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The user's message (Korean, English or both), 1–4000 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub message: String,
    /// Client context (accepted, currently unused).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
}

/// One message of a session.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ChatMessageView {
    /// `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
    /// When.
    pub timestamp: String,
}

/// `GET /chat/sessions/{id}` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ChatSessionView {
    /// `sess_…` id.
    pub session_id: String,
    /// First message.
    pub created_at: String,
    /// Last message.
    pub updated_at: String,
    /// The conversation.
    pub messages: Vec<ChatMessageView>,
    /// `active`, or `completed` once a workflow was started from it.
    pub status: String,
    /// Workflow started from this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}
