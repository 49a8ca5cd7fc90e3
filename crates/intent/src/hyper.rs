//! Hyper-parameters: the optimizer choice, the values a training config carries, their defaults
//! and the ranges a request must stay within.

use serde::{Deserialize, Serialize};

use crate::reply::Field;

/// Optimizers the trainer implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Adam.
    Adam,
    /// Adam with decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW,
    /// Stochastic gradient descent (with momentum).
    Sgd,
}

/// The `hyperparameters` object of a training config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    /// Passes over the training set.
    pub epochs: u32,
    /// Images per step.
    pub batch_size: u32,
    /// Initial learning rate.
    pub learning_rate: f64,
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Input image size `[width, height]`; absent means the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[u32; 2]>,
}

impl Default for Hyperparameters {
    /// The platform defaults: 10 epochs, batch 32, learning rate 1e-3, AdamW.
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 32,
            learning_rate: 1e-3,
            optimizer: Optimizer::AdamW,
            image_size: None,
        }
    }
}

/// The inclusive range a numeric field accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Field the limit applies to.
    pub field: Field,
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
}

impl Limit {
    /// Whether `value` lies within the limit.
    pub fn contains(&self, value: f64) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

/// Accepted ranges of the numeric fields.
pub const LIMITS: &[Limit] = &[
    Limit {
        field: Field::Epochs,
        min: 1.0,
        max: 1000.0,
    },
    Limit {
        field: Field::BatchSize,
        min: 1.0,
        max: 1024.0,
    },
    Limit {
        field: Field::LearningRate,
        min: 1e-6,
        max: 1.0,
    },
    Limit {
        field: Field::ImageSize,
        min: 16.0,
        max: 2048.0,
    },
    Limit {
        field: Field::NumClasses,
        min: 1.0,
        max: 10_000.0,
    },
];

/// The limit of `field`, if it has one.
pub fn limit(field: Field) -> Option<Limit> {
    LIMITS.iter().copied().find(|l| l.field == field)
}
