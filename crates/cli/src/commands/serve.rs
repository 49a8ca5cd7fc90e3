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
    server.run_until(server::shutdown_signal()).await?;
    if let Some((stop, handle)) = worker {
        let _ = stop.send(true);
        handle.await.context("worker task")?;
    }
    tracing::info!("stopped");
    Ok(())
}
