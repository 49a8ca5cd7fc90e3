//! Live workflow events: what workers publish and WebSocket clients receive.
//!
//! In one process (SQLite) a broadcast channel carries them. On PostgreSQL every message goes
//! through `LISTEN/NOTIFY`, so a client connected to any server replica sees the events of a
//! workflow trained by any worker, and a cancellation reaches the worker that trains it.

use crate::{AppError, AppResult};
use api_types::workflows::WorkflowEvent;
use serde::{Deserialize, Serialize};
use store::PgChannel;
use tokio::sync::broadcast;

/// Notification channel name on PostgreSQL.
const CHANNEL: &str = "vision_events";

/// Messages buffered per subscriber before the slowest one starts missing some.
const CAPACITY: usize = 1024;

/// What travels on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "bus", rename_all = "snake_case")]
pub enum BusMessage {
    /// A workflow event for WebSocket clients.
    Event(WorkflowEvent),
    /// The workflow was cancelled: its worker stops training.
    Cancel {
        /// `wf_…` id.
        workflow_id: String,
    },
}

impl BusMessage {
    /// The workflow the message is about.
    pub fn workflow_id(&self) -> &str {
        match self {
            BusMessage::Event(event) => &event.workflow_id,
            BusMessage::Cancel { workflow_id } => workflow_id,
        }
    }
}

/// Publishes to and subscribes on the event bus of the deployment.
#[derive(Debug)]
pub struct EventBus {
    local: broadcast::Sender<BusMessage>,
    remote: Option<PgChannel>,
}

impl EventBus {
    /// A bus inside this process only.
    pub fn in_process() -> Self {
        Self {
            local: broadcast::channel(CAPACITY).0,
            remote: None,
        }
    }

    /// A bus shared by every process on the PostgreSQL database at `url`.
    pub async fn postgres(url: &str) -> AppResult<Self> {
        let remote = PgChannel::connect(url, CHANNEL)
            .await
            .map_err(|e| AppError::Unavailable(format!("event channel: {e}")))?;
        let local = broadcast::channel(CAPACITY).0;
        let sender = local.clone();
        remote.spawn_listener(move |payload| {
            match serde_json::from_str::<BusMessage>(&payload) {
                Ok(message) => {
                    // No subscriber is fine: nobody is watching.
                    let _ = sender.send(message);
                }
                Err(e) => tracing::warn!(error = %e, "ignoring a malformed bus message"),
            }
        });
        Ok(Self {
            local,
            remote: Some(remote),
        })
    }

    /// Which transport carries the messages.
    pub fn backend(&self) -> &'static str {
        if self.remote.is_some() {
            "postgres"
        } else {
            "in-process"
        }
    }

    /// Sends `message` to every subscriber of every process. Failures are logged, not
    /// returned: live events are best effort (the database holds the truth).
    pub async fn publish(&self, message: BusMessage) {
        match &self.remote {
            Some(remote) => match serde_json::to_string(&message) {
                Ok(payload) if payload.len() <= store::channel::MAX_PAYLOAD => {
                    if let Err(e) = remote.publish(&payload).await {
                        tracing::warn!(error = %e, "cannot publish an event; delivering locally");
                        let _ = self.local.send(message);
                    }
                }
                Ok(payload) => {
                    tracing::warn!(
                        bytes = payload.len(),
                        "event too large for NOTIFY; local only"
                    );
                    let _ = self.local.send(message);
                }
                Err(e) => tracing::error!(error = %e, "cannot encode an event"),
            },
            None => {
                let _ = self.local.send(message);
            }
        }
    }

    /// A receiver of every message from now on (filter by [`BusMessage::workflow_id`]).
    pub fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.local.subscribe()
    }
}
