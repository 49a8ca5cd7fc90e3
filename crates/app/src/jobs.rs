//! Background work: what a job handler is and how it reports. The claim/heartbeat loop that
//! drives handlers lives in crate `worker`.

use crate::App;
use async_trait::async_trait;
use domain::Job;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A job kind's implementation.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// The `kind` column value this handler serves.
    fn kind(&self) -> &'static str;

    /// Does the work. `Err` ends the job as failed with that message (no retry: retries are
    /// for crashes, not for input that cannot work).
    async fn run(&self, app: &App, job: &Job, control: &JobControl) -> Result<(), String>;

    /// Called when a job ran out of attempts (its workers kept dying), so the subject can be
    /// marked failed.
    async fn give_up(&self, app: &App, job: &Job, reason: &str);
}

/// Shared between a running handler and its worker: set when the job must stop (lease lost,
/// cancellation, shutdown). Handlers check it between steps.
#[derive(Debug, Clone, Default)]
pub struct JobControl {
    stop: Arc<AtomicBool>,
}

impl JobControl {
    /// Asks the handler to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the handler should stop.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The flag itself, for code that polls it from other threads (training loops).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }
}

/// The handlers of the kinds listed in `worker.kinds` (all of them when the list is empty).
pub fn configured_handlers(settings: &crate::Settings) -> Vec<Arc<dyn JobHandler>> {
    let kinds = &settings.worker.kinds;
    handlers()
        .into_iter()
        .filter(|h| kinds.is_empty() || kinds.iter().any(|k| k == h.kind()))
        .collect()
}

/// Every job handler of the platform.
pub fn handlers() -> Vec<Arc<dyn JobHandler>> {
    vec![
        Arc::new(crate::datasets::IngestHandler),
        Arc::new(crate::training::TrainingHandler),
        Arc::new(crate::batches::BatchHandler),
        Arc::new(crate::segmentation::SegmentHandler),
    ]
}
