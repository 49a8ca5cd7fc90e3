//! `vision segment-backend`: the SAM3 backend API on its own port, for GPU boxes.

use anyhow::Context;
use app::{App, Settings};

/// Options of `vision segment-backend`.
#[derive(Debug, clap::Args)]
pub struct SegmentBackendArgs {
    /// Address to listen on, overriding `segmentation.backend_bind`.
    #[arg(long)]
    bind: Option<String>,
    /// SAM3 weights directory, overriding `segmentation.weights_dir`.
    #[arg(long)]
    weights: Option<String>,
}

/// Loads the weights (a failure is logged and answered with 503 `MODEL_NOT_LOADED`) and serves
/// until Ctrl-C or SIGTERM.
pub async fn run(mut settings: Settings, args: SegmentBackendArgs) -> anyhow::Result<()> {
    if let Some(bind) = args.bind {
        settings.segmentation.backend_bind = bind;
    }
    if let Some(weights) = args.weights {
        settings.segmentation.weights_dir = weights;
    }
    anyhow::ensure!(
        !settings.segmentation.api_key.is_empty(),
        "segmentation.api_key must be set (VISION__SEGMENTATION__API_KEY): the backend API \
         refuses every call without it"
    );
    let app = App::start(settings)
        .await
        .context("starting the platform's storage")?;
    if let Err(e) = app.segmenter.engine().await {
        tracing::error!(error = %e, "serving without a model");
    }
    let server = server::Server::bind_backend(app.clone())
        .await
        .with_context(|| format!("binding {}", app.settings.segmentation.backend_bind))?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, model_loaded = app.segmenter.loaded().is_some(),
        "segmentation backend listening: http://{addr}/health");
    server.run_until(server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
