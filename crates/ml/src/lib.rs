//! Machine-learning models, training loops and inference engines of the platform.
//!
//! This is the only crate of the workspace that depends on burn.
pub mod sam3;
