//! `vision worker`: a standalone job worker on the same database and object store.

use anyhow::Context;
use app::{App, Settings};

/// Runs jobs until Ctrl-C or SIGTERM; a job in progress is left to be resumed elsewhere.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = App::start(settings).await.context("starting the worker")?;
    let (stop, handle) = worker::spawn(app);
    server::shutdown_signal().await;
    let _ = stop.send(true);
    handle.await.context("worker task")?;
    Ok(())
}
