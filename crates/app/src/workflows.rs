//! Training workflows: submit, list, inspect, follow and cancel.

use crate::auth::Principal;
use crate::catalogue::{self, CatalogueModel};
use crate::estimate::{self, RunShape};
use crate::events::BusMessage;
use crate::memory;
use crate::{App, AppError, AppResult, FieldError, Validator};
use api_types::time::rfc3339;
use api_types::workflows::{
    CancelWorkflowResponse, CreateWorkflowRequest, CreateWorkflowResponse, Hyperparameters,
    LogLineView, LogsResponse, MetricsResponse, WorkflowConfig, WorkflowDetail, WorkflowEvent,
    WorkflowListQuery, WorkflowListResponse, WorkflowProgressView, WorkflowSummary,
};
use chrono::{DateTime, Duration, Utc};
use domain::dataset::{Manifest, Split, TaskType};
use domain::{IdKind, Workflow, WorkflowStatus};
use ml::train::{LrScheduleKind, OptimizerKind, TrainConfig};
use serde_json::{Map, Value, json};
use store::{CancelOutcome, NewJob, NewWorkflow, WorkflowQuery};

/// Job kind of training runs.
pub const TRAINING_JOB: &str = "training";

/// Most log lines one request returns.
const MAX_TAIL: u32 = 10_000;

/// A workflow of the caller, or 404 (also for other users' workflows).
pub async fn owned(app: &App, principal: &Principal, id: &str) -> AppResult<Workflow> {
    app.store
        .get_workflow(&principal.user_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("Workflow", id))
}

/// Submits a workflow for the caller.
pub async fn create(
    app: &App,
    principal: &Principal,
    request: CreateWorkflowRequest,
) -> AppResult<CreateWorkflowResponse> {
    let mut names = Validator::default();
    names.text("name", &request.name, 1, 200);
    names.check(request.description.chars().count() <= 2000, || {
        FieldError::new("description", "Must be at most 2000 characters")
    });
    names.finish()?;
    if let Some(project) = &request.project_id
        && app
            .store
            .get_project(&principal.user_id, project)
            .await?
            .is_none()
    {
        return Err(AppError::Validation(vec![FieldError::with_value(
            "project_id",
            "Project not found",
            json!(project),
        )]));
    }
    submit(
        app,
        principal,
        request.name.trim(),
        request.description.trim(),
        request.project_id.as_deref(),
        &request.config,
    )
    .await
}

/// Validates `config` against the catalogue, the dataset and the plan, then queues the run.
pub async fn submit(
    app: &App,
    principal: &Principal,
    name: &str,
    description: &str,
    project_id: Option<&str>,
    config: &WorkflowConfig,
) -> AppResult<CreateWorkflowResponse> {
    let model = model_of(config)?;
    // Every bad field is reported at once: dataset problems join the hyper-parameter ones.
    let manifest = dataset_manifest(app, principal, &config.dataset_id).await?;
    let memory_limit = crate::memory::training_limit(&app.settings.training);
    let train_config = train_config(
        model,
        &config.hyperparameters,
        manifest.as_ref(),
        memory_limit,
    )?;
    let Ok(manifest) = manifest else {
        return Err(AppError::internal("dataset error not reported"));
    };
    check_compute_quota(app, principal).await?;

    let train_images = manifest.split(Split::Train).count();
    let val_images = match manifest.split(Split::Val).count() {
        0 => (train_images as f64 * train_config.val_fraction).round() as usize,
        n => n,
    };
    let shape = RunShape {
        architecture: model.architecture,
        image_size: train_config.image_size(),
        train_images: train_images.saturating_sub(val_images.min(train_images)),
        val_images,
        epochs: train_config.epochs,
    };
    let device = &app.settings.training.device;
    let seconds = estimate::seconds(&shape, estimate::images_per_sec(app, &shape, device).await);

    let now = Utc::now();
    let id = IdKind::Workflow.new_id();
    let job_id = IdKind::Job.new_id();
    let config_json = serde_json::to_string(&train_config).map_err(AppError::internal)?;
    let workflow = app
        .store
        .insert_workflow_with_job(
            NewWorkflow {
                id: &id,
                user_id: &principal.user_id,
                project_id,
                name,
                description,
                task_type: model.task_type,
                model: model.id,
                dataset_id: &config.dataset_id,
                config: &config_json,
                total_epochs: train_config.epochs as i64,
                estimated_seconds: seconds,
                now,
            },
            NewJob {
                id: &job_id,
                kind: TRAINING_JOB,
                user_id: &principal.user_id,
                subject_id: &id,
                payload: "{}",
                max_attempts: app.settings.training.max_attempts.max(1),
                max_concurrent: Some(i64::from(principal.plan.limits().concurrent_workflows)),
                now,
            },
        )
        .await?;
    let queue_position = app.store.queue_position(&id).await?.unwrap_or(0);
    tracing::info!(workflow_id = %id, model = model.id, queue_position, "workflow queued");
    Ok(CreateWorkflowResponse {
        workflow_id: workflow.id,
        name: workflow.name,
        status: workflow.status.as_str().to_owned(),
        created_at: rfc3339(workflow.created_at),
        estimated_duration_minutes: round2(seconds / 60.0),
        queue_position,
    })
}

fn model_of(config: &WorkflowConfig) -> AppResult<CatalogueModel> {
    let mut check = Validator::default();
    check.check(
        catalogue::TASK_TYPES.contains(&config.task_type.as_str()),
        || {
            FieldError::with_value(
                "config.task_type",
                format!("Must be one of {}", catalogue::TASK_TYPES.join(", ")),
                json!(config.task_type),
            )
        },
    );
    check.finish()?;
    let available: Vec<&str> = catalogue::models()
        .into_iter()
        .filter(|m| m.task_type == config.task_type)
        .map(|m| m.id)
        .collect();
    match catalogue::find(&config.model) {
        Some(model) if model.task_type == config.task_type => Ok(model),
        Some(model) => Err(AppError::Validation(vec![FieldError::with_value(
            "config.model",
            format!(
                "Model '{}' is a {} model, not {}",
                model.id, model.task_type, config.task_type
            ),
            json!(config.model),
        )])),
        None => Err(AppError::InvalidRequest {
            message: "Invalid model name".into(),
            details: json!({
                "field": "model",
                "reason": format!("Model '{}' not found in registry", config.model),
                "available_models": available,
            }),
        }),
    }
}

/// The manifest of a ready dataset of the caller, or the field error explaining why not.
async fn dataset_manifest(
    app: &App,
    principal: &Principal,
    id: &str,
) -> AppResult<Result<Manifest, FieldError>> {
    let field = |message: String| FieldError::with_value("config.dataset_id", message, json!(id));
    match crate::datasets::manifest(app, principal, id).await {
        Ok(manifest) => Ok(Ok(manifest)),
        Err(AppError::NotFound { .. }) => Ok(Err(field("Dataset not found".into()))),
        Err(AppError::Conflict { message, .. }) => Ok(Err(field(message))),
        Err(other) => Err(other),
    }
}

/// The engine configuration for `hyper` after range checks naming every bad field, including a
/// run estimated to need more than `memory_limit` bytes.
fn train_config(
    model: CatalogueModel,
    hyper: &Hyperparameters,
    manifest: Result<&Manifest, &FieldError>,
    memory_limit: u64,
) -> AppResult<TrainConfig> {
    let mut check = Validator::default();
    let int_in = |check: &mut Validator, field: &str, value: Option<i64>, lo: i64, hi: i64| {
        if let Some(v) = value {
            check.check((lo..=hi).contains(&v), || {
                let message = if v < 1 {
                    "Must be a positive integer".to_owned()
                } else {
                    format!("Must be between {lo} and {hi}")
                };
                FieldError::with_value(format!("hyperparameters.{field}"), message, json!(v))
            });
        }
    };
    int_in(&mut check, "epochs", hyper.epochs, 1, 1000);
    int_in(
        &mut check,
        "batch_size",
        hyper.batch_size,
        BATCH_SIZES.0,
        BATCH_SIZES.1,
    );
    int_in(
        &mut check,
        "image_size",
        hyper.image_size,
        IMAGE_SIZES.0,
        IMAGE_SIZES.1,
    );
    int_in(
        &mut check,
        "early_stopping_patience",
        hyper.early_stopping_patience,
        0,
        1000,
    );
    let real_in =
        |check: &mut Validator, field: &str, value: Option<f64>, ok: fn(f64) -> bool, why: &str| {
            if let Some(v) = value {
                check.check(v.is_finite() && ok(v), || {
                    FieldError::with_value(format!("hyperparameters.{field}"), why, json!(v))
                });
            }
        };
    real_in(
        &mut check,
        "learning_rate",
        hyper.learning_rate,
        |v| v > 0.0 && v <= 1.0,
        "Must be greater than 0 and at most 1",
    );
    real_in(
        &mut check,
        "weight_decay",
        hyper.weight_decay,
        |v| (0.0..=1.0).contains(&v),
        "Must be between 0 and 1",
    );
    real_in(
        &mut check,
        "momentum",
        hyper.momentum,
        |v| (0.0..1.0).contains(&v),
        "Must be in [0, 1)",
    );
    real_in(
        &mut check,
        "warmup_epochs",
        hyper.warmup_epochs,
        |v| (0.0..=100.0).contains(&v),
        "Must be between 0 and 100",
    );
    real_in(
        &mut check,
        "val_fraction",
        hyper.val_fraction,
        |v| (0.0..=0.9).contains(&v),
        "Must be between 0 and 0.9",
    );
    parse_choice(
        &mut check,
        "optimizer",
        hyper.optimizer.as_deref(),
        &[
            ("adam", OptimizerKind::Adam),
            ("adamw", OptimizerKind::Adamw),
            ("sgd", OptimizerKind::Sgd),
        ],
    );
    parse_choice(
        &mut check,
        "lr_schedule",
        hyper.lr_schedule.as_deref(),
        &[
            ("constant", LrScheduleKind::Constant),
            ("step", LrScheduleKind::Step),
            ("cosine", LrScheduleKind::Cosine),
        ],
    );
    crate::recipe::check(&mut check, hyper);
    // Defaults come from the dataset (the training recipe); the memory check judges them too.
    let resolved = manifest
        .ok()
        .map(|m| crate::recipe::resolve(model, hyper, m));
    check_memory(
        &mut check,
        model,
        &crate::recipe::sized(hyper, resolved.as_ref()),
        memory_limit,
    );
    match manifest {
        Ok(manifest) => check_dataset(&mut check, model, manifest),
        Err(error) => {
            let error = error.clone();
            check.check(false, || error);
        }
    }
    check.finish()?;
    let Some(config) = resolved else {
        return Err(AppError::internal("dataset error not reported"));
    };
    config.validate().map_err(|e| {
        AppError::Validation(vec![FieldError::new("hyperparameters", e.to_string())])
    })?;
    Ok(config)
}

/// Accepted `batch_size`s, inclusive.
const BATCH_SIZES: (i64, i64) = (1, 1024);

/// Accepted `image_size`s, inclusive.
const IMAGE_SIZES: (i64, i64) = (16, 1024);

/// Refuses a run estimated to need more memory than `limit` (see [`crate::memory`]), naming
/// `batch_size` when a smaller batch would fit and `image_size` when not even one image does.
/// Out-of-range sizes are left to their own range errors.
fn check_memory(check: &mut Validator, model: CatalogueModel, hyper: &Hyperparameters, limit: u64) {
    let in_range = |value: i64, (lo, hi): (i64, i64)| (lo..=hi).contains(&value);
    let batch = match hyper.batch_size {
        Some(v) if in_range(v, BATCH_SIZES) => v as usize,
        Some(_) => return,
        None => TrainConfig::default().batch_size,
    };
    let size = match hyper.image_size {
        Some(v) if in_range(v, IMAGE_SIZES) => v as usize,
        Some(_) => return,
        None => model.architecture.default_image_size(),
    };
    let needed = memory::training_bytes(model.architecture, batch, size);
    if needed <= limit {
        return;
    }
    let why = format!(
        "Training {} on batches of {batch} images of {size}x{size} pixels needs about {} of \
         memory, more than the {} a training worker may use (training.max_memory_bytes)",
        model.id,
        memory::gib(needed),
        memory::gib(limit),
    );
    let error = match memory::largest_batch(model.architecture, size, limit) {
        Some(fit) => FieldError::with_value(
            "hyperparameters.batch_size",
            format!("{why}; at most {fit} images per batch fit at this image size"),
            json!(batch),
        ),
        None => FieldError::with_value(
            "hyperparameters.image_size",
            format!("{why}; not even one image per batch fits at this image size"),
            json!(size),
        ),
    };
    check.check(false, || error);
}

/// Whether the dataset can train `model`.
fn check_dataset(check: &mut Validator, model: CatalogueModel, manifest: &Manifest) {
    let wanted = match model.task_type {
        "classification" => TaskType::Classification,
        "detection" => TaskType::Detection,
        _ => TaskType::Segmentation,
    };
    check.check(manifest.task == wanted, || {
        FieldError::new(
            "config.dataset_id",
            format!(
                "The dataset is annotated for {}, not {}",
                catalogue::task_name(manifest.task),
                model.task_type
            ),
        )
    });
    // A detector may look for a single kind of object; a classifier needs something to tell
    // apart.
    let (least, message) = if wanted == TaskType::Detection {
        (1, "The dataset needs at least 1 class")
    } else {
        (2, "The dataset needs at least 2 classes")
    };
    check.check(manifest.classes.len() >= least, || {
        FieldError::new("config.dataset_id", message)
    });
    check.check(manifest.split(Split::Train).next().is_some(), || {
        FieldError::new("config.dataset_id", "The dataset has no training images")
    });
}

fn parse_choice<T: Copy>(
    check: &mut Validator,
    field: &str,
    value: Option<&str>,
    choices: &[(&str, T)],
) -> Option<T> {
    let value = value?;
    let found = choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value.trim()))
        .map(|(_, v)| *v);
    check.check(found.is_some(), || {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        FieldError::with_value(
            format!("hyperparameters.{field}"),
            format!("Must be one of {}", names.join(", ")),
            json!(value),
        )
    });
    found
}

async fn check_compute_quota(app: &App, principal: &Principal) -> AppResult<()> {
    let usage = app.store.usage(&principal.user_id).await?;
    let limit_hours = f64::from(principal.plan.limits().compute_hours);
    let used_hours = usage.compute_seconds / 3600.0;
    if used_hours >= limit_hours {
        return Err(AppError::Forbidden(format!(
            "Compute quota exhausted: {used_hours:.2} of {limit_hours} hours used"
        )));
    }
    Ok(())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Percent done: by steps once training reported them, else by epochs.
fn percentage(workflow: &Workflow) -> u32 {
    let fraction = match workflow.status {
        WorkflowStatus::Completed => 1.0,
        _ if workflow.total_steps > 0 => workflow.step as f64 / workflow.total_steps as f64,
        _ if workflow.total_epochs > 0 => {
            workflow.current_epoch as f64 / workflow.total_epochs as f64
        }
        _ => 0.0,
    };
    (fraction.clamp(0.0, 1.0) * 100.0).floor() as u32
}

fn json_object(text: Option<&str>) -> Map<String, Value> {
    text.and_then(|t| serde_json::from_str::<Map<String, Value>>(t).ok())
        .unwrap_or_default()
}

/// Parses the query's filters.
pub fn list_query(query: &WorkflowListQuery) -> AppResult<WorkflowQuery> {
    let page = crate::datasets::page(query.page, query.limit)?;
    let mut check = Validator::default();
    let status = query
        .status
        .as_deref()
        .map(|s| (s, WorkflowStatus::parse(s)));
    check.check(!matches!(status, Some((_, None))), || {
        let names: Vec<&str> = WorkflowStatus::ALL.iter().map(|s| s.as_str()).collect();
        FieldError::with_value(
            "status",
            format!("Must be one of {}", names.join(", ")),
            json!(query.status),
        )
    });
    let sort = query.sort.as_deref().unwrap_or("-created_at");
    check.check(matches!(sort, "created_at" | "-created_at"), || {
        FieldError::with_value("sort", "Must be created_at or -created_at", json!(sort))
    });
    check.finish()?;
    Ok(WorkflowQuery {
        status: status.and_then(|(_, s)| s),
        page,
        newest_first: sort == "-created_at",
    })
}

/// The caller's workflows.
pub async fn list(
    app: &App,
    principal: &Principal,
    query: WorkflowQuery,
) -> AppResult<WorkflowListResponse> {
    let (workflows, total) = app.store.list_workflows(&principal.user_id, query).await?;
    let shown = query.page.offset() + workflows.len() as i64;
    Ok(WorkflowListResponse {
        workflows: workflows
            .iter()
            .map(|w| WorkflowSummary {
                workflow_id: w.id.clone(),
                name: w.name.clone(),
                status: w.status.as_str().to_owned(),
                progress: percentage(w),
                created_at: rfc3339(w.created_at),
                started_at: w.started_at.map(rfc3339),
            })
            .collect(),
        total,
        page: query.page.page,
        limit: query.page.limit,
        has_next: shown < total,
    })
}

/// One workflow of the caller in detail.
pub async fn get(app: &App, principal: &Principal, id: &str) -> AppResult<WorkflowDetail> {
    let w = owned(app, principal, id).await?;
    let queue_position = match w.status {
        WorkflowStatus::Pending => app.store.queue_position(&w.id).await?,
        _ => None,
    };
    let estimated_completion_at = (w.status == WorkflowStatus::Training)
        .then(|| w.updated_at + Duration::milliseconds((w.estimated_seconds * 1000.0) as i64))
        .map(rfc3339);
    Ok(WorkflowDetail {
        progress: WorkflowProgressView {
            current_epoch: w.current_epoch,
            total_epochs: w.total_epochs,
            percentage: percentage(&w),
        },
        metrics: json_object(w.metrics.as_deref()),
        resources: w
            .resources
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
        config: serde_json::from_str(&w.config).unwrap_or(Value::Null),
        workflow_id: w.id,
        name: w.name,
        description: w.description,
        status: w.status.as_str().to_owned(),
        created_at: rfc3339(w.created_at),
        started_at: w.started_at.map(rfc3339),
        completed_at: w.completed_at.map(rfc3339),
        estimated_completion_at,
        task_type: w.task_type,
        model: w.model,
        dataset_id: w.dataset_id,
        queue_position,
        error: w.error,
        cancelled_at: w.cancelled_at.map(rfc3339),
    })
}

/// Metric history of one workflow of the caller, optionally only some metrics, from a time on.
pub async fn metrics(
    app: &App,
    principal: &Principal,
    id: &str,
    metric: Option<&str>,
    start_time: Option<&str>,
) -> AppResult<MetricsResponse> {
    let since = start_time
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    AppError::invalid_field(
                        "start_time",
                        "Must be an RFC 3339 time like 2025-10-17T10:00:00Z",
                    )
                })
        })
        .transpose()?;
    let wanted: Option<Vec<&str>> = metric.map(|m| {
        m.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    });
    let workflow = owned(app, principal, id).await?;
    let points = app.store.metrics(&workflow.id, since).await?;
    let metrics = points
        .into_iter()
        .map(|point| {
            let mut row = Map::new();
            row.insert("timestamp".into(), json!(rfc3339(point.timestamp)));
            row.insert("epoch".into(), json!(point.epoch));
            row.insert("step".into(), json!(point.step));
            for (name, value) in json_object(Some(&point.values)) {
                if wanted.as_ref().is_none_or(|w| w.contains(&name.as_str())) {
                    row.insert(name, value);
                }
            }
            row
        })
        .collect();
    Ok(MetricsResponse {
        workflow_id: workflow.id,
        metrics,
    })
}

/// The last `tail` log lines of one workflow of the caller.
pub async fn logs(
    app: &App,
    principal: &Principal,
    id: &str,
    tail: Option<u32>,
) -> AppResult<LogsResponse> {
    let tail = tail.unwrap_or(100);
    Validator::default()
        .check((1..=MAX_TAIL).contains(&tail), || {
            FieldError::with_value(
                "tail",
                format!("Must be between 1 and {MAX_TAIL}"),
                json!(tail),
            )
        })
        .finish()?;
    let workflow = owned(app, principal, id).await?;
    let (lines, total_lines) = app.store.logs(&workflow.id, tail).await?;
    Ok(LogsResponse {
        workflow_id: workflow.id,
        logs: lines
            .into_iter()
            .map(|l| LogLineView {
                timestamp: rfc3339(l.timestamp),
                level: l.level,
                message: l.message,
            })
            .collect(),
        total_lines,
    })
}

/// Cancels a pending or training workflow of the caller; its worker stops within one step.
pub async fn cancel(
    app: &App,
    principal: &Principal,
    id: &str,
) -> AppResult<CancelWorkflowResponse> {
    match app
        .store
        .cancel_workflow(&principal.user_id, id, Utc::now())
        .await?
    {
        CancelOutcome::NotFound => Err(AppError::not_found("Workflow", id)),
        CancelOutcome::Finished(w) => Err(AppError::Conflict {
            message: format!("Workflow '{id}' is already {}", w.status.as_str()),
            details: json!({ "status": w.status.as_str() }),
        }),
        CancelOutcome::Cancelled(w) => {
            let cancelled_at = w.cancelled_at.unwrap_or_else(Utc::now);
            app.events
                .publish(BusMessage::Cancel {
                    workflow_id: w.id.clone(),
                })
                .await;
            let line = domain::LogLine {
                timestamp: cancelled_at,
                level: "WARN".into(),
                message: "Cancelled by the user".into(),
            };
            if let Err(e) = app.store.add_log(&w.id, &line).await {
                tracing::warn!(error = %e, "cannot log the cancellation");
            }
            tracing::info!(workflow_id = %w.id, "workflow cancelled");
            Ok(CancelWorkflowResponse {
                workflow_id: w.id,
                status: w.status.as_str().to_owned(),
                cancelled_at: rfc3339(cancelled_at),
            })
        }
    }
}

/// A WebSocket message about `workflow_id`.
pub fn event(kind: &str, workflow_id: &str, data: Value) -> WorkflowEvent {
    WorkflowEvent {
        kind: kind.to_owned(),
        workflow_id: workflow_id.to_owned(),
        timestamp: rfc3339(Utc::now()),
        data,
    }
}
