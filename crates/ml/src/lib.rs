//! Machine-learning models, training loops and inference engines of the platform.
//!
//! This is the only crate of the workspace that depends on burn.

pub mod artefact;
pub mod bench;
pub mod cli_support;
pub mod data;
pub mod detect;
pub mod device;
pub mod error;
mod gemm;
pub mod infer;
mod kernels;
pub mod models;
pub mod nhwc;
mod pool;
pub mod rng;
mod simd;
pub mod train;

pub use device::DeviceSpec;
pub use error::MlError;
pub use models::{Architecture, Classifier};
pub mod sam3;
mod winograd;
