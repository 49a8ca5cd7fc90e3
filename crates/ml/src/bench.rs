//! Benchmarks with the same shapes as `shared/tools/bench/pytorch_reference.py`, so the two can be
//! divided: ResNet-18 training step (batch 16 × 3×64×64, SGD momentum, 10 classes) and inference
//! (batch 8 × 3×224×224, 1000 classes). Random weights and inputs; the median of the timed
//! iterations counts, like the Python script.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::device::DeviceSpec;
use crate::error::MlError;
use crate::models::{Architecture, Classifier};

/// How long to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Device to run on.
    pub device: DeviceSpec,
    /// Untimed iterations first.
    pub warmup: usize,
    /// Timed iterations (the median is reported).
    pub iterations: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            device: DeviceSpec::Cpu,
            warmup: 2,
            iterations: 5,
        }
    }
}

/// Result of one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Case name, matching the PyTorch script (`resnet18-train`, `resnet18-infer`).
    pub case: String,
    /// Device string.
    pub device: String,
    /// Images per forward (and step).
    pub batch_size: usize,
    /// Input side.
    pub image_size: usize,
    /// Median seconds per iteration.
    pub median_secs: f64,
    /// `batch_size / median_secs`.
    pub images_per_sec: f64,
    /// Peak resident memory of the process so far (`VmHWM`), in MiB.
    pub peak_rss_mib: Option<f64>,
    /// Free-form detail (e.g. whether BatchNorm was folded).
    pub detail: String,
}

/// Peak resident set size of this process in bytes (`VmHWM` of `/proc/self/status`), on Linux.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The middle value of `values` (the mean of the two middle ones for an even count; NaN when
/// empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub(crate) fn timed(
    options: &BenchOptions,
    mut step: impl FnMut() -> Result<(), MlError>,
) -> Result<f64, MlError> {
    for _ in 0..options.warmup {
        step()?;
    }
    let mut times = Vec::with_capacity(options.iterations.max(1));
    for _ in 0..options.iterations.max(1) {
        let start = Instant::now();
        step()?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

pub(crate) fn bench_result(
    case: &str,
    options: &BenchOptions,
    batch: usize,
    size: usize,
    secs: f64,
    detail: String,
) -> BenchResult {
    BenchResult {
        case: case.into(),
        device: options.device.to_string(),
        batch_size: batch,
        image_size: size,
        median_secs: secs,
        images_per_sec: batch as f64 / secs,
        peak_rss_mib: peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
        detail,
    }
}

/// ResNet-18 training step, batch 16 × 3×64×64, 10 classes, SGD (lr 0.01, momentum 0.9).
pub fn train_resnet18(options: &BenchOptions) -> Result<BenchResult, MlError> {
    crate::device::on_training_pool(|| train_resnet18_here(options))
}

fn train_resnet18_here(options: &BenchOptions) -> Result<BenchResult, MlError> {
    let (batch, size, classes) = (16, 64, 10);
    let device = options.device.device()?.autodiff();
    device.seed(0);
    let mut model = Classifier::new(Architecture::Resnet18, classes, &device)?;
    let mut optimizer = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .init();
    let x = Tensor::<4>::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % classes as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &device);
    let loss_fn = CrossEntropyLoss::new(None, &device);
    let secs = timed(options, || {
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(0.01, model.clone(), grads);
        device
            .sync()
            .map_err(|e| MlError::External(format!("device sync: {e:?}")))
    })?;
    Ok(bench_result(
        "resnet18-train",
        options,
        batch,
        size,
        secs,
        "sgd momentum 0.9".into(),
    ))
}

/// How an inference benchmark runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferPath {
    /// burn's forward with the BatchNorm layers.
    Burn,
    /// burn's forward with BatchNorm folded into the convolutions.
    BurnFolded,
    /// The channels-last plan of [`crate::nhwc`] (what the inference engines serve with on CPU).
    ChannelsLast,
}

impl InferPath {
    /// How the result's `detail` names the path.
    pub fn detail(self) -> &'static str {
        match self {
            InferPath::Burn => "burn, batchnorm kept",
            InferPath::BurnFolded => "burn, batchnorm folded into conv",
            InferPath::ChannelsLast => "served: channels-last plan, batchnorm folded",
        }
    }
}

/// One served inference pass, as [`time_inference`] builds it.
pub(crate) type ServedPass<'a> = Box<dyn FnMut() -> Result<(), MlError> + 'a>;

/// Median seconds of `model`'s inference along `path`: burn's forward of the model as it is or
/// folded by `fold`, or the pass `served` builds from it.
pub(crate) fn time_inference<'a, M>(
    options: &BenchOptions,
    path: InferPath,
    model: M,
    fold: fn(M) -> M,
    burn_forward: impl Fn(&M) -> Result<(), MlError>,
    served: impl FnOnce(M) -> Result<ServedPass<'a>, MlError>,
) -> Result<f64, MlError> {
    match path {
        InferPath::Burn => timed(options, || burn_forward(&model)),
        InferPath::BurnFolded => {
            let model = fold(model);
            timed(options, || burn_forward(&model))
        }
        InferPath::ChannelsLast => timed(options, served(model)?),
    }
}

/// ResNet-18 inference, batch 8 × 3×224×224, 1000 classes, logits read back.
pub fn infer_resnet18(options: &BenchOptions, path: InferPath) -> Result<BenchResult, MlError> {
    let (batch, size) = (8, 224);
    let device = options.device.device()?;
    device.seed(0);
    let model = Classifier::new(Architecture::Resnet18, 1000, &device)?.valid();
    let x = Tensor::<4>::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let readback = |logits: Tensor<2>| {
        logits
            .into_data()
            .try_into_vec::<f32>()
            .map(|_| ())
            .map_err(|e| MlError::External(format!("readback: {e:?}")))
    };
    let secs = time_inference(
        options,
        path,
        model,
        Classifier::fold_batchnorm,
        |model| readback(model.forward(x.clone())),
        |model| {
            let plan = crate::nhwc::ClassifierNhwc::new(model)?;
            let pixels = crate::nhwc::tensor_values(x.clone())?;
            Ok(Box::new(move || {
                let input =
                    crate::nhwc::FeatureMap::from_nchw_values(&pixels, batch, 3, size, size);
                plan.forward(&input);
                Ok(())
            }))
        },
    )?;
    Ok(bench_result(
        "resnet18-infer",
        options,
        batch,
        size,
        secs,
        path.detail().into(),
    ))
}

/// One line of `pytorch_reference.py` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceResult {
    /// Case name (`resnet18-train`, …).
    pub case: String,
    /// Measured value.
    pub value: f64,
    /// Unit of `value` (`images/s`, …).
    pub unit: String,
    /// Extra fields (torch version, threads, shapes).
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// Parses the JSON lines printed by `pytorch_reference.py` (other lines are ignored).
pub fn parse_reference_output(stdout: &str) -> Vec<ReferenceResult> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<ReferenceResult>(line.trim()).ok())
        .collect()
}

/// Runs `script` (`pytorch_reference.py`) with `python` for `cases` and parses its results.
/// Fails with [`MlError::External`] when Python or torch is missing.
pub fn run_pytorch_reference(
    python: &Path,
    script: &Path,
    cases: &[&str],
) -> Result<Vec<ReferenceResult>, MlError> {
    let output = Command::new(python)
        .arg(script)
        .args(cases)
        .output()
        .map_err(|e| MlError::External(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").to_string();
        return Err(MlError::External(format!(
            "{} {} exited with {}: {last}",
            python.display(),
            script.display(),
            output.status
        )));
    }
    Ok(parse_reference_output(&String::from_utf8_lossy(
        &output.stdout,
    )))
}

/// Creates (if needed) a virtual environment in `venv_dir` with `torch` and `torchvision` from
/// PyPI using `base_python`, and returns its interpreter. Downloads several hundred MB.
pub fn ensure_torch_venv(
    base_python: &Path,
    venv_dir: &Path,
) -> Result<std::path::PathBuf, MlError> {
    ensure_venv(base_python, venv_dir, &["torch", "torchvision"])
}

/// [`ensure_torch_venv`] plus `ultralytics`, which the `yolov8n-*` reference cases need.
pub fn ensure_ultralytics_venv(
    base_python: &Path,
    venv_dir: &Path,
) -> Result<std::path::PathBuf, MlError> {
    ensure_venv(
        base_python,
        venv_dir,
        &["torch", "torchvision", "ultralytics"],
    )
}

/// A venv in `venv_dir` (created with `base_python` if needed) in which every package of
/// `packages` imports (installed from PyPI when one does not); returns its interpreter.
fn ensure_venv(
    base_python: &Path,
    venv_dir: &Path,
    packages: &[&str],
) -> Result<std::path::PathBuf, MlError> {
    let python = venv_dir.join("bin").join("python");
    let imports = format!("import {}", packages.join(", "));
    let has_packages = |python: &Path| {
        Command::new(python)
            .args(["-c", &imports])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.is_file() && has_packages(&python) {
        return Ok(python);
    }
    let run = |cmd: &mut Command, what: &str| -> Result<(), MlError> {
        let status = cmd
            .status()
            .map_err(|e| MlError::External(format!("{what}: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(MlError::External(format!("{what} exited with {status}")))
        }
    };
    if !python.is_file() {
        run(
            Command::new(base_python)
                .arg("-m")
                .arg("venv")
                .arg(venv_dir),
            "creating the venv",
        )?;
    }
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(packages),
        &format!("pip install {}", packages.join(" ")),
    )?;
    Ok(python)
}

/// Our result beside PyTorch's for the same case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Case name.
    pub case: String,
    /// Our images/s.
    pub ours: f64,
    /// PyTorch's images/s, when it ran (a `ms/image` latency is converted: `1000 / ms`).
    pub pytorch: Option<f64>,
    /// `ours / pytorch` (for latencies: PyTorch's ms over ours).
    pub ratio: Option<f64>,
}

/// PyTorch's throughput of a reference line, in images/s.
fn reference_images_per_sec(line: &ReferenceResult) -> Option<f64> {
    match line.unit.as_str() {
        "images/s" => Some(line.value),
        "ms/image" if line.value > 0.0 => Some(1000.0 / line.value),
        _ => None,
    }
}

/// Pairs our results with PyTorch's by case name.
pub fn compare(ours: &[BenchResult], reference: &[ReferenceResult]) -> Vec<Comparison> {
    ours.iter()
        .map(|r| {
            let pytorch = reference
                .iter()
                .find(|p| p.case == r.case)
                .and_then(reference_images_per_sec);
            Comparison {
                case: r.case.clone(),
                ours: r.images_per_sec,
                pytorch,
                ratio: pytorch.filter(|p| *p > 0.0).map(|p| r.images_per_sec / p),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reference_lines_and_compares() {
        let out = "noise\n{\"case\": \"resnet18-train\", \"value\": 61.0, \"unit\": \"images/s\", \"detail\": {\"threads\": 2}}\n";
        let parsed = parse_reference_output(out);
        assert_eq!(parsed.len(), 1);
        let ours = BenchResult {
            case: "resnet18-train".into(),
            device: "cpu".into(),
            batch_size: 16,
            image_size: 64,
            median_secs: 16.0 / 30.5,
            images_per_sec: 30.5,
            peak_rss_mib: None,
            detail: String::new(),
        };
        let cmp = compare(std::slice::from_ref(&ours), &parsed);
        assert_eq!(cmp[0].ratio, Some(0.5));
        let latency = parse_reference_output(
            "{\"case\": \"yolov8n-infer\", \"value\": 130.0, \"unit\": \"ms/image\"}",
        );
        let ours = BenchResult {
            case: "yolov8n-infer".into(),
            images_per_sec: 1000.0 / 65.0,
            ..ours
        };
        let cmp = compare(&[ours], &latency);
        assert!(cmp[0].ratio.is_some_and(|r| (r - 2.0).abs() < 1e-9));
        assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        let missing =
            run_pytorch_reference(Path::new("/nonexistent/python"), Path::new("x.py"), &[]);
        assert!(matches!(missing, Err(MlError::External(_))));
    }

    #[test]
    fn inference_bench_runs_small() -> Result<(), MlError> {
        let options = BenchOptions {
            device: DeviceSpec::Cpu,
            warmup: 0,
            iterations: 1,
        };
        let r = infer_resnet18(&options, InferPath::ChannelsLast)?;
        assert!(r.images_per_sec > 0.0);
        assert_eq!(r.case, "resnet18-infer");
        assert_eq!(r.detail, InferPath::ChannelsLast.detail());
        Ok(())
    }
}
