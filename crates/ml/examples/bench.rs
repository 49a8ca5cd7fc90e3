//! Runs `ml::bench` (ResNet-18 training step and inference) and, given a Python with torch, the
//! PyTorch reference beside it. Build in release:
//!
//! ```text
//! cargo run --release -p ml --example bench -- [--python /path/to/venv/bin/python] [--script path]
//! ```

use std::path::PathBuf;

use ml::bench::{BenchOptions, compare, infer_resnet18, run_pytorch_reference, train_resnet18};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let options = BenchOptions::default();
    let train = train_resnet18(&options)?;
    println!("{}", serde_json::to_string(&train)?);
    let infer_plain = infer_resnet18(&options, false)?;
    println!("{}", serde_json::to_string(&infer_plain)?);
    let infer_folded = infer_resnet18(&options, true)?;
    println!("{}", serde_json::to_string(&infer_folded)?);
    if let Some(python) = value("--python") {
        let script = value("--script")
            .unwrap_or_else(|| PathBuf::from("../shared/tools/bench/pytorch_reference.py"));
        let reference =
            run_pytorch_reference(&python, &script, &["resnet18-train", "resnet18-infer"])?;
        for line in &reference {
            println!("{}", serde_json::to_string(line)?);
        }
        for c in compare(&[train, infer_folded], &reference) {
            println!("{}", serde_json::to_string(&c)?);
        }
    }
    Ok(())
}
