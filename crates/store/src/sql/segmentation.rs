use super::jobs::insert_job;
use super::{SqlStore, from_millis, to_millis};
use crate::error::StoreResult;
use crate::traits::{NewJob, Page, SegImageRow, SegOutcome, SegTaskRow, SegmentationStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

const IMAGE_COLUMNS: &str =
    "id, user_id, project_id, object_key, content_type, size_bytes, width, height, created_at";

const TASK_COLUMNS: &str = "id, user_id, project_id, image_id, source_image_url, text_prompt, \
     box_prompt, status, error_message, credits, labels, instances, mask_key, inference_time_ms, confidence, \
     model_version, created_at, updated_at";

/// Statuses a task can still leave.
const LIVE: &str = "status IN ('pending', 'processing')";

fn image_from_row(row: &AnyRow) -> StoreResult<SegImageRow> {
    Ok(SegImageRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        project_id: row.try_get("project_id")?,
        object_key: row.try_get("object_key")?,
        content_type: row.try_get("content_type")?,
        size_bytes: row.try_get("size_bytes")?,
        width: row.try_get("width")?,
        height: row.try_get("height")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

fn task_from_row(row: &AnyRow) -> StoreResult<SegTaskRow> {
    Ok(SegTaskRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        project_id: row.try_get("project_id")?,
        image_id: row.try_get("image_id")?,
        source_image_url: row.try_get("source_image_url")?,
        text_prompt: row.try_get("text_prompt")?,
        box_prompt: row.try_get("box_prompt")?,
        status: row.try_get("status")?,
        error_message: row.try_get("error_message")?,
        credits: row.try_get("credits")?,
        labels: row.try_get("labels")?,
        instances: row.try_get("instances")?,
        mask_key: row.try_get("mask_key")?,
        inference_time_ms: row.try_get("inference_time_ms")?,
        confidence: row.try_get("confidence")?,
        model_version: row.try_get("model_version")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

impl SqlStore {
    async fn one_image(&self, sql: &str, binds: &[&str]) -> StoreResult<Option<SegImageRow>> {
        let mut query = sqlx::query(sql);
        for b in binds {
            query = query.bind(*b);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(image_from_row).transpose()
    }

    async fn one_task(&self, sql: &str, binds: &[&str]) -> StoreResult<Option<SegTaskRow>> {
        let mut query = sqlx::query(sql);
        for b in binds {
            query = query.bind(*b);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(task_from_row).transpose()
    }
}

#[async_trait]
impl SegmentationStore for SqlStore {
    async fn insert_seg_image(&self, image: &SegImageRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO seg_images (id, user_id, project_id, object_key, content_type, \
             size_bytes, width, height, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&image.id)
        .bind(&image.user_id)
        .bind(&image.project_id)
        .bind(&image.object_key)
        .bind(&image.content_type)
        .bind(image.size_bytes)
        .bind(image.width)
        .bind(image.height)
        .bind(to_millis(image.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_seg_image(&self, user_id: &str, id: &str) -> StoreResult<Option<SegImageRow>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM seg_images WHERE user_id = $1 AND id = $2");
        self.one_image(&sql, &[user_id, id]).await
    }

    async fn seg_image_by_id(&self, id: &str) -> StoreResult<Option<SegImageRow>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM seg_images WHERE id = $1");
        self.one_image(&sql, &[id]).await
    }

    async fn insert_seg_task_with_job(
        &self,
        task: &SegTaskRow,
        job: NewJob<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // The conditional decrement is the reservation: concurrent submits serialise on the
        // usage row, and none can take the balance below zero.
        let reserved = sqlx::query(
            "UPDATE usage SET credits = credits - $1 WHERE user_id = $2 AND credits >= $1",
        )
        .bind(task.credits)
        .bind(&task.user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reserved == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO seg_tasks (id, user_id, project_id, image_id, source_image_url, \
             text_prompt, box_prompt, status, credits, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&task.id)
        .bind(&task.user_id)
        .bind(&task.project_id)
        .bind(&task.image_id)
        .bind(&task.source_image_url)
        .bind(&task.text_prompt)
        .bind(&task.box_prompt)
        .bind(&task.status)
        .bind(task.credits)
        .bind(to_millis(task.created_at))
        .execute(&mut *tx)
        .await?;
        insert_job(&mut tx, &job).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn get_seg_task(&self, user_id: &str, id: &str) -> StoreResult<Option<SegTaskRow>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM seg_tasks WHERE user_id = $1 AND id = $2");
        self.one_task(&sql, &[user_id, id]).await
    }

    async fn seg_task_by_id(&self, id: &str) -> StoreResult<Option<SegTaskRow>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM seg_tasks WHERE id = $1");
        self.one_task(&sql, &[id]).await
    }

    async fn list_seg_tasks(
        &self,
        user_id: &str,
        project_id: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<SegTaskRow>, i64)> {
        let filter = "user_id = $1 AND ($2 IS NULL OR project_id = $2)";
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM seg_tasks WHERE {filter}"
        ))
        .bind(user_id)
        .bind(project_id)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM seg_tasks WHERE {filter} \
             ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(project_id)
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await?;
        let tasks = rows.iter().map(task_from_row).collect::<StoreResult<_>>()?;
        Ok((tasks, total))
    }

    async fn start_seg_task(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let sql = format!(
            "UPDATE seg_tasks SET status = 'processing', updated_at = $1 WHERE id = $2 AND {LIVE}"
        );
        let done = sqlx::query(&sql)
            .bind(to_millis(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_seg_task(&self, id: &str, outcome: SegOutcome<'_>) -> StoreResult<bool> {
        let sql = format!(
            "UPDATE seg_tasks SET status = 'done', labels = $1, instances = $2, mask_key = $3, \
             inference_time_ms = $4, confidence = $5, model_version = $6, updated_at = $7, \
             error_message = NULL WHERE id = $8 AND {LIVE}"
        );
        let done = sqlx::query(&sql)
            .bind(outcome.labels)
            .bind(outcome.instances)
            .bind(outcome.mask_key)
            .bind(outcome.inference_time_ms)
            .bind(outcome.confidence)
            .bind(outcome.model_version)
            .bind(to_millis(outcome.now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn fail_seg_task(
        &self,
        id: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE seg_tasks SET status = 'error', error_message = $1, updated_at = $2 \
             WHERE id = $3 AND {LIVE} RETURNING user_id, credits"
        );
        let row = sqlx::query(&sql)
            .bind(message)
            .bind(to_millis(now))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let user_id: String = row.try_get("user_id")?;
        let credits: i64 = row.try_get("credits")?;
        sqlx::query("UPDATE usage SET credits = credits + $1 WHERE user_id = $2")
            .bind(credits)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn credits(&self, user_id: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT credits FROM usage WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("credits")?,
            None => 0,
        })
    }

    async fn add_credits(&self, user_id: &str, delta: i64) -> StoreResult<Option<i64>> {
        let row = sqlx::query(
            "UPDATE usage SET credits = CASE WHEN credits + $1 < 0 THEN 0 ELSE credits + $1 END \
             WHERE user_id = $2 RETURNING credits",
        )
        .bind(delta)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("credits"))
            .transpose()
            .map_err(Into::into)
    }
}
