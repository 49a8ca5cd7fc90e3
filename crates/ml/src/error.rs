//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in model building, training, inference and weight I/O.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// A configuration value is invalid (unknown model, zero batch size, …).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The requested compute device is not compiled into this binary or does not exist.
    #[error("device `{device}` is not available: {reason}")]
    DeviceUnavailable {
        /// The device string as configured.
        device: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The dataset cannot be used for this task.
    #[error("invalid dataset: {0}")]
    InvalidDataset(String),
    /// An image could not be read or decoded.
    #[error("cannot read image {path}: {message}")]
    Image {
        /// File that failed.
        path: PathBuf,
        /// Decoder message.
        message: String,
    },
    /// A weight file is malformed or does not fit the model.
    #[error("weights: {0}")]
    Weights(String),
    /// A checkpoint is missing, malformed or from a different run configuration.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The job was cancelled through its [`crate::train::CancelToken`].
    #[error("training cancelled")]
    Cancelled,
    /// The inference engine thread has stopped.
    #[error("inference engine is not running")]
    EngineStopped,
    /// A subprocess (e.g. the PyTorch reference benchmark) failed.
    #[error("external command failed: {0}")]
    External(String),
    /// File-system failure.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// JSON (de)serialisation failure.
    #[error("JSON error in {path}: {source}")]
    Json {
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl MlError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a JSON error with the path it happened on.
    pub fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = MlError> = std::result::Result<T, E>;
