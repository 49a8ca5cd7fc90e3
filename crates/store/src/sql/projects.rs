use super::{SqlStore, from_millis, to_millis};
use crate::error::StoreResult;
use crate::traits::{NewProject, ProjectChanges, ProjectStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Project;
use sqlx::Row;
use sqlx::any::AnyRow;

const PROJECT_SELECT: &str = "SELECT p.id, p.user_id, p.name, p.description, p.created_at, \
     p.updated_at, \
     (SELECT COUNT(*) FROM workflows w WHERE w.project_id = p.id) AS workflow_count, \
     (SELECT COUNT(*) FROM datasets d WHERE d.project_id = p.id) AS dataset_count \
     FROM projects p";

fn project_from_row(row: &AnyRow) -> StoreResult<Project> {
    Ok(Project {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        workflow_count: row.try_get("workflow_count")?,
        dataset_count: row.try_get("dataset_count")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

#[async_trait]
impl ProjectStore for SqlStore {
    async fn insert_project(&self, project: NewProject<'_>) -> StoreResult<Project> {
        let now = to_millis(project.now);
        sqlx::query(
            "INSERT INTO projects (id, user_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(project.id)
        .bind(project.user_id)
        .bind(project.name)
        .bind(project.description)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Project {
            id: project.id.to_owned(),
            user_id: project.user_id.to_owned(),
            name: project.name.to_owned(),
            description: project.description.to_owned(),
            workflow_count: 0,
            dataset_count: 0,
            created_at: from_millis(now)?,
            updated_at: from_millis(now)?,
        })
    }

    async fn list_projects(&self, user_id: &str) -> StoreResult<Vec<Project>> {
        let sql = format!("{PROJECT_SELECT} WHERE p.user_id = $1 ORDER BY p.created_at DESC, p.id");
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(project_from_row).collect()
    }

    async fn get_project(&self, user_id: &str, id: &str) -> StoreResult<Option<Project>> {
        let sql = format!("{PROJECT_SELECT} WHERE p.user_id = $1 AND p.id = $2");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn update_project(
        &self,
        user_id: &str,
        id: &str,
        changes: ProjectChanges<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Project>> {
        let done = sqlx::query(
            "UPDATE projects SET name = COALESCE($1, name), \
             description = COALESCE($2, description), updated_at = $3 \
             WHERE user_id = $4 AND id = $5",
        )
        .bind(changes.name)
        .bind(changes.description)
        .bind(to_millis(now))
        .bind(user_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_project(user_id, id).await
    }

    async fn delete_project(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM projects WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
