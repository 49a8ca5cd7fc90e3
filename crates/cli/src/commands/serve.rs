//! `vision serve`.

use anyhow::Context;
use app::{App, Settings};

/// Options of `vision serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, overriding `server.bind`.
    #[arg(long)]
    bind: Option<String>,
}

/// Starts the platform and serves until Ctrl-C or SIGTERM.
pub async fn run(mut settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(bind) = args.bind {
        settings.server.bind = bind;
    }
    let app = App::start(settings)
        .await
        .context("starting the platform")?;
    let server = server::Server::bind(app.clone())
        .await
        .with_context(|| format!("binding {}", app.settings.server.bind))?;
    let addr = server.local_addr()?;
    tracing::info!(
        %addr,
        database = app.store.backend(),
        objects = app.objects.backend(),
        rate_limit = app.limiter.backend(),
        "Vision Platform listening: API http://{addr}/api/v1, docs http://{addr}/docs"
    );
    server.run_until(server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
