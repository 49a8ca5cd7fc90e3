//! `/chat/message` and `/chat/sessions/{session_id}`.

use crate::error::ApiResult;
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;
use api_types::chat::{ChatMessageRequest, ChatSessionView};
use api_types::error::ErrorResponse;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

/// Sends a message; the reply asks for what is missing (`clarification_needed`) or returns the
/// training configuration (`intent_complete`). "start training" creates the workflow.
#[utoipa::path(post, path = "/api/v1/chat/message", tag = "chat", security(("bearer" = [])),
    request_body = ChatMessageRequest,
    responses((status = 200, description = "clarification_needed or intent_complete, with session_id", body = Object),
              (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn message(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<ChatMessageRequest>,
) -> ApiResult<Json<Value>> {
    Ok(Json(app::chat::message(&state.app, &caller, body).await?))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/chat/sessions/{session_id}", tag = "chat", security(("bearer" = [])),
    params(("session_id" = String, Path)),
    responses((status = 200, body = ChatSessionView), (status = 404, body = ErrorResponse)))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(session_id): Path<String>,
) -> ApiResult<Json<ChatSessionView>> {
    Ok(Json(
        app::chat::get(&state.app, &caller, &session_id).await?,
    ))
}

/// Deletes a conversation.
#[utoipa::path(delete, path = "/api/v1/chat/sessions/{session_id}", tag = "chat", security(("bearer" = [])),
    params(("session_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    app::chat::delete(&state.app, &caller, &session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
