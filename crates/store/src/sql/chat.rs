use super::{SqlStore, from_millis, to_millis};
use crate::error::StoreResult;
use crate::traits::{ChatSessionRow, ChatStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

#[async_trait]
impl ChatStore for SqlStore {
    async fn insert_chat_session(
        &self,
        user_id: &str,
        id: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO chat_sessions (id, user_id, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(user_id)
        .bind(state)
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update_chat_session(
        &self,
        user_id: &str,
        id: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE chat_sessions SET state = $1, updated_at = $2 WHERE user_id = $3 AND id = $4",
        )
        .bind(state)
        .bind(to_millis(now))
        .bind(user_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_chat_session(
        &self,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<ChatSessionRow>> {
        let row = sqlx::query(
            "SELECT id, state, created_at, updated_at FROM chat_sessions \
             WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ChatSessionRow {
                id: row.try_get("id")?,
                state: row.try_get("state")?,
                created_at: from_millis(row.try_get("created_at")?)?,
                updated_at: from_millis(row.try_get("updated_at")?)?,
            })
        })
        .transpose()
    }

    async fn delete_chat_session(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM chat_sessions WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
