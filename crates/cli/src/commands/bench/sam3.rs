//! `vision bench sam3`: one full-size SAM3 forward on CPU beside PyTorch's figure.

use super::reference::{pytorch_product_gflops, pytorch_reference};
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
    let reference = pytorch_reference(args.python.as_deref(), &["sam3-full"])?
        .and_then(|r| r.into_iter().next());
    match &reference {
        Some(reference) => {
            let peak = reference.detail["peak_rss_gb"]
                .as_f64()
                .map_or("?".to_owned(), |g| format!("{g:.2} GB"));
            println!(
                "{:<28} {:>12.1} {:>14} {:>12}",
                "PyTorch (transformers)", reference.value, "-", peak
            );
            println!(
                "time ratio vision/PyTorch: {:.2}× (goal ≤ 0.5×)",
                ours.first_forward_seconds / reference.value
            );
        }
        None => println!(
            "PyTorch reference: no python with torch given (--python); ~60 s / 4.7 GB measured here idle"
        ),
    }
    print_work_bound(args, &ours, reference.map(|r| r.value))
}

/// What the forward's products demand of the machine: the backbone's FLOP count, the rates
/// reached, and the rate the ≤ 0.5× goal needs beside the best this machine's BLAS reaches.
fn print_work_bound(
    args: &Sam3BenchArgs,
    ours: &ml::sam3::BenchReport,
    reference_seconds: Option<f64>,
) -> anyhow::Result<()> {
    let tflop = ours.backbone_flops / 1e12;
    let mlp = ours.mlp_product_shape;
    println!(
        "work: the ViT backbone's products are {tflop:.2} TFLOP (2 × multiply-adds); image encoder {:.1} s → {:.0} GFLOPS on them",
        ours.image_encoder_seconds,
        ours.backbone_flops / ours.image_encoder_seconds / 1e9
    );
    println!(
        "one product of the MLP's shape ({}×{}×{}): vision {:.0} GFLOPS",
        mlp.0, mlp.1, mlp.2, ours.mlp_product_gflops
    );
    let Some(seconds) = reference_seconds else {
        return Ok(());
    };
    if let Some(rates) = pytorch_product_gflops(args.python.as_deref(), &[mlp, (4096, 4096, 4096)])?
        && let [mlp_rate, square_rate] = rates[..]
    {
        println!(
            "PyTorch f32 products on the same cores: MLP's shape {mlp_rate:.0} GFLOPS, 4096³ {square_rate:.0} GFLOPS"
        );
    }
    println!(
        "goal ≤ 0.5× PyTorch ({:.1} s) needs ≥ {:.0} GFLOPS for the backbone's products alone",
        seconds / 2.0,
        ours.backbone_flops / (seconds / 2.0) / 1e9
    );
    Ok(())
}
