use super::{Dialect, SqlStore, from_millis, to_millis};
use crate::error::{StoreError, StoreResult};
use crate::traits::{JobOutcome, JobStore, NewJob};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Job, JobStatus};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

const JOB_COLUMNS: &str = "id, kind, user_id, subject_id, payload, status, attempts, max_attempts, last_error, created_at";

fn job_from_row(row: &AnyRow) -> StoreResult<Job> {
    let status: String = row.try_get("status")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        user_id: row.try_get("user_id")?,
        subject_id: row.try_get("subject_id")?,
        payload: row.try_get("payload")?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status '{status}'")))?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        last_error: row.try_get("last_error")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// Inserts a queued job on `conn` (so callers can do it inside their transaction).
pub(super) async fn insert_job(conn: &mut AnyConnection, job: &NewJob<'_>) -> StoreResult<()> {
    let now = to_millis(job.now);
    sqlx::query(
        "INSERT INTO jobs (id, kind, user_id, subject_id, payload, status, max_attempts, \
         max_concurrent, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $8)",
    )
    .bind(job.id)
    .bind(job.kind)
    .bind(job.user_id)
    .bind(job.subject_id)
    .bind(job.payload)
    .bind(job.max_attempts)
    .bind(job.max_concurrent)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl JobStore for SqlStore {
    async fn enqueue(&self, job: NewJob<'_>) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_job(&mut conn, &job).await
    }

    async fn claim(
        &self,
        kind: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Job>> {
        // Claimable: queued, or running with an expired lease (its worker died), and the
        // owner's per-user cap not reached by their live jobs of this kind. Among claimable
        // jobs the owner with the fewest live jobs goes first (fair share), then the owner
        // served least recently (round robin), then the oldest.
        // The condition is repeated in the outer UPDATE so that of two racing workers only one
        // wins the row. On PostgreSQL a transaction-scoped advisory lock per kind serialises
        // claims, so two workers cannot both see a user below their cap, and `SKIP LOCKED` passes
        // over rows a cancellation or heartbeat holds; SQLite serialises writers anyway.
        let live = "(SELECT COUNT(*) FROM jobs r WHERE r.kind = j.kind AND r.user_id = j.user_id \
                    AND r.status = 'running' AND r.lease_expires_at >= $3 AND r.id <> j.id)";
        // Round robin between users: the owner served least recently (latest start of any of
        // their jobs of this kind; never served first) goes next.
        let served = "(SELECT COALESCE(MAX(s.started_at), 0) FROM jobs s \
                      WHERE s.kind = j.kind AND s.user_id = j.user_id)";
        let claimable = format!(
            "(j.status = 'queued' OR (j.status = 'running' AND j.lease_expires_at < $3)) \
             AND (j.max_concurrent IS NULL OR {live} < j.max_concurrent)"
        );
        let lock = if self.dialect == Dialect::Postgres {
            "FOR UPDATE OF j SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1, started_at = COALESCE(started_at, $3), updated_at = $3 \
             WHERE id = (SELECT j.id FROM jobs j WHERE j.kind = $4 AND {claimable} \
                         ORDER BY {live}, {served}, j.created_at, j.id LIMIT 1 {lock}) \
             AND id IN (SELECT j.id FROM jobs j WHERE j.kind = $4 AND {claimable}) \
             RETURNING {JOB_COLUMNS}"
        );
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)")
                .bind(format!("vision-claim-{kind}"))
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(to_millis(lease_until))
            .bind(to_millis(now))
            .bind(kind)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn heartbeat(
        &self,
        job_id: &str,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
        )
        .bind(to_millis(lease_until))
        .bind(job_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn release_job(
        &self,
        job_id: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // An expired lease is what makes a running job claimable; `attempts` goes back down
        // because the claim that counted this attempt did not fail.
        let done = sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = 0,              attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $3              WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(job_id)
        .bind(owner)
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_job(
        &self,
        job_id: &str,
        owner: &str,
        outcome: JobOutcome<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (status, error) = match outcome {
            JobOutcome::Succeeded => (JobStatus::Succeeded, None),
            JobOutcome::Failed(error) => (JobStatus::Failed, Some(error)),
            JobOutcome::Cancelled => (JobStatus::Cancelled, None),
        };
        let done = sqlx::query(
            "UPDATE jobs SET status = $1, last_error = $2, finished_at = $3, updated_at = $3, \
             lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(to_millis(now))
        .bind(job_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn job_for_subject(&self, subject_id: &str) -> StoreResult<Option<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE subject_id = $1 ORDER BY created_at DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(subject_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn queue_position(&self, subject_id: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS position FROM jobs q JOIN jobs me \
             ON q.kind = me.kind AND q.status = 'queued' \
             AND (q.created_at < me.created_at OR (q.created_at = me.created_at AND q.id <= me.id)) \
             WHERE me.subject_id = $1 AND me.status = 'queued'",
        )
        .bind(subject_id)
        .fetch_one(&self.pool)
        .await?;
        let position: i64 = row.try_get("position")?;
        Ok((position > 0).then_some(position))
    }
}
