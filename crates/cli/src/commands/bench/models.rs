//! `vision bench train|infer`: ResNet-18 training and inference throughput beside PyTorch.

use super::reference::pytorch_reference;
use ml::bench::{BenchOptions, BenchResult};
use std::path::PathBuf;

/// Options of `vision bench train` / `vision bench infer`.
#[derive(Debug, clap::Args)]
pub struct ModelBenchArgs {
    /// Python with `torch` and `torchvision` for PyTorch's figures in the same run.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Create (once) a venv with torch + torchvision from PyPI at this path and use it.
    #[arg(long, conflicts_with = "python")]
    make_venv: Option<PathBuf>,
    /// Timed iterations (median reported).
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    /// Compute device: cpu, cuda:0, tch-cpu.
    #[arg(long, default_value = "cpu")]
    device: ml::DeviceSpec,
}

/// Which measurement.
#[derive(Debug, Clone, Copy)]
pub enum Case {
    /// Training step, batch 16 × 3×64×64.
    Train,
    /// Inference, batch 8 × 3×224×224 (BatchNorm folded).
    Infer,
}

/// Runs the case and prints ours beside PyTorch's.
pub fn run(case: Case, args: &ModelBenchArgs) -> anyhow::Result<()> {
    let options = BenchOptions {
        device: args.device,
        warmup: 2,
        iterations: args.iterations.max(1),
    };
    let ours: BenchResult = match case {
        Case::Train => ml::bench::train_resnet18(&options)?,
        Case::Infer => ml::bench::infer_resnet18(&options, true)?,
    };
    let python = match &args.make_venv {
        Some(dir) => Some(ml::bench::ensure_torch_venv(
            std::path::Path::new("python3"),
            dir,
        )?),
        None => args.python.clone(),
    };
    let reference =
        pytorch_reference(python.as_deref(), &[ours.case.as_str()])?.unwrap_or_default();
    println!("{} on {}, {} cores", ours.case, ours.device, super::cores());
    println!(
        "{:<22} {:>10} {:>12} {:>10}",
        "", "images/s", "peak RSS", "ratio"
    );
    let rss = ours
        .peak_rss_mib
        .map_or("?".to_owned(), |m| format!("{m:.0} MiB"));
    println!(
        "{:<22} {:>10.1} {:>12} {:>10}",
        "vision (burn flex)", ours.images_per_sec, rss, ""
    );
    for row in ml::bench::compare(std::slice::from_ref(&ours), &reference) {
        if let (Some(pytorch), Some(ratio)) = (row.pytorch, row.ratio) {
            println!(
                "{:<22} {:>10.1} {:>12} {:>9.2}×",
                "PyTorch", pytorch, "", ratio
            );
        }
    }
    if reference.is_empty() {
        println!("PyTorch: not run (give --python or --make-venv)");
    }
    Ok(())
}
