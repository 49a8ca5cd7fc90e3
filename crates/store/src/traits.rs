//! Repository traits: what the application needs from storage, one trait per aggregate.

use crate::error::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Project, Usage, User};

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
pub trait Store: UserStore + TokenStore + ProjectStore {
    /// Name of the backend (`sqlite` or `postgres`), for logs and health output.
    fn backend(&self) -> &'static str;
}
