//! A WebSocket client for the live workflow events.

use crate::TestApp;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// An open WebSocket to the server.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a socket delivered until it closed.
#[derive(Debug, Default)]
pub struct Received {
    /// JSON messages in order.
    pub events: Vec<Value>,
    /// The close frame's code, if the server sent one.
    pub close_code: Option<u16>,
}

impl TestApp {
    /// Opens `path` (e.g. `/api/v1/ws/workflows/wf_…?token=…`) as a WebSocket.
    pub async fn ws_connect(&self, path: &str) -> Socket {
        let url = format!("ws{}{path}", self.address.trim_start_matches("http"));
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket handshake");
        socket
    }
}

/// Reads messages until the server closes the socket or `limit` passes.
pub async fn receive_until_closed(socket: &mut Socket, limit: Duration) -> Received {
    let mut received = Received::default();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next()).await;
        match next {
            Ok(Some(Ok(Message::Text(text)))) => {
                received
                    .events
                    .push(serde_json::from_str(text.as_str()).expect("JSON event"));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                received.close_code = frame.map(|f: CloseFrame| u16::from(f.code));
                return received;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return received,
            Err(_) => panic!(
                "socket still open after {limit:?}; got {:?}",
                received.events
            ),
        }
    }
}
