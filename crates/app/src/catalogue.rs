//! The models the platform really trains, by catalogue id.

use crate::{AppError, AppResult};
use api_types::models::{ModelDetail, ModelListQuery, ModelListResponse, ModelSummary};
use domain::dataset::TaskType;
use ml::Architecture;

/// A trainable model of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueModel {
    /// Catalogue id (`resnet50`, …).
    pub id: &'static str,
    /// Task it serves.
    pub task_type: &'static str,
    /// The architecture the training engine builds.
    pub architecture: Architecture,
}

/// Task types the platform knows about (segmentation is served by the SAM3 service, not
/// trained).
pub const TASK_TYPES: [&str; 3] = ["classification", "detection", "segmentation"];

/// Every trainable model: each architecture the training job runs end to end.
pub fn models() -> Vec<CatalogueModel> {
    Architecture::ALL
        .into_iter()
        .map(|architecture| CatalogueModel {
            id: architecture.name(),
            task_type: task_name(architecture.task()),
            architecture,
        })
        .collect()
}

/// The API name of a task type.
pub fn task_name(task: TaskType) -> &'static str {
    match task {
        TaskType::Classification => "classification",
        TaskType::Detection => "detection",
        TaskType::Segmentation => "segmentation",
    }
}

/// The model with catalogue id `id` (case-insensitive, `-`/`_` ignored: `ResNet-50` works).
pub fn find(id: &str) -> Option<CatalogueModel> {
    let wanted = normalise(id);
    models().into_iter().find(|m| normalise(m.id) == wanted)
}

fn normalise(id: &str) -> String {
    id.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Display name, description, importable weights and documentation of an architecture.
struct Card {
    name: &'static str,
    description: &'static str,
    pretrained: &'static [&'static str],
    documentation: &'static str,
}

fn card(architecture: Architecture) -> Card {
    const ULTRALYTICS: &[&str] = &["Ultralytics COCO weights converted to safetensors"];
    const TORCHVISION: &[&str] = &[
        "torchvision ImageNet weights (safetensors)",
        "timm weights (safetensors)",
    ];
    match architecture {
        Architecture::SmallCnn => Card {
            name: "Small CNN",
            description: "Three conv/BN/ReLU/max-pool stages and a linear head: trains in seconds on CPU",
            pretrained: &[],
            documentation: "https://github.com/tracel-ai/burn",
        },
        Architecture::Resnet18 => Card {
            name: "ResNet-18",
            description: "Residual network with 18 layers (basic blocks), torchvision layout",
            pretrained: TORCHVISION,
            documentation: "https://pytorch.org/vision/stable/models/resnet.html",
        },
        Architecture::Resnet34 => Card {
            name: "ResNet-34",
            description: "Residual network with 34 layers (basic blocks), torchvision layout",
            pretrained: TORCHVISION,
            documentation: "https://pytorch.org/vision/stable/models/resnet.html",
        },
        Architecture::Resnet50 => Card {
            name: "ResNet-50",
            description: "Deep residual network with 50 layers (bottleneck blocks), torchvision layout",
            pretrained: TORCHVISION,
            documentation: "https://pytorch.org/vision/stable/models/resnet.html",
        },
        Architecture::Yolov8n => Card {
            name: "YOLOv8 Nano",
            description: "Anchor-free one-stage object detector (CSPDarknet, PAN, decoupled DFL \
                          head), Ultralytics layout: the fastest detector",
            pretrained: ULTRALYTICS,
            documentation: "https://docs.ultralytics.com/models/yolov8/",
        },
        Architecture::Yolov8s => Card {
            name: "YOLOv8 Small",
            description: "Anchor-free one-stage object detector, Ultralytics layout: wider than \
                          the nano model, more accurate",
            pretrained: ULTRALYTICS,
            documentation: "https://docs.ultralytics.com/models/yolov8/",
        },
    }
}

/// Parameters of each catalogue model as instantiated (1000-class head for classifiers, the
/// 80 COCO classes for detectors), counted once per process.
fn parameter_counts() -> &'static std::collections::HashMap<&'static str, usize> {
    static COUNTS: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> =
        std::sync::OnceLock::new();
    COUNTS.get_or_init(|| {
        let Ok(device) = ml::DeviceSpec::Cpu.device() else {
            return Default::default();
        };
        models()
            .into_iter()
            .filter_map(|m| {
                let count = match m.architecture.task() {
                    TaskType::Detection => ml::detect::YoloSize::of(m.architecture)
                        .ok()
                        .map(|size| ml::detect::YoloV8::new(size, 80, &device).num_params()),
                    _ => ml::Classifier::new(m.architecture, 1000, &device)
                        .ok()
                        .map(|model| model.num_trainable_params()),
                };
                count.map(|n| (m.id, n))
            })
            .collect()
    })
}

fn millions(count: usize) -> String {
    if count >= 1_000_000 {
        format!("{:.1}M", count as f64 / 1e6)
    } else {
        format!("{:.1}K", count as f64 / 1e3)
    }
}

fn summary(model: CatalogueModel) -> ModelSummary {
    let card = card(model.architecture);
    ModelSummary {
        model_id: model.id.to_owned(),
        name: card.name.to_owned(),
        framework: "burn".to_owned(),
        task_types: vec![model.task_type.to_owned()],
        parameters: parameter_counts()
            .get(model.id)
            .map_or_else(|| "unknown".to_owned(), |n| millions(*n)),
        pretrained_weights: card.pretrained.iter().map(|s| (*s).to_owned()).collect(),
        description: card.description.to_owned(),
        metrics: Default::default(),
    }
}

/// `GET /models`: the catalogue filtered and paged.
pub async fn list(query: &ModelListQuery) -> AppResult<ModelListResponse> {
    let page = crate::datasets::page(query.page, query.limit)?;
    let search = query.search.as_deref().map(str::to_lowercase);
    let framework = query.framework.as_deref().map(str::to_lowercase);
    let all = tokio::task::spawn_blocking(|| models().into_iter().map(summary).collect::<Vec<_>>())
        .await
        .map_err(AppError::internal)?;
    let matching: Vec<ModelSummary> = all
        .into_iter()
        .filter(|m| {
            query
                .task_type
                .as_ref()
                .is_none_or(|t| m.task_types.contains(t))
        })
        .filter(|m| framework.as_ref().is_none_or(|f| &m.framework == f))
        .filter(|m| {
            search.as_ref().is_none_or(|s| {
                [&m.model_id, &m.name, &m.description]
                    .iter()
                    .any(|field| field.to_lowercase().contains(s))
            })
        })
        .collect();
    let total = matching.len() as i64;
    let models = matching
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit as usize)
        .collect();
    Ok(ModelListResponse {
        models,
        total,
        page: page.page,
        limit: page.limit,
    })
}

/// `GET /models/{id}`: one catalogue model in detail.
pub async fn get(id: &str) -> AppResult<ModelDetail> {
    let model = models()
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| AppError::not_found("Model", id))?;
    let summary = tokio::task::spawn_blocking(move || summary(model))
        .await
        .map_err(AppError::internal)?;
    let size = model.architecture.default_image_size();
    let example_usage = format!(
        "curl -X POST $VISION/api/v1/workflows -H \"Authorization: Bearer $TOKEN\" \
         -H 'content-type: application/json' -d '{{\"name\":\"my {id}\",\"config\":\
         {{\"task_type\":\"{task}\",\"model\":\"{id}\",\"dataset_id\":\"ds_…\",\
         \"hyperparameters\":{{\"epochs\":10}}}}}}'\n\
         vision train --dataset ./my-images --model {id} --epochs 10",
        task = model.task_type
    );
    Ok(ModelDetail {
        documentation_url: card(model.architecture).documentation.to_owned(),
        summary,
        input_size: [size, size, 3],
        supported_backends: ml::device::available_backends()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        example_usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_models_by_loose_id() {
        assert_eq!(find("ResNet-50").map(|m| m.id), Some("resnet50"));
        assert_eq!(
            find("small_cnn").map(|m| m.task_type),
            Some("classification")
        );
        assert!(find("resnet999").is_none());
        assert_eq!(find("YOLOv8-n").map(|m| m.task_type), Some("detection"));
    }
}
