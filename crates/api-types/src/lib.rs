//! Request and response types of the HTTP APIs with their OpenAPI schemas.
//!
//! Field names follow `shared/spec/platform-api.md` exactly.
//!
//! Required text that must not be blank carries a schema pattern matching one character that is
//! not white space as the server trims it (Rust's `char::is_whitespace`, the Unicode White_Space
//! set). The set is spelled out because `\s` differs between regex dialects (ECMAScript leaves
//! out U+0085 and adds U+FEFF, Python adds U+001C–U+001F).

pub mod auth;
pub mod chat;
pub mod datasets;
pub mod error;
pub mod health;
pub mod inference;
pub mod models;
pub mod projects;
pub mod segmentation;
pub mod users;
pub mod workflows;

/// RFC 3339 timestamps with second precision and a `Z`, as in the spec's examples.
pub mod time {
    use chrono::{DateTime, SecondsFormat, Utc};

    /// Formats `t` like `2025-10-17T10:00:00Z`.
    pub fn rfc3339(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// Closed vocabularies of request fields, for the OpenAPI document only: the fields themselves
/// stay strings (the server names every bad one in a `VALIDATION_ERROR`), and these types give
/// their schemas the `enum` the server enforces.
pub mod vocab {
    use utoipa::ToSchema;

    /// A task type.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum TaskType {
        /// Image classification.
        Classification,
        /// Object detection.
        Detection,
        /// Segmentation.
        Segmentation,
    }

    /// A model id of the catalogue (`GET /models`).
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum ModelName {
        /// Small CNN.
        #[schema(rename = "small_cnn")]
        SmallCnn,
        /// ResNet-18.
        Resnet18,
        /// ResNet-34.
        Resnet34,
        /// ResNet-50.
        Resnet50,
        /// YOLOv8 nano.
        Yolov8n,
        /// YOLOv8 small.
        Yolov8s,
    }

    /// An optimizer.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum Optimizer {
        /// Adam.
        Adam,
        /// AdamW.
        Adamw,
        /// SGD.
        Sgd,
    }

    /// A learning-rate schedule.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum LrSchedule {
        /// Constant.
        Constant,
        /// Step decay.
        Step,
        /// Cosine.
        Cosine,
    }

    /// A dataset split.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum SplitName {
        /// Training images.
        Train,
        /// Validation images.
        Val,
        /// Test images.
        Test,
    }

    /// A dataset format.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum DatasetFormat {
        /// COCO JSON.
        Coco,
        /// YOLO text labels.
        Yolo,
        /// Pascal VOC XML.
        Voc,
        /// One folder per class.
        Imagefolder,
    }

    /// A dataset format of an upload (`auto`: detected).
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum UploadFormat {
        /// COCO JSON.
        Coco,
        /// YOLO text labels.
        Yolo,
        /// Pascal VOC XML.
        Voc,
        /// One folder per class.
        Imagefolder,
        /// Detected from the archive.
        Auto,
    }

    /// A workflow status.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum WorkflowStatus {
        /// Queued.
        Pending,
        /// Running.
        Training,
        /// Done.
        Completed,
        /// Failed.
        Failed,
        /// Cancelled.
        Cancelled,
    }

    /// A sort order of `GET /workflows`.
    #[derive(ToSchema)]
    pub enum WorkflowSort {
        /// Oldest first.
        #[schema(rename = "created_at")]
        Oldest,
        /// Newest first.
        #[schema(rename = "-created_at")]
        Newest,
    }
}

/// Optional integer fields of request bodies read as JSON Schema defines integers: `3` and
/// `3.0` alike (a number with a zero fractional part), so a body the document calls valid is
/// never refused for its spelling. Other fractions, and values outside the Rust type, are
/// refused as serde would refuse them.
pub mod int {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    /// `deserialize_with` for `Option<integer>` fields (use with `#[serde(default)]`).
    pub fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i128>,
    {
        let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let value = if let Some(n) = number.as_i64() {
            i128::from(n)
        } else if let Some(n) = number.as_u64() {
            i128::from(n)
        } else {
            let f = number.as_f64().unwrap_or(f64::NAN);
            // 2^127 bounds what `as` converts exactly; anything larger is out of every range.
            if !(f.is_finite() && f.fract() == 0.0 && f.abs() < 1.7e38) {
                return Err(D::Error::custom(format!(
                    "invalid type: floating point `{number}`, expected an integer"
                )));
            }
            f as i128
        };
        T::try_from(value).map(Some).map_err(|_| {
            D::Error::custom(format!(
                "invalid value: integer `{value}`, out of range for {}",
                std::any::type_name::<T>()
            ))
        })
    }
}
