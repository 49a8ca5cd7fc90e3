//! A small, fast CNN for quick jobs: three conv/BN/ReLU/max-pool stages, global average pooling
//! and a linear head.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::activation::Activation;
use super::layers::{batch_norm, conv, conv_bn_act, fold};
use crate::kernels::max_pool2d;

/// Channel widths of the three stages.
const WIDTHS: [usize; 3] = [32, 64, 128];

/// The small CNN (parameter names `conv1`, `bn1`, …, `fc` like a torchvision model).
#[derive(Module, Debug)]
pub struct SmallCnn {
    pub(crate) conv1: Conv2d,
    pub(crate) bn1: Option<BatchNorm>,
    pub(crate) conv2: Conv2d,
    pub(crate) bn2: Option<BatchNorm>,
    pub(crate) conv3: Conv2d,
    pub(crate) bn3: Option<BatchNorm>,
    pub(crate) pool: MaxPool2d,
    pub(crate) avgpool: AdaptiveAvgPool2d,
    pub(crate) fc: Linear,
}

impl SmallCnn {
    /// A freshly initialised network for `num_classes` classes.
    pub fn new(num_classes: usize, device: &Device) -> Self {
        let [w1, w2, w3] = WIDTHS;
        Self {
            conv1: conv(3, w1, 3, 1, 1, device),
            bn1: batch_norm(w1, device),
            conv2: conv(w1, w2, 3, 1, 1, device),
            bn2: batch_norm(w2, device),
            conv3: conv(w2, w3, 3, 1, 1, device),
            bn3: batch_norm(w3, device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(w3, num_classes).init(device),
        }
    }

    /// Logits `[B, classes]` for images `[B, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let relu = Activation::Relu;
        let x = max_pool2d(&self.pool, conv_bn_act(&self.conv1, &self.bn1, x, relu));
        let x = max_pool2d(&self.pool, conv_bn_act(&self.conv2, &self.bn2, x, relu));
        let x = conv_bn_act(&self.conv3, &self.bn3, x, relu);
        let x = self.avgpool.forward(x);
        let [batch, channels, _, _] = x.dims();
        self.fc.forward(x.reshape([batch, channels]))
    }

    /// Folds the BatchNorms into the convolutions (inference only).
    pub fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold(self.conv1, self.bn1);
        let (conv2, bn2) = fold(self.conv2, self.bn2);
        let (conv3, bn3) = fold(self.conv3, self.bn3);
        Self {
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            bn3,
            ..self
        }
    }
}
