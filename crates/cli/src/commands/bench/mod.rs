//! `vision bench …`: measurements printed beside their targets or references.

mod api;

use app::Settings;

/// What to measure.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Requests/s and latency percentiles of `GET /user/profile` on loopback.
    Api(api::ApiBenchArgs),
}

/// Runs a benchmark.
pub async fn run(settings: Settings, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Api(args) => api::run(settings, args).await,
    }
}
