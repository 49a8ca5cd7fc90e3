//! The exported model: `model.safetensors` (PyTorch names and layout) and `config.json`
//! (architecture, classes, preprocessing) in one directory the platform copies to object storage.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::{Normalization, Preprocess};
use crate::error::MlError;
use crate::models::{Architecture, Classifier, weights};
use crate::train::{EpochMetrics, TrainConfig};

/// File name of the weights inside an artefact directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the configuration inside an artefact directory.
pub const CONFIG_FILE: &str = "config.json";

/// `config.json` of an exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtefactConfig {
    /// Format version of this file.
    pub format_version: u32,
    /// Always `image_classification` for now.
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
        Self {
            format_version: 1,
            task: "image_classification".into(),
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

/// Writes `model` and `config` into `dir` (created if needed).
pub fn write(
    dir: &Path,
    model: &Classifier,
    config: &ArtefactConfig,
) -> Result<ArtefactPaths, MlError> {
    std::fs::create_dir_all(dir).map_err(|e| MlError::io(dir, e))?;
    let weights_path = dir.join(&config.weights);
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("model".to_string(), config.model.name().to_string()),
    ]);
    weights::save_safetensors(model, &weights_path, metadata)?;
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

/// Loads an artefact: its config and the model with its weights on `device`.
pub fn load(dir: &Path, device: &Device) -> Result<(ArtefactConfig, Classifier), MlError> {
    let config = read_config(dir)?;
    if config.classes.is_empty() {
        return Err(MlError::Weights(format!("{}: no classes", dir.display())));
    }
    let model = Classifier::new(config.model, config.classes.len(), device)?;
    let (model, report) = weights::load_safetensors(model, &dir.join(&config.weights))?;
    if !report.replaced_head.is_empty() {
        return Err(MlError::Weights(format!(
            "{}: the head does not match the {} classes of config.json",
            dir.display(),
            config.classes.len()
        )));
    }
    Ok((config, model))
}
