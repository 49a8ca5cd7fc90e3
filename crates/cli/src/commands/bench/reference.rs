//! PyTorch's figures for the same measurements, from `shared/tools/bench/pytorch_reference.py`.

use ml::bench::ReferenceResult;
use std::path::{Path, PathBuf};

/// Where the reference script is looked for unless `VISION_REFERENCE_SCRIPT` says otherwise.
fn script() -> PathBuf {
    std::env::var_os("VISION_REFERENCE_SCRIPT").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/tools/bench/pytorch_reference.py"
            ))
        },
        PathBuf::from,
    )
}

/// Runs the reference `cases` with `python`; `None` when no python was given.
pub fn pytorch_reference(
    python: Option<&Path>,
    cases: &[&str],
) -> anyhow::Result<Option<Vec<ReferenceResult>>> {
    let Some(python) = python else {
        return Ok(None);
    };
    let results = ml::bench::run_pytorch_reference(python, &script(), cases)?;
    Ok(Some(results))
}

/// PyTorch's rate (GFLOPS, f32, its default threads) for each `[m, k] · [k, n]` product: best of
/// three after a warm-up, the same timing as ours. `None` when no python was given.
pub fn pytorch_product_gflops(
    python: Option<&Path>,
    shapes: &[(usize, usize, usize)],
) -> anyhow::Result<Option<Vec<f64>>> {
    const SCRIPT: &str = r#"
import sys, time, torch
for shape in sys.argv[1:]:
    m, k, n = map(int, shape.split("x"))
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    times = []
    for _ in range(3):
        t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
    print(2 * m * k * n / min(times) / 1e9)
"#;
    let Some(python) = python else {
        return Ok(None);
    };
    let output = std::process::Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .args(shapes.iter().map(|(m, k, n)| format!("{m}x{k}x{n}")))
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "{} exited with {}: {}",
        python.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("")
    );
    let rates = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::parse::<f64>)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(rates))
}
