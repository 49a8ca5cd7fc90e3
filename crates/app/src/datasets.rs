//! Datasets: streamed upload, background ingest, listing, validation, export, deletion.
//!
//! The upload handler streams the archive into object storage ([`store_archive`]) and then
//! registers it ([`create`]) with an ingest job in the same transaction. The job
//! ([`IngestHandler`]) unpacks the archive with the `datasets` crate, stores every image and the
//! normalised manifest, and marks the dataset `ready` or `failed` with a readable reason.

use crate::App;
use crate::auth::Principal;
use crate::error::{AppError, AppResult, FieldError, Validator};
use crate::jobs::{JobControl, JobHandler};
use api_types::datasets::{
    ClassCountView, DatasetDetail, DatasetListResponse, DatasetSummary, StatisticsView,
    ValidateRequest, ValidateResponse, ValidationIssueView,
};
use api_types::time::rfc3339;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use datasets::{DatasetFormat, Expectations, Lang, Limits, Manifest, Problem, Statistics};
use domain::{Dataset, DatasetStatus, IdKind, Job};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};
use objects::keys;
use serde_json::json;
use std::path::{Path, PathBuf};
use store::{DatasetDeletion, DatasetOutcome, NewDataset, NewJob, Page};

/// Job kind of dataset ingest.
pub const INGEST_JOB: &str = "dataset_ingest";
/// The `error` of a dataset whose ingest failed for a reason of ours (storage, disk, a bug);
/// the details are in the log, never shown to the client.
pub const INTERNAL_FAILURE: &str =
    "internal error while processing the dataset; please upload it again later";
const BYTES_PER_MB: f64 = 1_048_576.0;
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

/// An archive streamed into object storage, not yet registered.
#[derive(Debug, Clone)]
pub struct StoredArchive {
    /// The id the dataset will get.
    pub dataset_id: String,
    /// Object key of the archive.
    pub key: String,
    /// Bytes received.
    pub size: u64,
}

/// The text fields of the upload form.
#[derive(Debug, Clone, Default)]
pub struct UploadForm {
    /// Display name (required).
    pub name: Option<String>,
    /// `coco`, `yolo`, `voc`, `imagefolder` or `auto` (required).
    pub format: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Project to file it under.
    pub project_id: Option<String>,
}

fn too_large(limit: u64) -> AppError {
    AppError::PayloadTooLarge { limit_bytes: limit }
}

fn storage_quota(principal: &Principal) -> u64 {
    u64::from(principal.plan.limits().storage_gb) * 1_000_000_000
}

fn quota_exceeded(used: u64, principal: &Principal) -> AppError {
    AppError::Forbidden(format!(
        "Storage quota exceeded: {used} of {} bytes used",
        storage_quota(principal)
    ))
}

/// Bytes the caller has stored (profile usage).
async fn used_storage(app: &App, principal: &Principal) -> AppResult<u64> {
    Ok(u64::try_from(app.store.usage(&principal.user_id).await?.storage_bytes).unwrap_or(0))
}

/// Refuses to store `incoming` more bytes when they would take the caller past the storage
/// quota of their plan (403 `FORBIDDEN`).
pub async fn check_storage_quota(app: &App, principal: &Principal, incoming: u64) -> AppResult<()> {
    let used = used_storage(app, principal).await?;
    if used.saturating_add(incoming) > storage_quota(principal) {
        return Err(quota_exceeded(used, principal));
    }
    Ok(())
}

/// Refuses an upload up front when its declared size is over the limit or the caller's quota.
/// Without a declared size the quota is enforced on the bytes streamed ([`store_archive`]).
pub async fn check_declared_size(
    app: &App,
    principal: &Principal,
    content_length: Option<u64>,
) -> AppResult<()> {
    let limit = app.settings.datasets.max_upload_bytes;
    if content_length.is_some_and(|len| len > limit.saturating_add(64 * 1024)) {
        return Err(too_large(limit));
    }
    check_storage_quota(app, principal, content_length.unwrap_or(0).min(limit)).await
}

/// Streams an archive into object storage without holding it in memory; stops (and removes
/// what was written) as soon as it exceeds the upload limit or, with the bytes the caller
/// already stores, the storage quota of their plan (whatever `Content-Length` declared).
pub async fn store_archive<S, E>(
    app: &App,
    principal: &Principal,
    mut body: S,
) -> AppResult<StoredArchive>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
    E: std::fmt::Display,
{
    let limit = app.settings.datasets.max_upload_bytes;
    let used = used_storage(app, principal).await?;
    let quota = storage_quota(principal);
    let dataset_id = IdKind::Dataset.new_id();
    let key = keys::dataset_archive(&principal.user_id, &dataset_id);
    let upload = app
        .objects
        .store()
        .put_multipart(&ObjectPath::from(key.as_str()))
        .await
        .map_err(objects::ObjectsError::from)?;
    let mut writer = WriteMultipart::new(upload);
    let mut size = 0u64;
    let failure = loop {
        match body.next().await {
            None => break None,
            Some(Err(e)) => {
                break Some(AppError::InvalidRequest {
                    message: "Upload interrupted".into(),
                    details: json!({ "field": "file", "reason": e.to_string() }),
                });
            }
            Some(Ok(chunk)) => {
                size += chunk.len() as u64;
                if size > limit {
                    break Some(too_large(limit));
                }
                if used.saturating_add(size) > quota {
                    break Some(quota_exceeded(used, principal));
                }
                if let Err(e) = writer.wait_for_capacity(8).await {
                    break Some(AppError::internal(e));
                }
                writer.write(&chunk);
            }
        }
    };
    match failure {
        Some(error) => {
            if let Err(e) = writer.abort().await {
                tracing::warn!(error = %e, "cannot abort the partial upload");
            }
            Err(error)
        }
        None => {
            writer.finish().await.map_err(AppError::internal)?;
            Ok(StoredArchive {
                dataset_id,
                key,
                size,
            })
        }
    }
}

/// Registers an uploaded archive and queues its ingest. On invalid fields the archive is
/// removed again, so nothing is half-stored.
pub async fn create(
    app: &App,
    principal: &Principal,
    form: UploadForm,
    archive: Option<StoredArchive>,
) -> AppResult<DatasetSummary> {
    let result = register(app, principal, &form, archive.as_ref()).await;
    if let (Err(_), Some(archive)) = (&result, &archive) {
        app.objects.delete(&archive.key).await?;
    }
    result
}

async fn register(
    app: &App,
    principal: &Principal,
    form: &UploadForm,
    archive: Option<&StoredArchive>,
) -> AppResult<DatasetSummary> {
    let name = form.name.as_deref().unwrap_or_default();
    let format = form.format.as_deref().unwrap_or_default();
    let description = form.description.as_deref().unwrap_or_default();
    Validator::default()
        .check(archive.is_some(), || {
            FieldError::new("file", "An archive (.zip, .tar, .tar.gz) is required")
        })
        .check(form.name.is_some(), || FieldError::new("name", "Required"))
        .text("name", name, 1, 200)
        .check(DatasetFormat::parse_choice(format).is_ok(), || {
            FieldError::with_value(
                "format",
                "Must be one of coco, yolo, voc, imagefolder, auto",
                json!(format),
            )
        })
        .text("description", description, 0, 2000)
        .finish()?;
    let Some(archive) = archive else {
        return Err(AppError::internal("archive checked above"));
    };
    if let Some(project_id) = &form.project_id {
        app.store
            .get_project(&principal.user_id, project_id)
            .await?
            .ok_or_else(|| AppError::not_found("Project", project_id.clone()))?;
    }
    let size = i64::try_from(archive.size).unwrap_or(i64::MAX);
    let now = Utc::now();
    let job_id = IdKind::Job.new_id();
    let dataset = NewDataset {
        id: &archive.dataset_id,
        user_id: &principal.user_id,
        project_id: form.project_id.as_deref(),
        name: name.trim(),
        description: description.trim(),
        format: &format.trim().to_lowercase(),
        size_bytes: size,
        now,
    };
    let job = NewJob {
        id: &job_id,
        kind: INGEST_JOB,
        user_id: &principal.user_id,
        subject_id: &archive.dataset_id,
        payload: "{}",
        max_attempts: 3,
        max_concurrent: None,
        now,
    };
    let dataset = app.store.insert_dataset_with_job(dataset, job).await?;
    app.store.add_usage(&principal.user_id, 0.0, size).await?;
    tracing::info!(dataset_id = %dataset.id, size, "dataset uploaded, ingest queued");
    Ok(summary(&dataset))
}

fn summary(dataset: &Dataset) -> DatasetSummary {
    DatasetSummary {
        dataset_id: dataset.id.clone(),
        name: dataset.name.clone(),
        format: dataset.format.clone(),
        size_mb: mb(dataset.size_bytes),
        file_count: dataset.file_count,
        status: dataset.status.as_str().to_owned(),
        created_at: rfc3339(dataset.created_at),
    }
}

fn mb(bytes: i64) -> f64 {
    (bytes as f64 / BYTES_PER_MB * 100.0).round() / 100.0
}

/// Checks `page`/`limit` query values.
pub fn page(page: Option<u32>, limit: Option<u32>) -> AppResult<Page> {
    page_within(page, limit, DEFAULT_LIMIT, MAX_LIMIT)
}

/// `page` (default 1) and `limit` (default `default`, at most `max`), checked.
pub(crate) fn page_within(
    page: Option<u32>,
    limit: Option<u32>,
    default: u32,
    max: u32,
) -> AppResult<Page> {
    let (page, limit) = (page.unwrap_or(1), limit.unwrap_or(default));
    Validator::default()
        .check(page >= 1, || {
            FieldError::with_value("page", "Must be at least 1", json!(page))
        })
        .check((1..=max).contains(&limit), || {
            FieldError::with_value(
                "limit",
                format!("Must be between 1 and {max}"),
                json!(limit),
            )
        })
        .finish()?;
    Ok(Page { page, limit })
}

/// The caller's datasets.
pub async fn list(app: &App, principal: &Principal, page: Page) -> AppResult<DatasetListResponse> {
    let (datasets, total) = app.store.list_datasets(&principal.user_id, page).await?;
    Ok(DatasetListResponse {
        datasets: datasets.iter().map(summary).collect(),
        total,
        page: page.page,
        limit: page.limit,
    })
}

async fn owned(app: &App, principal: &Principal, id: &str) -> AppResult<Dataset> {
    owned_by(app, &principal.user_id, id).await
}

async fn owned_by(app: &App, user_id: &str, id: &str) -> AppResult<Dataset> {
    app.store
        .get_dataset(user_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("Dataset", id))
}

/// One of the caller's datasets with its statistics.
pub async fn get(app: &App, principal: &Principal, id: &str) -> AppResult<DatasetDetail> {
    let dataset = owned(app, principal, id).await?;
    let statistics = match &dataset.statistics {
        Some(text) => {
            let stats: Statistics = serde_json::from_str(text).map_err(AppError::internal)?;
            Some(StatisticsView {
                total_images: stats.total_images,
                train_images: stats.train_images,
                val_images: stats.val_images,
                test_images: stats.test_images,
                classes: stats
                    .classes
                    .into_iter()
                    .map(|c| ClassCountView {
                        name: c.name,
                        count: c.count,
                    })
                    .collect(),
            })
        }
        None => None,
    };
    Ok(DatasetDetail {
        dataset_id: dataset.id,
        name: dataset.name,
        description: dataset.description,
        format: dataset.format,
        size_mb: mb(dataset.size_bytes),
        file_count: dataset.file_count,
        status: dataset.status.as_str().to_owned(),
        statistics,
        error: dataset.error,
        project_id: dataset.project_id,
        created_at: rfc3339(dataset.created_at),
        updated_at: rfc3339(dataset.updated_at),
    })
}

/// Deletes one of the caller's datasets and every object stored for it; 409 `CONFLICT` (naming
/// them) while queued or running workflows use it.
pub async fn delete(app: &App, principal: &Principal, id: &str) -> AppResult<()> {
    owned(app, principal, id).await?;
    let prefix = keys::dataset_prefix(&principal.user_id, id);
    let stored: u64 = app
        .objects
        .list(&prefix)
        .await?
        .iter()
        .map(|(_, size)| size)
        .sum();
    let mut outcome = app.store.delete_dataset(&principal.user_id, id).await?;
    if matches!(&outcome, DatasetDeletion::InUse(w) if w.is_empty()) {
        // The last workflow using it ended between the check and the listing: try again.
        outcome = app.store.delete_dataset(&principal.user_id, id).await?;
    }
    match outcome {
        DatasetDeletion::Deleted => {}
        DatasetDeletion::NotFound => return Err(AppError::not_found("Dataset", id)),
        DatasetDeletion::InUse(workflow_ids) => {
            return Err(AppError::Conflict {
                message: format!(
                    "Dataset '{id}' is used by queued or running workflows; cancel them or \
                     wait until they end"
                ),
                details: json!({ "dataset_id": id, "workflow_ids": workflow_ids }),
            });
        }
    }
    app.objects.delete_prefix(&prefix).await?;
    app.store
        .add_usage(&principal.user_id, 0.0, -i64::try_from(stored).unwrap_or(0))
        .await?;
    tracing::info!(dataset_id = %id, stored, "dataset deleted");
    Ok(())
}

async fn ready(app: &App, principal: &Principal, id: &str) -> AppResult<(Dataset, Manifest)> {
    ready_for(app, &principal.user_id, id).await
}

/// A ready dataset of `user_id` and its manifest (409 while it is processing or failed).
pub(crate) async fn ready_for(
    app: &App,
    user_id: &str,
    id: &str,
) -> AppResult<(Dataset, Manifest)> {
    let dataset = owned_by(app, user_id, id).await?;
    if dataset.status != DatasetStatus::Ready {
        return Err(AppError::Conflict {
            message: format!("Dataset '{id}' is {}, not ready", dataset.status.as_str()),
            details: json!({ "status": dataset.status.as_str(), "error": dataset.error }),
        });
    }
    let key = keys::dataset_manifest(user_id, id);
    let manifest =
        serde_json::from_slice(&app.objects.get(&key).await?).map_err(AppError::internal)?;
    Ok((dataset, manifest))
}

/// Loads the normalised manifest of one of the caller's ready datasets (training reads this).
pub async fn manifest(app: &App, principal: &Principal, id: &str) -> AppResult<Manifest> {
    Ok(ready(app, principal, id).await?.1)
}

/// Validates a ready dataset against the caller's expectations.
pub async fn validate(
    app: &App,
    principal: &Principal,
    id: &str,
    request: ValidateRequest,
    accept_language: &str,
) -> AppResult<ValidateResponse> {
    let expected_format = match request.expected_format.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<DatasetFormat>().map_err(|_| {
            AppError::Validation(vec![FieldError::with_value(
                "expected_format",
                "Must be one of coco, yolo, voc, imagefolder",
                json!(text),
            )])
        })?),
    };
    let (dataset, manifest) = ready(app, principal, id).await?;
    let format: DatasetFormat = dataset.format.parse().map_err(AppError::internal)?;
    let problems: Vec<Problem> = match &dataset.report {
        Some(text) => serde_json::from_str(text).map_err(AppError::internal)?,
        None => Vec::new(),
    };
    let expect = Expectations {
        expected_format,
        expected_classes: request.expected_classes.map(|n| n as usize),
    };
    let lang = Lang::from_accept_language(accept_language);
    let report = datasets::validate(&manifest, format, &problems, &expect, lang);
    let issues = report
        .issues
        .into_iter()
        .map(|issue| ValidationIssueView {
            severity: serde_json::to_value(issue.severity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            message: issue.message,
            details: issue.details,
        })
        .collect();
    Ok(ValidateResponse {
        dataset_id: dataset.id,
        valid: report.valid,
        issues,
        recommendations: report.recommendations,
    })
}

/// A ready dataset re-packed as a zip in `format` (default: its own), written to a temporary
/// file under the work dir; returns the file and a download name.
pub async fn export(
    app: &App,
    principal: &Principal,
    id: &str,
    format: Option<&str>,
) -> AppResult<(tempfile::NamedTempFile, String)> {
    let (dataset, manifest) = ready(app, principal, id).await?;
    let format: DatasetFormat = format.unwrap_or(&dataset.format).parse().map_err(|_| {
        AppError::Validation(vec![FieldError::with_value(
            "format",
            "Must be one of coco, yolo, voc, imagefolder",
            json!(format),
        )])
    })?;
    let work = scratch_dir(&app.settings.work_dir()).map_err(AppError::internal)?;
    let images = work.path().join("images");
    download_images(app, &principal.user_id, id, &manifest, &images).await?;
    let zip = tempfile::Builder::new()
        .prefix("export-")
        .suffix(".zip")
        .tempfile_in(app.settings.work_dir())
        .map_err(AppError::internal)?;
    let file = zip.reopen().map_err(AppError::internal)?;
    tokio::task::spawn_blocking(move || {
        datasets::export_zip(&manifest, &images, format, file).map(drop)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(|e| match e {
        datasets::DatasetError::ExportUnsupported { .. } => {
            AppError::invalid_field("format", e.to_string())
        }
        other => AppError::internal(other),
    })?;
    drop(work);
    Ok((zip, format!("{}-{}.zip", dataset.id, format.as_str())))
}

/// A fresh scratch directory under `work_dir` (`training.work_dir`), created if missing: never
/// the system temp directory, which is RAM on many distributions.
pub fn scratch_dir(work_dir: &Path) -> std::io::Result<tempfile::TempDir> {
    std::fs::create_dir_all(work_dir)?;
    tempfile::Builder::new()
        .prefix("dataset-")
        .tempdir_in(work_dir)
}

/// Copies every image of `manifest` from object storage into `dir` (keeping relative paths).
pub async fn download_images(
    app: &App,
    user_id: &str,
    dataset_id: &str,
    manifest: &Manifest,
    dir: &Path,
) -> AppResult<()> {
    // The futures are built eagerly (not in a lazy `map`) so the whole future stays `Send`.
    let copies: Vec<_> = manifest
        .images
        .iter()
        .map(|image| {
            let key = keys::dataset_image(user_id, dataset_id, &image.file);
            let path = dir.join(&image.file);
            let objects = app.objects.clone();
            async move {
                let bytes = objects.get(&key).await?;
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(AppError::internal)?;
                }
                tokio::fs::write(&path, bytes)
                    .await
                    .map_err(AppError::internal)
            }
        })
        .collect();
    futures::stream::iter(copies)
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
}

/// The ingest job: unpack, check, store images + manifest, record statistics.
#[derive(Debug)]
pub struct IngestHandler;

#[async_trait]
impl JobHandler for IngestHandler {
    fn kind(&self) -> &'static str {
        INGEST_JOB
    }

    async fn run(&self, app: &App, job: &Job, control: &JobControl) -> Result<(), String> {
        let Some(dataset) = app
            .store
            .get_dataset(&job.user_id, &job.subject_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(()); // deleted meanwhile: nothing to do
        };
        match ingest(app, &dataset, control).await {
            Ok(()) => Ok(()),
            Err(IngestError::Refused(reason)) => {
                tracing::info!(dataset_id = %dataset.id, %reason, "dataset refused");
                finish_failed(app, &dataset, &reason).await;
                Err(reason)
            }
            // Stopped (lease lost, shutdown): another attempt resumes it, the dataset stays
            // `processing` meanwhile.
            Err(IngestError::Internal(e)) if control.should_stop() => Err(e.to_string()),
            Err(IngestError::Internal(e)) => {
                // The runner does not retry a failed job, so this attempt is the last: the
                // dataset must not stay `processing`. The cause is ours and is only logged.
                tracing::error!(dataset_id = %dataset.id, error = %e, "dataset ingest failed");
                finish_failed(app, &dataset, INTERNAL_FAILURE).await;
                Err(e.to_string())
            }
        }
    }

    async fn give_up(&self, app: &App, job: &Job, reason: &str) {
        if let Ok(Some(dataset)) = app.store.get_dataset(&job.user_id, &job.subject_id).await {
            finish_failed(app, &dataset, reason).await;
        }
    }
}

async fn finish_failed(app: &App, dataset: &Dataset, reason: &str) {
    let archive = keys::dataset_archive(&dataset.user_id, &dataset.id);
    if let Err(e) = app
        .store
        .finish_dataset(
            &dataset.id,
            DatasetOutcome::Failed { error: reason },
            Utc::now(),
        )
        .await
    {
        tracing::error!(error = %e, "cannot record the failed dataset");
    }
    // Nothing half-stored: only the archive remains (for inspection), images are removed.
    let prefix = format!(
        "{}images/",
        keys::dataset_prefix(&dataset.user_id, &dataset.id)
    );
    if let Err(e) = app.objects.delete_prefix(&prefix).await {
        tracing::error!(error = %e, %archive, "cannot clean up a failed dataset");
    }
}

enum IngestError {
    /// The archive cannot be used: the user's problem, reported on the dataset.
    Refused(String),
    /// Our problem (storage down…): retried by the job.
    Internal(AppError),
}

impl<E: Into<AppError>> From<E> for IngestError {
    fn from(e: E) -> Self {
        IngestError::Internal(e.into())
    }
}

fn describe(error: &datasets::DatasetError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

async fn ingest(app: &App, dataset: &Dataset, control: &JobControl) -> Result<(), IngestError> {
    let settings = &app.settings.datasets;
    let limits = Limits {
        max_entries: settings.max_entries,
        max_total_bytes: settings.max_uncompressed_bytes,
        max_entry_bytes: settings.max_entry_bytes,
        max_ratio: settings.max_compression_ratio,
        max_image_pixels: settings.max_image_pixels,
        max_annotation_bytes: settings.max_annotation_bytes,
        ..Limits::default()
    };
    let format = DatasetFormat::parse_choice(&dataset.format)
        .map_err(|e| IngestError::Refused(e.to_string()))?;
    let work = scratch_dir(&app.settings.work_dir()).map_err(AppError::internal)?;
    let archive_path = work.path().join("archive");
    let archive_key = keys::dataset_archive(&dataset.user_id, &dataset.id);
    download(app, &archive_key, &archive_path).await?;
    let unpack_dir = work.path().join("unpacked");
    std::fs::create_dir_all(&unpack_dir).map_err(AppError::internal)?;
    let seed = settings.split_seed;
    let ingested = tokio::task::spawn_blocking(move || {
        datasets::ingest(&archive_path, format, &unpack_dir, &limits, seed)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(|e| match e {
        datasets::DatasetError::Io { .. }
        | datasets::DatasetError::Archive(
            datasets::ArchiveError::Io { .. } | datasets::ArchiveError::TargetNotEmpty { .. },
        ) => IngestError::Internal(AppError::internal(describe(&e))),
        other => IngestError::Refused(describe(&other)),
    })?;
    if control.should_stop() {
        return Err(IngestError::Internal(AppError::Unavailable(
            "stopped".into(),
        )));
    }

    let uploads: Vec<_> = ingested
        .manifest
        .images
        .iter()
        .zip(&ingested.files)
        .map(|(image, path)| {
            let key = keys::dataset_image(&dataset.user_id, &dataset.id, &image.file);
            let path: PathBuf = path.clone();
            let objects = app.objects.clone();
            async move {
                let bytes = tokio::fs::read(&path).await.map_err(AppError::internal)?;
                let len = bytes.len() as u64;
                objects.put(&key, Bytes::from(bytes)).await?;
                Ok::<u64, AppError>(len)
            }
        })
        .collect();
    let stored: u64 = futures::stream::iter(uploads)
        .buffer_unordered(16)
        .try_fold(0u64, |sum, len| async move { Ok(sum + len) })
        .await?;
    let manifest = serde_json::to_vec(&ingested.manifest).map_err(AppError::internal)?;
    let manifest_len = manifest.len() as u64;
    app.objects
        .put(
            &keys::dataset_manifest(&dataset.user_id, &dataset.id),
            Bytes::from(manifest),
        )
        .await?;
    let statistics = serde_json::to_string(&ingested.stats).map_err(AppError::internal)?;
    let report = serde_json::to_string(&ingested.problems).map_err(AppError::internal)?;
    let outcome = DatasetOutcome::Ready {
        format: ingested.format.as_str(),
        file_count: i64::try_from(ingested.manifest.images.len()).unwrap_or(i64::MAX),
        statistics: &statistics,
        report: &report,
    };
    app.store
        .finish_dataset(&dataset.id, outcome, Utc::now())
        .await?;
    // The dataset is ready from here on: a failure below must not turn it `failed`.
    // The images now stand for the archive: drop it and account for what is kept.
    if let Err(e) = app.objects.delete(&archive_key).await {
        tracing::error!(dataset_id = %dataset.id, error = %e, "cannot delete the ingested archive");
    }
    let kept = i64::try_from(stored + manifest_len).unwrap_or(i64::MAX);
    if let Err(e) = app
        .store
        .add_usage(&dataset.user_id, 0.0, kept - dataset.size_bytes)
        .await
    {
        tracing::error!(dataset_id = %dataset.id, error = %e, "cannot record the storage usage");
    }
    tracing::info!(dataset_id = %dataset.id, images = ingested.manifest.images.len(), format = ingested.format.as_str(), "dataset ready");
    Ok(())
}

async fn download(app: &App, key: &str, path: &Path) -> AppResult<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(AppError::internal)?;
    let mut stream = app
        .objects
        .store()
        .get(&ObjectPath::from(key))
        .await
        .map_err(objects::ObjectsError::from)?
        .into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(objects::ObjectsError::from)?;
        file.write_all(&chunk).await.map_err(AppError::internal)?;
    }
    file.flush().await.map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_made_under_the_work_dir() {
        let root = tempfile::tempdir().unwrap();
        let work_dir = root.path().join("data").join("work");
        let scratch = scratch_dir(&work_dir).unwrap();
        assert_eq!(scratch.path().parent(), Some(work_dir.as_path()));
        assert!(scratch.path().is_dir());
        let path = scratch.path().to_owned();
        drop(scratch);
        assert!(!path.exists(), "removed when dropped");

        // A work dir that cannot hold directories is an error, not a fallback elsewhere.
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(scratch_dir(&file).is_err());
    }
}
