//! A workflow's `hyperparameters` through the training recipe (`ml::train::recipe`): the user's
//! values win, the rest is chosen from the dataset, and the resolved config lists every choice.

use api_types::workflows::Hyperparameters;
use domain::dataset::Manifest;
use ml::train::recipe::{self, DataProfile, Overrides};
use ml::train::{LrScheduleKind, OptimizerKind, TrainConfig};
use serde_json::json;

use crate::catalogue::CatalogueModel;
use crate::{FieldError, Validator};

/// `value` when it lies in `range` (out-of-range values are reported by validation and never
/// reach the recipe).
fn within<T: PartialOrd + Copy>(value: Option<T>, ok: impl Fn(T) -> bool) -> Option<T> {
    value.filter(|v| ok(*v))
}

fn optimizer(name: Option<&str>) -> Option<OptimizerKind> {
    match name?.trim().to_ascii_lowercase().as_str() {
        "adam" => Some(OptimizerKind::Adam),
        "adamw" => Some(OptimizerKind::Adamw),
        "sgd" => Some(OptimizerKind::Sgd),
        _ => None,
    }
}

fn schedule(name: Option<&str>) -> Option<LrScheduleKind> {
    match name?.trim().to_ascii_lowercase().as_str() {
        "constant" => Some(LrScheduleKind::Constant),
        "step" => Some(LrScheduleKind::Step),
        "cosine" => Some(LrScheduleKind::Cosine),
        _ => None,
    }
}

/// The recipe's overrides for `hyper` (values outside their accepted ranges are left out).
pub fn overrides(hyper: &Hyperparameters) -> Overrides {
    let count = |v: Option<i64>, hi: i64| within(v, |v| (1..=hi).contains(&v)).map(|v| v as usize);
    let fraction = |v: Option<f64>, ok: fn(f64) -> bool| within(v, |v| v.is_finite() && ok(v));
    Overrides {
        epochs: count(hyper.epochs, 1000),
        batch_size: count(hyper.batch_size, 1024),
        image_size: within(hyper.image_size, |v| (16..=1024).contains(&v)).map(|v| v as usize),
        learning_rate: fraction(hyper.learning_rate, |v| v > 0.0 && v <= 1.0),
        optimizer: optimizer(hyper.optimizer.as_deref()),
        lr_schedule: schedule(hyper.lr_schedule.as_deref()),
        weight_decay: fraction(hyper.weight_decay, |v| (0.0..=1.0).contains(&v)),
        momentum: fraction(hyper.momentum, |v| (0.0..1.0).contains(&v)),
        warmup_epochs: fraction(hyper.warmup_epochs, |v| (0.0..=100.0).contains(&v)),
        early_stopping_patience: within(hyper.early_stopping_patience, |v| (0..=1000).contains(&v))
            .map(|v| v as usize),
        val_fraction: fraction(hyper.val_fraction, |v| (0.0..=0.9).contains(&v)),
        seed: hyper.seed,
        augment: hyper.augment,
        hflip_probability: fraction(hyper.hflip_probability, |v| (0.0..=1.0).contains(&v)),
        crop_min_scale: fraction(hyper.crop_min_scale, |v| v > 0.0 && v <= 1.0),
        translate: fraction(hyper.translate, |v| (0.0..=0.5).contains(&v)),
        rotate_degrees: fraction(hyper.rotate_degrees, |v| (0.0..=180.0).contains(&v)),
        label_smoothing: fraction(hyper.label_smoothing, |v| (0.0..1.0).contains(&v)),
        mosaic: fraction(hyper.mosaic, |v| (0.0..=1.0).contains(&v)),
        scale_jitter: fraction(hyper.scale_jitter, |v| (0.0..1.0).contains(&v)),
        pretrained_weights: None,
        device: None,
    }
}

/// A field, its value, whether the value is accepted, and the message when not.
type Range<'a> = (&'a str, Option<f64>, fn(f64) -> bool, &'a str);

/// Range checks of the augmentation settings, each naming its field.
pub fn check(check: &mut Validator, hyper: &Hyperparameters) {
    let fields: [Range; 7] = [
        (
            "hflip_probability",
            hyper.hflip_probability,
            |v| (0.0..=1.0).contains(&v),
            "Must be between 0 and 1",
        ),
        (
            "crop_min_scale",
            hyper.crop_min_scale,
            |v| v > 0.0 && v <= 1.0,
            "Must be greater than 0 and at most 1",
        ),
        (
            "translate",
            hyper.translate,
            |v| (0.0..=0.5).contains(&v),
            "Must be between 0 and 0.5",
        ),
        (
            "rotate_degrees",
            hyper.rotate_degrees,
            |v| (0.0..=180.0).contains(&v),
            "Must be between 0 and 180",
        ),
        (
            "label_smoothing",
            hyper.label_smoothing,
            |v| (0.0..1.0).contains(&v),
            "Must be in [0, 1)",
        ),
        (
            "mosaic",
            hyper.mosaic,
            |v| (0.0..=1.0).contains(&v),
            "Must be between 0 and 1",
        ),
        (
            "scale_jitter",
            hyper.scale_jitter,
            |v| (0.0..1.0).contains(&v),
            "Must be in [0, 1)",
        ),
    ];
    for (field, value, ok, why) in fields {
        if let Some(v) = value {
            check.check(v.is_finite() && ok(v), || {
                FieldError::with_value(format!("hyperparameters.{field}"), why, json!(v))
            });
        }
    }
}

/// The complete training configuration of `model` on `manifest` for `hyper`.
pub fn resolve(model: CatalogueModel, hyper: &Hyperparameters, manifest: &Manifest) -> TrainConfig {
    recipe::resolve(
        model.architecture,
        &DataProfile::of(manifest),
        &overrides(hyper),
    )
}

/// `hyper` with the batch and image size the recipe chose where the user set none (what the
/// memory estimate must judge).
pub fn sized(hyper: &Hyperparameters, resolved: Option<&TrainConfig>) -> Hyperparameters {
    let mut sized = hyper.clone();
    if let Some(config) = resolved {
        sized.batch_size = sized.batch_size.or(Some(config.batch_size as i64));
        sized.image_size = sized.image_size.or(Some(config.image_size() as i64));
    }
    sized
}
