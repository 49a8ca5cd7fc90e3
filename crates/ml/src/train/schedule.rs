//! Learning rate as a pure function of the global step, so a resumed run continues exactly.

use super::config::{LrScheduleKind, TrainConfig};

/// The learning-rate schedule of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    kind: LrScheduleKind,
    base: f64,
    min_lr: f64,
    gamma: f64,
    step_epochs: usize,
    steps_per_epoch: usize,
    total_steps: usize,
    warmup_steps: usize,
}

impl LrSchedule {
    /// The schedule of `config` for `steps_per_epoch` steps per epoch.
    pub fn new(config: &TrainConfig, steps_per_epoch: usize) -> Self {
        let steps_per_epoch = steps_per_epoch.max(1);
        Self {
            kind: config.lr_schedule,
            base: config.learning_rate,
            min_lr: config.min_lr,
            gamma: config.lr_gamma,
            step_epochs: config.lr_step_epochs.max(1),
            steps_per_epoch,
            total_steps: steps_per_epoch * config.epochs,
            warmup_steps: (config.warmup_epochs * steps_per_epoch as f64).round() as usize,
        }
    }

    /// Learning rate of the 0-based global step `step`.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.kind {
            LrScheduleKind::Constant => self.base,
            LrScheduleKind::Step => {
                let epoch = step / self.steps_per_epoch;
                self.base * self.gamma.powi((epoch / self.step_epochs) as i32)
            }
            LrScheduleKind::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
                let progress = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
                self.min_lr
                    + (self.base - self.min_lr)
                        * 0.5
                        * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let config = TrainConfig {
            epochs: 10,
            learning_rate: 1.0,
            ..TrainConfig::default()
        };
        let constant = LrSchedule::new(
            &TrainConfig {
                lr_schedule: LrScheduleKind::Constant,
                ..config.clone()
            },
            10,
        );
        assert_eq!(constant.lr(0), 1.0);
        assert_eq!(constant.lr(99), 1.0);
        let step = LrSchedule::new(
            &TrainConfig {
                lr_schedule: LrScheduleKind::Step,
                lr_step_epochs: 3,
                lr_gamma: 0.5,
                ..config.clone()
            },
            10,
        );
        assert_eq!(step.lr(29), 1.0);
        assert_eq!(step.lr(30), 0.5);
        assert_eq!(step.lr(60), 0.25);
        let cosine = LrSchedule::new(
            &TrainConfig {
                warmup_epochs: 1.0,
                ..config
            },
            10,
        );
        assert!((cosine.lr(0) - 0.1).abs() < 1e-12);
        assert!((cosine.lr(9) - 1.0).abs() < 1e-12);
        assert!((cosine.lr(10) - 1.0).abs() < 1e-12);
        assert!((cosine.lr(55) - 0.5).abs() < 1e-12);
        assert!(cosine.lr(99) < 0.01);
    }
}
