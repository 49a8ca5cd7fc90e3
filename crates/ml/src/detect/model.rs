//! YOLOv8 (`yolov8.yaml`): backbone (Conv, C2f, SPPF), PAN neck (nearest upsampling and
//! concatenation) and the [`Detect`] head, in Ultralytics' state-dict layout.
//!
//! Layers 0–21 are `layers` (state-dict `model.0` … `model.21`), the head is `detect`
//! (`model.22`); see [`super::weights`] for the key mapping.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::blocks::{C2f, ConvBnSilu, Sppf};
use super::head::{Detect, HeadOutput};
use super::weights::ULTRALYTICS;
use crate::error::MlError;
use crate::models::Architecture;
use crate::models::init::{self, Scheme};
use crate::models::weights;

/// A YOLOv8 size: width and depth multiples of `yolov8.yaml`'s `scales`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum YoloSize {
    /// `n`: depth 0.33, width 0.25.
    N,
    /// `s`: depth 0.33, width 0.50.
    S,
}

impl YoloSize {
    /// The size of a detection architecture.
    pub fn of(architecture: Architecture) -> Result<Self, MlError> {
        match architecture {
            Architecture::Yolov8n => Ok(YoloSize::N),
            Architecture::Yolov8s => Ok(YoloSize::S),
            other => Err(MlError::InvalidConfig(format!(
                "{other} is not a detection model (expected yolov8n or yolov8s)"
            ))),
        }
    }

    /// Depth multiple.
    pub fn depth(&self) -> f64 {
        0.33
    }

    /// Width multiple.
    pub fn width(&self) -> f64 {
        match self {
            YoloSize::N => 0.25,
            YoloSize::S => 0.5,
        }
    }

    /// Channels of a layer the yaml gives `channels` (capped at 1024, scaled, rounded up to 8).
    pub fn channels(&self, channels: usize) -> usize {
        let scaled = channels.min(1024) as f64 * self.width();
        (scaled / 8.0).ceil() as usize * 8
    }

    /// Repeats of a block the yaml gives `repeats`.
    pub fn repeats(&self, repeats: usize) -> usize {
        if repeats > 1 {
            ((repeats as f64 * self.depth()).round() as usize).max(1)
        } else {
            repeats
        }
    }
}

/// One of the layers 0–21 (a single-input block, or a parameter-free upsample/concat).
// A few dozen values per model: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Layer {
    /// Conv + BN + SiLU.
    Conv(ConvBnSilu),
    /// C2f block.
    C2f(C2f),
    /// SPPF block.
    Sppf(Sppf),
    /// Nearest-neighbour upsampling by this factor.
    Upsample(usize),
    /// Channel concatenation with an earlier layer's output (its index); done by [`YoloV8`].
    Concat(usize),
}

impl Layer {
    /// Applies a single-input layer; `Concat` passes `x` through (the model concatenates).
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Layer::Conv(block) => block.forward(x),
            Layer::C2f(block) => block.forward(x),
            Layer::Sppf(block) => block.forward(x),
            Layer::Upsample(factor) => crate::kernels::upsample_nearest(x, *factor),
            Layer::Concat(_) => x,
        }
    }

    fn map_blocks(self, f: &mut dyn FnMut(ConvBnSilu) -> ConvBnSilu) -> Self {
        match self {
            Layer::Conv(block) => Layer::Conv(f(block)),
            Layer::C2f(block) => Layer::C2f(block.map_blocks(f)),
            Layer::Sppf(block) => Layer::Sppf(block.map_blocks(f)),
            other => other,
        }
    }
}

/// YOLOv8 detector: `[B, 3, H, W]` (RGB in `[0, 1]`, `H`, `W` multiples of 32) → raw outputs of
/// the three levels (see [`Detect::forward`]).
#[derive(Module, Debug)]
pub struct YoloV8 {
    /// Layers 0–21 (`model.0` … `model.21`).
    pub layers: Vec<Layer>,
    /// The head (`model.22`).
    pub detect: Detect,
}

impl YoloV8 {
    /// A freshly built model (burn's initialisers, Ultralytics' head priors).
    pub fn new(size: YoloSize, num_classes: usize, device: &Device) -> Self {
        let c = |channels| size.channels(channels);
        let n = |repeats| size.repeats(repeats);
        let conv = |i, o, s| Layer::Conv(ConvBnSilu::new(i, o, 3, s, device));
        let c2f = |i, o, r, shortcut| Layer::C2f(C2f::new(i, o, r, shortcut, device));
        let layers = vec![
            conv(3, c(64), 2),                                   // 0  P1/2
            conv(c(64), c(128), 2),                              // 1  P2/4
            c2f(c(128), c(128), n(3), true),                     // 2
            conv(c(128), c(256), 2),                             // 3  P3/8
            c2f(c(256), c(256), n(6), true),                     // 4
            conv(c(256), c(512), 2),                             // 5  P4/16
            c2f(c(512), c(512), n(6), true),                     // 6
            conv(c(512), c(1024), 2),                            // 7  P5/32
            c2f(c(1024), c(1024), n(3), true),                   // 8
            Layer::Sppf(Sppf::new(c(1024), c(1024), 5, device)), // 9
            Layer::Upsample(2),                                  // 10
            Layer::Concat(6),                                    // 11
            c2f(c(1024) + c(512), c(512), n(3), false),          // 12
            Layer::Upsample(2),                                  // 13
            Layer::Concat(4),                                    // 14
            c2f(c(512) + c(256), c(256), n(3), false),           // 15 P3 out
            conv(c(256), c(256), 2),                             // 16
            Layer::Concat(12),                                   // 17
            c2f(c(256) + c(512), c(512), n(3), false),           // 18 P4 out
            conv(c(512), c(512), 2),                             // 19
            Layer::Concat(9),                                    // 20
            c2f(c(512) + c(1024), c(1024), n(3), false),         // 21 P5 out
        ];
        Self {
            layers,
            detect: Detect::new(num_classes, [c(256), c(512), c(1024)], device),
        }
    }

    /// A model whose random parameters depend on `seed` alone (PyTorch's default layer
    /// initialisation, as Ultralytics keeps it), with the head priors.
    pub fn seeded(size: YoloSize, num_classes: usize, seed: u64, device: &Device) -> Self {
        let mut model = init::seeded_with(
            Self::new(size, num_classes, device),
            seed,
            Scheme::TorchDefault,
        );
        model.detect.reset_priors();
        model
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.detect.num_classes
    }

    /// Raw outputs of P3, P4, P5 (`[B, 64 + classes, H/s, W/s]`).
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        self.detect.forward(self.features(x))
    }

    /// Raw outputs of all levels, box and class logits apart (training and evaluation).
    pub fn forward_flat(&self, x: Tensor<4>) -> HeadOutput {
        self.detect.forward_flat(self.features(x))
    }

    /// The neck's outputs at P3, P4, P5.
    fn features(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        let l = &self.layers;
        let cat = |a: Tensor<4>, b: Tensor<4>| crate::kernels::cat(vec![a, b], 1);
        let mut x = x;
        for layer in &l[0..4] {
            x = layer.forward(x);
        }
        let p3 = l[4].forward(x);
        let p4 = l[6].forward(l[5].forward(p3.clone()));
        let p5 = l[9].forward(l[8].forward(l[7].forward(p4.clone())));
        let h4 = l[12].forward(cat(l[10].forward(p5.clone()), p4));
        let n3 = l[15].forward(cat(l[13].forward(h4.clone()), p3));
        let n4 = l[18].forward(cat(l[16].forward(n3.clone()), h4));
        let n5 = l[21].forward(cat(l[19].forward(n4.clone()), p5));
        [n3, n4, n5]
    }

    /// Folds every BatchNorm into its convolution (inference only: do not train or export).
    pub fn fold_batchnorm(self) -> Self {
        self.map_blocks(&mut ConvBnSilu::fold_batchnorm)
    }

    /// The same model with every BatchNorm's running-average momentum set to `momentum`.
    pub(crate) fn with_batchnorm_momentum(self, momentum: f64) -> Self {
        self.map_blocks(&mut |mut block| {
            if let Some(bn) = block.bn.as_mut() {
                bn.momentum = momentum;
            }
            block
        })
    }

    /// The same model with `f` applied to every conv + BatchNorm block.
    fn map_blocks(self, f: &mut dyn FnMut(ConvBnSilu) -> ConvBnSilu) -> Self {
        Self {
            layers: self.layers.into_iter().map(|l| l.map_blocks(f)).collect(),
            detect: self.detect.map_blocks(f),
        }
    }

    /// Parameters counted like Ultralytics (`sum(p.numel() for p in model.parameters())`: the
    /// fixed DFL weight included, BatchNorm running statistics excluded).
    pub fn num_params(&self) -> usize {
        weights::named_tensors_with(self, ULTRALYTICS)
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
    fn parameter_counts_match_ultralytics() {
        let device = Device::flex();
        let n = YoloV8::new(YoloSize::N, 80, &device);
        assert_eq!(n.num_params(), 3_157_200);
        let s = YoloV8::new(YoloSize::S, 80, &device);
        assert_eq!(s.num_params(), 11_166_560);
    }

    #[test]
    fn state_dict_keys_follow_ultralytics() {
        let model = YoloV8::new(YoloSize::N, 3, &Device::flex());
        let names: Vec<String> = weights::named_tensors_with(&model, ULTRALYTICS)
            .into_iter()
            .map(|t| t.name)
            .collect();
        for expected in [
            "model.0.conv.weight",
            "model.0.bn.weight",
            "model.0.bn.running_mean",
            "model.2.m.0.cv1.conv.weight",
            "model.9.cv2.bn.bias",
            "model.21.cv2.conv.weight",
            "model.22.cv2.0.0.conv.weight",
            "model.22.cv2.2.2.bias",
            "model.22.cv3.1.2.weight",
            "model.22.dfl.conv.weight",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        assert!(names.iter().all(|n| n.starts_with("model.")));
    }

    #[test]
    fn output_shapes() {
        let device = Device::flex();
        let model = YoloV8::new(YoloSize::N, 5, &device);
        let levels = model.forward(Tensor::zeros([2, 3, 64, 96], &device));
        let dims: Vec<[usize; 4]> = levels.iter().map(|l| l.dims()).collect();
        assert_eq!(dims, vec![[2, 69, 8, 12], [2, 69, 4, 6], [2, 69, 2, 3]]);
        let (boxes, scores) = model.detect.decode(&HeadOutput::from_levels(&levels));
        assert_eq!(boxes.dims(), [2, 96 + 24 + 6, 4]);
        assert_eq!(scores.dims(), [2, 126, 5]);
        let flat = model.forward_flat(Tensor::zeros([2, 3, 64, 96], &device));
        assert_eq!(flat.boxes.dims(), [2, 64, 126]);
        assert_eq!(flat.classes.dims(), [2, 5, 126]);
        assert_eq!(flat.sizes, vec![[8, 12], [4, 6], [2, 3]]);
    }
}
