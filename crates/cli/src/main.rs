//! `vision`: the one binary of Vision Platform.

mod commands;
mod logging;

use anyhow::Context;
use app::Settings;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Vision Platform: train, serve and segment computer-vision models.
#[derive(Debug, Parser)]
#[command(name = "vision", version, about)]
struct Cli {
    /// Settings file (TOML) applied over the built-in defaults; `VISION__SECTION__KEY`
    /// environment variables apply over both.
    #[arg(long, global = true, env = "VISION_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the platform (API server).
    Serve(commands::serve::ServeArgs),
    /// Run background jobs (dataset ingest, training, …) against the configured database.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Write the OpenAPI document.
    Openapi(commands::openapi::OpenapiArgs),
    /// Print the effective settings, secrets redacted.
    Config,
    /// Manage users (works while the server runs).
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Train a classifier or detector locally with a progress line.
    Train(Box<commands::train::TrainArgs>),
    /// Serve the segmentation backend API (SAM3 inference, `X-API-Key`) on
    /// `segmentation.backend_bind`.
    SegmentBackend(commands::segment_backend::SegmentBackendArgs),
    /// Segment an image with SAM3 by text prompt (weights from a local directory).
    Segment(commands::segment::SegmentArgs),
    /// Measure the chat's intent parser on a JSON Lines file of utterances.
    EvalIntent(commands::eval_intent::EvalIntentArgs),
    /// Measure the platform.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref()).context("loading settings")?;
    if matches!(cli.command, Command::Bench(_)) {
        // A benchmark's output is its table; the platform's own INFO lines (accounts created,
        // models loaded) would interleave with it. `RUST_LOG` still applies.
        settings.log.level = "warn".into();
    }
    logging::init(&settings.log);
    ml::device::name_compute_threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::run(settings, args).await,
            Command::Worker => commands::worker::run(settings).await,
            Command::SegmentBackend(args) => commands::segment_backend::run(settings, args).await,
            Command::Migrate => commands::migrate::run(settings).await,
            Command::Openapi(args) => commands::openapi::run(&args),
            Command::Config => commands::config::run(&settings),
            Command::User(command) => commands::user::run(settings, command).await,
            Command::Train(args) => {
                tokio::task::spawn_blocking(move || commands::train::run(*args)).await?
            }
            Command::Segment(args) => {
                tokio::task::spawn_blocking(move || commands::segment::run(args)).await?
            }
            Command::EvalIntent(args) => commands::eval_intent::run(&args),
            Command::Bench(command) => commands::bench::run(settings, command).await,
        }
    })
}
