//! Compute device selection: `ml.device = "cpu" | "cuda:0" | "tch-cpu"`.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::MlError;

/// Where models run. Parsed from the configuration string; only `cpu` is always compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// burn's pure-Rust `flex` CPU backend (multi-threaded with rayon).
    #[default]
    Cpu,
    /// A CUDA GPU by index (cargo feature `cuda`).
    Cuda(usize),
    /// libtorch on the CPU through burn-tch (cargo feature `tch`).
    TchCpu,
}

impl DeviceSpec {
    /// The burn device, or [`MlError::DeviceUnavailable`] when its backend is not compiled in.
    pub fn device(&self) -> Result<Device, MlError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::flex()),
            DeviceSpec::Cuda(index) => cuda_device(*index),
            DeviceSpec::TchCpu => tch_device(),
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device, MlError> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(index: usize) -> Result<Device, MlError> {
    Err(MlError::DeviceUnavailable {
        device: format!("cuda:{index}"),
        reason: "this binary was built without the `cuda` feature of crate `ml`".into(),
    })
}

#[cfg(feature = "tch")]
#[allow(deprecated)]
fn tch_device() -> Result<Device, MlError> {
    Ok(Device::libtorch())
}

#[cfg(not(feature = "tch"))]
fn tch_device() -> Result<Device, MlError> {
    Err(MlError::DeviceUnavailable {
        device: "tch-cpu".into(),
        reason: "this binary was built without the `tch` feature of crate `ml`".into(),
    })
}

/// The burn backends compiled into this binary.
pub fn available_backends() -> Vec<&'static str> {
    let mut backends = vec!["flex"];
    if cfg!(feature = "cuda") {
        backends.push("cuda");
    }
    if cfg!(feature = "tch") {
        backends.push("tch");
    }
    backends
}

impl FromStr for DeviceSpec {
    type Err = MlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "cpu" | "flex" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            "tch-cpu" | "tch" => Ok(DeviceSpec::TchCpu),
            other => match other.strip_prefix("cuda:") {
                Some(index) => index.parse().map(DeviceSpec::Cuda).map_err(|_| {
                    MlError::InvalidConfig(format!("invalid CUDA device index in `{other}`"))
                }),
                None => Err(MlError::InvalidConfig(format!(
                    "unknown device `{other}` (expected cpu, cuda:N or tch-cpu)"
                ))),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(index) => write!(f, "cuda:{index}"),
            DeviceSpec::TchCpu => f.write_str("tch-cpu"),
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = MlError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(value: DeviceSpec) -> Self {
        value.to_string()
    }
}

/// Names the compute threads (rayon's global pool) `ml-compute-N`, so that profilers and `top`
/// tell them from the threads that start work on them (rayon's threads otherwise inherit the
/// name of whichever thread first used the pool). Call once at startup, before any model runs;
/// later calls (or a pool already started) leave the pool as it is.
pub fn name_compute_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("ml-compute-{i}"))
        .build_global();
}

/// A compute pool of its own for long work (training runs, SAM3), as many threads as the shared
/// one, named `ml-<name>-N`. Two reasons:
/// - work started on one of its threads splits each operation by work-stealing instead of
///   handing it over from a foreign thread and waiting for it (training steps, alternating in
///   one shell: YOLOv8n 8 × 320² 9.36 / 9.06 / 9.01 → 10.98 / 10.63 / 10.74 img/s, ResNet-18
///   16 × 64² 83.3 → 94.4 img/s);
/// - long work never becomes a job of the shared pool, where a thread waiting inside an
///   inference batch could pick it up and hold that batch until the long work ends.
pub fn compute_pool(name: &'static str) -> Result<rayon::ThreadPool, MlError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .thread_name(move |i| format!("ml-{name}-{i}"))
        .build()
        .map_err(|e| MlError::External(format!("{name} threads: {e}")))
}

/// [`compute_pool`], or `None` (with a warning) when it cannot start: callers then run on their
/// own thread through [`on_pool_or_here`], slower but without losing the work.
pub fn compute_pool_if_possible(name: &'static str) -> Option<rayon::ThreadPool> {
    compute_pool(name)
        .inspect_err(|e| tracing::warn!(error = %e, "work runs on the calling thread"))
        .ok()
}

/// Runs `work` on `pool` when there is one, else on the calling thread (whose operations then
/// go to the shared pool).
pub fn on_pool_or_here<R: Send>(
    pool: Option<&rayon::ThreadPool>,
    work: impl FnOnce() -> R + Send,
) -> R {
    match pool {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

/// Runs `run` (a training run or a training benchmark) on a [`compute_pool`] of its own; when
/// that pool cannot start (the process is out of threads), on the calling thread, as SAM3 does:
/// slower, but the run is not lost.
pub fn on_training_pool<R: Send>(
    run: impl FnOnce() -> Result<R, MlError> + Send,
) -> Result<R, MlError> {
    on_pool_or_here(compute_pool_if_possible("train").as_ref(), run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_reports_missing_backends() {
        assert_eq!("cpu".parse::<DeviceSpec>().ok(), Some(DeviceSpec::Cpu));
        assert_eq!(
            "cuda:1".parse::<DeviceSpec>().ok(),
            Some(DeviceSpec::Cuda(1))
        );
        assert_eq!(
            "tch-cpu".parse::<DeviceSpec>().ok(),
            Some(DeviceSpec::TchCpu)
        );
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!(DeviceSpec::Cpu.device().is_ok());
        #[cfg(not(feature = "cuda"))]
        {
            let err = DeviceSpec::Cuda(0).device().err().map(|e| e.to_string());
            assert!(err.is_some_and(|e| e.contains("`cuda` feature")));
        }
        #[cfg(not(feature = "tch"))]
        assert!(matches!(
            DeviceSpec::TchCpu.device(),
            Err(MlError::DeviceUnavailable { .. })
        ));
        let json = serde_json::to_string(&DeviceSpec::Cuda(0)).ok();
        assert_eq!(json.as_deref(), Some("\"cuda:0\""));
    }
}
