//! YOLOv8's building blocks in Ultralytics' layout: `Conv` (conv + BN + SiLU), `Bottleneck`,
//! `C2f` and `SPPF`. Field names are the state-dict segments (`cv1`, `cv2`, `m`, `conv`, `bn`).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::kernels::{cat, max_pool2d, narrow};
use crate::models::activation::Activation;
use crate::models::layers::{conv_bn_act, fold};

/// BatchNorm's running-average momentum (Ultralytics' value).
pub(crate) const BN_MOMENTUM: f64 = 0.03;

/// Ultralytics `Conv`: a bias-free convolution (padding `k / 2`), BatchNorm (eps 1e-3,
/// momentum 0.03) and SiLU. After [`ConvBnSilu::fold_batchnorm`] the BatchNorm lives in the
/// convolution's weight and bias.
#[derive(Module, Debug)]
pub struct ConvBnSilu {
    /// `…conv.weight` (and a bias once BatchNorm is folded).
    pub conv: Conv2d,
    /// `…bn.*`.
    pub bn: Option<BatchNorm>,
}

impl ConvBnSilu {
    /// A `kernel`×`kernel` block with the given stride.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        device: &Device,
    ) -> Self {
        let pad = kernel / 2;
        Self {
            conv: Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(device),
            bn: Some(
                BatchNormConfig::new(out_channels)
                    .with_epsilon(1e-3)
                    .with_momentum(BN_MOMENTUM)
                    .init(device),
            ),
        }
    }

    /// `silu(bn(conv(x)))`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_bn_act(&self.conv, &self.bn, x, Activation::Silu)
    }

    /// Folds the BatchNorm into the convolution (inference only).
    pub fn fold_batchnorm(self) -> Self {
        let (conv, bn) = fold(self.conv, self.bn);
        Self { conv, bn }
    }
}

/// Ultralytics `Bottleneck` with two 3×3 convolutions (expansion 1.0) and an optional residual.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// First 3×3 block.
    pub cv1: ConvBnSilu,
    /// Second 3×3 block.
    pub cv2: ConvBnSilu,
    /// Whether the input is added to the output.
    pub add: bool,
}

impl Bottleneck {
    fn new(channels: usize, shortcut: bool, device: &Device) -> Self {
        Self {
            cv1: ConvBnSilu::new(channels, channels, 3, 1, device),
            cv2: ConvBnSilu::new(channels, channels, 3, 1, device),
            add: shortcut,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.cv2.forward(self.cv1.forward(x.clone()));
        if self.add { x.add(y) } else { y }
    }

    fn map_blocks(self, f: &mut dyn FnMut(ConvBnSilu) -> ConvBnSilu) -> Self {
        Self {
            cv1: f(self.cv1),
            cv2: f(self.cv2),
            add: self.add,
        }
    }
}

/// Ultralytics `C2f`: a 1×1 block split in two halves, `n` bottlenecks chained on the second half,
/// every intermediate concatenated and fused by a 1×1 block.
#[derive(Module, Debug)]
pub struct C2f {
    /// 1×1 block to `2·hidden` channels.
    pub cv1: ConvBnSilu,
    /// 1×1 block from `(2 + n)·hidden` channels.
    pub cv2: ConvBnSilu,
    /// The bottlenecks.
    pub m: Vec<Bottleneck>,
    /// Hidden width (`out_channels / 2`).
    pub hidden: usize,
}

impl C2f {
    /// `C2f(c1, c2, n, shortcut)` with expansion 0.5.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        repeats: usize,
        shortcut: bool,
        device: &Device,
    ) -> Self {
        let hidden = out_channels / 2;
        Self {
            cv1: ConvBnSilu::new(in_channels, 2 * hidden, 1, 1, device),
            cv2: ConvBnSilu::new((2 + repeats) * hidden, out_channels, 1, 1, device),
            m: (0..repeats)
                .map(|_| Bottleneck::new(hidden, shortcut, device))
                .collect(),
            hidden,
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // Ultralytics splits `cv1`'s output in two halves and concatenates them again with the
        // bottlenecks' outputs; concatenating `y` whole is the same tensor, and its gradient
        // is then one slice of the concatenation's instead of two halves scattered into zeros
        // and summed.
        let y = self.cv1.forward(x);
        let mut next = narrow(y.clone(), 1, self.hidden, self.hidden);
        let mut parts = vec![y];
        for block in &self.m {
            next = block.forward(next);
            parts.push(next.clone());
        }
        self.cv2.forward(cat(parts, 1))
    }

    /// The same module with `f` applied to every conv + BatchNorm block.
    pub(crate) fn map_blocks(self, f: &mut dyn FnMut(ConvBnSilu) -> ConvBnSilu) -> Self {
        Self {
            cv1: f(self.cv1),
            cv2: f(self.cv2),
            m: self.m.into_iter().map(|b| b.map_blocks(f)).collect(),
            hidden: self.hidden,
        }
    }
}

/// Ultralytics `SPPF`: 1×1 block to half width, three chained 5×5 max-pools (stride 1),
/// concatenation of the four and a 1×1 block.
#[derive(Module, Debug)]
pub struct Sppf {
    /// 1×1 block to `in / 2` channels.
    pub cv1: ConvBnSilu,
    /// 1×1 block from `4 · in / 2` channels.
    pub cv2: ConvBnSilu,
    /// The max-pool (`m` in Ultralytics; no parameters).
    pub m: MaxPool2d,
}

impl Sppf {
    /// `SPPF(c1, c2, k)`.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, device: &Device) -> Self {
        let hidden = in_channels / 2;
        let pad = kernel / 2;
        Self {
            cv1: ConvBnSilu::new(in_channels, hidden, 1, 1, device),
            cv2: ConvBnSilu::new(4 * hidden, out_channels, 1, 1, device),
            m: MaxPool2dConfig::new([kernel, kernel])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .init(),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y0 = self.cv1.forward(x);
        let y1 = max_pool2d(&self.m, y0.clone());
        let y2 = max_pool2d(&self.m, y1.clone());
        let y3 = max_pool2d(&self.m, y2.clone());
        self.cv2.forward(cat(vec![y0, y1, y2, y3], 1))
    }

    /// The same module with `f` applied to every conv + BatchNorm block.
    pub(crate) fn map_blocks(self, f: &mut dyn FnMut(ConvBnSilu) -> ConvBnSilu) -> Self {
        Self {
            cv1: f(self.cv1),
            cv2: f(self.cv2),
            m: self.m,
        }
    }
}
