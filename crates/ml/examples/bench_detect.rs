//! Runs `ml::detect::bench` (YOLOv8-n training step at 320² batch 8, inference at 640²) and, given
//! a Python with torch + ultralytics, the PyTorch reference beside it. Build in release:
//!
//! ```text
//! cargo run --release -p ml --example bench_detect -- [--python /path/to/venv/bin/python] [--script path]
//! ```

use std::path::PathBuf;

use ml::bench::{BenchOptions, compare, run_pytorch_reference};
use ml::detect::bench::{infer_yolov8n, train_yolov8n};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let options = BenchOptions::default();
    let train = train_yolov8n(&options)?;
    println!("{}", serde_json::to_string(&train)?);
    let infer_plain = infer_yolov8n(&options, false)?;
    println!("{}", serde_json::to_string(&infer_plain)?);
    let infer_folded = infer_yolov8n(&options, true)?;
    println!("{}", serde_json::to_string(&infer_folded)?);
    if let Some(python) = value("--python") {
        let script = value("--script")
            .unwrap_or_else(|| PathBuf::from("../shared/tools/bench/pytorch_reference.py"));
        let reference =
            run_pytorch_reference(&python, &script, &["yolov8n-train", "yolov8n-infer"])?;
        for line in &reference {
            println!("{}", serde_json::to_string(line)?);
        }
        for c in compare(&[train, infer_folded], &reference) {
            println!("{}", serde_json::to_string(&c)?);
        }
    }
    Ok(())
}
