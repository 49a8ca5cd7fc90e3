//! Classification models: a small fast CNN and the ResNet family in torchvision layout; the
//! [`Architecture`] catalogue also names the detectors of [`crate::detect`].

pub(crate) mod activation;
mod cnn;
pub mod init;
pub(crate) mod layers;
mod resnet;
pub mod weights;

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use domain::dataset::TaskType;
use serde::{Deserialize, Serialize};

pub use cnn::SmallCnn;
pub use resnet::{ResNet, ResNetDepth};

use crate::error::MlError;

/// The model architectures the engine can train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Three conv/BN/ReLU/max-pool stages and a linear head (~94 k parameters): quick jobs.
    SmallCnn,
    /// ResNet-18 (torchvision layout, 11.7 M parameters with 1000 classes).
    Resnet18,
    /// ResNet-34 (21.8 M parameters with 1000 classes).
    Resnet34,
    /// ResNet-50, bottleneck blocks (25.6 M parameters with 1000 classes).
    Resnet50,
    /// YOLOv8-n detector (Ultralytics layout, 3.2 M parameters with 80 classes).
    Yolov8n,
    /// YOLOv8-s detector (11.2 M parameters with 80 classes).
    Yolov8s,
}

impl Architecture {
    /// Every architecture, for catalogues and help texts.
    pub const ALL: [Architecture; 6] = [
        Architecture::SmallCnn,
        Architecture::Resnet18,
        Architecture::Resnet34,
        Architecture::Resnet50,
        Architecture::Yolov8n,
        Architecture::Yolov8s,
    ];

    /// The configuration name (`small_cnn`, `resnet18`, …, `yolov8n`).
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::SmallCnn => "small_cnn",
            Architecture::Resnet18 => "resnet18",
            Architecture::Resnet34 => "resnet34",
            Architecture::Resnet50 => "resnet50",
            Architecture::Yolov8n => "yolov8n",
            Architecture::Yolov8s => "yolov8s",
        }
    }

    /// The task the architecture serves: classifiers ([`Classifier`]) or detectors
    /// ([`crate::detect::YoloV8`]).
    pub fn task(&self) -> TaskType {
        match self {
            Architecture::SmallCnn
            | Architecture::Resnet18
            | Architecture::Resnet34
            | Architecture::Resnet50 => TaskType::Classification,
            Architecture::Yolov8n | Architecture::Yolov8s => TaskType::Detection,
        }
    }

    /// The input size the architecture is usually trained at.
    pub fn default_image_size(&self) -> usize {
        match self {
            Architecture::SmallCnn => 64,
            Architecture::Yolov8n | Architecture::Yolov8s => 640,
            _ => 224,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Architecture {
    type Err = MlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalised = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        match normalised.as_str() {
            "small_cnn" | "smallcnn" | "cnn" => Ok(Architecture::SmallCnn),
            "resnet18" | "resnet_18" => Ok(Architecture::Resnet18),
            "resnet34" | "resnet_34" => Ok(Architecture::Resnet34),
            "resnet50" | "resnet_50" => Ok(Architecture::Resnet50),
            "yolov8n" | "yolov8_n" => Ok(Architecture::Yolov8n),
            "yolov8s" | "yolov8_s" => Ok(Architecture::Yolov8s),
            _ => Err(MlError::InvalidConfig(format!(
                "unknown model `{s}` (expected one of small_cnn, resnet18, resnet34, resnet50, yolov8n, yolov8s)"
            ))),
        }
    }
}

/// An image classifier of any supported architecture: `[B, 3, H, W]` → logits `[B, classes]`.
// One value per loaded model: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Classifier {
    /// The small CNN.
    SmallCnn(SmallCnn),
    /// A ResNet.
    ResNet(ResNet),
}

impl Classifier {
    /// A model initialised from `seed` alone (independent of burn's global RNG and of other threads).
    pub fn seeded(
        architecture: Architecture,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, MlError> {
        Ok(init::seeded(
            Self::new(architecture, num_classes, device)?,
            seed,
        ))
    }

    /// A freshly initialised model (burn's initialisers and global RNG); fails for a detection
    /// architecture.
    pub fn new(
        architecture: Architecture,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, MlError> {
        Ok(match architecture {
            Architecture::SmallCnn => Classifier::SmallCnn(SmallCnn::new(num_classes, device)),
            Architecture::Resnet18 => {
                Classifier::ResNet(ResNet::new(ResNetDepth::D18, num_classes, device))
            }
            Architecture::Resnet34 => {
                Classifier::ResNet(ResNet::new(ResNetDepth::D34, num_classes, device))
            }
            Architecture::Resnet50 => {
                Classifier::ResNet(ResNet::new(ResNetDepth::D50, num_classes, device))
            }
            Architecture::Yolov8n | Architecture::Yolov8s => {
                return Err(MlError::InvalidConfig(format!(
                    "{architecture} is a detection model, not a classifier"
                )));
            }
        })
    }

    /// Logits for a batch of normalised images.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Classifier::SmallCnn(model) => model.forward(images),
            Classifier::ResNet(model) => model.forward(images),
        }
    }

    /// Folds every BatchNorm into the convolution before it (inference only: the result has no
    /// BatchNorm layers and must not be trained or exported).
    pub fn fold_batchnorm(self) -> Self {
        match self {
            Classifier::SmallCnn(model) => Classifier::SmallCnn(model.fold_batchnorm()),
            Classifier::ResNet(model) => Classifier::ResNet(model.fold_batchnorm()),
        }
    }

    /// Number of trainable parameters, counted like PyTorch (BatchNorm running statistics excluded).
    pub fn num_trainable_params(&self) -> usize {
        weights::named_tensors(self)
            .iter()
            .filter(|t| !t.is_buffer)
            .map(|t| t.data.num_elements())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_torchvision() -> Result<(), MlError> {
        let device = Device::flex();
        let counts: Vec<(Architecture, usize)> = vec![
            (Architecture::Resnet18, 11_689_512),
            (Architecture::Resnet34, 21_797_672),
            (Architecture::Resnet50, 25_557_032),
        ];
        for (arch, expected) in counts {
            let model = Classifier::new(arch, 1000, &device)?;
            assert_eq!(model.num_trainable_params(), expected, "{arch}");
        }
        assert!(Classifier::new(Architecture::Yolov8n, 10, &device).is_err());
        Ok(())
    }

    #[test]
    fn forward_shapes() -> Result<(), MlError> {
        let device = Device::flex();
        for arch in [Architecture::SmallCnn, Architecture::Resnet18] {
            let model = Classifier::new(arch, 7, &device)?;
            let x = Tensor::<4>::zeros([2, 3, 32, 32], &device);
            assert_eq!(model.forward(x).dims(), [2, 7]);
        }
        let model = Classifier::new(Architecture::Resnet50, 3, &device)?;
        let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
        assert_eq!(model.forward(x).dims(), [1, 3]);
        Ok(())
    }

    #[test]
    fn seeded_initialisation_is_reproducible() -> Result<(), MlError> {
        let device = Device::flex();
        let a = weights::named_tensors(&Classifier::seeded(Architecture::SmallCnn, 4, 9, &device)?);
        let b = weights::named_tensors(&Classifier::seeded(Architecture::SmallCnn, 4, 9, &device)?);
        let c =
            weights::named_tensors(&Classifier::seeded(Architecture::SmallCnn, 4, 10, &device)?);
        for ((x, y), z) in a.iter().zip(&b).zip(&c) {
            assert_eq!(x.data, y.data, "{}", x.name);
            if x.name.ends_with("conv1.weight") || x.name == "fc.weight" {
                assert_ne!(x.data, z.data, "{}", x.name);
                let values = x.data.try_to_vec::<f32>().unwrap_or_default();
                let mean = values.iter().sum::<f32>() / values.len() as f32;
                assert!(mean.abs() < 0.1, "{} mean {mean}", x.name);
            }
        }
        Ok(())
    }

    #[test]
    fn architecture_names_round_trip() {
        for arch in Architecture::ALL {
            assert_eq!(arch.name().parse::<Architecture>().ok(), Some(arch));
        }
        assert!("vgg".parse::<Architecture>().is_err());
        assert_eq!(
            "ResNet-50".parse::<Architecture>().ok(),
            Some(Architecture::Resnet50)
        );
    }
}
