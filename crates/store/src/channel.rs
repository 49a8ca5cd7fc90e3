//! Cross-process messages over PostgreSQL `LISTEN/NOTIFY`, so every server replica and worker
//! sharing one database sees the same live events.

use crate::error::StoreResult;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use std::time::Duration;

/// Largest payload PostgreSQL accepts in a notification (bytes, minus some headroom).
pub const MAX_PAYLOAD: usize = 7900;

/// A named notification channel on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgChannel {
    pool: PgPool,
    url: String,
    channel: String,
}

impl PgChannel {
    /// Connects a small pool for publishing on `channel`.
    pub async fn connect(url: &str, channel: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            url: url.to_owned(),
            channel: channel.to_owned(),
        })
    }

    /// Sends `payload` to every listener of the channel (including this process's own).
    pub async fn publish(&self, payload: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Listens on the channel in a background task, handing every payload to `on_message`;
    /// reconnects after connection losses (messages sent meanwhile are missed).
    pub fn spawn_listener(
        &self,
        on_message: impl Fn(String) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let url = self.url.clone();
        let channel = self.channel.clone();
        tokio::spawn(async move {
            loop {
                match listen(&url, &channel, &on_message).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "event listener lost its connection; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }
}

async fn listen(url: &str, channel: &str, on_message: &impl Fn(String)) -> sqlx::Result<()> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(channel).await?;
    loop {
        let notification = listener.recv().await?;
        on_message(notification.payload().to_owned());
    }
}
