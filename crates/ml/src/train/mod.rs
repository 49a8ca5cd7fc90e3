//! The training engine: configuration, events, LR schedules, optimizers, checkpoints and the loop.

pub mod checkpoint;
mod config;
mod events;
mod metrics;
mod optimizer;
pub mod recipe;
pub(crate) mod run;
mod schedule;
mod trainer;

pub use config::{LrScheduleKind, OptimizerKind, TrainConfig};
pub use events::{CancelToken, EpochMetrics, TrainingEvent};
pub use metrics::topk_correct;
pub use optimizer::build_optimizer;
pub use schedule::LrSchedule;
pub use trainer::{TrainRequest, TrainSummary, train};
pub(crate) use trainer::{check_finite, sources};
