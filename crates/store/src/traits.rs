//! Repository traits: what the application needs from storage, one trait per aggregate.

use crate::error::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Dataset, Job, LogLine, MetricPoint, Project, Usage, User, Workflow, WorkflowStatus};

/// Users and their usage counters.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user (and its zeroed usage row). `Conflict` when the e-mail is taken.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// Looks a user up by normalised e-mail.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Looks a user up by id.
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// The user's usage counters (zero when none recorded).
    async fn usage(&self, user_id: &str) -> StoreResult<Usage>;
    /// Adds compute seconds and storage bytes (may be negative) to the user's counters.
    async fn add_usage(
        &self,
        user_id: &str,
        compute_seconds: f64,
        storage_bytes: i64,
    ) -> StoreResult<()>;
}

/// Outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// The token was valid and is now used up; carries the owner's id.
    Accepted(String),
    /// The token had already been used or revoked: possible theft, the owner's tokens are revoked.
    Replayed(String),
    /// Unknown or expired token.
    Rejected,
}

/// Refresh tokens, stored as hashes, single use.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Records a newly issued refresh token.
    async fn insert_refresh_token(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Atomically marks the token used if it is live. A replayed token revokes every token of
    /// its owner.
    async fn use_refresh_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<RefreshUse>;
    /// Revokes one token of `user_id`; `false` when no such live token.
    async fn revoke_refresh_token(&self, user_id: &str, token_hash: &str) -> StoreResult<bool>;
}

/// Fields of a new project.
#[derive(Debug, Clone)]
pub struct NewProject<'a> {
    /// `proj_…` id.
    pub id: &'a str,
    /// Owner.
    pub user_id: &'a str,
    /// Name, unique per owner.
    pub name: &'a str,
    /// Free text.
    pub description: &'a str,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// Fields a project update may change.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges<'a> {
    /// New name.
    pub name: Option<&'a str>,
    /// New description.
    pub description: Option<&'a str>,
}

/// Projects, always scoped to their owner.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Inserts a project. `Conflict` when the owner already has one with that name.
    async fn insert_project(&self, project: NewProject<'_>) -> StoreResult<Project>;
    /// The owner's projects, newest first.
    async fn list_projects(&self, user_id: &str) -> StoreResult<Vec<Project>>;
    /// One project of the owner.
    async fn get_project(&self, user_id: &str, id: &str) -> StoreResult<Option<Project>>;
    /// Applies changes; `None` when the owner has no such project.
    async fn update_project(
        &self,
        user_id: &str,
        id: &str,
        changes: ProjectChanges<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Project>>;
    /// Deletes a project (its datasets and workflows stay, detached); `false` when not found.
    async fn delete_project(&self, user_id: &str, id: &str) -> StoreResult<bool>;
}

/// Everything the platform stores in its database.
pub trait Store:
    UserStore
    + TokenStore
    + ProjectStore
    + DatasetStore
    + JobStore
    + WorkflowStore
    + ChatStore
    + BatchStore
    + SegmentationStore
{
    /// Name of the backend (`sqlite` or `postgres`), for logs and health output.
    fn backend(&self) -> &'static str;
}

/// One page of a listing.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// 1-based page number.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
}

impl Page {
    /// Rows to skip.
    pub fn offset(self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.limit)
    }
}

/// Fields of a newly uploaded dataset.
#[derive(Debug, Clone)]
pub struct NewDataset<'a> {
    /// `ds_…` id.
    pub id: &'a str,
    /// Owner.
    pub user_id: &'a str,
    /// Project (must belong to the owner; checked by the caller).
    pub project_id: Option<&'a str>,
    /// Display name.
    pub name: &'a str,
    /// Free text.
    pub description: &'a str,
    /// Declared format (`auto` allowed).
    pub format: &'a str,
    /// Archive size in bytes.
    pub size_bytes: i64,
    /// Upload time.
    pub now: DateTime<Utc>,
}

/// The result of processing a dataset.
#[derive(Debug, Clone)]
pub enum DatasetOutcome<'a> {
    /// Usable: detected format, image count, statistics and ingest report (JSON).
    Ready {
        /// Detected format.
        format: &'a str,
        /// Images stored.
        file_count: i64,
        /// Statistics JSON.
        statistics: &'a str,
        /// Ingest report JSON.
        report: &'a str,
    },
    /// Unusable, with a readable reason.
    Failed {
        /// Why.
        error: &'a str,
    },
}

/// What [`DatasetStore::delete_dataset`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetDeletion {
    /// The dataset and its jobs are gone.
    Deleted,
    /// The owner has no such dataset.
    NotFound,
    /// Kept: these queued or running workflows of the owner use it (oldest first).
    InUse(Vec<String>),
}

/// Datasets, always scoped to their owner (except for the worker's own updates by id).
#[async_trait]
pub trait DatasetStore: Send + Sync {
    /// Inserts a dataset in `processing` together with its ingest job, atomically.
    async fn insert_dataset_with_job(
        &self,
        dataset: NewDataset<'_>,
        job: NewJob<'_>,
    ) -> StoreResult<Dataset>;
    /// One dataset of the owner.
    async fn get_dataset(&self, user_id: &str, id: &str) -> StoreResult<Option<Dataset>>;
    /// The owner's datasets, newest first, and the total count.
    async fn list_datasets(&self, user_id: &str, page: Page) -> StoreResult<(Vec<Dataset>, i64)>;
    /// Records the outcome of processing (worker side, by id).
    async fn finish_dataset(
        &self,
        id: &str,
        outcome: DatasetOutcome<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Deletes one dataset of the owner, with its jobs, unless a queued (`pending`) or running
    /// (`training`) workflow of the owner uses it; the check and the delete are one statement.
    async fn delete_dataset(&self, user_id: &str, id: &str) -> StoreResult<DatasetDeletion>;
}

/// Fields of a new job.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// `job_…` id.
    pub id: &'a str,
    /// Kind of work.
    pub kind: &'a str,
    /// Owner.
    pub user_id: &'a str,
    /// Entity worked on.
    pub subject_id: &'a str,
    /// Kind-specific JSON.
    pub payload: &'a str,
    /// Claims allowed before giving up.
    pub max_attempts: i64,
    /// At most this many jobs of this kind of the same user run at once (`None`: no cap). The
    /// cap holds across every worker.
    pub max_concurrent: Option<i64>,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// How a job ended.
#[derive(Debug, Clone, Copy)]
pub enum JobOutcome<'a> {
    /// Done.
    Succeeded,
    /// Failed for good (no retry).
    Failed(&'a str),
    /// Stopped on request.
    Cancelled,
}

/// The durable job queue. Workers claim jobs with a lease they renew by heartbeat; a job whose
/// lease expires (its worker died) is claimed again, until its attempts run out.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Adds a queued job.
    async fn enqueue(&self, job: NewJob<'_>) -> StoreResult<()>;
    /// Claims the oldest claimable job of `kind` for `owner` until `lease_until`.
    async fn claim(
        &self,
        kind: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Job>>;
    /// Extends the lease; `false` when the job is no longer this owner's running job.
    async fn heartbeat(
        &self,
        job_id: &str,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Hands a running job back (its worker is shutting down): the lease ends now so any
    /// worker claims it at once, and this attempt is not counted. `false` when the owner no
    /// longer holds it.
    async fn release_job(&self, job_id: &str, owner: &str, now: DateTime<Utc>)
    -> StoreResult<bool>;
    /// Ends the job; `false` when the owner no longer holds it.
    async fn finish_job(
        &self,
        job_id: &str,
        owner: &str,
        outcome: JobOutcome<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// The latest job about `subject_id`.
    async fn job_for_subject(&self, subject_id: &str) -> StoreResult<Option<Job>>;
    /// 1-based position of the queued job about `subject_id` among queued jobs of its kind, in
    /// claim order; `None` when it is not queued.
    async fn queue_position(&self, subject_id: &str) -> StoreResult<Option<i64>>;
}

/// Fields of a new workflow.
#[derive(Debug, Clone)]
pub struct NewWorkflow<'a> {
    /// `wf_…` id.
    pub id: &'a str,
    /// Owner.
    pub user_id: &'a str,
    /// Project (checked by the caller).
    pub project_id: Option<&'a str>,
    /// Display name.
    pub name: &'a str,
    /// Free text.
    pub description: &'a str,
    /// Task type.
    pub task_type: &'a str,
    /// Catalogue model id.
    pub model: &'a str,
    /// Dataset (checked by the caller).
    pub dataset_id: &'a str,
    /// Normalised training configuration (JSON).
    pub config: &'a str,
    /// Epochs of the run.
    pub total_epochs: i64,
    /// Estimated run time.
    pub estimated_seconds: f64,
    /// Submission time.
    pub now: DateTime<Utc>,
}

/// Live progress written by the worker that trains a workflow.
#[derive(Debug, Clone, Default)]
pub struct WorkflowProgress<'a> {
    /// Last finished epoch.
    pub current_epoch: i64,
    /// Steps done.
    pub step: i64,
    /// Steps of the run.
    pub total_steps: i64,
    /// Latest metrics (JSON object).
    pub metrics: Option<&'a str>,
    /// Compute used (JSON object).
    pub resources: Option<&'a str>,
    /// Refined run-time estimate.
    pub estimated_seconds: Option<f64>,
}

/// How a workflow's training ended (worker side).
#[derive(Debug, Clone, Copy)]
pub enum WorkflowEnd<'a> {
    /// The model is stored; the epoch its weights come from.
    Completed {
        /// Exported epoch.
        exported_epoch: i64,
    },
    /// Training failed.
    Failed(&'a str),
}

/// Result of a cancellation request.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// Now cancelled (its job too).
    Cancelled(Workflow),
    /// Already completed, failed or cancelled: unchanged.
    Finished(Workflow),
    /// The owner has no such workflow.
    NotFound,
}

/// Filters and order of a workflow listing.
#[derive(Debug, Clone, Copy)]
pub struct WorkflowQuery {
    /// Only this status.
    pub status: Option<WorkflowStatus>,
    /// Page.
    pub page: Page,
    /// Newest first (the default) or oldest first.
    pub newest_first: bool,
}

/// Workflows, their metric history and logs; owner-scoped reads, worker-side writes by id.
#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// Inserts a `pending` workflow together with its training job, atomically.
    async fn insert_workflow_with_job(
        &self,
        workflow: NewWorkflow<'_>,
        job: NewJob<'_>,
    ) -> StoreResult<Workflow>;
    /// One workflow of the owner.
    async fn get_workflow(&self, user_id: &str, id: &str) -> StoreResult<Option<Workflow>>;
    /// A workflow by id alone (workers).
    async fn workflow_by_id(&self, id: &str) -> StoreResult<Option<Workflow>>;
    /// The owner's workflows and the total count under the filter.
    async fn list_workflows(
        &self,
        user_id: &str,
        query: WorkflowQuery,
    ) -> StoreResult<(Vec<Workflow>, i64)>;
    /// Marks the workflow `training` (first start keeps its `started_at`) unless it was
    /// cancelled meanwhile; `false` then.
    async fn start_workflow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Records live progress of a training workflow.
    async fn update_workflow_progress(
        &self,
        id: &str,
        progress: WorkflowProgress<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Ends a training workflow; `false` when it was cancelled meanwhile (left unchanged).
    async fn finish_workflow(
        &self,
        id: &str,
        end: WorkflowEnd<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Cancels a pending or training workflow of the owner and its job, atomically.
    async fn cancel_workflow(
        &self,
        user_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CancelOutcome>;
    /// Records (or, on a resumed run, replaces) the metrics of one epoch/step.
    async fn add_metric(&self, workflow_id: &str, point: &MetricPoint) -> StoreResult<()>;
    /// Metric history in order, from `since` on.
    async fn metrics(
        &self,
        workflow_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<MetricPoint>>;
    /// Appends a log line.
    async fn add_log(&self, workflow_id: &str, line: &LogLine) -> StoreResult<()>;
    /// The last `tail` log lines in order and the total number of lines.
    async fn logs(&self, workflow_id: &str, tail: u32) -> StoreResult<(Vec<LogLine>, i64)>;
    /// Folds a measured training throughput into the running mean for (model, device, size).
    async fn record_throughput(
        &self,
        model: &str,
        device: &str,
        image_size: i64,
        images_per_sec: f64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The measured mean throughput for (model, device, size), if any run measured it.
    async fn throughput(
        &self,
        model: &str,
        device: &str,
        image_size: i64,
    ) -> StoreResult<Option<f64>>;
}

/// A stored chat session.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSessionRow {
    /// `sess_…` id.
    pub id: String,
    /// Dialogue state (JSON).
    pub state: String,
    /// First message.
    pub created_at: DateTime<Utc>,
    /// Last message.
    pub updated_at: DateTime<Utc>,
}

/// Chat sessions, always scoped to their owner.
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Stores a new session.
    async fn insert_chat_session(
        &self,
        user_id: &str,
        id: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Replaces the state of one of the owner's sessions; `false` when there is none.
    async fn update_chat_session(
        &self,
        user_id: &str,
        id: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// One of the owner's sessions.
    async fn get_chat_session(
        &self,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<ChatSessionRow>>;
    /// Deletes one of the owner's sessions; `false` when there is none.
    async fn delete_chat_session(&self, user_id: &str, id: &str) -> StoreResult<bool>;
}

/// A batch inference request and its results so far.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    /// `job_…` id (the job that runs it has the same subject).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Workflow whose model predicts.
    pub workflow_id: String,
    /// `processing`, `completed` or `failed`.
    pub status: String,
    /// Images requested.
    pub total_images: i64,
    /// Images answered (with predictions or an error).
    pub completed_images: i64,
    /// Per-image results (JSON array).
    pub results: String,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// When the last image was answered.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Batch inference requests, scoped to their owner for reads.
#[async_trait]
pub trait BatchStore: Send + Sync {
    /// Inserts a batch together with the job that runs it, atomically.
    async fn insert_batch_with_job(&self, batch: &BatchRow, job: NewJob<'_>) -> StoreResult<()>;
    /// One batch of the owner.
    async fn get_batch(&self, user_id: &str, id: &str) -> StoreResult<Option<BatchRow>>;
    /// Records progress or the end (worker side).
    async fn update_batch(
        &self,
        id: &str,
        status: &str,
        completed_images: i64,
        results: &str,
        completed_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
}

/// An uploaded image of the segmentation service.
#[derive(Debug, Clone, PartialEq)]
pub struct SegImageRow {
    /// UUID.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Project (owned by the same user).
    pub project_id: Option<String>,
    /// Where the bytes are in object storage.
    pub object_key: String,
    /// `image/png`, `image/jpeg` or `image/webp`, from the content.
    pub content_type: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Width in pixels.
    pub width: i64,
    /// Height in pixels.
    pub height: i64,
    /// Upload time.
    pub created_at: DateTime<Utc>,
}

/// A segmentation task, which is also its result once done.
#[derive(Debug, Clone, PartialEq)]
pub struct SegTaskRow {
    /// UUID (task id and result id).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Project (owned by the same user).
    pub project_id: Option<String>,
    /// The uploaded image segmented, when it is one of the owner's uploads.
    pub image_id: Option<String>,
    /// The URL given at submit (an external URL, or the upload's URL).
    pub source_image_url: String,
    /// The text prompt.
    pub text_prompt: String,
    /// The optional box prompt, `[x, y, width, height]` in image pixels as JSON.
    pub box_prompt: Option<String>,
    /// `pending`, `processing`, `done` or `error`.
    pub status: String,
    /// Why it failed, for `error`.
    pub error_message: Option<String>,
    /// Credits reserved at submit (refunded on `error`).
    pub credits: i64,
    /// JSON array of labels, one per instance.
    pub labels: String,
    /// JSON array of instances (score, box, COCO RLE, polygons).
    pub instances: String,
    /// Object key of the mask PNG.
    pub mask_key: Option<String>,
    /// Model time in milliseconds.
    pub inference_time_ms: Option<f64>,
    /// Best instance score.
    pub confidence: Option<f64>,
    /// Model that produced the result.
    pub model_version: Option<String>,
    /// Submit time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What a finished segmentation produced.
#[derive(Debug, Clone, Copy)]
pub struct SegOutcome<'a> {
    /// JSON array of labels.
    pub labels: &'a str,
    /// JSON array of instances.
    pub instances: &'a str,
    /// Object key of the mask PNG.
    pub mask_key: &'a str,
    /// Model time in milliseconds.
    pub inference_time_ms: f64,
    /// Best instance score (0 without instances).
    pub confidence: f64,
    /// Model that produced it.
    pub model_version: &'a str,
    /// Completion time.
    pub now: DateTime<Utc>,
}

/// Segmentation images, tasks and credits, scoped to their owner except for the worker's
/// updates by id.
#[async_trait]
pub trait SegmentationStore: Send + Sync {
    /// Records an uploaded image.
    async fn insert_seg_image(&self, image: &SegImageRow) -> StoreResult<()>;
    /// One image of the owner.
    async fn get_seg_image(&self, user_id: &str, id: &str) -> StoreResult<Option<SegImageRow>>;
    /// An image by id, whoever owns it (signed file URLs, workers).
    async fn seg_image_by_id(&self, id: &str) -> StoreResult<Option<SegImageRow>>;
    /// Atomically takes `task.credits` from the owner's balance and inserts the task with its
    /// job. `false` (and nothing written) when the balance is too low.
    async fn insert_seg_task_with_job(
        &self,
        task: &SegTaskRow,
        job: NewJob<'_>,
    ) -> StoreResult<bool>;
    /// One task of the owner.
    async fn get_seg_task(&self, user_id: &str, id: &str) -> StoreResult<Option<SegTaskRow>>;
    /// A task by id, whoever owns it (workers, backends).
    async fn seg_task_by_id(&self, id: &str) -> StoreResult<Option<SegTaskRow>>;
    /// The owner's tasks, newest first, optionally of one project, and the total count.
    async fn list_seg_tasks(
        &self,
        user_id: &str,
        project_id: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<SegTaskRow>, i64)>;
    /// `pending`/`processing` → `processing`; `false` when the task is already finished.
    async fn start_seg_task(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// `pending`/`processing` → `done` with the outcome; `false` when already finished.
    async fn finish_seg_task(&self, id: &str, outcome: SegOutcome<'_>) -> StoreResult<bool>;
    /// `pending`/`processing` → `error` and refunds the reserved credits, atomically; `false`
    /// (and no refund) when already finished.
    async fn fail_seg_task(&self, id: &str, message: &str, now: DateTime<Utc>)
    -> StoreResult<bool>;
    /// The user's credit balance.
    async fn credits(&self, user_id: &str) -> StoreResult<i64>;
    /// Adds `delta` (may be negative, never below zero) and returns the new balance; `None` for
    /// an unknown user.
    async fn add_credits(&self, user_id: &str, delta: i64) -> StoreResult<Option<i64>>;
}
