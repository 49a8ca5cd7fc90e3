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
