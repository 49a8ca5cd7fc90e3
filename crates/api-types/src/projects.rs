//! `/projects` bodies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A project.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ProjectResponse {
    /// `proj_…` id.
    pub project_id: String,
    /// Name (unique per user).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Workflows in the project.
    pub workflow_count: i64,
    /// Datasets in the project.
    pub dataset_count: i64,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// `GET /projects` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ProjectListResponse {
    /// The caller's projects, newest first.
    pub projects: Vec<ProjectResponse>,
}

/// `POST /projects` body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    /// Name, 1–100 characters, unique per user.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Free text, up to 2000 characters.
    #[schema(max_length = 2000)]
    #[serde(default)]
    pub description: String,
}

/// `PATCH /projects/{id}` body; absent fields stay unchanged.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectRequest {
    /// New name, 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
    /// New description, up to 2000 characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}
