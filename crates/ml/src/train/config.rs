//! Training configuration (what a workflow's `config` JSON deserialises into).

use std::path::PathBuf;

use domain::dataset::TaskType;
use serde::{Deserialize, Serialize};

use super::recipe::Choice;
use crate::data::{Augment, Normalization};
use crate::detect::DetectionOptions;
use crate::device::DeviceSpec;
use crate::error::MlError;
use crate::models::Architecture;

/// Optimizer family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam (L2 weight decay added to the gradient when `weight_decay > 0`).
    Adam,
    /// AdamW (decoupled weight decay).
    #[default]
    Adamw,
    /// SGD with momentum (and optional Nesterov) and L2 weight decay.
    Sgd,
}

/// Learning-rate schedule over the run (each may start with a linear warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrScheduleKind {
    /// The same rate throughout.
    Constant,
    /// Multiply by `lr_gamma` every `lr_step_epochs` epochs.
    Step,
    /// Cosine decay from `learning_rate` to `min_lr`.
    #[default]
    Cosine,
}

/// Everything that defines a training run. Unknown fields are rejected; missing ones take the
/// defaults of [`TrainConfig::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Architecture to train.
    pub model: Architecture,
    /// Side of the square model input; `None` takes the architecture's default.
    pub image_size: Option<usize>,
    /// Number of passes over the training images.
    pub epochs: usize,
    /// Images per optimisation step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    pub momentum: f64,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay; `None` means 0.05 for AdamW and 0 for Adam/SGD.
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule.
    pub lr_schedule: LrScheduleKind,
    /// Linear warm-up length in epochs (fractions allowed).
    pub warmup_epochs: f64,
    /// Step schedule: epochs between decays.
    pub lr_step_epochs: usize,
    /// Step schedule: decay factor.
    pub lr_gamma: f64,
    /// Cosine schedule: final learning rate.
    pub min_lr: f64,
    /// Stop after this many epochs without a `val_loss` improvement; `None` never stops early.
    pub early_stopping_patience: Option<usize>,
    /// Smallest `val_loss` decrease that counts as an improvement.
    pub early_stopping_min_delta: f64,
    /// Classification: label smoothing of the training loss (0 = plain cross-entropy; validation
    /// always uses plain cross-entropy).
    pub label_smoothing: f64,
    /// Training augmentation.
    pub augment: Augment,
    /// Evaluation centre-crop fraction (see [`crate::data::Preprocess::crop_pct`]).
    pub crop_pct: f64,
    /// Input normalisation.
    pub normalization: Normalization,
    /// Fraction of the training images held out for validation when the dataset has no `val` split.
    pub val_fraction: f64,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// torchvision/timm `safetensors` weights to start from (the head is replaced when the class
    /// count differs).
    pub pretrained_weights: Option<PathBuf>,
    /// Compute device.
    pub device: DeviceSpec,
    /// Detection only: mosaic, scale/translation jitter and loss gains (Ultralytics' defaults
    /// when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection: Option<DetectionOptions>,
    /// How the settings above were chosen (see [`crate::train::recipe`]); empty for a config
    /// written by hand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipe: Vec<Choice>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: Architecture::Resnet18,
            image_size: None,
            epochs: 10,
            batch_size: 32,
            learning_rate: 1e-3,
            optimizer: OptimizerKind::Adamw,
            momentum: 0.9,
            nesterov: false,
            weight_decay: None,
            lr_schedule: LrScheduleKind::Cosine,
            warmup_epochs: 0.0,
            lr_step_epochs: 30,
            lr_gamma: 0.1,
            min_lr: 0.0,
            early_stopping_patience: None,
            early_stopping_min_delta: 0.0,
            label_smoothing: 0.0,
            augment: Augment::default(),
            crop_pct: 0.875,
            normalization: Normalization::IMAGENET,
            val_fraction: 0.1,
            seed: 42,
            pretrained_weights: None,
            device: DeviceSpec::Cpu,
            detection: None,
            recipe: Vec::new(),
        }
    }
}

impl TrainConfig {
    /// Input size actually used.
    pub fn image_size(&self) -> usize {
        self.image_size
            .unwrap_or_else(|| self.model.default_image_size())
    }

    /// Weight decay actually used.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay.unwrap_or(match self.optimizer {
            OptimizerKind::Adamw => 0.05,
            OptimizerKind::Adam | OptimizerKind::Sgd => 0.0,
        })
    }

    /// Checks ranges; the message names the offending field.
    pub fn validate(&self) -> Result<(), MlError> {
        let bad = |field: &str, why: &str| Err(MlError::InvalidConfig(format!("{field}: {why}")));
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be a positive number");
        }
        let size = self.image_size();
        if !(8..=1024).contains(&size) {
            return bad("image_size", "must be between 8 and 1024");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", "must be in [0, 1)");
        }
        if !(self.weight_decay().is_finite() && self.weight_decay() >= 0.0) {
            return bad("weight_decay", "must be ≥ 0");
        }
        if !(self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0) {
            return bad("warmup_epochs", "must be ≥ 0");
        }
        if self.lr_schedule == LrScheduleKind::Step && self.lr_step_epochs == 0 {
            return bad("lr_step_epochs", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad("val_fraction", "must be in [0, 1)");
        }
        if !(0.0..=0.5).contains(&self.augment.translate) {
            return bad("augment.translate", "must be in [0, 0.5]");
        }
        if !(0.0..=180.0).contains(&self.augment.rotate_degrees) {
            return bad("augment.rotate_degrees", "must be in [0, 180]");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing", "must be in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.augment.hflip_probability) {
            return bad("augment.hflip_probability", "must be in [0, 1]");
        }
        if !(self.crop_pct > 0.0 && self.crop_pct <= 1.0) {
            return bad("crop_pct", "must be in (0, 1]");
        }
        if let Some(d) = &self.detection {
            let probability = |p: f64| (0.0..=1.0).contains(&p);
            if !(probability(d.mosaic) && (0.0..1.0).contains(&d.scale) && probability(d.translate))
            {
                return bad(
                    "detection",
                    "needs mosaic and translate in [0, 1] and scale in [0, 1)",
                );
            }
            if [d.box_gain, d.cls_gain, d.dfl_gain]
                .iter()
                .any(|g| !(g.is_finite() && *g >= 0.0))
            {
                return bad("detection", "loss gains must be ≥ 0");
            }
        }
        if self.model.task() == TaskType::Detection && !size.is_multiple_of(32) {
            return bad(
                "image_size",
                "must be a multiple of 32 for detection models",
            );
        }
        if self.normalization.std.iter().any(|s| *s <= 0.0) {
            return bad("normalization.std", "must be positive");
        }
        if let Some(crop) = &self.augment.random_resized_crop
            && !(crop.scale.0 > 0.0
                && crop.scale.0 <= crop.scale.1
                && crop.scale.1 <= 1.0
                && crop.ratio.0 > 0.0
                && crop.ratio.0 <= crop.ratio.1)
        {
            return bad(
                "augment.random_resized_crop",
                "needs 0 < scale.0 ≤ scale.1 ≤ 1 and 0 < ratio.0 ≤ ratio.1",
            );
        }
        if let Some(path) = &self.pretrained_weights
            && !path.is_file()
        {
            return bad(
                "pretrained_weights",
                &format!("{} is not a file", path.display()),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_defaults_and_validation() -> Result<(), MlError> {
        let config: TrainConfig = serde_json::from_str(
            r#"{"model":"resnet50","epochs":3,"optimizer":"sgd","lr_schedule":"step","device":"cpu"}"#,
        )
        .map_err(|e| MlError::json("inline", e))?;
        assert_eq!(config.model, Architecture::Resnet50);
        assert_eq!(config.image_size(), 224);
        assert_eq!(config.batch_size, 32);
        config.validate()?;
        assert!(serde_json::from_str::<TrainConfig>(r#"{"epoch":3}"#).is_err());
        assert!(serde_json::from_str::<TrainConfig>(r#"{"device":"tpu"}"#).is_err());
        let zero = TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        };
        assert!(
            matches!(zero.validate(), Err(MlError::InvalidConfig(m)) if m.starts_with("batch_size"))
        );
        Ok(())
    }
}
