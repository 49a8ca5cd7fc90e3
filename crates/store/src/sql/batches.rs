use super::jobs::insert_job;
use super::{SqlStore, from_millis, to_millis};
use crate::error::StoreResult;
use crate::traits::{BatchRow, BatchStore, NewJob};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

const BATCH_COLUMNS: &str = "id, user_id, workflow_id, status, total_images, completed_images, results, created_at, completed_at";

fn batch_from_row(row: &AnyRow) -> StoreResult<BatchRow> {
    Ok(BatchRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        workflow_id: row.try_get("workflow_id")?,
        status: row.try_get("status")?,
        total_images: row.try_get("total_images")?,
        completed_images: row.try_get("completed_images")?,
        results: row.try_get("results")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        completed_at: row
            .try_get::<Option<i64>, _>("completed_at")?
            .map(from_millis)
            .transpose()?,
    })
}

#[async_trait]
impl BatchStore for SqlStore {
    async fn insert_batch_with_job(&self, batch: &BatchRow, job: NewJob<'_>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO inference_batches (id, user_id, workflow_id, status, total_images, \
             completed_images, results, created_at) VALUES ($1, $2, $3, $4, $5, 0, '[]', $6)",
        )
        .bind(&batch.id)
        .bind(&batch.user_id)
        .bind(&batch.workflow_id)
        .bind(&batch.status)
        .bind(batch.total_images)
        .bind(to_millis(batch.created_at))
        .execute(&mut *tx)
        .await?;
        insert_job(&mut tx, &job).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_batch(&self, user_id: &str, id: &str) -> StoreResult<Option<BatchRow>> {
        let sql =
            format!("SELECT {BATCH_COLUMNS} FROM inference_batches WHERE user_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(batch_from_row).transpose()
    }

    async fn update_batch(
        &self,
        id: &str,
        status: &str,
        completed_images: i64,
        results: &str,
        completed_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE inference_batches SET status = $1, completed_images = $2, results = $3, \
             completed_at = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(completed_images)
        .bind(results)
        .bind(completed_at.map(to_millis))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
