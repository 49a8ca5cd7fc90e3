//! Core types of the platform: ids, plans and limits, entities. No I/O.

pub mod dataset;
pub mod entities;
pub mod ids;
pub mod plan;
pub mod workflow;

pub use entities::{Dataset, DatasetStatus, Job, JobStatus, Project, Usage, User};
pub use ids::IdKind;
pub use plan::{Plan, PlanLimits};
pub use workflow::{LogLine, MetricPoint, Workflow, WorkflowStatus};
