//! Training recipes chosen from the data: one pure function from (model, dataset profile, the
//! user's overrides) to a complete [`TrainConfig`] whose `recipe` lists every choice with its
//! reason. The API, the chat and `vision train` all resolve their defaults here.
//!
//! | choice | rule |
//! | --- | --- |
//! | `image_size` (classification) | the train images' median shorter side rounded to a multiple of 4, clamped to the model's range (small CNN 16–128, ResNets 32–224) |
//! | `image_size` (detection) | the median longer side rounded down to a multiple of 32, at most 640; images under 128 px are enlarged to 128 |
//! | `batch_size` | 64 for inputs ≤ 64 px, 32 above, 16 for detection; halved while an epoch would have fewer than 8 steps (not below 8, detection 4) |
//! | `epochs` | 10, raised until the run has ≥ 900 optimisation steps in at most 40 epochs (augmented small datasets need many passes: 3,000 digits gain ~2 points held-out from 10 to 30 epochs); detection ≥ 300 steps in at most 30 |
//! | `learning_rate` | AdamW/Adam √(batch/64) × 1e-2 for the small CNN, × 1.5e-3 for ResNets; SGD 0.1·batch/256; ×0.1 when starting from pretrained weights; detection AdamW 0.002·5/(4 + classes) (Ultralytics), SGD 0.01 |
//! | `weight_decay` | AdamW 0.05, SGD 5e-4 (1e-4 pretrained), Adam 0; detection 5e-4 |
//! | schedule | cosine to 0 after a linear warm-up of 5 % of the epochs (10 % pretrained, at most 3 epochs; detection 10 %, at most 3) |
//! | early stopping | patience max(3, ⌈epochs/4⌉) on `val_loss` when there is validation data; the best epoch is exported |
//! | crop | small images (< 48 px): area 85–100 %, aspect 0.9–1.1; 48–127 px: 65–100 % (50 % with < 100 images per class); ≥ 128 px: 50–100 % — never less than half the image |
//! | translate | small images: ±6.25 % of the side (±12.5 % with < 100 images per class); larger: none (the crop moves the content) |
//! | rotation | ±10° below 48 px (hand-drawn glyphs and digits vary by that much), none above (photos are rarely tilted; the crop varies them enough) |
//! | label smoothing | 0.1 for classification (timm's default; measured +0.5–1 point held-out on digits), 0 for detection |
//! | horizontal flip | 0 below 48 px (glyphs, digits and icons often change meaning mirrored), 0.25 from 48 px; detection 0.5 |
//! | eval crop | 1.0 (whole image) below 128 px, 0.875 from 128 px |
//! | mosaic (detection) | 1.0 when the median box covers < 20 % of its image and the run has ≥ 4 epochs, closed for the last ⌈epochs/5⌉ (≤ 10); 0 for large objects, which a mosaic cuts apart |
//! | scale / translate jitter (detection) | ±50 % / 10 % from 320 px, ±25 % / 10 % below |

use std::path::PathBuf;

use domain::dataset::{Manifest, Split, TaskType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::{LrScheduleKind, OptimizerKind, TrainConfig};
use crate::data::{Augment, Normalization, RandomResizedCrop};
use crate::detect::DetectionOptions;
use crate::device::DeviceSpec;
use crate::models::Architecture;

/// What the recipe looks at in a dataset (computed from its manifest by [`DataProfile::of`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DataProfile {
    /// Task the dataset is annotated for.
    pub task: TaskType,
    /// Images of the `train` split.
    pub train_images: usize,
    /// Whether the dataset has its own `val` split (else a fraction of `train` is held out).
    pub has_val_split: bool,
    /// Number of classes.
    pub classes: usize,
    /// Median shorter side of the train images in pixels (0 when unknown).
    pub median_short_side: u32,
    /// Median longer side of the train images in pixels (0 when unknown).
    pub median_long_side: u32,
    /// Detection: median box area as a fraction of its image's area.
    pub median_box_area: Option<f64>,
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> Option<T> {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.get(values.len() / 2).copied()
}

impl DataProfile {
    /// The profile of a manifest: counts from its splits, sizes from the recorded width and
    /// height of each train image.
    pub fn of(manifest: &Manifest) -> Self {
        let train: Vec<_> = manifest
            .split(Split::Train)
            .filter(|i| i.width > 0 && i.height > 0)
            .collect();
        let short = median(train.iter().map(|i| i.width.min(i.height)).collect());
        let long = median(train.iter().map(|i| i.width.max(i.height)).collect());
        let areas: Vec<f64> = train
            .iter()
            .flat_map(|i| {
                let image = f64::from(i.width) * f64::from(i.height);
                i.boxes
                    .iter()
                    .map(move |b| (b.bbox[2] * b.bbox[3]).max(0.0) / image)
            })
            .collect();
        Self {
            task: manifest.task,
            train_images: manifest.split(Split::Train).count(),
            has_val_split: manifest.split(Split::Val).next().is_some(),
            classes: manifest.classes.len(),
            median_short_side: short.unwrap_or(0),
            median_long_side: long.unwrap_or(0),
            median_box_area: median(areas),
        }
    }
}

/// What the user set; `None` leaves the choice to the recipe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Passes over the training images.
    pub epochs: Option<usize>,
    /// Images per step.
    pub batch_size: Option<usize>,
    /// Side of the square input.
    pub image_size: Option<usize>,
    /// Peak learning rate.
    pub learning_rate: Option<f64>,
    /// Optimizer.
    pub optimizer: Option<OptimizerKind>,
    /// Learning-rate schedule.
    pub lr_schedule: Option<LrScheduleKind>,
    /// Weight decay.
    pub weight_decay: Option<f64>,
    /// SGD momentum.
    pub momentum: Option<f64>,
    /// Warm-up in epochs.
    pub warmup_epochs: Option<f64>,
    /// Early-stopping patience in epochs; 0 switches early stopping off.
    pub early_stopping_patience: Option<usize>,
    /// Held-out fraction when the dataset has no `val` split.
    pub val_fraction: Option<f64>,
    /// Seed.
    pub seed: Option<u64>,
    /// `false` switches every augmentation off (each can still be set on its own).
    pub augment: Option<bool>,
    /// Probability of a horizontal flip.
    pub hflip_probability: Option<f64>,
    /// Classification: smallest random crop as a fraction of the image area (1 = no crop).
    pub crop_min_scale: Option<f64>,
    /// Random shift as a fraction of the input side (classification and detection).
    pub translate: Option<f64>,
    /// Classification: largest random rotation in degrees.
    pub rotate_degrees: Option<f64>,
    /// Classification: label smoothing of the training loss.
    pub label_smoothing: Option<f64>,
    /// Detection: mosaic probability.
    pub mosaic: Option<f64>,
    /// Detection: scale jitter (the scale is uniform in `[1 − s, 1 + s]`).
    pub scale_jitter: Option<f64>,
    /// Weights to start from.
    pub pretrained_weights: Option<PathBuf>,
    /// Compute device.
    pub device: Option<DeviceSpec>,
}

/// Who decided a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceSource {
    /// Set in the request (`hyperparameters`, a `vision train` flag, the chat).
    User,
    /// Chosen by the recipe from the data.
    Recipe,
}

/// One resolved setting and why it has its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Setting (the `hyperparameters` name).
    pub field: String,
    /// Value used.
    pub value: Value,
    /// Who decided it.
    pub source: ChoiceSource,
    /// Why (for the recipe's choices).
    pub reason: String,
}

impl Choice {
    /// `field = value (reason)`, for logs.
    pub fn describe(&self) -> String {
        match self.source {
            ChoiceSource::User => format!("{} = {} (set by you)", self.field, self.value),
            ChoiceSource::Recipe => format!("{} = {} ({})", self.field, self.value, self.reason),
        }
    }
}

/// Accepted input sides of a model when the recipe chooses (a user may go outside).
pub fn size_range(model: Architecture) -> (usize, usize) {
    match model {
        Architecture::SmallCnn => (16, 128),
        Architecture::Resnet18 | Architecture::Resnet34 | Architecture::Resnet50 => (32, 224),
        Architecture::Yolov8n | Architecture::Yolov8s => (128, 640),
    }
}

/// Fewest optimisation steps the recipe plans for a classification run, and the most epochs it
/// spends reaching them.
const CLASSIFY_STEPS: (usize, usize) = (900, 40);
/// The same for detection, whose steps cost ~50× more on a CPU.
const DETECT_STEPS: (usize, usize) = (300, 30);
/// Default epochs.
const EPOCHS: usize = 10;
/// Below this median side (px) images count as small: glyph-like, cropped and flipped little.
const SMALL: u32 = 48;
/// From this median side (px) images count as large photos.
const LARGE: u32 = 128;
/// Below this many train images per class a dataset counts as few.
const FEW_PER_CLASS: usize = 100;

struct Recorder {
    choices: Vec<Choice>,
}

impl Recorder {
    /// The user's value if any (recorded as theirs), else the recipe's with its reason.
    fn pick<T: Serialize + Clone>(
        &mut self,
        field: &str,
        user: Option<T>,
        recipe: impl FnOnce() -> (T, String),
    ) -> T {
        let (value, source, reason) = match user {
            Some(v) => (v, ChoiceSource::User, String::new()),
            None => {
                let (v, why) = recipe();
                (v, ChoiceSource::Recipe, why)
            }
        };
        self.choices.push(Choice {
            field: field.to_owned(),
            value: json!(value.clone()),
            source,
            reason,
        });
        value
    }
}

fn round_to(value: f64, multiple: usize) -> usize {
    ((value / multiple as f64).round() as usize).max(1) * multiple
}

/// Three significant digits, so echoed rates read as chosen.
fn sig3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// The complete configuration for `model` on data like `data`, with the user's `overrides`
/// taking precedence; `recipe` of the result lists each choice and its reason.
pub fn resolve(model: Architecture, data: &DataProfile, user: &Overrides) -> TrainConfig {
    let defaults = TrainConfig::default();
    let detection = model.task() == TaskType::Detection;
    let pretrained = user.pretrained_weights.is_some();
    let mut r = Recorder {
        choices: Vec::new(),
    };
    let (lo, hi) = size_range(model);
    let short = data.median_short_side;
    let long = data.median_long_side;

    let image_size = r.pick("image_size", user.image_size, || {
        if short == 0 {
            let size = model.default_image_size().clamp(lo, hi);
            return (size, format!("image sizes unknown: {model}'s usual input"));
        }
        if detection {
            if (long as usize) < lo {
                (lo, format!("images are tiny ({long} px on the longer side): enlarged to {lo} so the coarsest detection level still has a {}×{} grid", lo / 32, lo / 32))
            } else {
                let size = ((long as usize) / 32 * 32).clamp(lo, hi);
                (size, format!("the images' median longer side is {long} px: the largest multiple of 32 not above it, at most {hi}"))
            }
        } else {
            let size = round_to(f64::from(short), 4).clamp(lo, hi);
            let why = if size == round_to(f64::from(short), 4) {
                format!("the images' median shorter side is {short} px (rounded to a multiple of 4)")
            } else {
                format!("the images' median shorter side is {short} px; {model} takes {lo}–{hi}")
            };
            (size, why)
        }
    });

    let val_fraction = r.pick("val_fraction", user.val_fraction, || {
        let why = if data.has_val_split {
            "unused: the dataset has its own val split".to_owned()
        } else {
            "10 % of the train split is held out for validation (stratified by class)".to_owned()
        };
        (defaults.val_fraction, why)
    });
    let held_out = if data.has_val_split {
        0
    } else {
        (data.train_images as f64 * val_fraction).round() as usize
    };
    let train_images = data.train_images.saturating_sub(held_out).max(1);
    let classes = data.classes.max(1);
    let per_class = train_images / classes;
    let few = !detection && per_class < FEW_PER_CLASS;

    let batch_size = r.pick("batch_size", user.batch_size, || {
        let (mut batch, why) = if detection {
            (16, "detection's usual batch (Ultralytics)".to_owned())
        } else if image_size <= 64 {
            (64, format!("inputs of {image_size} px are cheap: 64 per step keep the cores busy"))
        } else {
            (32, format!("inputs of {image_size} px: 32 per step"))
        };
        let floor = if detection { 4 } else { 8 };
        let mut shrunk = false;
        while batch / 2 >= floor && train_images < batch * 8 {
            batch /= 2;
            shrunk = true;
        }
        if shrunk {
            (batch, format!("{why}, halved to {batch} so that {train_images} training images give at least 8 steps per epoch"))
        } else {
            (batch, why)
        }
    });
    let steps_per_epoch = train_images.div_ceil(batch_size.max(1));

    let epochs = r.pick("epochs", user.epochs, || {
        let (min_steps, max_epochs) = if detection { DETECT_STEPS } else { CLASSIFY_STEPS };
        let needed = min_steps.div_ceil(steps_per_epoch.max(1));
        if needed > EPOCHS {
            let epochs = needed.min(max_epochs);
            (epochs, format!("{steps_per_epoch} steps per epoch: {epochs} epochs give the run {} steps (the recipe wants ≥ {min_steps}, in at most {max_epochs} epochs)", epochs * steps_per_epoch))
        } else {
            (EPOCHS, format!("{EPOCHS} epochs of {steps_per_epoch} steps"))
        }
    });

    let optimizer = r.pick("optimizer", user.optimizer, || {
        (
            OptimizerKind::Adamw,
            "AdamW: robust without tuning at small batch sizes".to_owned(),
        )
    });
    let start = if pretrained {
        "fine-tuning pretrained weights"
    } else {
        "training from scratch"
    };
    let learning_rate = r.pick("learning_rate", user.learning_rate, || {
        let fine = if pretrained { 0.1 } else { 1.0 };
        let b = batch_size as f64;
        let (lr, why) = match (detection, optimizer) {
            (true, OptimizerKind::Sgd) => (0.01 * fine, format!("SGD for detection (Ultralytics' 0.01), {start}")),
            (true, _) => (
                0.002 * 5.0 / (4.0 + classes as f64) * fine,
                format!("Adam(W) for detection with {classes} classes: 0.002·5/(4 + classes) (Ultralytics), {start}"),
            ),
            (false, OptimizerKind::Sgd) => (
                0.1 * b / 256.0 * fine,
                format!("SGD: 0.1 × batch {batch_size}/256 (linear scaling), {start}"),
            ),
            (false, _) => {
                // Measured on 3,000 MNIST digits: the shallow CNN gains ~2 points held-out at
                // 1e-2 over 3e-3; deep ResNets from scratch want less.
                let (base, what) = if model == Architecture::SmallCnn {
                    (1e-2, "1e-2 (shallow CNN)")
                } else {
                    (1.5e-3, "1.5e-3 (deep ResNet)")
                };
                (
                    base * (b / 64.0).sqrt() * fine,
                    format!("Adam(W): {what} × √(batch {batch_size}/64), {start}"),
                )
            }
        };
        (sig3(lr.clamp(1e-5, 0.5)), if pretrained { format!("{why} (×0.1)") } else { why })
    });
    let weight_decay = r.pick("weight_decay", user.weight_decay, || {
        match (detection, optimizer) {
            (_, OptimizerKind::Adam) => (
                0.0,
                "Adam adds decay to the gradient; none by default".to_owned(),
            ),
            (true, _) => (5e-4, "detection: Ultralytics' 5e-4".to_owned()),
            (false, OptimizerKind::Adamw) => (0.05, "AdamW's decoupled decay 0.05".to_owned()),
            (false, OptimizerKind::Sgd) if pretrained => (1e-4, "SGD fine-tuning: 1e-4".to_owned()),
            (false, OptimizerKind::Sgd) => (5e-4, "SGD from scratch: 5e-4".to_owned()),
        }
    });
    let momentum = match user.momentum {
        Some(m) => r.pick("momentum", Some(m), || (m, String::new())),
        None if optimizer == OptimizerKind::Sgd => r.pick("momentum", None, || {
            (0.9, "SGD momentum 0.9 (Nesterov)".to_owned())
        }),
        None => defaults.momentum,
    };
    let lr_schedule = r.pick("lr_schedule", user.lr_schedule, || {
        (
            LrScheduleKind::Cosine,
            "cosine decay to 0 after the warm-up".to_owned(),
        )
    });
    let warmup_epochs = r.pick("warmup_epochs", user.warmup_epochs, || {
        let (fraction, cap, why) = if detection || pretrained {
            (0.1, 3.0, format!("10 % of the epochs (at most 3): {start}"))
        } else {
            (
                0.05,
                3.0,
                "5 % of the epochs: the first steps of a new network are the noisiest".to_owned(),
            )
        };
        (sig3((epochs as f64 * fraction).min(cap)), why)
    });
    let validated = data.has_val_split || (val_fraction > 0.0 && data.train_images >= 2);
    let patience = r.pick("early_stopping_patience", user.early_stopping_patience, || {
        if validated {
            let p = 3.max(epochs.div_ceil(4));
            (p, format!("stops after {p} epochs without a lower val_loss; the best epoch's weights are exported"))
        } else {
            (0, "no validation images: early stopping is off".to_owned())
        }
    });

    let off = user.augment == Some(false);
    let off_why = || "augmentation switched off (augment: false)".to_owned();
    let mut config = TrainConfig {
        model,
        image_size: Some(image_size),
        epochs,
        batch_size,
        learning_rate,
        optimizer,
        momentum,
        nesterov: optimizer == OptimizerKind::Sgd && user.momentum.is_none(),
        weight_decay: Some(weight_decay),
        lr_schedule,
        warmup_epochs,
        early_stopping_patience: (patience > 0).then_some(patience),
        val_fraction,
        seed: user.seed.unwrap_or(defaults.seed),
        pretrained_weights: user.pretrained_weights.clone(),
        device: user.device.unwrap_or(defaults.device),
        ..defaults
    };

    if detection {
        let hflip = r.pick("hflip_probability", user.hflip_probability, || {
            if off {
                (0.0, off_why())
            } else {
                (0.5, "Ultralytics' 0.5: mirrored objects keep their class far more often than mirrored glyphs do".to_owned())
            }
        });
        let mosaic = r.pick("mosaic", user.mosaic, || {
            if off {
                return (0.0, off_why());
            }
            match data.median_box_area {
                Some(area) if area >= 0.2 => (0.0, format!("the median box covers {:.0} % of its image: a mosaic would cut such objects apart", area * 100.0)),
                _ if epochs < 4 => (0.0, format!("{epochs} epochs leave no room for mosaic epochs before it is closed")),
                Some(area) => (1.0, format!("the median box covers {:.1} % of its image: mosaics show small objects in more contexts", area * 100.0)),
                None => (1.0, "no boxes to measure: Ultralytics' default".to_owned()),
            }
        });
        let scale = r.pick("scale_jitter", user.scale_jitter, || {
            if off {
                (0.0, off_why())
            } else if image_size >= 320 {
                (0.5, "Ultralytics' ±50 % scale jitter".to_owned())
            } else {
                (
                    0.25,
                    format!(
                        "±25 %: at {image_size} px halving would leave objects of a few pixels"
                    ),
                )
            }
        });
        let translate = r.pick("translate", user.translate, || {
            if off {
                (0.0, off_why())
            } else {
                (0.1, "Ultralytics' 10 % translation".to_owned())
            }
        });
        let close = if mosaic > 0.0 {
            epochs.div_ceil(5).clamp(1, 10)
        } else {
            0
        };
        config.augment = Augment {
            random_resized_crop: None,
            hflip_probability: hflip,
            translate: 0.0,
            rotate_degrees: 0.0,
        };
        config.crop_pct = 1.0;
        config.normalization = Normalization::UNIT;
        config.detection = Some(DetectionOptions {
            mosaic,
            close_mosaic_epochs: close,
            scale,
            translate,
            ..DetectionOptions::default()
        });
    } else {
        let small = short > 0 && short < SMALL;
        let large = short >= LARGE;
        let crop_min = r.pick("crop_min_scale", user.crop_min_scale, || {
            if off {
                (1.0, off_why())
            } else if small {
                (0.85, format!("small images ({short} px): crops keep ≥ 85 % of the area, so nothing that matters is cut away"))
            } else if large {
                (0.5, format!("photos ({short} px): crops keep ≥ 50 % of the area (ImageNet's 8 % would remove most of the image)"))
            } else if few {
                (0.5, format!("{short} px images, {per_class} per class: crops keep ≥ 50 % of the area"))
            } else {
                (0.65, format!("{short} px images: crops keep ≥ 65 % of the area"))
            }
        });
        let translate = r.pick("translate", user.translate, || {
            if off {
                (0.0, off_why())
            } else if small && few {
                (
                    0.125,
                    format!(
                        "small images, {per_class} per class: shifts of up to 12.5 % of the side"
                    ),
                )
            } else if small {
                (
                    0.0625,
                    "small images: shifts of up to 6.25 % of the side".to_owned(),
                )
            } else {
                (0.0, "the random crop already moves the content".to_owned())
            }
        });
        let rotate = r.pick("rotate_degrees", user.rotate_degrees, || {
            if off {
                (0.0, off_why())
            } else if small {
                (10.0, format!("small images ({short} px) are often hand-drawn glyphs or digits, which vary by ±10°"))
            } else {
                (0.0, "photos are rarely tilted; the random crop varies them enough".to_owned())
            }
        });
        let smoothing = r.pick("label_smoothing", user.label_smoothing, || {
            (
                0.1,
                "0.1 (timm's default): the model is not pushed to certainty on few examples"
                    .to_owned(),
            )
        });
        config.label_smoothing = smoothing;
        let hflip = r.pick("hflip_probability", user.hflip_probability, || {
            if off {
                (0.0, off_why())
            } else if small || short == 0 {
                (0.0, format!("small images ({short} px) are often glyphs, digits or icons, whose mirror image can be another class; set hflip_probability to flip"))
            } else {
                (0.25, "mild: whether a mirror image keeps its class is unknowable here; set 0 to switch off, 0.5 for natural photos".to_owned())
            }
        });
        let crop_pct = if large && crop_min < 1.0 { 0.875 } else { 1.0 };
        config.augment = Augment {
            random_resized_crop: (crop_min < 1.0).then_some(RandomResizedCrop {
                scale: (crop_min, 1.0),
                ratio: if small {
                    (0.9, 1.0 / 0.9)
                } else {
                    (3.0 / 4.0, 4.0 / 3.0)
                },
            }),
            hflip_probability: hflip,
            translate,
            rotate_degrees: rotate,
        };
        config.crop_pct = crop_pct;
    }
    config.recipe = r.choices;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(side: u32, train: usize, classes: usize) -> DataProfile {
        DataProfile {
            task: TaskType::Classification,
            train_images: train,
            has_val_split: false,
            classes,
            median_short_side: side,
            median_long_side: side,
            median_box_area: None,
        }
    }

    fn choice<'a>(config: &'a TrainConfig, field: &str) -> &'a Choice {
        config
            .recipe
            .iter()
            .find(|c| c.field == field)
            .unwrap_or_else(|| panic!("no choice for {field}"))
    }

    #[test]
    fn digits_train_at_their_own_size_without_flips_or_big_crops() {
        let config = resolve(
            Architecture::SmallCnn,
            &profile(28, 3000, 10),
            &Overrides::default(),
        );
        assert_eq!(config.image_size, Some(28));
        assert_eq!(config.batch_size, 64);
        assert_eq!(config.augment.hflip_probability, 0.0);
        let crop = config.augment.random_resized_crop.expect("a mild crop");
        assert!(crop.scale.0 >= 0.8, "{crop:?}");
        assert!(config.augment.translate > 0.0 && config.augment.translate <= 0.125);
        assert_eq!(config.crop_pct, 1.0);
        assert_eq!(config.optimizer, OptimizerKind::Adamw);
        assert!((config.learning_rate - 1e-2).abs() < 1e-9);
        assert_eq!(config.lr_schedule, LrScheduleKind::Cosine);
        assert!(config.warmup_epochs > 0.0);
        // 2,700 training images: 43 steps per epoch, 21 epochs reach the 900 steps.
        assert_eq!(config.epochs, 21);
        assert_eq!(config.early_stopping_patience, Some(6));
        assert_eq!(config.augment.rotate_degrees, 10.0);
        assert_eq!(config.label_smoothing, 0.1);
        config.validate().expect("valid");
        // ResNets do not go below 32; the reason says why.
        let resnet = resolve(
            Architecture::Resnet18,
            &profile(28, 3000, 10),
            &Overrides::default(),
        );
        assert_eq!(resnet.image_size, Some(32));
        assert!(choice(&resnet, "image_size").reason.contains("32–224"));
        assert!(resnet.learning_rate < config.learning_rate);
        // 8×8 digits are enlarged to the small CNN's smallest input only.
        let tiny = resolve(
            Architecture::SmallCnn,
            &profile(8, 1400, 10),
            &Overrides::default(),
        );
        assert_eq!(tiny.image_size, Some(16));
    }

    #[test]
    fn photos_are_capped_at_the_models_size_and_cropped_mildly() {
        let config = resolve(
            Architecture::Resnet50,
            &profile(480, 2000, 5),
            &Overrides::default(),
        );
        assert_eq!(config.image_size, Some(224));
        assert_eq!(config.batch_size, 32);
        let crop = config.augment.random_resized_crop.expect("crop");
        assert!(crop.scale.0 >= 0.5);
        assert_eq!(config.augment.hflip_probability, 0.25);
        assert_eq!(config.crop_pct, 0.875);
        let small_cnn = resolve(
            Architecture::SmallCnn,
            &profile(480, 2000, 5),
            &Overrides::default(),
        );
        assert_eq!(small_cnn.image_size, Some(128));
        // 100 px images are never enlarged to 224.
        let mid = resolve(
            Architecture::Resnet18,
            &profile(100, 2000, 5),
            &Overrides::default(),
        );
        assert_eq!(mid.image_size, Some(100));
    }

    #[test]
    fn small_datasets_get_smaller_batches_and_more_epochs() {
        let config = resolve(
            Architecture::SmallCnn,
            &profile(32, 160, 4),
            &Overrides::default(),
        );
        // 144 training images after the 10 % hold-out: 16 per step gives 9 steps.
        assert_eq!(config.batch_size, 16);
        assert_eq!(config.epochs, 40);
        assert!(config.augment.translate >= 0.125, "few images, more shift");
        assert_eq!(choice(&config, "epochs").source, ChoiceSource::Recipe);
        let large = resolve(
            Architecture::SmallCnn,
            &profile(32, 60_000, 10),
            &Overrides::default(),
        );
        assert_eq!(large.epochs, 10);
        assert_eq!(large.batch_size, 64);
    }

    #[test]
    fn every_choice_can_be_overridden() {
        let user = Overrides {
            epochs: Some(3),
            batch_size: Some(8),
            image_size: Some(40),
            learning_rate: Some(0.05),
            optimizer: Some(OptimizerKind::Sgd),
            lr_schedule: Some(LrScheduleKind::Step),
            weight_decay: Some(0.0),
            momentum: Some(0.8),
            warmup_epochs: Some(0.0),
            early_stopping_patience: Some(0),
            val_fraction: Some(0.2),
            seed: Some(5),
            augment: None,
            hflip_probability: Some(0.5),
            crop_min_scale: Some(1.0),
            translate: Some(0.0),
            rotate_degrees: Some(0.0),
            label_smoothing: Some(0.0),
            ..Overrides::default()
        };
        let config = resolve(Architecture::SmallCnn, &profile(28, 3000, 10), &user);
        assert_eq!(config.epochs, 3);
        assert_eq!(config.batch_size, 8);
        assert_eq!(config.image_size, Some(40));
        assert_eq!(config.learning_rate, 0.05);
        assert_eq!(config.optimizer, OptimizerKind::Sgd);
        assert_eq!(config.lr_schedule, LrScheduleKind::Step);
        assert_eq!(config.weight_decay(), 0.0);
        assert_eq!(config.momentum, 0.8);
        assert!(!config.nesterov);
        assert_eq!(config.warmup_epochs, 0.0);
        assert_eq!(config.early_stopping_patience, None);
        assert_eq!(config.val_fraction, 0.2);
        assert_eq!(config.seed, 5);
        assert_eq!(config.augment.hflip_probability, 0.5);
        assert_eq!(config.augment.random_resized_crop, None);
        assert_eq!(config.augment.translate, 0.0);
        assert_eq!(config.augment.rotate_degrees, 0.0);
        assert_eq!(config.label_smoothing, 0.0);
        assert!(
            config
                .recipe
                .iter()
                .filter(|c| c.field != "momentum")
                .all(|c| c.source == ChoiceSource::User),
            "{:?}",
            config.recipe
        );
        let none = resolve(
            Architecture::SmallCnn,
            &profile(200, 3000, 10),
            &Overrides {
                augment: Some(false),
                ..Overrides::default()
            },
        );
        assert_eq!(none.augment, Augment::NONE);
        // The echo names each choice and its reason.
        let echo = serde_json::to_value(&config).expect("json");
        assert!(echo["recipe"].as_array().is_some_and(|r| r.len() > 10));
        assert!(
            choice(&none, "hflip_probability")
                .describe()
                .contains("augment: false")
        );
    }

    #[test]
    fn sgd_and_pretrained_scale_the_learning_rate() {
        let sgd = resolve(
            Architecture::Resnet18,
            &profile(224, 5000, 10),
            &Overrides {
                optimizer: Some(OptimizerKind::Sgd),
                ..Overrides::default()
            },
        );
        assert!(
            (sgd.learning_rate - 0.0125).abs() < 1e-9,
            "{}",
            sgd.learning_rate
        );
        assert!(sgd.nesterov);
        assert_eq!(sgd.weight_decay(), 5e-4);
        let file = tempfile::NamedTempFile::new().expect("temp");
        let fine = resolve(
            Architecture::Resnet18,
            &profile(224, 5000, 10),
            &Overrides {
                pretrained_weights: Some(file.path().to_path_buf()),
                ..Overrides::default()
            },
        );
        let scratch = resolve(
            Architecture::Resnet18,
            &profile(224, 5000, 10),
            &Overrides::default(),
        );
        assert!((fine.learning_rate * 10.0 - scratch.learning_rate).abs() < 1e-9);
        assert!(fine.warmup_epochs > scratch.warmup_epochs);
    }

    #[test]
    fn detection_never_upscales_real_images_and_echoes_its_own_augmentation() {
        let mut data = profile(480, 400, 3);
        data.task = TaskType::Detection;
        data.median_long_side = 500;
        data.median_box_area = Some(0.03);
        let config = resolve(Architecture::Yolov8n, &data, &Overrides::default());
        assert_eq!(config.image_size, Some(480));
        assert_eq!(config.augment.random_resized_crop, None);
        assert_eq!(config.normalization, Normalization::UNIT);
        let options = config.detection.expect("detection options");
        assert_eq!(options.mosaic, 1.0);
        assert!(options.close_mosaic_epochs >= 1 && options.close_mosaic_epochs < config.epochs);
        config.validate().expect("valid");
        let echo = serde_json::to_value(&config).expect("json");
        assert!(echo["detection"]["mosaic"].is_number());
        assert!(echo["augment"]["random_resized_crop"].is_null());

        data.median_long_side = 96;
        data.median_short_side = 96;
        data.median_box_area = Some(0.3);
        let tiny = resolve(Architecture::Yolov8n, &data, &Overrides::default());
        assert_eq!(tiny.image_size, Some(128));
        let options = tiny.detection.expect("options");
        assert_eq!(options.mosaic, 0.0, "large objects: no mosaic");
        assert_eq!(options.scale, 0.25);
        data.median_long_side = 2000;
        let big = resolve(Architecture::Yolov8s, &data, &Overrides::default());
        assert_eq!(big.image_size, Some(640));
    }

    #[test]
    fn profile_reads_sizes_and_boxes_from_the_manifest() {
        use domain::dataset::{BoxAnnotation, ImageEntry};
        let image = |w, h, split| ImageEntry {
            file: "a.png".into(),
            width: w,
            height: h,
            split,
            label: Some(0),
            boxes: vec![BoxAnnotation {
                class_id: 0,
                bbox: [0.0, 0.0, w as f64 / 2.0, h as f64 / 2.0],
            }],
        };
        let manifest = Manifest {
            task: TaskType::Detection,
            classes: vec!["a".into()],
            images: vec![
                image(30, 20, Split::Train),
                image(40, 60, Split::Train),
                image(100, 100, Split::Train),
                image(500, 500, Split::Test),
            ],
        };
        let p = DataProfile::of(&manifest);
        assert_eq!(p.train_images, 3);
        assert!(!p.has_val_split);
        assert_eq!(p.median_short_side, 40);
        assert_eq!(p.median_long_side, 60);
        assert_eq!(p.median_box_area, Some(0.25));
    }
}
