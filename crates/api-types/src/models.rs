//! `/models` bodies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// A model of the catalogue in listings.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ModelSummary {
    /// Catalogue id (the `config.model` of a workflow).
    pub model_id: String,
    /// Display name.
    pub name: String,
    /// What runs it (`burn`).
    pub framework: String,
    /// Tasks it is trained for.
    pub task_types: Vec<String>,
    /// Parameters of the instantiated model (ImageNet head for classifiers), e.g. `25.6M`.
    pub parameters: String,
    /// Weights that can be imported as a starting point.
    pub pretrained_weights: Vec<String>,
    /// What it is.
    pub description: String,
    /// Measured quality figures (only where measured on this platform).
    #[serde(skip_serializing_if = "Map::is_empty", default)]
    #[schema(value_type = Object)]
    pub metrics: Map<String, Value>,
}

/// `GET /models` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ModelListResponse {
    /// This page.
    pub models: Vec<ModelSummary>,
    /// Matching models.
    pub total: i64,
    /// Page number.
    pub page: u32,
    /// Page size.
    pub limit: u32,
}

/// `GET /models` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelListQuery {
    /// `classification`, `detection`, `segmentation`.
    pub task_type: Option<String>,
    /// Framework (`burn`).
    pub framework: Option<String>,
    /// Substring of the id, name or description.
    pub search: Option<String>,
    /// 1-based page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Page size (≤ 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// `GET /models/{model_id}` response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ModelDetail {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: ModelSummary,
    /// Default input `[height, width, channels]`.
    pub input_size: [usize; 3],
    /// burn backends it runs on in this build.
    pub supported_backends: Vec<String>,
    /// How to train and use it on this platform.
    pub example_usage: String,
    /// Where the architecture is described.
    pub documentation_url: String,
}
