//! `/datasets` bodies.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A dataset in listings and in the upload response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DatasetSummary {
    /// `ds_…` id.
    pub dataset_id: String,
    /// Display name.
    pub name: String,
    /// `coco`, `yolo`, `voc`, `imagefolder` (or `auto` until detected).
    pub format: String,
    /// Archive size in MB.
    pub size_mb: f64,
    /// Images (0 while processing).
    pub file_count: i64,
    /// `processing`, `ready` or `failed`.
    pub status: String,
    /// Upload time.
    pub created_at: String,
}

/// `GET /datasets` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DatasetListResponse {
    /// This page, newest first.
    pub datasets: Vec<DatasetSummary>,
    /// All of the caller's datasets.
    pub total: i64,
    /// Page number.
    pub page: u32,
    /// Page size.
    pub limit: u32,
}

/// Images per class (classification) or boxes per class (detection).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ClassCountView {
    /// Class name.
    pub name: String,
    /// Count.
    pub count: u64,
}

/// Statistics of a ready dataset.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct StatisticsView {
    /// All images.
    pub total_images: u64,
    /// Training split.
    pub train_images: u64,
    /// Validation split.
    pub val_images: u64,
    /// Test split.
    pub test_images: u64,
    /// Per class.
    pub classes: Vec<ClassCountView>,
}

/// `GET /datasets/{id}` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DatasetDetail {
    /// `ds_…` id.
    pub dataset_id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Format.
    pub format: String,
    /// Archive size in MB.
    pub size_mb: f64,
    /// Images.
    pub file_count: i64,
    /// `processing`, `ready` or `failed`.
    pub status: String,
    /// Statistics once ready.
    pub statistics: Option<StatisticsView>,
    /// Why processing failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Project, if any.
    pub project_id: Option<String>,
    /// Upload time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// `POST /datasets/{id}/validate` body.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// Format the dataset should be in.
    #[schema(value_type = Option<crate::vocab::DatasetFormat>)]
    pub expected_format: Option<String>,
    /// Number of classes it should have.
    #[serde(default, deserialize_with = "crate::int::option")]
    pub expected_classes: Option<u32>,
}

/// One problem found by validation.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ValidationIssueView {
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// Message (Korean when `Accept-Language` prefers `ko`).
    pub message: String,
    /// Structured details.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// `POST /datasets/{id}/validate` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ValidateResponse {
    /// `ds_…` id.
    pub dataset_id: String,
    /// No error-level issue.
    pub valid: bool,
    /// Problems, errors first.
    pub issues: Vec<ValidationIssueView>,
    /// What to do about them.
    pub recommendations: Vec<String>,
}

/// Query of `GET /datasets`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Page size (default 20, at most 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Query of `GET /datasets/{id}/export`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `coco`, `yolo`, `voc` or `imagefolder` (default: the dataset's own format).
    #[param(value_type = Option<crate::vocab::DatasetFormat>)]
    pub format: Option<String>,
}

/// `POST /datasets/upload` form (`multipart/form-data`; any other field is a 422).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetUploadForm {
    /// The archive: `.zip`, `.tar` or `.tar.gz`.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// Display name, 1–200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Annotation format (`auto`: detected from the archive).
    #[schema(value_type = crate::vocab::UploadFormat)]
    pub format: String,
    /// Free text, up to 2000 characters.
    #[schema(value_type = String, required = false, max_length = 2000)]
    pub description: Option<String>,
    /// Project of the caller to file it under (404 when it is not one).
    #[schema(value_type = String, required = false)]
    pub project_id: Option<String>,
}

/// Query of `GET /datasets/{id}/items`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    /// Only images of this split.
    #[param(value_type = Option<crate::vocab::SplitName>)]
    pub split: Option<String>,
    /// Only images labelled with (classification) or containing a box of (detection) this class.
    #[param(min_length = 1, max_length = 256)]
    pub class: Option<String>,
    /// 1-based page (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Page size (default 50, at most 200).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// One annotation of a dataset image: its class, and its box for detection.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ItemAnnotation {
    /// Index into the dataset's classes.
    pub class_id: usize,
    /// Class name.
    pub class_name: String,
    /// `[x, y, width, height]` in the image's pixels; `null` for a classification label.
    pub bbox: Option<[f64; 4]>,
}

/// One image of a dataset.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DatasetItem {
    /// The image's position in the dataset (stable while the dataset is unchanged).
    pub id: usize,
    /// Path inside the dataset.
    pub file_name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `train`, `val` or `test`.
    pub split: String,
    /// The class label (classification) or the boxes (detection).
    pub annotations: Vec<ItemAnnotation>,
    /// Signed, expiring URL of a JPEG thumbnail (longest side at most 256 px); no token needed.
    pub thumbnail_url: String,
    /// Signed, expiring URL of the image itself; no token needed.
    pub image_url: String,
}

/// `GET /datasets/{id}/items` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DatasetItemsResponse {
    /// This page, in dataset order.
    pub items: Vec<DatasetItem>,
    /// Images matching the filters.
    pub total: usize,
    /// Page number.
    pub page: u32,
    /// Page size.
    pub limit: u32,
}

/// Query of a signed dataset file URL.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignedQuery {
    /// Unix time after which the link stops working.
    pub expires: i64,
    /// HMAC of the path and `expires`.
    pub signature: String,
}
