use super::{SqlStore, from_millis, to_millis};
use crate::error::{StoreError, StoreResult};
use crate::traits::UserStore;
use async_trait::async_trait;
use domain::{Plan, Usage, User};
use sqlx::Row;
use sqlx::any::AnyRow;

const USER_COLUMNS: &str = "id, email, name, plan, password_hash, created_at";

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    let plan: String = row.try_get("plan")?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        plan: plan
            .parse::<Plan>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        password_hash: row.try_get("password_hash")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, email, name, plan, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.plan.as_str())
        .bind(&user.password_hash)
        .bind(to_millis(user.created_at))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO usage (user_id, credits) VALUES ($1, $2)")
            .bind(&user.id)
            .bind(i64::from(user.plan.limits().segmentation_credits))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query(&sql)
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn usage(&self, user_id: &str) -> StoreResult<Usage> {
        let row =
            sqlx::query("SELECT compute_seconds, storage_bytes FROM usage WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(row) => Ok(Usage {
                compute_seconds: row.try_get("compute_seconds")?,
                storage_bytes: row.try_get("storage_bytes")?,
            }),
            None => Ok(Usage::default()),
        }
    }

    async fn add_usage(
        &self,
        user_id: &str,
        compute_seconds: f64,
        storage_bytes: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE usage SET compute_seconds = compute_seconds + $1, \
             storage_bytes = storage_bytes + $2 WHERE user_id = $3",
        )
        .bind(compute_seconds)
        .bind(storage_bytes)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
