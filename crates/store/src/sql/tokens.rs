use super::{SqlStore, to_millis};
use crate::error::StoreResult;
use crate::traits::{RefreshUse, TokenStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

#[async_trait]
impl TokenStore for SqlStore {
    async fn insert_refresh_token(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(to_millis(Utc::now()))
        .bind(to_millis(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn use_refresh_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<RefreshUse> {
        let now = to_millis(now);
        // A single conditional UPDATE makes the use atomic: of two concurrent refreshes with the
        // same token exactly one sees a row.
        let used = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
             RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = used {
            return Ok(RefreshUse::Accepted(row.try_get("user_id")?));
        }
        let spent = sqlx::query(
            "SELECT user_id FROM refresh_tokens WHERE token_hash = $1 \
             AND (used_at IS NOT NULL OR revoked_at IS NOT NULL)",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = spent else {
            return Ok(RefreshUse::Rejected);
        };
        let user_id: String = row.try_get("user_id")?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&user_id)
        .execute(&self.pool)
        .await?;
        Ok(RefreshUse::Replayed(user_id))
    }

    async fn revoke_refresh_token(&self, user_id: &str, token_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 \
             WHERE token_hash = $2 AND user_id = $3 AND revoked_at IS NULL AND used_at IS NULL",
        )
        .bind(to_millis(Utc::now()))
        .bind(token_hash)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
