//! `/api/v1/ws/workflows/{workflow_id}?token=…`: live training events of one workflow.
//!
//! Browsers cannot send headers on a WebSocket handshake, so the access token comes in the
//! query. A bad or expired token, or a workflow the caller does not own, closes the socket with
//! the policy-violation code (1008) right after the upgrade, where a browser can see it.

use crate::state::AppState;
use api_types::workflows::WorkflowEvent;
use app::events::BusMessage;
use app::workflows::event;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use domain::{Workflow, WorkflowStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

/// Largest message or frame a client may send.
const MAX_INCOMING_BYTES: usize = 16 * 1024;

/// Query of the WebSocket handshake.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Access token.
    pub token: Option<String>,
}

/// Upgrades to a WebSocket streaming the workflow's events.
pub async fn workflow_events(
    State(state): State<AppState>,
    Path(workflow_id): Path<String>,
    Query(query): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Clients only ever send pings and close frames: a small message limit keeps a thousand
    // sockets from each buffering axum's default 64 MiB.
    upgrade
        .max_message_size(MAX_INCOMING_BYTES)
        .max_frame_size(MAX_INCOMING_BYTES)
        .on_upgrade(move |socket| serve(socket, state, workflow_id, query.token))
}

async fn serve(mut socket: WebSocket, state: AppState, workflow_id: String, token: Option<String>) {
    let app = &state.app;
    let principal = match token.as_deref().map(|t| app::auth::authenticate(app, t)) {
        Some(Ok(principal)) => principal,
        Some(Err(e)) => return close(socket, close_code::POLICY, &e.to_string()).await,
        None => return close(socket, close_code::POLICY, "missing token").await,
    };
    // Subscribe before reading the state, so nothing between the two is missed.
    let mut bus = app.events.subscribe();
    let workflow = match app::workflows::owned(app, &principal, &workflow_id).await {
        Ok(workflow) => workflow,
        Err(_) => return close(socket, close_code::POLICY, "workflow not found").await,
    };
    if let Some(last) = snapshot(&workflow) {
        let done = is_final(&last);
        if send(&mut socket, &last).await.is_err() {
            return;
        }
        if done || workflow.status.is_terminal() {
            return close(socket, close_code::NORMAL, workflow.status.as_str()).await;
        }
    }
    loop {
        tokio::select! {
            message = bus.recv() => match message {
                Ok(BusMessage::Event(event)) if event.workflow_id == workflow_id => {
                    let done = is_final(&event);
                    if send(&mut socket, &event).await.is_err() {
                        return;
                    }
                    if done {
                        return close(socket, close_code::NORMAL, "finished").await;
                    }
                }
                Ok(BusMessage::Cancel { workflow_id: id }) if id == workflow_id => {
                    return close(socket, close_code::NORMAL, "cancelled").await;
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {} // pings are answered by axum; other input is ignored
            },
        }
    }
}

fn is_final(event: &WorkflowEvent) -> bool {
    matches!(event.kind.as_str(), "training_complete" | "training_error")
}

/// What a client joining now needs to know: the final event of a finished workflow, or the
/// current progress of a training one.
fn snapshot(w: &Workflow) -> Option<WorkflowEvent> {
    let metrics: Value = w
        .metrics
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_else(|| json!({}));
    match w.status {
        WorkflowStatus::Pending | WorkflowStatus::Cancelled => None,
        // Nothing reported yet: the first live event will follow shortly.
        WorkflowStatus::Training if w.resources.is_none() => None,
        WorkflowStatus::Training => Some(event(
            "training_progress",
            &w.id,
            json!({
                "epoch": w.current_epoch,
                "step": w.step,
                "total_steps": w.total_steps,
                "metrics": metrics,
                "eta_minutes": (w.estimated_seconds / 60.0 * 100.0).round() / 100.0,
                "gpu_utilization": Value::Null,
                "memory_usage_gb": w.resources.as_deref()
                    .and_then(|r| serde_json::from_str::<Value>(r).ok())
                    .and_then(|r| r.get("memory_gb").cloned()),
            }),
        )),
        WorkflowStatus::Completed => Some(event(
            "training_complete",
            &w.id,
            json!({
                "epochs_completed": w.current_epoch,
                "exported_epoch": w.exported_epoch,
                "model_version": w.exported_epoch.map(|e| format!("{}_epoch_{e}", w.id)),
                "metrics": metrics,
            }),
        )),
        WorkflowStatus::Failed => Some(event("training_error", &w.id, json!({ "error": w.error }))),
    }
}

async fn send(socket: &mut WebSocket, event: &WorkflowEvent) -> Result<(), axum::Error> {
    let text = serde_json::to_string(event).unwrap_or_default();
    socket.send(Message::Text(Utf8Bytes::from(text))).await
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    // Close reasons are limited to 123 bytes.
    let reason: String = reason.chars().take(100).collect();
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
