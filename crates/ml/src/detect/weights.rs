//! Ultralytics YOLOv8 weights as `safetensors`: a user converts a checkpoint once with
//! `safetensors.torch.save_file(torch.load("yolov8n.pt")["model"].float().state_dict(), "yolov8n.safetensors")`
//! and the file loads here. When the class count differs, the mis-shaped tensors of the class
//! branch (`model.22.cv3.*`: only `cv3.*.2` for v8s, the whole branch for v8n, whose hidden
//! width depends on the class count) keep their fresh initialisation.

use std::collections::HashMap;
use std::path::Path;

use crate::error::MlError;
use crate::models::weights::{self, LoadReport, StateDictLayout, torch_name};

use super::model::YoloV8;

/// `layers.N.…` → `model.N.…`, `detect.…` → `model.22.…`, then PyTorch's BatchNorm names.
pub fn ultralytics_key(burn_path: &str) -> String {
    let renamed = if let Some(rest) = burn_path.strip_prefix("layers.") {
        format!("model.{rest}")
    } else if let Some(rest) = burn_path.strip_prefix("detect.") {
        format!("model.22.{rest}")
    } else {
        burn_path.to_string()
    };
    torch_name(&renamed)
}

/// The class branch, replaced when the class count of a weight file differs.
fn is_class_branch(key: &str) -> bool {
    key.starts_with("model.22.cv3.")
}

/// Ultralytics' YOLOv8 state-dict layout.
pub const ULTRALYTICS: StateDictLayout = StateDictLayout {
    key: ultralytics_key,
    is_head: is_class_branch,
};

/// Loads an Ultralytics-layout `safetensors` state dict into `model` (f32, f16 or bf16; a
/// `module.` prefix is accepted). Any mis-shaped or missing tensor outside the class branch is an
/// error.
pub fn load_safetensors(model: YoloV8, path: &Path) -> Result<(YoloV8, LoadReport), MlError> {
    weights::load_safetensors_with(model, path, ULTRALYTICS)
}

/// Writes `model` with Ultralytics' keys (plus `num_batches_tracked`), loadable by
/// `DetectionModel.load_state_dict(strict=True)`.
pub fn save_safetensors(
    model: &YoloV8,
    path: &Path,
    metadata: HashMap<String, String>,
) -> Result<(), MlError> {
    weights::save_safetensors_with(model, path, metadata, ULTRALYTICS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::model::YoloSize;
    use burn::tensor::{Device, Distribution, Tensor, Tolerance};

    #[test]
    fn keys() {
        assert_eq!(
            ultralytics_key("layers.0.bn.gamma"),
            "model.0.bn.weight".to_string()
        );
        assert_eq!(
            ultralytics_key("detect.cv2.0.0.conv.weight"),
            "model.22.cv2.0.0.conv.weight".to_string()
        );
    }

    #[test]
    fn round_trip_and_class_branch_replacement() -> Result<(), MlError> {
        let device = Device::flex();
        let dir = tempfile::tempdir().map_err(|e| MlError::io("tempdir", e))?;
        let path = dir.path().join("y.safetensors");
        let source = YoloV8::seeded(YoloSize::N, 80, 1, &device);
        save_safetensors(&source, &path, HashMap::new())?;

        let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Default, &device);
        let (same, report) = load_safetensors(YoloV8::seeded(YoloSize::N, 80, 2, &device), &path)?;
        assert!(report.replaced_head.is_empty() && report.unused.is_empty());
        for (a, b) in source.forward(x.clone()).into_iter().zip(same.forward(x)) {
            a.into_data()
                .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-6));
        }

        // v8n with 3 classes: the class branch's hidden width is 64 instead of 80, so every
        // tensor of `cv3` is replaced; the box branch and the backbone load.
        let (_, report) = load_safetensors(YoloV8::seeded(YoloSize::N, 3, 2, &device), &path)?;
        assert!(!report.replaced_head.is_empty());
        assert!(
            report
                .replaced_head
                .iter()
                .all(|k| k.starts_with("model.22.cv3."))
        );
        assert!(
            report
                .replaced_head
                .contains(&"model.22.cv3.0.2.bias".to_string())
        );

        let wrong = load_safetensors(YoloV8::seeded(YoloSize::S, 80, 2, &device), &path);
        assert!(matches!(wrong, Err(MlError::Weights(_))));
        Ok(())
    }
}
