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
    pub name: String,
    /// Free text, up to 2000 characters.
    #[serde(default)]
    pub description: String,
}

/// `PATCH /projects/{id}` body; absent fields stay unchanged.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectRequest {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}
