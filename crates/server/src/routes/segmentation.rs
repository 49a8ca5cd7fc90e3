//! The segmentation edge API: `/upload`, `/segment`, `/tasks/{id}`, `/results`,
//! `/results/{id}`, and the signed `/files/{kind}/{id}` links. Every response is enveloped.

use crate::envelope::{BaseUrl, EdgeCaller, EdgeError, EdgeJson, EdgeOk, EdgeResult};
use crate::state::AppState;
use api_types::segmentation::{
    ResultDetailResponse, ResultsListResponse, ResultsQuery, SegmentRequest, SegmentResponse,
    TaskResponse, UploadResponse,
};
use app::segmentation::edge;
use app::segmentation::urls::FileKind;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Uploads an image (multipart `file`, optional `project_id`); PNG, JPEG or WebP by content.
#[utoipa::path(post, path = "/api/v1/upload", tag = "segmentation", security(("bearer" = [])),
    request_body(content = api_types::segmentation::ImageUploadForm, content_type = "multipart/form-data", description = "file (≤ 10 MB), project_id"),
    responses((status = 200, body = api_types::segmentation::Envelope<UploadResponse>, description = "`data` holds the answer"),
              (status = 400, description = "Not multipart, no `file`, or not a PNG, JPEG or WebP image"),
              (status = 401), (status = 403, description = "Storage quota exceeded"),
              (status = 404, description = "`project_id` is not a project of the caller"),
              (status = 413), (status = 429)))]
pub async fn upload(
    State(state): State<AppState>,
    EdgeCaller(caller): EdgeCaller,
    BaseUrl(base): BaseUrl,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> EdgeResult<UploadResponse> {
    let mut multipart = multipart.map_err(|e| {
        EdgeError::invalid(format!("Expected multipart/form-data: {}", e.body_text()))
    })?;
    let limit = state.app.settings.segmentation.max_upload_bytes;
    let mut file: Option<Bytes> = None;
    let mut project_id = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e, limit))?
    {
        match field.name().unwrap_or_default() {
            "file" => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(&e, limit))?
                {
                    if (bytes.len() + chunk.len()) as u64 > limit {
                        return Err(EdgeError::too_large(limit));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some(Bytes::from(bytes));
            }
            "project_id" => {
                let text = field.text().await.map_err(|e| multipart_error(&e, limit))?;
                let text = text.trim();
                if !text.is_empty() {
                    project_id = Some(text.to_owned());
                }
            }
            // As with JSON bodies, a field the form does not have is refused, not ignored.
            other => {
                return Err(EdgeError::invalid(format!(
                    "Unknown field `{other}`, expected `file` or `project_id`"
                )));
            }
        }
    }
    let file = file.ok_or_else(|| EdgeError::invalid("Missing the `file` field"))?;
    let answer = edge::upload(&state.app, &caller, &base, file, project_id).await?;
    Ok(EdgeOk(StatusCode::OK, answer))
}

fn multipart_error(error: &MultipartError, limit: u64) -> EdgeError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        EdgeError::too_large(limit)
    } else {
        EdgeError::invalid(format!("Malformed multipart body: {}", error.body_text()))
    }
}

/// Queues a segmentation of an uploaded (or public) image; reserves one credit.
#[utoipa::path(post, path = "/api/v1/segment", tag = "segmentation", security(("bearer" = [])),
    request_body = SegmentRequest,
    responses((status = 202, body = api_types::segmentation::Envelope<SegmentResponse>, description = "`data` holds the answer"),
              (status = 400, description = "Invalid body, prompt or image URL"), (status = 401),
              (status = 402, description = "Not enough credits"),
              (status = 404, description = "`project_id` or the uploaded image is not the caller's"),
              (status = 429), (status = 503, description = "No SAM3 model is configured")))]
pub async fn segment(
    State(state): State<AppState>,
    EdgeCaller(caller): EdgeCaller,
    EdgeJson(body): EdgeJson<SegmentRequest>,
) -> EdgeResult<SegmentResponse> {
    Ok(EdgeOk(
        StatusCode::ACCEPTED,
        edge::submit(&state.app, &caller, body).await?,
    ))
}

/// Status of a task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "segmentation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = api_types::segmentation::Envelope<TaskResponse>, description = "`data` holds the answer"), (status = 401), (status = 404)))]
pub async fn task(
    State(state): State<AppState>,
    EdgeCaller(caller): EdgeCaller,
    Path(id): Path<String>,
) -> EdgeResult<TaskResponse> {
    Ok(EdgeOk(
        StatusCode::OK,
        edge::task(&state.app, &caller, &id).await?,
    ))
}

/// The caller's results, newest first.
#[utoipa::path(get, path = "/api/v1/results", tag = "segmentation", security(("bearer" = [])),
    params(ResultsQuery),
    responses((status = 200, body = api_types::segmentation::Envelope<ResultsListResponse>, description = "`data` holds the answer"), (status = 401)))]
pub async fn results(
    State(state): State<AppState>,
    EdgeCaller(caller): EdgeCaller,
    BaseUrl(base): BaseUrl,
    query: Result<Query<ResultsQuery>, QueryRejection>,
) -> EdgeResult<ResultsListResponse> {
    let Query(query) = query.map_err(|e| EdgeError::invalid(e.body_text()))?;
    Ok(EdgeOk(
        StatusCode::OK,
        edge::list(&state.app, &caller, &base, query).await?,
    ))
}

/// One result with labels, metadata, instances and signed image/mask URLs.
#[utoipa::path(get, path = "/api/v1/results/{id}", tag = "segmentation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = api_types::segmentation::Envelope<ResultDetailResponse>, description = "`data` holds the answer"), (status = 401), (status = 404)))]
pub async fn result(
    State(state): State<AppState>,
    EdgeCaller(caller): EdgeCaller,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> EdgeResult<ResultDetailResponse> {
    Ok(EdgeOk(
        StatusCode::OK,
        edge::detail(&state.app, &caller, &base, &id).await?,
    ))
}

/// Query of a signed file URL.
#[derive(Debug, Deserialize)]
pub struct Signed {
    expires: i64,
    signature: String,
}

/// An uploaded image or a mask PNG behind a signed, expiring URL (no bearer token needed).
#[utoipa::path(get, path = "/api/v1/files/{kind}/{id}", tag = "segmentation",
    params(("kind" = String, Path, description = "images | masks"), ("id" = String, Path),
           ("expires" = i64, Query), ("signature" = String, Query)),
    responses((status = 200, description = "The image bytes"), (status = 403), (status = 404)))]
pub async fn file(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    query: Result<Query<Signed>, QueryRejection>,
) -> Result<Response, EdgeError> {
    let kind = FileKind::parse(&kind)
        .ok_or_else(|| EdgeError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such file"))?;
    let Query(signed) = query.map_err(|_| {
        EdgeError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "The link needs `expires` and `signature`",
        )
    })?;
    let (content_type, bytes) =
        edge::file(&state.app, kind, &id, signed.expires, &signed.signature).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
