use super::jobs::insert_job;
use super::{SqlStore, from_millis, to_millis};
use crate::error::{StoreError, StoreResult};
use crate::traits::{
    CancelOutcome, NewJob, NewWorkflow, WorkflowEnd, WorkflowProgress, WorkflowQuery, WorkflowStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{LogLine, MetricPoint, Workflow, WorkflowStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

const WORKFLOW_COLUMNS: &str = "id, user_id, project_id, name, description, task_type, model, \
     dataset_id, config, status, current_epoch, total_epochs, step, total_steps, metrics, \
     resources, estimated_seconds, error, exported_epoch, created_at, updated_at, started_at, \
     completed_at, cancelled_at";

fn optional_time(row: &AnyRow, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    row.try_get::<Option<i64>, _>(column)?
        .map(from_millis)
        .transpose()
}

fn workflow_from_row(row: &AnyRow) -> StoreResult<Workflow> {
    let status: String = row.try_get("status")?;
    Ok(Workflow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        task_type: row.try_get("task_type")?,
        model: row.try_get("model")?,
        dataset_id: row.try_get("dataset_id")?,
        config: row.try_get("config")?,
        status: WorkflowStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("workflow status '{status}'")))?,
        current_epoch: row.try_get("current_epoch")?,
        total_epochs: row.try_get("total_epochs")?,
        step: row.try_get("step")?,
        total_steps: row.try_get("total_steps")?,
        metrics: row.try_get("metrics")?,
        resources: row.try_get("resources")?,
        estimated_seconds: row.try_get("estimated_seconds")?,
        error: row.try_get("error")?,
        exported_epoch: row.try_get("exported_epoch")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        started_at: optional_time(row, "started_at")?,
        completed_at: optional_time(row, "completed_at")?,
        cancelled_at: optional_time(row, "cancelled_at")?,
    })
}

impl SqlStore {
    async fn workflow_where(&self, filter: &str, binds: &[&str]) -> StoreResult<Option<Workflow>> {
        let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE {filter}");
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(workflow_from_row).transpose()
    }
}

#[async_trait]
impl WorkflowStore for SqlStore {
    async fn insert_workflow_with_job(
        &self,
        workflow: NewWorkflow<'_>,
        job: NewJob<'_>,
    ) -> StoreResult<Workflow> {
        let now = to_millis(workflow.now);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO workflows (id, user_id, project_id, name, description, task_type, model, \
             dataset_id, config, status, total_epochs, estimated_seconds, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $12)",
        )
        .bind(workflow.id)
        .bind(workflow.user_id)
        .bind(workflow.project_id)
        .bind(workflow.name)
        .bind(workflow.description)
        .bind(workflow.task_type)
        .bind(workflow.model)
        .bind(workflow.dataset_id)
        .bind(workflow.config)
        .bind(workflow.total_epochs)
        .bind(workflow.estimated_seconds)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_job(&mut tx, &job).await?;
        // Read inside the transaction: a worker may claim the job the moment it commits.
        let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(workflow.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        workflow_from_row(&row)
    }

    async fn get_workflow(&self, user_id: &str, id: &str) -> StoreResult<Option<Workflow>> {
        self.workflow_where("user_id = $1 AND id = $2", &[user_id, id])
            .await
    }

    async fn workflow_by_id(&self, id: &str) -> StoreResult<Option<Workflow>> {
        self.workflow_where("id = $1", &[id]).await
    }

    async fn list_workflows(
        &self,
        user_id: &str,
        query: WorkflowQuery,
    ) -> StoreResult<(Vec<Workflow>, i64)> {
        let status = query.status.map(WorkflowStatus::as_str);
        let filter = "user_id = $1 AND ($2 IS NULL OR status = $2)";
        let order = if query.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE {filter} \
             ORDER BY created_at {order}, id {order} LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(status)
            .bind(i64::from(query.page.limit))
            .bind(query.page.offset())
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM workflows WHERE {filter}"
        ))
        .bind(user_id)
        .bind(status)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok((
            rows.iter()
                .map(workflow_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn start_workflow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE workflows SET status = 'training', started_at = COALESCE(started_at, $1), \
             updated_at = $1 WHERE id = $2 AND status IN ('pending', 'training')",
        )
        .bind(to_millis(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_workflow_progress(
        &self,
        id: &str,
        progress: WorkflowProgress<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE workflows SET current_epoch = $1, step = $2, total_steps = $3, \
             metrics = COALESCE($4, metrics), resources = COALESCE($5, resources), \
             estimated_seconds = COALESCE($6, estimated_seconds), updated_at = $7 \
             WHERE id = $8 AND status = 'training'",
        )
        .bind(progress.current_epoch)
        .bind(progress.step)
        .bind(progress.total_steps)
        .bind(progress.metrics)
        .bind(progress.resources)
        .bind(progress.estimated_seconds)
        .bind(to_millis(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_workflow(
        &self,
        id: &str,
        end: WorkflowEnd<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (status, error, exported) = match end {
            WorkflowEnd::Completed { exported_epoch } => ("completed", None, Some(exported_epoch)),
            WorkflowEnd::Failed(error) => ("failed", Some(error), None),
        };
        let done = sqlx::query(
            "UPDATE workflows SET status = $1, error = $2, exported_epoch = $3, \
             completed_at = $4, updated_at = $4 \
             WHERE id = $5 AND status IN ('pending', 'training')",
        )
        .bind(status)
        .bind(error)
        .bind(exported)
        .bind(to_millis(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn cancel_workflow(
        &self,
        user_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CancelOutcome> {
        let now = to_millis(now);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE workflows SET status = 'cancelled', cancelled_at = $1, updated_at = $1 \
             WHERE user_id = $2 AND id = $3 AND status IN ('pending', 'training')",
        )
        .bind(now)
        .bind(user_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            // The running worker notices at its next heartbeat (or sooner through the event
            // bus) that its job is no longer `running` and stops.
            sqlx::query(
                "UPDATE jobs SET status = 'cancelled', finished_at = $1, updated_at = $1, \
                 lease_owner = NULL, lease_expires_at = NULL \
                 WHERE subject_id = $2 AND status IN ('queued', 'running')",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(match self.get_workflow(user_id, id).await? {
            None => CancelOutcome::NotFound,
            Some(workflow) if done.rows_affected() > 0 => CancelOutcome::Cancelled(workflow),
            Some(workflow) => CancelOutcome::Finished(workflow),
        })
    }

    async fn add_metric(&self, workflow_id: &str, point: &MetricPoint) -> StoreResult<()> {
        // A resumed run repeats the epochs after its checkpoint: the newer values win.
        sqlx::query(
            "INSERT INTO workflow_metrics (workflow_id, recorded_at, epoch, step, metric_values) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workflow_id, epoch, step) \
             DO UPDATE SET recorded_at = $2, metric_values = $5",
        )
        .bind(workflow_id)
        .bind(to_millis(point.timestamp))
        .bind(point.epoch)
        .bind(point.step)
        .bind(&point.values)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn metrics(
        &self,
        workflow_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<MetricPoint>> {
        let rows = sqlx::query(
            "SELECT recorded_at, epoch, step, metric_values FROM workflow_metrics \
             WHERE workflow_id = $1 AND recorded_at >= $2 ORDER BY epoch, step",
        )
        .bind(workflow_id)
        .bind(since.map_or(i64::MIN, to_millis))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MetricPoint {
                    timestamp: from_millis(row.try_get("recorded_at")?)?,
                    epoch: row.try_get("epoch")?,
                    step: row.try_get("step")?,
                    values: row.try_get("metric_values")?,
                })
            })
            .collect()
    }

    async fn add_log(&self, workflow_id: &str, line: &LogLine) -> StoreResult<()> {
        // One worker writes a workflow's log at a time (it holds the lease); a cancellation
        // may race it, so a clash on the sequence number is retried once.
        for attempt in 0..2 {
            let inserted = sqlx::query(
                "INSERT INTO workflow_logs (workflow_id, seq, logged_at, level, message) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM workflow_logs \
                 WHERE workflow_id = $1",
            )
            .bind(workflow_id)
            .bind(to_millis(line.timestamp))
            .bind(&line.level)
            .bind(&line.message)
            .execute(&self.pool)
            .await;
            match inserted.map_err(StoreError::from) {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn logs(&self, workflow_id: &str, tail: u32) -> StoreResult<(Vec<LogLine>, i64)> {
        let rows = sqlx::query(
            "SELECT logged_at, level, message FROM workflow_logs WHERE workflow_id = $1 \
             ORDER BY seq DESC LIMIT $2",
        )
        .bind(workflow_id)
        .bind(i64::from(tail))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM workflow_logs WHERE workflow_id = $1")
                .bind(workflow_id)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        let mut lines = rows
            .iter()
            .map(|row| {
                Ok(LogLine {
                    timestamp: from_millis(row.try_get("logged_at")?)?,
                    level: row.try_get("level")?,
                    message: row.try_get("message")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        lines.reverse();
        Ok((lines, total))
    }

    async fn record_throughput(
        &self,
        model: &str,
        device: &str,
        image_size: i64,
        images_per_sec: f64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // Running mean over at most 20 samples, so the figure follows hardware changes.
        sqlx::query(
            "INSERT INTO model_throughput (model, device, image_size, images_per_sec, samples, \
             updated_at) VALUES ($1, $2, $3, $4, 1, $5) \
             ON CONFLICT (model, device, image_size) DO UPDATE SET \
             images_per_sec = model_throughput.images_per_sec \
                 + ($4 - model_throughput.images_per_sec) \
                 / (CASE WHEN model_throughput.samples < 20 THEN model_throughput.samples + 1 \
                    ELSE 20 END), \
             samples = CASE WHEN model_throughput.samples < 20 THEN model_throughput.samples + 1 \
                       ELSE 20 END, \
             updated_at = $5",
        )
        .bind(model)
        .bind(device)
        .bind(image_size)
        .bind(images_per_sec)
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn throughput(
        &self,
        model: &str,
        device: &str,
        image_size: i64,
    ) -> StoreResult<Option<f64>> {
        let row = sqlx::query(
            "SELECT images_per_sec FROM model_throughput \
             WHERE model = $1 AND device = $2 AND image_size = $3",
        )
        .bind(model)
        .bind(device)
        .bind(image_size)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| row.try_get("images_per_sec"))
            .transpose()
            .map_err(Into::into)
    }
}
