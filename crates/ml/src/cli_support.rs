//! Entry points for the `vision` CLI: train from an ImageFolder directory, format progress lines,
//! and run the benchmarks beside PyTorch's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use domain::dataset::{ImageEntry, Manifest, Split, TaskType};

use crate::error::MlError;
use crate::train::{CancelToken, TrainConfig, TrainRequest, TrainSummary, TrainingEvent, train};

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "gif", "webp", "jfif"];

/// Options of [`train_from_dir`].
#[derive(Debug, Clone)]
pub struct TrainDirOptions {
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Where `model.safetensors` and `config.json` are written.
    pub output_dir: PathBuf,
    /// Checkpoint directory; `None` uses `<output_dir>/checkpoints`.
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the latest checkpoint when there is one.
    pub resume: bool,
}

impl TrainDirOptions {
    /// Options with the given config and output directory, checkpoints beside it, no resume.
    pub fn new(config: TrainConfig, output_dir: impl Into<PathBuf>) -> Self {
        Self {
            config,
            output_dir: output_dir.into(),
            checkpoint_dir: None,
            resume: false,
        }
    }
}

fn split_of(folder: &str) -> Option<Split> {
    match folder.to_ascii_lowercase().as_str() {
        "train" | "training" => Some(Split::Train),
        "val" | "valid" | "validation" => Some(Split::Val),
        "test" | "testing" => Some(Split::Test),
        _ => None,
    }
}

fn sorted_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, MlError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| MlError::io(dir, e))? {
        let entry = entry.map_err(|e| MlError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.path().is_dir() && !name.starts_with('.') {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn images_in(dir: &Path) -> Result<Vec<(String, PathBuf)>, MlError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| MlError::io(dir, e))? {
        let entry = entry.map_err(|e| MlError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if path.is_file() && is_image && !name.starts_with('.') {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads an ImageFolder tree into a classification [`Manifest`] whose paths are relative to `dir`.
///
/// Either `dir/<class>/<image>` (everything is `train`; validation is held out by
/// [`TrainConfig::val_fraction`]) or split folders `dir/{train,val,test}/<class>/<image>`
/// (`valid`/`validation` also name the validation split). Classes are the sorted union of class
/// folder names.
pub fn read_image_folder(dir: &Path) -> Result<Manifest, MlError> {
    let top = sorted_dirs(dir)?;
    let split_dirs: Vec<(Split, String, PathBuf)> = top
        .iter()
        .filter_map(|(name, path)| split_of(name).map(|s| (s, name.clone(), path.clone())))
        .collect();
    let layout: Vec<(Split, String, PathBuf)> = if split_dirs.is_empty() {
        vec![(Split::Train, String::new(), dir.to_path_buf())]
    } else {
        split_dirs
    };
    let mut class_names = BTreeSet::new();
    let mut per_split = Vec::new();
    for (split, prefix, path) in &layout {
        for (class, class_path) in sorted_dirs(path)? {
            class_names.insert(class.clone());
            per_split.push((*split, prefix.clone(), class, class_path));
        }
    }
    let classes: Vec<String> = class_names.into_iter().collect();
    let mut images = Vec::new();
    for (split, prefix, class, class_path) in per_split {
        let label = classes.iter().position(|c| *c == class);
        for (file_name, path) in images_in(&class_path)? {
            let (width, height) = image::image_dimensions(&path).map_err(|e| MlError::Image {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let file = if prefix.is_empty() {
                format!("{class}/{file_name}")
            } else {
                format!("{prefix}/{class}/{file_name}")
            };
            images.push(ImageEntry {
                file,
                width,
                height,
                split,
                label,
                boxes: Vec::new(),
            });
        }
    }
    if classes.len() < 2 {
        return Err(MlError::InvalidDataset(format!(
            "{}: an ImageFolder dataset needs at least two class folders, found {}",
            dir.display(),
            classes.len()
        )));
    }
    if images.is_empty() {
        return Err(MlError::InvalidDataset(format!(
            "{}: no images found",
            dir.display()
        )));
    }
    Ok(Manifest {
        task: TaskType::Classification,
        classes,
        images,
    })
}

/// Trains on an ImageFolder directory (see [`read_image_folder`]) and writes the artefact to
/// `options.output_dir`. Blocks the calling thread: call it from a plain thread or
/// `tokio::task::spawn_blocking`.
pub fn train_from_dir(
    dataset_dir: &Path,
    options: &TrainDirOptions,
    cancel: &CancelToken,
    progress: &mut (dyn FnMut(TrainingEvent) + Send),
) -> Result<TrainSummary, MlError> {
    let manifest = read_image_folder(dataset_dir)?;
    let request = TrainRequest {
        manifest,
        image_root: dataset_dir.to_path_buf(),
        config: options.config.clone(),
        output_dir: options.output_dir.clone(),
        checkpoint_dir: options
            .checkpoint_dir
            .clone()
            .unwrap_or_else(|| options.output_dir.join("checkpoints")),
        resume: options.resume,
    };
    train(&request, cancel, progress)
}

fn duration(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// A one-line human rendering of an event (for a progress bar or a log), e.g.
/// `epoch 3/10  step 12/40  loss 0.412  acc 87.5%  lr 9.1e-4  54 img/s  ETA 2m10s`.
pub fn format_event(event: &TrainingEvent) -> String {
    match event {
        TrainingEvent::Started {
            start_epoch,
            epochs,
            steps_per_epoch,
            train_images,
            val_images,
            classes,
            ..
        } => format!(
            "training {train_images} images ({val_images} validation), {} classes, epochs {start_epoch}..={epochs}, {steps_per_epoch} steps/epoch",
            classes.len()
        ),
        TrainingEvent::Step {
            epoch,
            step,
            steps_per_epoch,
            loss,
            accuracy,
            lr,
            images_per_sec,
            eta_secs,
            ..
        } => {
            let accuracy = if accuracy.is_nan() {
                String::new()
            } else {
                format!("  acc {:.1}%", accuracy * 100.0)
            };
            format!(
                "epoch {epoch}  step {step}/{steps_per_epoch}  loss {loss:.4}{accuracy}  lr {lr:.2e}  {images_per_sec:.0} img/s  ETA {}",
                duration(*eta_secs)
            )
        }
        TrainingEvent::Epoch {
            epochs,
            metrics,
            images_per_sec,
            eta_secs,
            ..
        } => {
            let mut line = format!("epoch {}/{epochs}  loss {:.4}", metrics.epoch, metrics.loss);
            if let (Some(b), Some(c), Some(d)) =
                (metrics.box_loss, metrics.cls_loss, metrics.dfl_loss)
            {
                line.push_str(&format!(" (box {b:.3} cls {c:.3} dfl {d:.3})"));
            }
            if !metrics.accuracy.is_nan() {
                line.push_str(&format!("  acc {:.2}%", metrics.accuracy * 100.0));
            }
            if let (Some(vl), Some(va)) = (metrics.val_loss, metrics.val_accuracy) {
                line.push_str(&format!("  val_loss {vl:.4}  val_acc {:.2}%", va * 100.0));
            }
            if let (Some(vl), Some(m50), Some(m)) =
                (metrics.val_loss, metrics.val_map50, metrics.val_map50_95)
            {
                line.push_str(&format!(
                    "  val_loss {vl:.4}  val_mAP50 {m50:.3}  val_mAP50-95 {m:.3}"
                ));
            }
            if let Some(top5) = metrics.val_top5 {
                line.push_str(&format!("  val_top5 {:.2}%", top5 * 100.0));
            }
            line.push_str(&format!(
                "  {images_per_sec:.0} img/s  ETA {}",
                duration(*eta_secs)
            ));
            line
        }
        TrainingEvent::Checkpoint { epoch, path } => {
            format!("checkpoint of epoch {epoch} in {}", path.display())
        }
        TrainingEvent::EarlyStopped {
            epoch,
            best_epoch,
            best_val_loss,
        } => format!(
            "early stop after epoch {epoch}: best val_loss {best_val_loss:.4} at epoch {best_epoch}"
        ),
        TrainingEvent::Finished {
            epochs_completed,
            exported_epoch,
            artefact_dir,
        } => format!(
            "finished {epochs_completed} epochs; weights of epoch {exported_epoch} in {}",
            artefact_dir.display()
        ),
    }
}
