//! `/datasets`: upload, list, detail, validate, export, delete, items and their files.

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Caller};
use crate::state::AppState;
use api_types::datasets::{
    DatasetDetail, DatasetItemsResponse, DatasetListResponse, DatasetSummary, ExportQuery,
    ItemsQuery, PageQuery, ValidateRequest, ValidateResponse,
};
use api_types::error::ErrorResponse;
use app::datasets::{StoredArchive, UploadForm};
use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::json;

const MAX_TEXT_FIELD: usize = 64 * 1024;

/// Uploads a dataset archive (multipart: `file`, `name`, `format`, `description`, `project_id`).
/// The archive is streamed to storage; processing continues in the background.
#[utoipa::path(post, path = "/api/v1/datasets/upload", tag = "datasets", security(("bearer" = [])),
    request_body(content = api_types::datasets::DatasetUploadForm, content_type = "multipart/form-data", description = "file, name, format (coco|yolo|voc|imagefolder|auto), description, project_id"),
    responses((status = 201, body = DatasetSummary), (status = 400, body = ErrorResponse),
              (status = 403, description = "Storage quota exceeded", body = ErrorResponse),
              (status = 404, description = "`project_id` is not a project of the caller", body = ErrorResponse),
              (status = 413, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn upload(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<DatasetSummary>)> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::invalid_request(
            "Expected a multipart/form-data body",
            json!({ "reason": e.body_text() }),
        )
    })?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    app::datasets::check_declared_size(&state.app, &caller, declared).await?;
    let mut form = UploadForm::default();
    let mut archive: Option<StoredArchive> = None;
    let read = read_form(&state, &caller, &mut multipart, &mut form, &mut archive).await;
    if let Err(error) = read {
        if let Some(archive) = archive {
            state
                .app
                .objects
                .delete(&archive.key)
                .await
                .map_err(app::AppError::from)?;
        }
        return Err(error);
    }
    let summary = app::datasets::create(&state.app, &caller, form, archive).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

async fn read_form(
    state: &AppState,
    caller: &app::auth::Principal,
    multipart: &mut Multipart,
    form: &mut UploadForm,
    archive: &mut Option<StoredArchive>,
) -> ApiResult<()> {
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if archive.is_some() {
                return Err(ApiError::invalid_request(
                    "Only one file per upload",
                    json!({ "field": "file" }),
                ));
            }
            *archive =
                Some(app::datasets::store_archive(&state.app, caller, Box::pin(field)).await?);
            continue;
        }
        let value = text(field, &name).await?;
        match name.as_str() {
            "name" => form.name = Some(value),
            "format" => form.format = Some(value),
            "description" => form.description = Some(value),
            "project_id" => form.project_id = Some(value).filter(|v| !v.is_empty()),
            // As with JSON bodies, a field the form does not have is refused, not ignored.
            _ => {
                return Err(app::AppError::Validation(vec![app::FieldError::new(
                    name.clone(),
                    format!(
                        "unknown field `{name}`, expected one of `file`, `name`, `format`, \
                         `description`, `project_id`"
                    ),
                )])
                .into());
            }
        }
    }
    Ok(())
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::invalid_request(
        "Malformed multipart body",
        json!({ "reason": error.body_text() }),
    )
}

async fn text(mut field: Field<'_>, name: &str) -> ApiResult<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.next().await {
        bytes.extend_from_slice(&chunk.map_err(multipart_error)?);
        if bytes.len() > MAX_TEXT_FIELD {
            return Err(ApiError::invalid_request(
                "Form field too long",
                json!({ "field": name }),
            ));
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::invalid_request("Form field is not UTF-8", json!({ "field": name })))
}

/// The caller's datasets.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = DatasetListResponse), (status = 422, body = ErrorResponse)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<DatasetListResponse>> {
    let page = app::datasets::page(query.page, query.limit)?;
    Ok(Json(app::datasets::list(&state.app, &caller, page).await?))
}

/// One dataset with its statistics.
#[utoipa::path(get, path = "/api/v1/datasets/{dataset_id}", tag = "datasets", security(("bearer" = [])),
    params(("dataset_id" = String, Path)),
    responses((status = 200, body = DatasetDetail), (status = 404, body = ErrorResponse)))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(dataset_id): Path<String>,
) -> ApiResult<Json<DatasetDetail>> {
    Ok(Json(
        app::datasets::get(&state.app, &caller, &dataset_id).await?,
    ))
}

/// Deletes a dataset and its stored files; refused (409, naming them in `details.workflow_ids`)
/// while queued or running workflows use it.
#[utoipa::path(delete, path = "/api/v1/datasets/{dataset_id}", tag = "datasets", security(("bearer" = [])),
    params(("dataset_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse),
              (status = 409, description = "Used by queued or running workflows", body = ErrorResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(dataset_id): Path<String>,
) -> ApiResult<StatusCode> {
    app::datasets::delete(&state.app, &caller, &dataset_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a ready dataset; messages follow `Accept-Language` (Korean or English).
#[utoipa::path(post, path = "/api/v1/datasets/{dataset_id}/validate", tag = "datasets", security(("bearer" = [])),
    params(("dataset_id" = String, Path)), request_body = ValidateRequest,
    responses((status = 200, body = ValidateResponse), (status = 404, body = ErrorResponse),
              (status = 409, description = "Not ready", body = ErrorResponse)))]
pub async fn validate(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(dataset_id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> ApiResult<Json<ValidateResponse>> {
    let language = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(Json(
        app::datasets::validate(&state.app, &caller, &dataset_id, body, language).await?,
    ))
}

/// Downloads a ready dataset as a zip in `format` (default: its own).
#[utoipa::path(get, path = "/api/v1/datasets/{dataset_id}/export", tag = "datasets", security(("bearer" = [])),
    params(("dataset_id" = String, Path), ExportQuery),
    responses((status = 200, content_type = "application/zip", description = "The archive"),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
pub async fn export(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(dataset_id): Path<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let (zip, filename) =
        app::datasets::export(&state.app, &caller, &dataset_id, query.format.as_deref()).await?;
    // The open handle keeps the (already unlinked) temporary file readable while streaming.
    let file = zip.reopen().map_err(ApiError::internal)?;
    drop(zip);
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A page of a ready dataset's images with their annotations and signed links to each image
/// and its thumbnail, optionally only one split and one class.
#[utoipa::path(get, path = "/api/v1/datasets/{dataset_id}/items", tag = "datasets", security(("bearer" = [])),
    params(("dataset_id" = String, Path), ItemsQuery),
    responses((status = 200, body = DatasetItemsResponse), (status = 404, body = ErrorResponse),
              (status = 409, description = "Not ready", body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
pub async fn items(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(dataset_id): Path<String>,
    ApiQuery(query): ApiQuery<ItemsQuery>,
) -> ApiResult<Json<DatasetItemsResponse>> {
    Ok(Json(
        app::dataset_items::items(&state.app, &caller, &dataset_id, &query).await?,
    ))
}

/// Query of a signed item link.
#[derive(Debug, serde::Deserialize)]
pub struct ItemLink {
    owner: String,
    expires: i64,
    signature: String,
}

/// One image of a dataset, or its thumbnail (a JPEG, longest side ≤ 256 px), behind the signed
/// link `GET /datasets/{id}/items` hands out (no bearer token: usable in `<img src>`).
#[utoipa::path(get, path = "/api/v1/datasets/{dataset_id}/items/{item_id}/{file}", tag = "datasets",
    params(("dataset_id" = String, Path), ("item_id" = u32, Path),
           ("file" = String, Path, description = "image | thumbnail"),
           ("owner" = String, Query), ("expires" = i64, Query), ("signature" = String, Query)),
    responses((status = 200, description = "The image", content_type = "image/*"),
              (status = 403, description = "Invalid or expired link", body = ErrorResponse),
              (status = 404, body = ErrorResponse)))]
pub async fn item_file(
    State(state): State<AppState>,
    Path((dataset_id, item, file)): Path<(String, String, String)>,
    ApiQuery(link): ApiQuery<ItemLink>,
) -> ApiResult<Response> {
    let kind = app::dataset_items::ItemFile::parse(&file)
        .ok_or_else(|| app::AppError::not_found("Dataset item file", file.clone()))?;
    let item = item
        .parse()
        .map_err(|_| app::AppError::not_found("Dataset item", item.clone()))?;
    let (content_type, bytes) = app::dataset_items::file(
        &state.app,
        &link.owner,
        &dataset_id,
        item,
        kind,
        link.expires,
        &link.signature,
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}
