//! The training job: a worker claims a workflow, fetches its dataset, trains with the `ml`
//! engine on a blocking thread, and streams progress, metrics, logs and checkpoints.
//!
//! Checkpoints go to object storage after every epoch, so a worker on any machine resumes a
//! run whose worker died from its last finished epoch.

use crate::auth::Principal;
use crate::events::BusMessage;
use crate::jobs::{JobControl, JobHandler};
use crate::workflows::{TRAINING_JOB, event};
use crate::{App, AppError};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use domain::{Job, LogLine, MetricPoint, Plan, Workflow};
use ml::train::{CancelToken, TrainConfig, TrainRequest, TrainSummary, TrainingEvent};
use objects::keys;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use store::{WorkflowEnd, WorkflowProgress};
use tokio::runtime::Handle;

/// Marker written once a dataset's images are all in the local cache.
const IMAGES_COMPLETE: &str = ".complete";

/// Runs training workflows.
#[derive(Debug)]
pub struct TrainingHandler;

#[async_trait]
impl JobHandler for TrainingHandler {
    fn kind(&self) -> &'static str {
        TRAINING_JOB
    }

    async fn run(&self, app: &App, job: &Job, control: &JobControl) -> Result<(), String> {
        let workflow = match app.store.workflow_by_id(&job.subject_id).await {
            Ok(Some(workflow)) => workflow,
            Ok(None) => return Ok(()), // deleted meanwhile
            Err(e) => return Err(e.to_string()),
        };
        if workflow.status.is_terminal() {
            return Ok(());
        }
        if !app
            .store
            .start_workflow(&workflow.id, Utc::now())
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(()); // cancelled between claim and start
        }
        let run = Run::new(app, job, &workflow);
        match run.execute(control).await {
            Ok(summary) => run.complete(&summary).await,
            Err(_) if control.should_stop() => Err("stopped".into()),
            Err(message) => {
                fail(app, &workflow.id, &message).await;
                Err(message)
            }
        }
    }

    async fn give_up(&self, app: &App, job: &Job, reason: &str) {
        fail(app, &job.subject_id, reason).await;
    }
}

/// Records a failed workflow and tells its watchers.
async fn fail(app: &App, workflow_id: &str, message: &str) {
    let now = Utc::now();
    match app
        .store
        .finish_workflow(workflow_id, WorkflowEnd::Failed(message), now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return, // cancelled meanwhile
        Err(e) => tracing::error!(error = %e, "cannot record the failed workflow"),
    }
    log_line(
        app,
        workflow_id,
        "ERROR",
        format!("Training failed: {message}"),
    )
    .await;
    app.events
        .publish(BusMessage::Event(event(
            "training_error",
            workflow_id,
            json!({ "error": message }),
        )))
        .await;
}

async fn log_line(app: &App, workflow_id: &str, level: &str, message: String) {
    let line = LogLine {
        timestamp: Utc::now(),
        level: level.into(),
        message,
    };
    if let Err(e) = app.store.add_log(workflow_id, &line).await {
        tracing::warn!(error = %e, "cannot write a workflow log line");
    }
}

/// One attempt at a workflow.
struct Run {
    app: App,
    workflow: Workflow,
    attempt: i64,
    dir: PathBuf,
}

impl Run {
    fn new(app: &App, job: &Job, workflow: &Workflow) -> Self {
        Self {
            app: app.clone(),
            workflow: workflow.clone(),
            attempt: job.attempts,
            dir: app.settings.work_dir().join(&workflow.id),
        }
    }

    fn checkpoint_prefix(&self) -> String {
        format!(
            "{}checkpoint/",
            keys::workflow_prefix(&self.workflow.user_id, &self.workflow.id)
        )
    }

    fn model_prefix(&self) -> String {
        format!(
            "{}model/",
            keys::workflow_prefix(&self.workflow.user_id, &self.workflow.id)
        )
    }

    async fn execute(&self, control: &JobControl) -> Result<TrainSummary, String> {
        let app = &self.app;
        let wf = &self.workflow;
        let mut config: TrainConfig =
            serde_json::from_str(&wf.config).map_err(|e| format!("stored config: {e}"))?;
        config.device = app
            .settings
            .training
            .device
            .parse()
            .map_err(|e: ml::MlError| e.to_string())?;
        log_line(
            app,
            &wf.id,
            "INFO",
            format!(
                "Preparing {} on {} (attempt {})",
                wf.model, config.device, self.attempt
            ),
        )
        .await;
        if self.attempt <= 1 {
            for choice in &config.recipe {
                log_line(
                    app,
                    &wf.id,
                    "INFO",
                    format!("Recipe: {}", choice.describe()),
                )
                .await;
            }
        }
        let principal = Principal {
            user_id: wf.user_id.clone(),
            plan: Plan::Free,
        };
        let manifest = crate::datasets::manifest(app, &principal, &wf.dataset_id)
            .await
            .map_err(|e| format!("dataset {}: {e}", wf.dataset_id))?;
        let images = self.dir.join("images");
        if !images.join(IMAGES_COMPLETE).is_file() {
            crate::datasets::download_images(app, &wf.user_id, &wf.dataset_id, &manifest, &images)
                .await
                .map_err(|e| format!("downloading the dataset: {e}"))?;
            write_file(&images.join(IMAGES_COMPLETE), b"").await?;
        }
        let checkpoints = self.dir.join("checkpoints");
        self.restore_checkpoints(&checkpoints).await?;
        let output = self.dir.join("output");
        let request = TrainRequest {
            manifest,
            image_root: images,
            config,
            output_dir: output,
            checkpoint_dir: checkpoints,
            resume: true,
        };

        let cancel = CancelToken::new();
        let finished = Arc::new(AtomicBool::new(false));
        tokio::spawn(watch_for_cancel(
            app.clone(),
            wf.id.clone(),
            control.clone(),
            cancel.clone(),
            finished.clone(),
        ));
        let mut reporter = Reporter::new(self, Handle::current());
        let result = tokio::task::spawn_blocking(move || {
            let result = ml::train::train(&request, &cancel, &mut |e| reporter.on_event(e));
            finished.store(true, Ordering::SeqCst);
            result
        })
        .await
        .map_err(|e| format!("training thread: {e}"))?;
        result.map_err(|e| e.to_string())
    }

    /// On a retry, the local checkpoints are replaced by the stored ones (the last complete
    /// epoch of whichever worker ran before).
    async fn restore_checkpoints(&self, dir: &Path) -> Result<(), String> {
        let prefix = self.checkpoint_prefix();
        let stored = self
            .app
            .objects
            .list(&prefix)
            .await
            .map_err(|e| e.to_string())?;
        if stored.is_empty() {
            return Ok(());
        }
        if dir.exists() {
            tokio::fs::remove_dir_all(dir)
                .await
                .map_err(|e| format!("clearing {}: {e}", dir.display()))?;
        }
        for (key, _) in stored {
            let relative = key.trim_start_matches(&prefix);
            let bytes = self
                .app
                .objects
                .get(&key)
                .await
                .map_err(|e| e.to_string())?;
            write_file(&dir.join(relative), &bytes).await?;
        }
        Ok(())
    }

    /// Stores the model, records success and tells watchers.
    async fn complete(&self, summary: &TrainSummary) -> Result<(), String> {
        let app = &self.app;
        let wf = &self.workflow;
        let prefix = self.model_prefix();
        let mut stored_bytes = 0i64;
        for path in files_under(&summary.artefact.dir)? {
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let name = path
                .strip_prefix(&summary.artefact.dir)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .to_string();
            stored_bytes += bytes.len() as i64;
            app.objects
                .put(&format!("{prefix}{name}"), Bytes::from(bytes))
                .await
                .map_err(|e| e.to_string())?;
        }
        // The local copy of the run is done with once the model is stored (a retry would start
        // from the stored checkpoints anyway).
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
        let exported = summary.exported_epoch as i64;
        let recorded = app
            .store
            .finish_workflow(
                &wf.id,
                WorkflowEnd::Completed {
                    exported_epoch: exported,
                },
                Utc::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !recorded {
            // Cancelled at the last moment: drop what was stored.
            let _ = app.objects.delete_prefix(&prefix).await;
            return Ok(());
        }
        if let Err(e) = app.store.add_usage(&wf.user_id, 0.0, stored_bytes).await {
            tracing::warn!(error = %e, "cannot record the model's storage");
        }
        let last = summary.history.last();
        let best = summary
            .history
            .iter()
            .find(|m| m.epoch == summary.exported_epoch);
        log_line(
            app,
            &wf.id,
            "INFO",
            format!(
                "Training complete: {} epochs, model from epoch {} stored",
                summary.epochs_completed, summary.exported_epoch
            ),
        )
        .await;
        app.events
            .publish(BusMessage::Event(event(
                "training_complete",
                &wf.id,
                json!({
                    "epochs_completed": summary.epochs_completed,
                    "exported_epoch": summary.exported_epoch,
                    "model_version": format!("{}_epoch_{}", wf.id, summary.exported_epoch),
                    "stopped_early": summary.stopped_early,
                    "metrics": best.or(last).map(epoch_values),
                    "duration_seconds": summary.elapsed_secs,
                }),
            )))
            .await;
        // Checkpoints were only needed to resume.
        let _ = app.objects.delete_prefix(&self.checkpoint_prefix()).await;
        Ok(())
    }
}

/// Sets `cancel` when the workflow is cancelled (bus message) or the worker asks the job to
/// stop (lease lost, shutdown); ends once training has finished.
async fn watch_for_cancel(
    app: App,
    workflow_id: String,
    control: JobControl,
    cancel: CancelToken,
    finished: Arc<AtomicBool>,
) {
    let mut bus = app.events.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !finished.load(Ordering::SeqCst) {
        tokio::select! {
            message = bus.recv() => {
                if let Ok(BusMessage::Cancel { workflow_id: id }) = message
                    && id == workflow_id
                {
                    tracing::info!(%workflow_id, "cancellation received");
                    control.stop();
                }
            }
            _ = tick.tick() => {}
        }
        if control.should_stop() {
            cancel.cancel();
        }
    }
}

/// Metric values of an epoch, as stored and shown: a classifier's accuracies, or a detector's
/// loss parts and mAPs.
fn epoch_values(m: &ml::train::EpochMetrics) -> Value {
    let mut values = json!({ "loss": m.loss, "learning_rate": m.lr });
    for (name, value) in [
        ("accuracy", Some(m.accuracy).filter(|a| a.is_finite())),
        ("val_loss", m.val_loss),
        ("val_accuracy", m.val_accuracy),
        ("val_top5_accuracy", m.val_top5),
        ("box_loss", m.box_loss),
        ("cls_loss", m.cls_loss),
        ("dfl_loss", m.dfl_loss),
        ("val_map50", m.val_map50),
        ("val_map50_95", m.val_map50_95),
    ] {
        if let Some(v) = value {
            values[name] = json!(v);
        }
    }
    values
}

/// The metrics of a training step (a detector has no accuracy).
fn step_values(loss: f64, accuracy: f64) -> Value {
    let mut values = json!({ "loss": loss });
    if accuracy.is_finite() {
        values["accuracy"] = json!(accuracy);
    }
    values
}

/// The log line of a finished epoch.
fn epoch_line(m: &ml::train::EpochMetrics, epochs: usize, images_per_sec: f64) -> String {
    let mut line = format!("Epoch {}/{epochs} - Loss: {:.4}", m.epoch, m.loss);
    if let (Some(b), Some(c), Some(d)) = (m.box_loss, m.cls_loss, m.dfl_loss) {
        line.push_str(&format!(" (box {b:.4}, cls {c:.4}, dfl {d:.4})"));
    }
    if m.accuracy.is_finite() {
        line.push_str(&format!(" - Accuracy: {:.4}", m.accuracy));
    }
    if let Some(vl) = m.val_loss {
        line.push_str(&format!(" - Val loss: {vl:.4}"));
    }
    if let Some(va) = m.val_accuracy {
        line.push_str(&format!(" - Val accuracy: {va:.4}"));
    }
    if let (Some(m50), Some(m5095)) = (m.val_map50, m.val_map50_95) {
        line.push_str(&format!(
            " - Val mAP50: {m50:.4} - Val mAP50-95: {m5095:.4}"
        ));
    }
    line.push_str(&format!(" - {images_per_sec:.1} img/s"));
    line
}

/// Turns engine events into database rows, log lines, stored checkpoints and live messages.
/// Runs on the training thread, so it blocks on the runtime for its I/O; progress writes are
/// throttled to keep that cost off the steps.
struct Reporter {
    app: App,
    handle: Handle,
    workflow_id: String,
    model: String,
    device: String,
    image_size: i64,
    checkpoint_prefix: String,
    interval: Duration,
    last_report: Option<Instant>,
    steps_per_epoch: usize,
    total_steps: usize,
    epoch: usize,
    latest: Value,
    peak_rss: u64,
}

impl Reporter {
    fn new(run: &Run, handle: Handle) -> Self {
        let config: Option<TrainConfig> = serde_json::from_str(&run.workflow.config).ok();
        Self {
            app: run.app.clone(),
            handle,
            workflow_id: run.workflow.id.clone(),
            model: run.workflow.model.clone(),
            device: run.app.settings.training.device.clone(),
            image_size: config.map_or(0, |c| c.image_size() as i64),
            checkpoint_prefix: run.checkpoint_prefix(),
            interval: Duration::from_millis(run.app.settings.training.progress_interval_millis),
            last_report: None,
            steps_per_epoch: 0,
            total_steps: 0,
            epoch: 0,
            latest: json!({}),
            peak_rss: 0,
        }
    }

    fn on_event(&mut self, event: TrainingEvent) {
        let handle = self.handle.clone();
        handle.block_on(self.handle_event(event));
    }

    fn resources(&mut self) -> Value {
        let rss = current_rss_bytes();
        self.peak_rss = self.peak_rss.max(rss);
        json!({
            "device": self.device,
            "backend": backend_name(&self.device),
            "cpu_threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "gpu_type": Value::Null,
            "gpu_count": 0,
            "memory_gb": gb(self.peak_rss),
            "worker": hostname(),
        })
    }

    async fn progress(&mut self, step: usize, eta_secs: f64) {
        let resources = self.resources().to_string();
        let metrics = self.latest.to_string();
        let progress = WorkflowProgress {
            current_epoch: self.epoch as i64,
            step: step as i64,
            total_steps: self.total_steps as i64,
            metrics: Some(&metrics),
            resources: Some(&resources),
            estimated_seconds: Some(eta_secs),
        };
        if let Err(e) = self
            .app
            .store
            .update_workflow_progress(&self.workflow_id, progress, Utc::now())
            .await
        {
            tracing::warn!(error = %e, "cannot record progress");
        }
    }

    async fn publish(&self, kind: &str, data: Value) {
        self.app
            .events
            .publish(BusMessage::Event(event(kind, &self.workflow_id, data)))
            .await;
    }

    async fn log(&self, level: &str, message: String) {
        log_line(&self.app, &self.workflow_id, level, message).await;
    }

    async fn handle_event(&mut self, event: TrainingEvent) {
        match event {
            TrainingEvent::Started {
                start_epoch,
                epochs,
                steps_per_epoch,
                total_steps,
                train_images,
                val_images,
                classes,
            } => {
                self.steps_per_epoch = steps_per_epoch;
                self.total_steps = total_steps;
                self.epoch = start_epoch.saturating_sub(1);
                let message = if start_epoch > 1 {
                    format!(
                        "Resuming training from the checkpoint of epoch {} ({epochs} epochs)",
                        start_epoch - 1
                    )
                } else {
                    format!(
                        "Starting training: {epochs} epochs, {train_images} training / \
                         {val_images} validation images, classes {classes:?}"
                    )
                };
                self.log("INFO", message).await;
                self.progress(self.epoch * steps_per_epoch, 0.0).await;
            }
            TrainingEvent::Step {
                epoch,
                global_step,
                loss,
                accuracy,
                images_per_sec,
                eta_secs,
                ..
            } => {
                let due = self
                    .last_report
                    .is_none_or(|at| at.elapsed() >= self.interval);
                if !due {
                    return;
                }
                self.last_report = Some(Instant::now());
                let step_metrics = step_values(loss, accuracy);
                if self.latest.get("val_loss").is_none() {
                    self.latest = step_metrics.clone();
                }
                self.progress(global_step, eta_secs).await;
                let data = json!({
                    "epoch": epoch,
                    "step": global_step,
                    "total_steps": self.total_steps,
                    "metrics": step_metrics,
                    "eta_minutes": round2(eta_secs / 60.0),
                    "images_per_sec": round2(images_per_sec),
                    "gpu_utilization": Value::Null,
                    "memory_usage_gb": gb(current_rss_bytes()),
                });
                self.publish("training_progress", data).await;
            }
            TrainingEvent::Epoch {
                epochs,
                metrics,
                images_per_sec,
                eta_secs,
                ..
            } => {
                self.epoch = metrics.epoch;
                self.latest = epoch_values(&metrics);
                let step = metrics.epoch * self.steps_per_epoch;
                let point = MetricPoint {
                    timestamp: Utc::now(),
                    epoch: metrics.epoch as i64,
                    step: step as i64,
                    values: self.latest.to_string(),
                };
                if let Err(e) = self.app.store.add_metric(&self.workflow_id, &point).await {
                    tracing::warn!(error = %e, "cannot record epoch metrics");
                }
                if images_per_sec.is_finite() && images_per_sec > 0.0 {
                    let recorded = self
                        .app
                        .store
                        .record_throughput(
                            &self.model,
                            &self.device,
                            self.image_size,
                            images_per_sec,
                            Utc::now(),
                        )
                        .await;
                    if let Err(e) = recorded {
                        tracing::warn!(error = %e, "cannot record throughput");
                    }
                }
                self.progress(step, eta_secs).await;
                self.log("INFO", epoch_line(&metrics, epochs, images_per_sec))
                    .await;
                let data = json!({
                    "epoch": metrics.epoch,
                    "step": step,
                    "total_steps": self.total_steps,
                    "metrics": self.latest,
                    "eta_minutes": round2(eta_secs / 60.0),
                    "images_per_sec": round2(images_per_sec),
                    "gpu_utilization": Value::Null,
                    "memory_usage_gb": gb(current_rss_bytes()),
                });
                self.publish("training_progress", data).await;
            }
            TrainingEvent::Checkpoint { epoch, path } => match self.store_checkpoint(&path).await {
                Ok(()) => {
                    self.log("INFO", format!("Checkpoint saved (epoch {epoch})"))
                        .await;
                    let data = json!({
                        "epoch": epoch,
                        "checkpoint": format!("{}epoch-{epoch:04}/", self.checkpoint_prefix),
                    });
                    self.publish("checkpoint_saved", data).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot store the checkpoint");
                    self.log(
                        "WARN",
                        format!("Checkpoint of epoch {epoch} not stored: {e}"),
                    )
                    .await;
                }
            },
            TrainingEvent::EarlyStopped {
                epoch,
                best_epoch,
                best_val_loss,
            } => {
                self.log(
                    "INFO",
                    format!(
                        "Early stopping after epoch {epoch}: best val loss {best_val_loss:.4} \
                         at epoch {best_epoch}"
                    ),
                )
                .await;
            }
            TrainingEvent::Finished { .. } => {}
        }
    }

    /// Uploads the checkpoint directory: the epoch's files first, the `latest.json` pointer
    /// last, so a reader never sees a pointer to a partial checkpoint; then older epochs go.
    async fn store_checkpoint(&self, epoch_dir: &Path) -> Result<(), AppError> {
        let root = epoch_dir
            .parent()
            .ok_or_else(|| AppError::internal("checkpoint without a parent directory"))?;
        let mut files = files_under(root).map_err(AppError::internal)?;
        files.retain(|f| !f.ends_with("latest.json"));
        files.push(root.join("latest.json"));
        let epoch_name = epoch_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for path in files {
            let relative = path
                .strip_prefix(root)
                .map_err(AppError::internal)?
                .to_string_lossy()
                .to_string();
            if relative.starts_with("epoch-") && !relative.starts_with(&epoch_name) {
                continue; // an older epoch the engine is about to remove
            }
            let bytes = tokio::fs::read(&path).await.map_err(AppError::internal)?;
            self.app
                .objects
                .put(
                    &format!("{}{relative}", self.checkpoint_prefix),
                    Bytes::from(bytes),
                )
                .await?;
        }
        for (key, _) in self.app.objects.list(&self.checkpoint_prefix).await? {
            let relative = key.trim_start_matches(&self.checkpoint_prefix);
            if relative.starts_with("epoch-") && !relative.starts_with(&epoch_name) {
                self.app.objects.delete(&key).await?;
            }
        }
        Ok(())
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn gb(bytes: u64) -> f64 {
    round2(bytes as f64 / (1u64 << 30) as f64)
}

fn backend_name(device: &str) -> &'static str {
    if device.starts_with("cuda") {
        "cuda"
    } else if device.starts_with("tch") {
        "libtorch"
    } else {
        "flex"
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Resident memory of this process (Linux `/proc`; 0 elsewhere).
fn current_rss_bytes() -> u64 {
    resident_bytes("self")
}

/// Resident memory (`VmRSS`) of `process`, a pid or `self` (Linux `/proc`; 0 elsewhere).
pub fn resident_bytes(process: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Every file below `dir`, recursively.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries =
            std::fs::read_dir(&current).map_err(|e| format!("{}: {e}", current.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

async fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    tokio::fs::write(path, bytes)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}
