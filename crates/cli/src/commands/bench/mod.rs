//! `vision bench …`: measurements printed beside their targets or references.

mod abuse;
mod api;
mod http1;
mod inference;
mod ingest;
mod models;
mod reference;
mod sam3;
mod segment;
mod time_to_accuracy;
mod workflows;

use app::Settings;

/// What to measure.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Floods, races, slow and oversized bodies, a COCO bomb and 1,000 WebSockets against a
    /// child `vision serve` on loopback: peak memory, `/health` latency, the limits that held.
    Abuse(abuse::AbuseBenchArgs),
    /// Requests/s and latency percentiles of `GET /user/profile` on loopback.
    Api(api::ApiBenchArgs),
    /// ResNet-18 training throughput (batch 16 × 64²) beside PyTorch.
    Train(models::ModelBenchArgs),
    /// ResNet-18 inference throughput (batch 8 × 224²) beside PyTorch.
    Infer(models::ModelBenchArgs),
    /// YOLOv8n training throughput (batch 8 × 320²) and inference latency (640²) beside
    /// PyTorch/Ultralytics (`--make-venv` installs `ultralytics` too).
    Detect(models::ModelBenchArgs),
    /// Predict requests/s and latency over HTTP vs the raw engine (small CNN, ResNet-18).
    Inference(inference::InferenceBenchArgs),
    /// Dataset ingest of a generated archive of small JPEGs.
    Datasets(ingest::IngestBenchArgs),
    /// One full-size SAM3 forward (and a second prompt) beside PyTorch.
    Sam3(sam3::Sam3BenchArgs),
    /// Many concurrent segment requests through the API, worker and SAM3 engine: all done,
    /// credits exact, submit → done latency.
    Segment(segment::SegmentBenchArgs),
    /// 100 small workflows from 10 users at once across 2 workers: none lost or duplicated,
    /// fairness between users.
    Workflows(workflows::WorkflowBenchArgs),
    /// A user's loop through the API on 3,000 MNIST digits (upload, ingest, train with
    /// defaults, held-out predictions) beside the same model in a plain PyTorch script.
    TimeToAccuracy(time_to_accuracy::TimeToAccuracyArgs),
}

/// Cores available to this process.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Runs a benchmark.
pub async fn run(settings: Settings, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Abuse(args) => abuse::run(args).await,
        BenchCommand::Api(args) => api::run(settings, args).await,
        BenchCommand::Train(args) => {
            blocking(move || models::run(models::Case::Train, &args)).await
        }
        BenchCommand::Infer(args) => {
            blocking(move || models::run(models::Case::Infer, &args)).await
        }
        BenchCommand::Detect(args) => {
            blocking(move || models::run(models::Case::Detect, &args)).await
        }
        BenchCommand::Datasets(args) => blocking(move || ingest::run(&args)).await,
        BenchCommand::Sam3(args) => blocking(move || sam3::run(&args)).await,
        BenchCommand::Workflows(args) => workflows::run(args).await,
        BenchCommand::Inference(args) => inference::run(args).await,
        BenchCommand::Segment(args) => segment::run(settings, args).await,
        BenchCommand::TimeToAccuracy(args) => time_to_accuracy::run(args).await,
    }
}

/// Runs CPU-bound work off the async runtime's threads.
async fn blocking(f: impl FnOnce() -> anyhow::Result<()> + Send + 'static) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(f).await?
}
