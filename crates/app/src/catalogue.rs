//! The models the platform really trains, by catalogue id.

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

/// Task types the platform knows about (some may have no trainable model yet).
pub const TASK_TYPES: [&str; 3] = ["classification", "detection", "segmentation"];

/// Every trainable model. Only architectures the training job can run end to end are
/// listed (detection joins once the job trains detectors).
pub fn models() -> Vec<CatalogueModel> {
    Architecture::ALL
        .into_iter()
        .filter(|a| a.task() == TaskType::Classification)
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
    }
}
