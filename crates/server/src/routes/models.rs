//! `/models` and `/models/{model_id}`: the catalogue of models the platform trains.

use crate::error::ApiResult;
use crate::extract::{ApiQuery, Caller};
use api_types::error::ErrorResponse;
use api_types::models::{ModelDetail, ModelListQuery, ModelListResponse};
use axum::Json;
use axum::extract::Path;

/// The catalogue, filtered and paged.
#[utoipa::path(get, path = "/api/v1/models", tag = "models", security(("bearer" = [])),
    params(ModelListQuery),
    responses((status = 200, body = ModelListResponse), (status = 422, body = ErrorResponse)))]
pub async fn list(
    Caller(_caller): Caller,
    ApiQuery(query): ApiQuery<ModelListQuery>,
) -> ApiResult<Json<ModelListResponse>> {
    Ok(Json(app::catalogue::list(&query).await?))
}

/// One model in detail.
#[utoipa::path(get, path = "/api/v1/models/{model_id}", tag = "models", security(("bearer" = [])),
    params(("model_id" = String, Path)),
    responses((status = 200, body = ModelDetail), (status = 404, body = ErrorResponse)))]
pub async fn get(
    Caller(_caller): Caller,
    Path(model_id): Path<String>,
) -> ApiResult<Json<ModelDetail>> {
    Ok(Json(app::catalogue::get(&model_id).await?))
}
