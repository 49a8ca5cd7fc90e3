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
