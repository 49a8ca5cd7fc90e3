//! Runs one model's benchmark cases (training step; inference with burn, BatchNorm kept and
//! folded, and the served channels-last plan)
//! as JSON lines and, given a Python with torch (+ ultralytics for YOLOv8), the PyTorch reference
//! and the ratios beside them. `vision bench train|infer|detect` prints the same as a table.
//! Build in release:
//!
//! ```text
//! cargo run --release -p ml --example bench -- [--model resnet18|yolov8n] [--only train|infer]
//!     [--device cpu|tch-cpu|cuda:N] [--iterations N] [--python /path/to/venv/bin/python]
//!     [--script path]
//! ```
//!
//! ResNet-18: training b16 × 64², inference b8 × 224². YOLOv8-n: training b8 × 320², inference
//! 1 × 640².

use std::path::PathBuf;

use ml::bench::{
    BenchOptions, BenchResult, InferPath, compare, infer_resnet18, run_pytorch_reference,
    train_resnet18,
};
use ml::detect::bench::{infer_yolov8n, train_yolov8n};
use ml::error::MlError;

/// A model's cases: its training bench, its inference bench (along an [`InferPath`]) and the
/// names of the matching reference cases.
type Cases = (
    fn(&BenchOptions) -> Result<BenchResult, MlError>,
    fn(&BenchOptions, InferPath) -> Result<BenchResult, MlError>,
    [&'static str; 2],
);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (train, infer, reference_cases): Cases = match value("--model").as_deref() {
        None | Some("resnet18") => (
            train_resnet18,
            infer_resnet18,
            ["resnet18-train", "resnet18-infer"],
        ),
        Some("yolov8n") => (
            train_yolov8n,
            infer_yolov8n,
            ["yolov8n-train", "yolov8n-infer"],
        ),
        Some(other) => return Err(format!("unknown --model {other}: resnet18 or yolov8n").into()),
    };
    let mut options = BenchOptions::default();
    if let Some(device) = value("--device") {
        options.device = device.parse()?;
    }
    if let Some(iterations) = value("--iterations") {
        options.iterations = iterations.parse()?;
    }
    let only = value("--only");
    let trained = match only.as_deref() {
        Some("infer") => None,
        _ => Some(train(&options)?),
    };
    if let Some(trained) = &trained {
        println!("{}", serde_json::to_string(trained)?);
    }
    let mut served = None;
    let paths = match only.as_deref() {
        Some("train") => &[][..],
        _ => &[
            InferPath::Burn,
            InferPath::BurnFolded,
            InferPath::ChannelsLast,
        ],
    };
    for &path in paths {
        let result = infer(&options, path)?;
        println!("{}", serde_json::to_string(&result)?);
        served = Some(result);
    }
    if let Some(python) = value("--python").map(PathBuf::from) {
        let script = value("--script")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared/tools/bench/pytorch_reference.py"));
        let reference = run_pytorch_reference(&python, &script, &reference_cases)?;
        for line in &reference {
            println!("{}", serde_json::to_string(line)?);
        }
        for c in compare(
            &[trained, served].into_iter().flatten().collect::<Vec<_>>(),
            &reference,
        ) {
            println!("{}", serde_json::to_string(&c)?);
        }
    }
    Ok(())
}
