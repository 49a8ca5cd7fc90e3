//! SAM3 (Segment Anything 3) image model ported to burn.
//!
//! The port follows the transformers implementation (`Sam3Model`) and Meta's semantics for
//! text-only prompts; see `README.md` in this directory for what was verified.

pub mod bench;
pub mod config;
pub mod decoder;
pub mod engine;
pub mod error;
pub mod fusion;
pub mod geometry;
pub mod heads;
pub mod layers;
pub mod model;
pub mod neck;
pub mod postprocess;
pub mod preprocess;
pub mod text;
pub mod tokenizer;
pub mod vit;
pub mod weights;

#[cfg(test)]
mod testutil;

pub use bench::{BenchReport, bench};
pub use config::Sam3Config;
pub use engine::{
    EngineOptions, PromptResult, PromptSpec, RgbImage, Sam3Engine, SegmentRequest, SegmentResponse,
};
pub use error::{Result, Sam3Error};
pub use geometry::BoxPrompt;
pub use model::{ImageFeatures, Sam3Model, Sam3Output, TextOnlyMode};
pub use postprocess::{BinaryMask, CocoRle, Instance, PostProcessOptions, post_process};
pub use tokenizer::ClipTokenizer;
pub use weights::{WeightStore, WeightSummary};
