//! `vision bench sam3`: one full-size SAM3 forward on CPU beside PyTorch's figure.

use super::reference::pytorch_reference;
use anyhow::Context;
use ml::sam3::Sam3Config;
use std::path::PathBuf;

/// Options of `vision bench sam3`.
#[derive(Debug, clap::Args)]
pub struct Sam3BenchArgs {
    /// A SAM3 checkpoint directory; random weights of the default configuration when absent.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Python with `torch` and `transformers` for the reference figure (skipped when absent).
    #[arg(long)]
    python: Option<PathBuf>,
}

/// Runs the benchmark and prints ours beside PyTorch's.
pub fn run(args: &Sam3BenchArgs) -> anyhow::Result<()> {
    let device = ml::DeviceSpec::Cpu.device()?;
    println!(
        "SAM3 full size (1008², default configuration), CPU, {} cores",
        super::cores()
    );
    let ours = ml::sam3::bench(&Sam3Config::default(), args.weights.as_deref(), &device)
        .context("SAM3 bench")?;
    let rss = ours
        .peak_rss_mib
        .map_or("?".to_owned(), |m| format!("{:.2} GB", m / 1024.0));
    println!(
        "{:<28} {:>12} {:>14} {:>12}",
        "", "forward s", "2nd prompt s", "peak RSS"
    );
    println!(
        "{:<28} {:>12.1} {:>14.1} {:>12}",
        "vision (burn flex)", ours.first_forward_seconds, ours.second_prompt_seconds, rss
    );
    match pytorch_reference(args.python.as_deref(), &["sam3-full"])?
        .and_then(|r| r.into_iter().next())
    {
        Some(reference) => {
            let seconds = reference.value;
            let peak = reference.detail["peak_rss_gb"]
                .as_f64()
                .map_or("?".to_owned(), |g| format!("{g:.2} GB"));
            println!(
                "{:<28} {:>12.1} {:>14} {:>12}",
                "PyTorch (transformers)", seconds, "-", peak
            );
            println!(
                "time ratio vision/PyTorch: {:.2}× (goal ≤ 0.5×)",
                ours.first_forward_seconds / seconds
            );
        }
        None => println!(
            "PyTorch reference: no python with torch given (--python); ~60 s / 4.7 GB measured here idle"
        ),
    }
    Ok(())
}
