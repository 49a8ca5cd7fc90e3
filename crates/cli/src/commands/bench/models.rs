//! `vision bench train|infer|detect`: ResNet-18 and YOLOv8n throughput beside PyTorch.

use super::reference::pytorch_reference;
use ml::bench::{BenchOptions, BenchResult, InferPath};
use std::path::PathBuf;

/// Options of `vision bench train`, `infer` and `detect`.
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
    /// Rounds of ours then PyTorch's, each printed; with more than one, the median of each
    /// row's ratios closes the output (a machine whose speed drifts moves a single ratio).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Compute device: cpu, cuda:0, tch-cpu.
    #[arg(long, default_value = "cpu")]
    device: ml::DeviceSpec,
}

/// Which measurement.
#[derive(Debug, Clone, Copy)]
pub enum Case {
    /// ResNet-18 training step, batch 16 × 3×64×64.
    Train,
    /// ResNet-18 inference, batch 8 × 3×224×224: the served channels-last plan and burn's forward
    /// (both with BatchNorm folded).
    Infer,
    /// YOLOv8n training step (batch 8 × 3×320×320) and inference latency (one 3×640×640
    /// image, BatchNorm folded; served plan and burn's forward).
    Detect,
}

/// Runs the case and prints ours beside PyTorch's, `--rounds` times.
pub fn run(case: Case, args: &ModelBenchArgs) -> anyhow::Result<()> {
    let python = match &args.make_venv {
        Some(dir) => {
            let base = std::path::Path::new("python3");
            Some(match case {
                Case::Detect => ml::bench::ensure_ultralytics_venv(base, dir)?,
                _ => ml::bench::ensure_torch_venv(base, dir)?,
            })
        }
        None => args.python.clone(),
    };
    let rounds = args.rounds.max(1);
    let mut ratios: Vec<(String, Vec<f64>)> = Vec::new();
    for round in 0..rounds {
        if rounds > 1 {
            println!("round {} of {rounds}", round + 1);
        }
        for (i, (row, ratio)) in run_round(case, args, python.as_deref(), round == 0)?
            .into_iter()
            .enumerate()
        {
            if i == ratios.len() {
                ratios.push((row, Vec::new()));
            }
            ratios[i].1.extend(ratio);
        }
    }
    if rounds > 1 {
        for (row, values) in ratios.iter().filter(|(_, v)| !v.is_empty()) {
            let shown: Vec<String> = values.iter().map(|r| format!("{r:.2}")).collect();
            println!(
                "{row}: median ratio {:.2}× over {} rounds ({})",
                ml::bench::median(values.clone()),
                values.len(),
                shown.join(", ")
            );
        }
    }
    Ok(())
}

/// One round: ours, then PyTorch's with `python`, printed; each row's name and ratio. The peak
/// RSS is the process's high-water mark, so it is shown for the `first` round only (later rounds
/// would show the earlier ones' peak and the buffers they left pooled).
fn run_round(
    case: Case,
    args: &ModelBenchArgs,
    python: Option<&std::path::Path>,
    first: bool,
) -> anyhow::Result<Vec<(String, Option<f64>)>> {
    let options = BenchOptions {
        device: args.device,
        warmup: 2,
        iterations: args.iterations.max(1),
    };
    // Engines serve with the channels-last plan on the CPU and with burn's folded forward on
    // other devices; both are shown on the CPU.
    let infer_paths: &[InferPath] = if args.device == ml::DeviceSpec::Cpu {
        &[InferPath::ChannelsLast, InferPath::BurnFolded]
    } else {
        &[InferPath::BurnFolded]
    };
    let mut ours: Vec<BenchResult> = match case {
        Case::Train => vec![ml::bench::train_resnet18(&options)?],
        Case::Infer => Vec::new(),
        Case::Detect => vec![ml::detect::bench::train_yolov8n(&options)?],
    };
    for &path in infer_paths {
        match case {
            Case::Train => {}
            Case::Infer => ours.push(ml::bench::infer_resnet18(&options, path)?),
            Case::Detect => ours.push(ml::detect::bench::infer_yolov8n(&options, path)?),
        }
    }
    let mut cases: Vec<&str> = ours.iter().map(|r| r.case.as_str()).collect();
    cases.dedup();
    let reference = pytorch_reference(python, &cases)?.unwrap_or_default();
    let comparisons = ml::bench::compare(&ours, &reference);
    println!(
        "{} on {}, {} cores",
        cases.join(" + "),
        ours[0].device,
        super::cores()
    );
    println!(
        "{:<16} {:<22} {:>10} {:>10} {:>12} {:>8}",
        "case", "", "images/s", "ms/batch", "peak RSS", "ratio"
    );
    let backend = match args.device {
        ml::DeviceSpec::Cpu => "flex",
        ml::DeviceSpec::Cuda(_) => "cuda",
        ml::DeviceSpec::TchCpu => "tch",
    };
    let mut shown = Vec::new();
    let mut rows = Vec::new();
    for (result, row) in ours.iter().zip(&comparisons) {
        if let Some(pytorch) = row.pytorch
            && !shown.contains(&result.case)
        {
            shown.push(result.case.clone());
            println!(
                "{:<16} {:<22} {:>10.2} {:>10.1}",
                result.case,
                "PyTorch",
                pytorch,
                result.batch_size as f64 * 1000.0 / pytorch,
            );
        }
        let who = if result.detail == InferPath::ChannelsLast.detail() {
            "vision (served plan)".to_owned()
        } else {
            format!("vision (burn {backend})")
        };
        println!(
            "{:<16} {:<22} {:>10.2} {:>10.1} {:>12} {:>8}",
            result.case,
            who,
            result.images_per_sec,
            result.median_secs * 1000.0,
            match result.peak_rss_mib {
                Some(mib) if first => format!("{mib:.0} MiB"),
                Some(_) => "—".to_owned(),
                None => "?".to_owned(),
            },
            row.ratio.map_or(String::new(), |r| format!("{r:.2}×")),
        );
        rows.push((format!("{} {who}", result.case), row.ratio));
    }
    for result in ours.iter().filter(|r| r.case.ends_with("-train")) {
        println!("{}: {}", result.case, result.detail);
    }
    if reference.is_empty() {
        println!("PyTorch: not run (give --python or --make-venv)");
    }
    Ok(rows)
}
