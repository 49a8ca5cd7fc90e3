//! The OpenAPI document, generated from the handlers and types.

use crate::routes;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The platform API description served at `/api/v1/openapi.json` and written by `vision openapi`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Vision Platform API", description = "Train, serve and segment: the platform API (v1)."),
    paths(
        routes::health::health,
        routes::health::metrics,
        routes::auth::token,
        routes::auth::refresh,
        routes::auth::register,
        routes::auth::revoke,
        routes::users::profile,
        routes::projects::list,
        routes::projects::create,
        routes::projects::get,
        routes::projects::update,
        routes::projects::delete,
        routes::datasets::upload,
        routes::datasets::list,
        routes::datasets::get,
        routes::datasets::delete,
        routes::datasets::validate,
        routes::datasets::export,
        routes::models::list,
        routes::models::get,
        routes::inference::predict,
        routes::inference::batch,
        routes::inference::batch_status,
        routes::chat::message,
        routes::chat::get,
        routes::chat::delete,
        routes::workflows::create,
        routes::workflows::list,
        routes::workflows::get,
        routes::workflows::metrics,
        routes::workflows::logs,
        routes::workflows::cancel,
        routes::internal::create_workflow,
        routes::internal::prepare_model,
        routes::segmentation::upload,
        routes::segmentation::segment,
        routes::segmentation::task,
        routes::segmentation::results,
        routes::segmentation::result,
        routes::segmentation::file,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Tokens and accounts"),
        (name = "users", description = "The caller's profile"),
        (name = "projects", description = "Projects"),
        (name = "datasets", description = "Dataset upload, statistics, validation, export"),
        (name = "models", description = "The catalogue of models the platform trains"),
        (name = "inference", description = "Predictions from trained workflows"),
        (name = "chat", description = "Natural language (Korean/English) → training configuration"),
        (name = "workflows", description = "Training workflows (live events: WebSocket /api/v1/ws/workflows/{workflow_id}?token=…)"),
        (name = "internal", description = "Service-to-service API (X-Internal-Auth; only when configured)"),
        (name = "segmentation", description = "Text-prompted segmentation (SAM3): every response in the {success, data, error, meta} envelope"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.bearer_format = Some("JWT".into());
            components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        }
    }
}

/// The document, versioned like the server.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The document as pretty JSON with a trailing newline (the committed `docs/openapi.json`).
pub fn openapi_json() -> String {
    document()
        .to_pretty_json()
        .map(|s| s + "\n")
        .unwrap_or_default()
}
