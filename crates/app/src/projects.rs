//! Projects: create, list, read, update, delete — always scoped to the caller.

use crate::App;
use crate::auth::Principal;
use crate::error::{AppError, AppResult, Validator};
use api_types::projects::{
    CreateProjectRequest, ProjectListResponse, ProjectResponse, UpdateProjectRequest,
};
use api_types::time::rfc3339;
use chrono::Utc;
use domain::{IdKind, Project};
use serde_json::json;
use store::{NewProject, ProjectChanges};

const NAME_MAX: usize = 100;
const DESCRIPTION_MAX: usize = 2000;

fn view(project: Project) -> ProjectResponse {
    ProjectResponse {
        project_id: project.id,
        name: project.name,
        description: project.description,
        workflow_count: project.workflow_count,
        dataset_count: project.dataset_count,
        created_at: rfc3339(project.created_at),
        updated_at: rfc3339(project.updated_at),
    }
}

fn name_taken(name: &str) -> AppError {
    AppError::Conflict {
        message: format!("A project named '{name}' already exists"),
        details: json!({ "field": "name" }),
    }
}

fn map_conflict(name: &str) -> impl FnOnce(store::StoreError) -> AppError + '_ {
    move |e| match e {
        store::StoreError::Conflict(_) => name_taken(name),
        other => other.into(),
    }
}

/// Creates a project owned by the caller.
pub async fn create(
    app: &App,
    principal: &Principal,
    request: CreateProjectRequest,
) -> AppResult<ProjectResponse> {
    Validator::default()
        .text("name", &request.name, 1, NAME_MAX)
        .text("description", &request.description, 0, DESCRIPTION_MAX)
        .finish()?;
    let id = IdKind::Project.new_id();
    let name = request.name.trim();
    let project = NewProject {
        id: &id,
        user_id: &principal.user_id,
        name,
        description: request.description.trim(),
        now: Utc::now(),
    };
    let project = app
        .store
        .insert_project(project)
        .await
        .map_err(map_conflict(name))?;
    tracing::info!(project_id = %project.id, "project created");
    Ok(view(project))
}

/// The caller's projects.
pub async fn list(app: &App, principal: &Principal) -> AppResult<ProjectListResponse> {
    let projects = app.store.list_projects(&principal.user_id).await?;
    Ok(ProjectListResponse {
        projects: projects.into_iter().map(view).collect(),
    })
}

/// One of the caller's projects.
pub async fn get(app: &App, principal: &Principal, id: &str) -> AppResult<ProjectResponse> {
    app.store
        .get_project(&principal.user_id, id)
        .await?
        .map(view)
        .ok_or_else(|| AppError::not_found("Project", id))
}

/// Changes the name and/or description of one of the caller's projects.
pub async fn update(
    app: &App,
    principal: &Principal,
    id: &str,
    request: UpdateProjectRequest,
) -> AppResult<ProjectResponse> {
    let mut validator = Validator::default();
    if let Some(name) = &request.name {
        validator.text("name", name, 1, NAME_MAX);
    }
    if let Some(description) = &request.description {
        validator.text("description", description, 0, DESCRIPTION_MAX);
    }
    validator.finish()?;
    let name = request.name.as_deref().map(str::trim);
    let changes = ProjectChanges {
        name,
        description: request.description.as_deref().map(str::trim),
    };
    app.store
        .update_project(&principal.user_id, id, changes, Utc::now())
        .await
        .map_err(map_conflict(name.unwrap_or_default()))?
        .map(view)
        .ok_or_else(|| AppError::not_found("Project", id))
}

/// Deletes one of the caller's projects; its datasets and workflows stay, outside any project.
pub async fn delete(app: &App, principal: &Principal, id: &str) -> AppResult<()> {
    if app.store.delete_project(&principal.user_id, id).await? {
        tracing::info!(project_id = %id, "project deleted");
        Ok(())
    } else {
        Err(AppError::not_found("Project", id))
    }
}
