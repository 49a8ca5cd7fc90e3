//! The exported model: `model.safetensors` (PyTorch names and layout) and `config.json`
//! (architecture, classes, preprocessing) in one directory the platform copies to object storage.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use domain::dataset::TaskType;
use serde::{Deserialize, Serialize};

use crate::data::{Normalization, Preprocess};
use crate::error::MlError;
use crate::models::weights::{self, StateDictLayout};
use crate::models::{Architecture, Classifier};
use crate::train::{EpochMetrics, TrainConfig};

/// File name of the weights inside an artefact directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the configuration inside an artefact directory.
pub const CONFIG_FILE: &str = "config.json";
/// `task` of a classifier's artefact.
pub const TASK_CLASSIFICATION: &str = "image_classification";
/// `task` of a detector's artefact.
pub const TASK_DETECTION: &str = "detection";

/// `config.json` of an exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtefactConfig {
    /// Format version of this file.
    pub format_version: u32,
    /// `image_classification` or `detection`.
    pub task: String,
    /// Architecture.
    pub model: Architecture,
    /// Class names in logit order.
    pub classes: Vec<String>,
    /// Side of the square input.
    pub image_size: usize,
    /// Evaluation centre-crop fraction.
    pub crop_pct: f64,
    /// Input normalisation.
    pub normalization: Normalization,
    /// Weights file name.
    pub weights: String,
    /// Epoch whose weights these are.
    pub epoch: Option<usize>,
    /// Metrics of that epoch.
    pub metrics: Option<EpochMetrics>,
    /// The configuration the model was trained with.
    pub training: Option<TrainConfig>,
}

impl ArtefactConfig {
    /// A config for `model` with `classes` and the given preprocessing (no training metadata).
    pub fn new(model: Architecture, classes: Vec<String>, preprocess: Preprocess) -> Self {
        let task = match model.task() {
            TaskType::Detection => TASK_DETECTION,
            _ => TASK_CLASSIFICATION,
        };
        Self {
            format_version: 1,
            task: task.into(),
            model,
            classes,
            image_size: preprocess.image_size,
            crop_pct: preprocess.crop_pct,
            normalization: preprocess.normalization,
            weights: WEIGHTS_FILE.into(),
            epoch: None,
            metrics: None,
            training: None,
        }
    }

    /// The evaluation preprocessing this model expects.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess {
            image_size: self.image_size,
            crop_pct: self.crop_pct,
            normalization: self.normalization,
        }
    }
}

/// Files of a written artefact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtefactPaths {
    /// The directory.
    pub dir: PathBuf,
    /// `model.safetensors`.
    pub weights: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
}

/// Writes a classifier and its `config` into `dir` (created if needed).
pub fn write(
    dir: &Path,
    model: &Classifier,
    config: &ArtefactConfig,
) -> Result<ArtefactPaths, MlError> {
    write_with(dir, model, config, weights::TORCHVISION)
}

/// Writes any model (state-dict keys of `layout`) and its `config` into `dir`.
pub fn write_with<M: Module>(
    dir: &Path,
    model: &M,
    config: &ArtefactConfig,
    layout: StateDictLayout,
) -> Result<ArtefactPaths, MlError> {
    std::fs::create_dir_all(dir).map_err(|e| MlError::io(dir, e))?;
    let weights_path = dir.join(&config.weights);
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("model".to_string(), config.model.name().to_string()),
    ]);
    weights::save_safetensors_with(model, &weights_path, metadata, layout)?;
    let config_path = dir.join(CONFIG_FILE);
    let json = serde_json::to_vec_pretty(config).map_err(|e| MlError::json(&config_path, e))?;
    std::fs::write(&config_path, json).map_err(|e| MlError::io(&config_path, e))?;
    Ok(ArtefactPaths {
        dir: dir.to_path_buf(),
        weights: weights_path,
        config: config_path,
    })
}

/// Reads an artefact directory's `config.json`.
pub fn read_config(dir: &Path) -> Result<ArtefactConfig, MlError> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(|e| MlError::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| MlError::json(&path, e))
}

/// Loads a classifier's artefact: its config and the model with its weights on `device`.
pub fn load(dir: &Path, device: &Device) -> Result<(ArtefactConfig, Classifier), MlError> {
    let config = read_config(dir)?;
    if config.task != TASK_CLASSIFICATION {
        return Err(MlError::Weights(format!(
            "{}: a `{}` model, not a classifier",
            dir.display(),
            config.task
        )));
    }
    if config.classes.is_empty() {
        return Err(MlError::Weights(format!("{}: no classes", dir.display())));
    }
    let model = Classifier::new(config.model, config.classes.len(), device)?;
    let model = load_weights(dir, &config, model, weights::TORCHVISION)?;
    Ok((config, model))
}

/// Loads the weights file of the artefact in `dir` into `model` (built for `config`'s classes)
/// with the keys of `layout`; every tensor, the head included, must fit.
pub fn load_weights<M: Module>(
    dir: &Path,
    config: &ArtefactConfig,
    model: M,
    layout: StateDictLayout,
) -> Result<M, MlError> {
    let (model, report) =
        weights::load_safetensors_with(model, &dir.join(&config.weights), layout)?;
    if !report.replaced_head.is_empty() {
        return Err(MlError::Weights(format!(
            "{}: the head does not match the {} classes of config.json",
            dir.display(),
            config.classes.len()
        )));
    }
    Ok(model)
}
