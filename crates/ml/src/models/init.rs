//! Seeded weight initialisation that does not depend on burn's process-global RNG (which other
//! threads may draw from concurrently), so a run's initial weights depend on its seed alone.
//!
//! Two schemes: [`Scheme::Torchvision`] (ResNet: convolutions Kaiming normal, fan-out, ReLU gain;
//! linear layers uniform ±1/√fan-in) and [`Scheme::TorchDefault`] (PyTorch's layer defaults, which
//! Ultralytics keeps: convolution weights and biases uniform ±1/√fan-in). BatchNorm starts at
//! γ = 1, β = 0 (left as built) in both.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};

use super::weights::PathStack;
use crate::rng::Rng;

/// Which distributions [`seeded_with`] draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// torchvision's ResNet initialisation (conv Kaiming normal fan-out; linear and `fc.bias`
    /// uniform ±1/√fan-in).
    Torchvision,
    /// PyTorch's `Conv2d` / `Linear` defaults: weights and biases uniform ±1/√fan-in.
    TorchDefault,
}

struct Initializer {
    seed: u64,
    scheme: Scheme,
    path: PathStack,
    /// Input width of the head, seen on its weight (visited before its bias).
    fc_fan_in: Option<usize>,
    /// Fan-in of the last convolution or linear weight seen (visited before its bias).
    last_fan_in: Option<usize>,
}

/// FNV-1a, to give every parameter its own stream keyed by its path.
fn hash(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.next_f64();
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl ModuleMapper for Initializer {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.burn_path();
        let shape: Vec<usize> = param.lazy_shape().as_slice().to_vec();
        let count: usize = shape.iter().product();
        let mut rng = Rng::derive(self.seed, hash(&path));
        let uniform = |rng: &mut Rng, fan_in: usize| -> Vec<f32> {
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            (0..count)
                .map(|_| rng.uniform(-bound, bound) as f32)
                .collect()
        };
        let values: Vec<f32> = match (self.scheme, D, path.rsplit('.').next()) {
            // Conv weight [out, in, kh, kw]: N(0, 2 / fan_out).
            (Scheme::Torchvision, 4, _) => {
                let fan_out = (shape[0] * shape[2] * shape[3]).max(1) as f64;
                let std = (2.0 / fan_out).sqrt();
                (0..count)
                    .map(|_| (normal(&mut rng) * std) as f32)
                    .collect()
            }
            // Linear weight [in, out]: U(−1/√in, 1/√in).
            (Scheme::Torchvision, 2, _) => {
                self.fc_fan_in = Some(shape[0]);
                uniform(&mut rng, shape[0])
            }
            (Scheme::Torchvision, 1, Some("bias")) if path.starts_with("fc.") => {
                uniform(&mut rng, self.fc_fan_in.unwrap_or(count))
            }
            // Conv weight [out, in, kh, kw] (fan-in in·kh·kw) and linear weight [in, out].
            (Scheme::TorchDefault, 4, _) => {
                let fan_in = shape[1] * shape[2] * shape[3];
                self.last_fan_in = Some(fan_in);
                uniform(&mut rng, fan_in)
            }
            (Scheme::TorchDefault, 2, _) => {
                self.last_fan_in = Some(shape[0]);
                uniform(&mut rng, shape[0])
            }
            // A bias right after its weight (BatchNorm's β is named `beta`, not touched).
            (Scheme::TorchDefault, 1, Some("bias")) => match self.last_fan_in {
                Some(fan_in) => uniform(&mut rng, fan_in),
                None => return param,
            },
            _ => return param,
        };
        let device = param.lazy_device();
        let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

/// Re-draws the random parameters of `module` from `seed` (deterministic, thread-independent)
/// with torchvision's ResNet scheme.
pub fn seeded<M: Module>(module: M, seed: u64) -> M {
    seeded_with(module, seed, Scheme::Torchvision)
}

/// Re-draws the random parameters of `module` from `seed` with the given scheme.
pub fn seeded_with<M: Module>(module: M, seed: u64, scheme: Scheme) -> M {
    module.map(&mut Initializer {
        seed,
        scheme,
        path: PathStack::default(),
        fc_fan_in: None,
        last_fan_in: None,
    })
}
