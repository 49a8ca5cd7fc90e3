//! Repository traits and their SQLite/PostgreSQL implementation.
//!
//! The application depends on the traits in [`traits`]; [`SqlStore`] implements them for both
//! backends, chosen by the database URL. [`conformance`] holds the test suite every
//! implementation must pass.

pub mod channel;
pub mod conformance;
mod error;
mod sql;
pub mod testing;
mod traits;

pub use channel::PgChannel;
pub use error::{StoreError, StoreResult};
pub use sql::{Dialect, SqlStore, redact_url};
pub use traits::{
    BatchRow, BatchStore, CancelOutcome, ChatSessionRow, ChatStore, DatasetDeletion,
    DatasetOutcome, DatasetStore, JobOutcome, JobStore, NewDataset, NewJob, NewProject,
    NewWorkflow, Page, ProjectChanges, ProjectStore, RefreshUse, SegImageRow, SegOutcome,
    SegTaskRow, SegmentationStore, Store, TokenStore, UserStore, WorkflowEnd, WorkflowProgress,
    WorkflowQuery, WorkflowStore,
};
