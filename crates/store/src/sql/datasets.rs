use super::jobs::insert_job;
use super::{SqlStore, from_millis, to_millis};
use crate::error::{StoreError, StoreResult};
use crate::traits::{DatasetDeletion, DatasetOutcome, DatasetStore, NewDataset, NewJob, Page};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Dataset, DatasetStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

const DATASET_COLUMNS: &str = "id, user_id, project_id, name, description, format, status, \
     size_bytes, file_count, statistics, report, error, created_at, updated_at";

fn dataset_from_row(row: &AnyRow) -> StoreResult<Dataset> {
    let status: String = row.try_get("status")?;
    Ok(Dataset {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        format: row.try_get("format")?,
        status: DatasetStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("dataset status '{status}'")))?,
        size_bytes: row.try_get("size_bytes")?,
        file_count: row.try_get("file_count")?,
        statistics: row.try_get("statistics")?,
        report: row.try_get("report")?,
        error: row.try_get("error")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

#[async_trait]
impl DatasetStore for SqlStore {
    async fn insert_dataset_with_job(
        &self,
        dataset: NewDataset<'_>,
        job: NewJob<'_>,
    ) -> StoreResult<Dataset> {
        let now = to_millis(dataset.now);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO datasets (id, user_id, project_id, name, description, format, status, \
             size_bytes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(dataset.id)
        .bind(dataset.user_id)
        .bind(dataset.project_id)
        .bind(dataset.name)
        .bind(dataset.description)
        .bind(dataset.format)
        .bind(DatasetStatus::Processing.as_str())
        .bind(dataset.size_bytes)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_job(&mut tx, &job).await?;
        let sql = format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(dataset.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        dataset_from_row(&row)
    }

    async fn get_dataset(&self, user_id: &str, id: &str) -> StoreResult<Option<Dataset>> {
        let sql = format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE user_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dataset_from_row).transpose()
    }

    async fn list_datasets(&self, user_id: &str, page: Page) -> StoreResult<(Vec<Dataset>, i64)> {
        let sql = format!(
            "SELECT {DATASET_COLUMNS} FROM datasets WHERE user_id = $1 \
             ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM datasets WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok((
            rows.iter()
                .map(dataset_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn finish_dataset(
        &self,
        id: &str,
        outcome: DatasetOutcome<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let now = to_millis(now);
        let query = match outcome {
            DatasetOutcome::Ready {
                format,
                file_count,
                statistics,
                report,
            } => sqlx::query(
                "UPDATE datasets SET status = 'ready', format = $1, file_count = $2, \
                 statistics = $3, report = $4, error = NULL, updated_at = $5 WHERE id = $6",
            )
            .bind(format)
            .bind(file_count)
            .bind(statistics)
            .bind(report)
            .bind(now)
            .bind(id),
            DatasetOutcome::Failed { error } => sqlx::query(
                "UPDATE datasets SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(error)
            .bind(now)
            .bind(id),
        };
        query.execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_dataset(&self, user_id: &str, id: &str) -> StoreResult<DatasetDeletion> {
        let mut tx = self.pool.begin().await?;
        // One statement checks and deletes: a workflow queued meanwhile cannot slip between.
        let done = sqlx::query(
            "DELETE FROM datasets WHERE user_id = $1 AND id = $2 AND NOT EXISTS (\
             SELECT 1 FROM workflows w WHERE w.user_id = $1 AND w.dataset_id = $2 \
             AND w.status IN ('pending', 'training'))",
        )
        .bind(user_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT id FROM datasets WHERE user_id = $1 AND id = $2")
                .bind(user_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                tx.commit().await?;
                return Ok(DatasetDeletion::NotFound);
            }
            let rows = sqlx::query(
                "SELECT id FROM workflows WHERE user_id = $1 AND dataset_id = $2 \
                 AND status IN ('pending', 'training') ORDER BY created_at, id",
            )
            .bind(user_id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let workflows: Vec<String> = rows
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
            // Kept although unused only if a workflow ended between the two statements.
            return Ok(DatasetDeletion::InUse(workflows));
        }
        // Queued or running ingest work for it goes too; a running worker notices on finish.
        sqlx::query("DELETE FROM jobs WHERE subject_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DatasetDeletion::Deleted)
    }
}
