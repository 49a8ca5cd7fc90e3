//! Batch inference: a durable job answers a list of images with a completed workflow's model;
//! results accumulate per image (predictions or an error) and survive worker restarts.

use crate::auth::Principal;
use crate::inference::checked_image;
use crate::jobs::{JobControl, JobHandler};
use crate::{App, AppError, AppResult, FieldError, Validator};
use api_types::inference::{BatchAccepted, BatchRequest, BatchStatusView, PredictRequest};
use api_types::time::rfc3339;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{Duration, Utc};
use domain::{IdKind, Job, WorkflowStatus};
use objects::keys;
use serde_json::{Value, json};
use store::{BatchRow, NewJob};

/// Job kind of batch inference.
pub const BATCH_JOB: &str = "batch_inference";

/// Most images in one batch.
const MAX_IMAGES: usize = 100;

fn input_key(user_id: &str, workflow_id: &str, batch_id: &str) -> String {
    format!(
        "{}batches/{batch_id}/input.json",
        keys::workflow_prefix(user_id, workflow_id)
    )
}

/// Queues a batch for a completed workflow of the caller.
pub async fn submit(
    app: &App,
    principal: &Principal,
    workflow_id: &str,
    request: BatchRequest,
) -> AppResult<BatchAccepted> {
    let workflow = crate::inference::serving(app, principal, workflow_id).await?;
    let count = request.images.len();
    Validator::default()
        .check((1..=MAX_IMAGES).contains(&count), || {
            FieldError::with_value(
                "images",
                format!("Must hold between 1 and {MAX_IMAGES} images"),
                json!(count),
            )
        })
        .finish()?;
    let mut check = Validator::default();
    for (i, image) in request.images.iter().enumerate() {
        check.check(
            image.image_url.is_some() != image.image_base64.is_some(),
            || {
                FieldError::new(
                    format!("images[{i}]"),
                    "Give exactly one of image_url and image_base64",
                )
            },
        );
    }
    check.finish()?;
    let id = IdKind::Job.new_id();
    let now = Utc::now();
    let input = serde_json::to_vec(&request.images).map_err(AppError::internal)?;
    app.objects
        .put(
            &input_key(&principal.user_id, &workflow.id, &id),
            Bytes::from(input),
        )
        .await?;
    let batch = BatchRow {
        id: id.clone(),
        user_id: principal.user_id.clone(),
        workflow_id: workflow.id.clone(),
        status: "processing".into(),
        total_images: count as i64,
        completed_images: 0,
        results: "[]".into(),
        created_at: now,
        completed_at: None,
    };
    let job = NewJob {
        id: &id,
        kind: BATCH_JOB,
        user_id: &principal.user_id,
        subject_id: &id,
        payload: "{}",
        max_attempts: 3,
        max_concurrent: None,
        now,
    };
    app.store.insert_batch_with_job(&batch, job).await?;
    // Loading the model, then about a tenth of a second per image on CPU (downloads aside).
    let expected = Duration::milliseconds(2000 + 100 * count as i64);
    Ok(BatchAccepted {
        job_id: id,
        status: "processing".into(),
        total_images: count,
        estimated_completion_time: rfc3339(now + expected),
    })
}

/// A batch of the caller for one of their workflows.
pub async fn get(
    app: &App,
    principal: &Principal,
    workflow_id: &str,
    batch_id: &str,
) -> AppResult<BatchStatusView> {
    let batch = app
        .store
        .get_batch(&principal.user_id, batch_id)
        .await?
        .filter(|b| b.workflow_id == workflow_id)
        .ok_or_else(|| AppError::not_found("Batch job", batch_id))?;
    Ok(BatchStatusView {
        results: serde_json::from_str(&batch.results).map_err(AppError::internal)?,
        job_id: batch.id,
        status: batch.status,
        total_images: batch.total_images,
        completed_images: batch.completed_images,
        completed_at: batch.completed_at.map(rfc3339),
    })
}

/// Runs batch inference jobs.
#[derive(Debug)]
pub struct BatchHandler;

#[async_trait]
impl JobHandler for BatchHandler {
    fn kind(&self) -> &'static str {
        BATCH_JOB
    }

    async fn run(&self, app: &App, job: &Job, control: &JobControl) -> Result<(), String> {
        run_batch(app, job, control)
            .await
            .map_err(|e| e.to_string())
    }

    async fn give_up(&self, app: &App, job: &Job, reason: &str) {
        if let Ok(Some(batch)) = app.store.get_batch(&job.user_id, &job.subject_id).await {
            let _ = app
                .store
                .update_batch(
                    &batch.id,
                    "failed",
                    batch.completed_images,
                    &batch.results,
                    Some(Utc::now()),
                )
                .await;
            tracing::warn!(batch_id = %batch.id, %reason, "batch given up");
        }
    }
}

async fn run_batch(app: &App, job: &Job, control: &JobControl) -> AppResult<()> {
    let Some(batch) = app.store.get_batch(&job.user_id, &job.subject_id).await? else {
        return Ok(());
    };
    let Some(workflow) = app.store.workflow_by_id(&batch.workflow_id).await? else {
        return Ok(());
    };
    if workflow.status != WorkflowStatus::Completed {
        return Err(AppError::internal("the workflow no longer serves"));
    }
    let images: Vec<PredictRequest> = serde_json::from_slice(
        &app.objects
            .get(&input_key(&batch.user_id, &batch.workflow_id, &batch.id))
            .await?,
    )
    .map_err(AppError::internal)?;
    let (engine, _) = app.models.engine(app, &workflow).await?;
    // A retried job continues after the images already answered.
    let mut results: Vec<Value> = serde_json::from_str(&batch.results).unwrap_or_default();
    for (index, image) in images.iter().enumerate().skip(results.len()) {
        if control.should_stop() {
            return Err(AppError::internal("stopped"));
        }
        let mut entry = match &image.image_url {
            Some(url) => json!({ "image_url": url }),
            None => json!({ "index": index }),
        };
        let answer = match checked_image(app, image).await {
            Ok(bytes) => engine.predict(bytes).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(predictions) => entry["predictions"] = json!(predictions),
            Err(error) => entry["error"] = json!(error),
        }
        results.push(entry);
        let done = results.len() == images.len();
        app.store
            .update_batch(
                &batch.id,
                if done { "completed" } else { "processing" },
                results.len() as i64,
                &Value::Array(results.clone()).to_string(),
                done.then(Utc::now),
            )
            .await?;
    }
    Ok(())
}
