//! Builds burn's optimizers from the configuration (PyTorch defaults where burn's differ).

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use super::config::{OptimizerKind, TrainConfig};

/// The optimizer of `config`.
pub fn build_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let weight_decay = config.weight_decay() as f32;
    let l2 = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay));
    match config.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(l2)
            .init(),
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(weight_decay)
            .init(),
        OptimizerKind::Sgd => {
            let momentum = (config.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(config.momentum)
                    .with_dampening(0.0)
                    .with_nesterov(config.nesterov)
            });
            SgdConfig::new()
                .with_momentum(momentum)
                .with_weight_decay(l2)
                .init()
        }
    }
}
