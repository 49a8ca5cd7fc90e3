//! `vision bench …`: measurements printed beside their targets or references.

mod api;
mod reference;
mod sam3;

use app::Settings;

/// What to measure.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Requests/s and latency percentiles of `GET /user/profile` on loopback.
    Api(api::ApiBenchArgs),
    /// One full-size SAM3 forward (and a second prompt) beside PyTorch.
    Sam3(sam3::Sam3BenchArgs),
}

/// Cores available to this process.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Runs a benchmark.
pub async fn run(settings: Settings, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Api(args) => api::run(settings, args).await,
        BenchCommand::Sam3(args) => tokio::task::spawn_blocking(move || sam3::run(&args)).await?,
    }
}
