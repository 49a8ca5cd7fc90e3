//! `vision serve`.

use anyhow::Context;
use app::{App, Settings};

/// Options of `vision serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, overriding `server.bind`.
    #[arg(long)]
    bind: Option<String>,
    /// Do not run a job worker in this process (run `vision worker` elsewhere).
    #[arg(long)]
    no_worker: bool,
}

/// Starts the platform and serves until Ctrl-C or SIGTERM.
pub async fn run(mut settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(bind) = args.bind {
        settings.server.bind = bind;
    }
    if args.no_worker {
        settings.worker.enabled = false;
    }
    let app = App::start(settings)
        .await
        .context("starting the platform")?;
    let server = server::Server::bind(app.clone())
        .await
        .with_context(|| format!("binding {}", app.settings.server.bind))?;
    let addr = server.local_addr()?;
    let worker = app
        .settings
        .worker
        .enabled
        .then(|| worker::spawn(app.clone()));
    tracing::info!(
        %addr,
        database = app.store.backend(),
        objects = app.objects.backend(),
        rate_limit = app.limiter.backend(),
        worker = worker.is_some(),
        "Vision Platform listening: API http://{addr}/api/v1, docs http://{addr}/docs"
    );
    let (stop_worker, worker) = worker.unzip();
    // On the signal the worker stops claiming at once (its running jobs are stopped and handed
    // back within the grace period) while the server stops accepting and drains.
    server
        .run_until(async move {
            server::shutdown_signal().await;
            if let Some(stop) = stop_worker {
                let _ = stop.send(true);
            }
        })
        .await?;
    if let Some(handle) = worker {
        handle.await.context("worker task")?;
    }
    tracing::info!("stopped");
    Ok(())
}
