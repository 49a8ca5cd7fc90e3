//! The segmentation service (SAM3): uploads, tasks with reserved credits, results with signed
//! URLs (`edge`), the durable task job and its pipeline (`execute`), the backend API and the
//! client workers use to reach remote backends (`backend`).

pub mod backend;
pub mod edge;
pub mod engine;
pub mod execute;
pub mod urls;

use crate::jobs::{JobControl, JobHandler};
use crate::{App, AppError, AppResult};
use api_types::segmentation::{CocoRleView, InstanceView};
use async_trait::async_trait;
use chrono::Utc;
use domain::Job;
use ml::sam3::{BinaryMask, Instance};
use objects::keys;
use tracing::Instrument;

pub use engine::Segmenter;

/// Job kind of a segmentation task.
pub const SEGMENT_JOB: &str = "segmentation";

/// Object key of an uploaded image.
fn image_key(user_id: &str, image_id: &str) -> String {
    format!(
        "{}segmentation/images/{image_id}",
        keys::user_prefix(user_id)
    )
}

/// Object key of a task's mask PNG: the union of every instance, or one prompt's union.
fn mask_key(user_id: &str, task_id: &str, prompt: Option<usize>) -> String {
    let name = prompt.map_or_else(|| "mask.png".to_owned(), |i| format!("mask-p{i}.png"));
    format!(
        "{}segmentation/tasks/{task_id}/{name}",
        keys::user_prefix(user_id)
    )
}

/// Instances as the API shows them, labelled with their prompt; boxes are clipped to the
/// image (the model may predict them past its edges).
fn instance_views(prompt: &str, instances: &[Instance]) -> Vec<InstanceView> {
    instances
        .iter()
        .map(|inst| {
            let (w, h) = (inst.mask.width as f64, inst.mask.height as f64);
            let [x0, y0, x1, y1] = inst.box_xyxy.map(f64::from);
            let (x0, x1) = (x0.clamp(0.0, w), x1.clamp(0.0, w));
            let (y0, y1) = (y0.clamp(0.0, h), y1.clamp(0.0, h));
            let rle = inst.mask.coco_rle();
            InstanceView {
                label: prompt.to_owned(),
                score: (f64::from(inst.score) * 1e4).round() / 1e4,
                bbox: [x0, y0, (x1 - x0).max(0.0), (y1 - y0).max(0.0)]
                    .map(|v| (v * 100.0).round() / 100.0),
                area: inst.mask.area() as u64,
                segmentation: CocoRleView {
                    size: rle.size,
                    counts: rle.counts,
                },
                polygons: inst
                    .mask
                    .polygons()
                    .into_iter()
                    .map(|poly| poly.into_iter().flatten().collect())
                    .collect(),
            }
        })
        .collect()
}

/// An 8-bit PNG of the image's size, 255 where any instance is.
fn union_mask_png(width: usize, height: usize, instances: &[Instance]) -> AppResult<Vec<u8>> {
    let mut union = BinaryMask {
        width,
        height,
        data: vec![0; width * height],
    };
    for inst in instances {
        if inst.mask.data.len() == union.data.len() {
            for (u, &m) in union.data.iter_mut().zip(&inst.mask.data) {
                *u |= m;
            }
        }
    }
    union.to_png().map_err(AppError::internal)
}

/// Runs segmentation tasks: in process, or on the configured remote backends.
#[derive(Debug, Default)]
pub struct SegmentHandler;

#[async_trait]
impl JobHandler for SegmentHandler {
    fn kind(&self) -> &'static str {
        SEGMENT_JOB
    }

    async fn run(&self, app: &App, job: &Job, _control: &JobControl) -> Result<(), String> {
        let span = tracing::info_span!("segment_task", task_id = %job.subject_id);
        run_task(app, job).instrument(span).await
    }

    async fn give_up(&self, app: &App, job: &Job, reason: &str) {
        if let Err(e) = app
            .store
            .fail_seg_task(&job.subject_id, reason, Utc::now())
            .await
        {
            tracing::error!(task_id = %job.subject_id, error = %e, "cannot record the failed task");
        }
    }
}

/// Runs the job's task; any failure, reading the task included, ends it `error` (a failed job
/// is not retried, so a task left `pending` would stay so).
async fn run_task(app: &App, job: &Job) -> Result<(), String> {
    match execute_task(app, job).await {
        Ok(()) => Ok(()),
        Err(error) => {
            let message = public_message(&error);
            tracing::warn!(error = %error, "segmentation task failed");
            app.store
                .fail_seg_task(&job.subject_id, &message, Utc::now())
                .await
                .map_err(|e| e.to_string())?;
            Err(message)
        }
    }
}

async fn execute_task(app: &App, job: &Job) -> AppResult<()> {
    let Some(task) = app.store.seg_task_by_id(&job.subject_id).await? else {
        return Ok(());
    };
    if app.settings.segmentation.backends.is_empty() {
        let source = execute::ImageSource::of_task(app, &task).await?;
        execute::run(app, &task, &source, vec![task.text_prompt.clone()])
            .await
            .map(|_| ())
    } else {
        backend::remote_predict(app, &task).await
    }
}

/// What a task's `error_message` says: the client's fault in words, ours in general terms.
pub(crate) fn public_message(error: &AppError) -> String {
    match error {
        AppError::InvalidRequest { details, message } => details
            .get("reason")
            .and_then(|r| r.as_str())
            .map_or_else(|| message.clone(), |r| format!("{message}: {r}")),
        AppError::ModelNotLoaded(m) => format!("MODEL_NOT_LOADED: {m}"),
        AppError::InferenceFailed(_) => "INFERENCE_FAILED: the model failed on this image".into(),
        _ => "INTERNAL_ERROR: the task could not be processed".into(),
    }
}
