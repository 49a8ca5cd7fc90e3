//! The OpenAPI document, generated from the handlers and types.

use crate::routes;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
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
        routes::datasets::items,
        routes::datasets::item_file,
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
    components(schemas(
        api_types::segmentation::EdgeErrorResponse,
        api_types::vocab::TaskType,
        api_types::vocab::ModelName,
        api_types::vocab::Optimizer,
        api_types::vocab::LrSchedule,
        api_types::vocab::DatasetFormat,
        api_types::vocab::SplitName,
        api_types::vocab::UploadFormat,
        api_types::vocab::WorkflowStatus,
        api_types::vocab::WorkflowSort,
    )),
    modifiers(&BearerAuth, &CommonResponses),
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

/// Adds the answers that middleware and extractors give on every route of a kind, so each
/// operation documents every status it can really return:
///
/// * authenticated routes (bearer or `X-Internal-Auth`): 401 from the guard;
/// * bearer routes: 429 when the plan's rate limit is exhausted;
/// * JSON bodies: 400 (not JSON, malformed), 413 (over the body limit) and, on the platform
///   API, 422 (missing, unknown or mistyped fields);
/// * query parameters: 400 when the query string does not parse;
/// * edge (segmentation) routes: every error body is the `{success, data, error, meta}`
///   envelope, never the platform's `{"error": …}`;
/// * bearer routes: `X-RateLimit-Limit`, `-Remaining` and `-Reset` on every answer past the
///   token check (all but 401), present while rate limiting is enabled.
struct CommonResponses;

impl CommonResponses {
    fn operation(path: &str, op: &mut Operation) {
        let edge = is_edge_documented(path);
        let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
        let internal = path.starts_with("/internal/");
        let json_body = op
            .request_body
            .as_ref()
            .is_some_and(|b| b.content.contains_key("application/json"));
        let query = op
            .parameters
            .iter()
            .flatten()
            .any(|p| matches!(p.parameter_in, ParameterIn::Query));
        let error = |description: &str| -> RefOr<Response> {
            let schema = if edge {
                "EdgeErrorResponse"
            } else {
                "ErrorResponse"
            };
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name(schema))),
                    )
                    .build(),
            )
        };
        let responses = &mut op.responses.responses;
        let mut add = |status: &str, description: &str| {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| error(description));
        };
        if secured || internal {
            add("401", "Missing, malformed, invalid or expired credentials");
        }
        if secured {
            add(
                "429",
                "Rate limit exceeded (`Retry-After` says when to retry)",
            );
        }
        if json_body {
            add("400", "The body is not JSON or is malformed");
            add("413", "The body is over the size limit");
            if !edge {
                add("422", "A field is missing, unknown or of the wrong type");
            }
        }
        if query {
            add("400", "The query string does not parse");
        }
        if secured {
            for (status, response) in responses.iter_mut() {
                if let RefOr::T(response) = response
                    && status != "401"
                {
                    for (name, description) in RATE_LIMIT_HEADERS {
                        let schema = ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0))
                            .build();
                        let header = HeaderBuilder::new()
                            .schema(schema)
                            .description(Some(description))
                            .build();
                        response.headers.insert(name.to_owned(), header);
                    }
                }
            }
        }
        if edge {
            // Errors documented by status alone still carry the envelope.
            for (status, response) in responses.iter_mut() {
                if let RefOr::T(response) = response
                    && !status.starts_with('2')
                    && response.content.is_empty()
                {
                    response.content.insert(
                        "application/json".to_owned(),
                        Content::new(Some(Ref::from_schema_name("EdgeErrorResponse"))),
                    );
                }
            }
        }
    }
}

/// The headers of the plan's rate limit (`guard::add_rate_limit_headers`).
const RATE_LIMIT_HEADERS: [(&str, &str); 3] = [
    (
        "X-RateLimit-Limit",
        "Requests the plan allows in the current window",
    ),
    (
        "X-RateLimit-Remaining",
        "Requests left in the current window",
    ),
    ("X-RateLimit-Reset", "When the window resets (Unix seconds)"),
];

/// Edge routes whose answers are enveloped (`/files/…` serves bytes, its errors enveloped).
fn is_edge_documented(path: &str) -> bool {
    crate::envelope::is_edge_path(path)
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                Self::operation(path, op);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The values a schema-only enum of `api_types::vocab` lists in the document.
    fn listed(doc: &serde_json::Value, schema: &str) -> Vec<String> {
        let mut values: Vec<String> = doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        values.sort();
        values
    }

    fn sorted(values: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
        let mut values: Vec<String> = values.into_iter().map(Into::into).collect();
        values.sort();
        values
    }

    /// The schema's vocabularies are written out for utoipa; they must say what the platform
    /// really accepts, or the fuzzer's acceptance checks test the wrong list.
    #[test]
    fn schema_vocabularies_follow_the_platform() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(
            listed(&doc, "ModelName"),
            sorted(app::catalogue::models().into_iter().map(|m| m.id))
        );
        assert_eq!(listed(&doc, "TaskType"), sorted(app::catalogue::TASK_TYPES));
        assert_eq!(
            listed(&doc, "WorkflowStatus"),
            sorted(domain::WorkflowStatus::ALL.map(|s| s.as_str()))
        );
    }
}
