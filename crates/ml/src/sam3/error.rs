//! Error type of the SAM3 port.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running SAM3.
#[derive(Debug, thiserror::Error)]
pub enum Sam3Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON file (config, shard index, tokenizer) is malformed.
    #[error("invalid JSON in {path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A safetensors file is malformed.
    #[error("invalid safetensors file {path}: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No weights were found in the given directory.
    #[error("no model.safetensors or model.safetensors.index.json in {0}")]
    NoWeights(PathBuf),
    /// A tensor the model needs is not in the checkpoint.
    #[error("missing tensor `{0}` in the checkpoint")]
    MissingTensor(String),
    /// A tensor has an unexpected shape.
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Shape the model needs.
        expected: Vec<usize>,
        /// Shape found in the checkpoint.
        actual: Vec<usize>,
    },
    /// A tensor has a data type the loader cannot convert.
    #[error("tensor `{name}` has unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// Tensor name.
        name: String,
        /// The dtype string from the header.
        dtype: String,
    },
    /// The configuration is inconsistent or unsupported.
    #[error("invalid SAM3 configuration: {0}")]
    Config(String),
    /// The tokenizer failed.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// The request is invalid (bad image size, empty prompt list, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An image could not be decoded or encoded.
    #[error("image error: {0}")]
    Image(String),
    /// Reading a tensor back from the device failed.
    #[error("tensor readback failed: {0}")]
    Readback(String),
    /// The inference engine thread is gone.
    #[error("SAM3 engine is not running")]
    EngineStopped,
}

/// Result alias of the SAM3 module.
pub type Result<T> = std::result::Result<T, Sam3Error>;
