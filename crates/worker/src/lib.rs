//! Job workers: claim → run → record, with leases, heartbeats and crash recovery.
//!
//! Each worker runs one loop per job kind so that long jobs of one kind (training) never hold up
//! another (dataset ingest). A claimed job's lease is renewed while it runs; if the process dies
//! the lease expires and any worker claims the job again, until its attempts run out.

use app::App;
use app::jobs::{JobControl, JobHandler};
use chrono::{Duration as Lease, Utc};
use domain::{IdKind, Job};
use std::sync::Arc;
use std::time::Duration;
use store::JobOutcome;
use tokio::sync::watch;

/// Timing of a worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// Pause between polls when the queue is empty.
    pub poll: Duration,
    /// Time a running job gets to stop after a shutdown before its lease is handed back.
    pub grace: Duration,
}

impl WorkerConfig {
    /// Timing from the `[worker]` settings and `server.shutdown_grace_secs`.
    pub fn from_settings(settings: &app::Settings) -> Self {
        Self {
            lease: Duration::from_secs(settings.worker.lease_secs.max(1)),
            poll: Duration::from_millis(settings.worker.poll_millis.max(10)),
            grace: Duration::from_secs(settings.server.shutdown_grace_secs),
        }
    }
}

/// Starts a worker with every handler of the platform on its own task; set the returned
/// sender to `true` to stop it, then await the handle.
pub fn spawn(app: App) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    let config = WorkerConfig::from_settings(&app.settings);
    let handlers = app::jobs::configured_handlers(&app.settings);
    let handle = tokio::spawn(run(app, handlers, config, stopped));
    (stop, handle)
}

/// Runs every handler's loop until `shutdown` turns true; returns when all loops have stopped.
/// From that moment nothing more is claimed; a running job is asked to stop, given
/// `config.grace` to do so, and handed back (lease released, attempt not counted) so another
/// worker resumes it at once.
pub async fn run(
    app: App,
    handlers: Vec<Arc<dyn JobHandler>>,
    config: WorkerConfig,
    shutdown: watch::Receiver<bool>,
) {
    let owner = format!(
        "{}-{}",
        hostname(),
        IdKind::Job.new_id().trim_start_matches("job_")
    );
    tracing::info!(%owner, kinds = ?handlers.iter().map(|h| h.kind()).collect::<Vec<_>>(), "worker started");
    let loops: Vec<_> = handlers
        .into_iter()
        .map(|handler| {
            tokio::spawn(kind_loop(
                app.clone(),
                handler,
                owner.clone(),
                config,
                shutdown.clone(),
            ))
        })
        .collect();
    for handle in loops {
        if let Err(e) = handle.await {
            tracing::error!(error = %e, "worker loop panicked");
        }
    }
    tracing::info!(%owner, "worker stopped");
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into())
}

fn lease_until(config: WorkerConfig) -> chrono::DateTime<Utc> {
    Utc::now() + Lease::from_std(config.lease).unwrap_or_else(|_| Lease::seconds(30))
}

async fn kind_loop(
    app: App,
    handler: Arc<dyn JobHandler>,
    owner: String,
    config: WorkerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        match app
            .store
            .claim(handler.kind(), &owner, Utc::now(), lease_until(config))
            .await
        {
            Ok(Some(job)) => {
                process(&app, handler.as_ref(), &owner, config, job, &mut shutdown).await
            }
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(config.poll) => {},
                    _ = shutdown.changed() => {},
                }
            }
            Err(e) => {
                tracing::error!(error = %e, kind = handler.kind(), "cannot claim jobs");
                tokio::time::sleep(config.poll * 4).await;
            }
        }
    }
}

async fn process(
    app: &App,
    handler: &dyn JobHandler,
    owner: &str,
    config: WorkerConfig,
    job: Job,
    shutdown: &mut watch::Receiver<bool>,
) {
    let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind, subject = %job.subject_id, attempt = job.attempts);
    let _entered = span.enter();
    if job.attempts > job.max_attempts {
        let reason = format!(
            "gave up after {} attempts (the worker stopped each time)",
            job.max_attempts
        );
        tracing::warn!(%reason, "job abandoned");
        handler.give_up(app, &job, &reason).await;
        record(app, &job, owner, JobOutcome::Failed(&reason)).await;
        return;
    }
    tracing::info!("job claimed");
    let control = JobControl::default();
    let heartbeat = tokio::spawn(keep_lease(
        app.clone(),
        job.id.clone(),
        owner.to_owned(),
        config,
        control.clone(),
    ));
    let started = std::time::Instant::now();
    let run = handler.run(app, &job, &control);
    tokio::pin!(run);
    let result = tokio::select! {
        result = &mut run => Some(result),
        _ = wait_for_shutdown(shutdown) => None,
    };
    let result = match result {
        Some(result) => Some(result),
        None => {
            // Shutting down: the job stops at its next check (a training step, an image) and
            // its lease goes back, so this attempt is not lost.
            control.stop();
            match tokio::time::timeout(config.grace, &mut run).await {
                // It finished meanwhile: record it like any other success.
                Ok(Ok(())) => Some(Ok(())),
                Ok(Err(_)) => None,
                Err(_) => {
                    tracing::warn!(
                        grace_secs = config.grace.as_secs(),
                        "job did not stop in time"
                    );
                    None
                }
            }
        }
    };
    heartbeat.abort();
    // Every attempt's compute time is the user's usage, whatever its outcome or device.
    let seconds = started.elapsed().as_secs_f64();
    if let Err(e) = app.store.add_usage(&job.user_id, seconds, 0).await {
        tracing::error!(error = %e, "cannot record compute usage");
    }
    match result {
        Some(Ok(())) => record(app, &job, owner, JobOutcome::Succeeded).await,
        Some(Err(_)) if control.should_stop() => {
            tracing::warn!("job stopped: lease lost or cancelled");
        }
        Some(Err(message)) => {
            tracing::warn!(%message, "job failed");
            record(app, &job, owner, JobOutcome::Failed(&message)).await;
        }
        None => match app.store.release_job(&job.id, owner, Utc::now()).await {
            Ok(true) => tracing::info!("shutting down: job handed back for another worker"),
            Ok(false) => tracing::warn!("shutting down: the job's lease had already been lost"),
            Err(e) => {
                tracing::error!(error = %e, "cannot hand the job back; it resumes once its lease expires")
            }
        },
    }
}

async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn keep_lease(
    app: App,
    job_id: String,
    owner: String,
    config: WorkerConfig,
    control: JobControl,
) {
    loop {
        tokio::time::sleep(config.lease / 3).await;
        match app
            .store
            .heartbeat(&job_id, &owner, lease_until(config))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%job_id, "lease lost: stopping the job");
                control.stop();
                return;
            }
            Err(e) => tracing::error!(%job_id, error = %e, "heartbeat failed"),
        }
    }
}

async fn record(app: &App, job: &Job, owner: &str, outcome: JobOutcome<'_>) {
    match app
        .store
        .finish_job(&job.id, owner, outcome, Utc::now())
        .await
    {
        Ok(true) => tracing::info!(outcome = ?outcome, "job finished"),
        Ok(false) => tracing::warn!("job finished but its lease had been lost (or it was deleted)"),
        Err(e) => tracing::error!(error = %e, "cannot record the job's outcome"),
    }
}
