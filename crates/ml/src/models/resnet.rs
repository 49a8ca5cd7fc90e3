//! ResNet-18/34/50 with torchvision's module names and parameter shapes
//! (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.{0,1}`, `fc`), so torchvision and timm
//! state dicts map onto it one to one (see [`super::weights`]).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::activation::Activation;
use super::layers::{batch_norm, conv, conv_bn, conv_bn_act, fold};
use crate::kernels::max_pool2d;

/// Depth of a ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResNetDepth {
    /// Basic blocks `[2, 2, 2, 2]`.
    D18,
    /// Basic blocks `[3, 4, 6, 3]`.
    D34,
    /// Bottleneck blocks `[3, 4, 6, 3]`.
    D50,
}

impl ResNetDepth {
    fn blocks(&self) -> [usize; 4] {
        match self {
            ResNetDepth::D18 => [2, 2, 2, 2],
            ResNetDepth::D34 | ResNetDepth::D50 => [3, 4, 6, 3],
        }
    }

    fn bottleneck(&self) -> bool {
        matches!(self, ResNetDepth::D50)
    }
}

/// The 1×1 projection on a block's shortcut (`downsample.0` conv and `downsample.1` BatchNorm).
#[derive(Module, Debug)]
pub struct Downsample {
    pub(crate) conv: Conv2d,
    pub(crate) bn: Option<BatchNorm>,
}

/// A basic block (two 3×3 convs) or, when `conv3` is present, a bottleneck block
/// (1×1 → 3×3 with the stride → 1×1 with 4× expansion, torchvision v1.5).
#[derive(Module, Debug)]
pub struct Block {
    pub(crate) conv1: Conv2d,
    pub(crate) bn1: Option<BatchNorm>,
    pub(crate) conv2: Conv2d,
    pub(crate) bn2: Option<BatchNorm>,
    pub(crate) conv3: Option<Conv2d>,
    pub(crate) bn3: Option<BatchNorm>,
    pub(crate) downsample: Option<Downsample>,
}

impl Block {
    fn basic(in_channels: usize, planes: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: conv(in_channels, planes, 3, stride, 1, device),
            bn1: batch_norm(planes, device),
            conv2: conv(planes, planes, 3, 1, 1, device),
            bn2: batch_norm(planes, device),
            conv3: None,
            bn3: None,
            downsample: (stride != 1 || in_channels != planes)
                .then(|| Downsample::new(in_channels, planes, stride, device)),
        }
    }

    fn bottleneck(in_channels: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let out_channels = planes * 4;
        Self {
            conv1: conv(in_channels, planes, 1, 1, 0, device),
            bn1: batch_norm(planes, device),
            conv2: conv(planes, planes, 3, stride, 1, device),
            bn2: batch_norm(planes, device),
            conv3: Some(conv(planes, out_channels, 1, 1, 0, device)),
            bn3: batch_norm(out_channels, device),
            downsample: (stride != 1 || in_channels != out_channels)
                .then(|| Downsample::new(in_channels, out_channels, stride, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(down) => conv_bn(&down.conv, &down.bn, x.clone()),
            None => x.clone(),
        };
        let out = conv_bn_act(&self.conv1, &self.bn1, x, Activation::Relu);
        let out = match &self.conv3 {
            Some(conv3) => {
                let hidden = conv_bn_act(&self.conv2, &self.bn2, out, Activation::Relu);
                conv_bn(conv3, &self.bn3, hidden)
            }
            None => conv_bn(&self.conv2, &self.bn2, out),
        };
        relu(out.add(identity))
    }

    fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold(self.conv1, self.bn1);
        let (conv2, bn2) = fold(self.conv2, self.bn2);
        let (conv3, bn3) = match self.conv3 {
            Some(conv3) => {
                let (conv3, bn3) = fold(conv3, self.bn3);
                (Some(conv3), bn3)
            }
            None => (None, self.bn3),
        };
        let downsample = self.downsample.map(|down| {
            let (conv, bn) = fold(down.conv, down.bn);
            Downsample { conv, bn }
        });
        Self {
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            bn3,
            downsample,
        }
    }
}

impl Downsample {
    fn new(in_channels: usize, out_channels: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: conv(in_channels, out_channels, 1, stride, 0, device),
            bn: batch_norm(out_channels, device),
        }
    }
}

/// A ResNet classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    pub(crate) conv1: Conv2d,
    pub(crate) bn1: Option<BatchNorm>,
    pub(crate) maxpool: MaxPool2d,
    pub(crate) layer1: Vec<Block>,
    pub(crate) layer2: Vec<Block>,
    pub(crate) layer3: Vec<Block>,
    pub(crate) layer4: Vec<Block>,
    pub(crate) avgpool: AdaptiveAvgPool2d,
    pub(crate) fc: Linear,
}

impl ResNet {
    /// A freshly initialised ResNet (torchvision initialisation) with a `num_classes` head.
    pub fn new(depth: ResNetDepth, num_classes: usize, device: &Device) -> Self {
        let expansion = if depth.bottleneck() { 4 } else { 1 };
        let mut in_channels = 64;
        let mut make_layer = |planes: usize, blocks: usize, stride: usize| {
            (0..blocks)
                .map(|i| {
                    let stride = if i == 0 { stride } else { 1 };
                    let block = if depth.bottleneck() {
                        Block::bottleneck(in_channels, planes, stride, device)
                    } else {
                        Block::basic(in_channels, planes, stride, device)
                    };
                    in_channels = planes * expansion;
                    block
                })
                .collect::<Vec<_>>()
        };
        let [b1, b2, b3, b4] = depth.blocks();
        let layer1 = make_layer(64, b1, 1);
        let layer2 = make_layer(128, b2, 2);
        let layer3 = make_layer(256, b3, 2);
        let layer4 = make_layer(512, b4, 2);
        Self {
            conv1: conv(3, 64, 7, 2, 3, device),
            bn1: batch_norm(64, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(512 * expansion, num_classes).init(device),
        }
    }

    /// Logits `[B, classes]` for images `[B, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = conv_bn_act(&self.conv1, &self.bn1, x, Activation::Relu);
        let mut x = max_pool2d(&self.maxpool, x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        let x = self.avgpool.forward(x);
        let [batch, channels, _, _] = x.dims();
        self.fc.forward(x.reshape([batch, channels]))
    }

    /// Folds every BatchNorm into its convolution (inference only).
    pub fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold(self.conv1, self.bn1);
        let fold_layer = |layer: Vec<Block>| {
            layer
                .into_iter()
                .map(Block::fold_batchnorm)
                .collect::<Vec<_>>()
        };
        Self {
            conv1,
            bn1,
            layer1: fold_layer(self.layer1),
            layer2: fold_layer(self.layer2),
            layer3: fold_layer(self.layer3),
            layer4: fold_layer(self.layer4),
            ..self
        }
    }
}
