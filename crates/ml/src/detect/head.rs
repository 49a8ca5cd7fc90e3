//! The anchor-free decoupled `Detect` head: per level a box branch (`cv2`, 4 × 16 DFL bins) and a
//! class branch (`cv3`), the fixed DFL projection (`dfl`), anchor points and box decoding.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Tensor, TensorData};

use rayon::prelude::*;

use super::blocks::ConvBnSilu;
use super::loss::host;
use crate::error::MlError;
use crate::kernels::narrow;
use crate::models::activation::exp_one;
use crate::simd::vectorized;

/// DFL bins per box side (`reg_max`).
pub const REG_MAX: usize = 16;
/// Strides of the three detection levels (P3, P4, P5).
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// One layer of a head branch (`nn.Sequential(Conv, Conv, nn.Conv2d)`).
// A few dozen values per model: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum HeadLayer {
    /// Conv + BN + SiLU.
    Conv(ConvBnSilu),
    /// The final 1×1 prediction convolution (with bias).
    Pred(Conv2d),
}

impl HeadLayer {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            HeadLayer::Conv(block) => block.forward(x),
            HeadLayer::Pred(conv) => crate::kernels::conv2d(conv, x),
        }
    }

    fn map_blocks(self, f: &mut dyn FnMut(ConvBnSilu) -> ConvBnSilu) -> Self {
        match self {
            HeadLayer::Conv(block) => HeadLayer::Conv(f(block)),
            pred => pred,
        }
    }
}

/// Ultralytics `DFL`: a fixed 1×1 convolution `16 → 1` whose weight is `0, 1, …, 15`, i.e. the
/// expectation of the softmax over the bins. Never trained.
#[derive(Module, Debug)]
pub struct Dfl {
    /// `dfl.conv.weight` `[1, 16, 1, 1]`.
    pub conv: Conv2d,
}

/// The detection head.
#[derive(Module, Debug)]
pub struct Detect {
    /// Box branches, one per level: `[Conv 3×3, Conv 3×3, Conv2d 1×1 → 4·16]`.
    pub cv2: Vec<Vec<HeadLayer>>,
    /// Class branches, one per level: `[Conv 3×3, Conv 3×3, Conv2d 1×1 → classes]`.
    pub cv3: Vec<Vec<HeadLayer>>,
    /// The DFL projection.
    pub dfl: Dfl,
    /// Number of classes.
    pub num_classes: usize,
}

fn branch(in_channels: usize, hidden: usize, out: usize, device: &Device) -> Vec<HeadLayer> {
    vec![
        HeadLayer::Conv(ConvBnSilu::new(in_channels, hidden, 3, 1, device)),
        HeadLayer::Conv(ConvBnSilu::new(hidden, hidden, 3, 1, device)),
        HeadLayer::Pred(Conv2dConfig::new([hidden, out], [1, 1]).init(device)),
    ]
}

/// Anchor points (cell centres, in grid units of their level) and strides of every position of
/// the three levels, level by level, row-major — the order of [`Detect::flatten`].
#[derive(Debug, Clone, PartialEq)]
pub struct Anchors {
    /// `(x, y)` per anchor, in grid cells of its level (`column + 0.5`, `row + 0.5`).
    pub points: Vec<[f32; 2]>,
    /// Stride per anchor (pixels per grid cell).
    pub strides: Vec<f32>,
}

impl Anchors {
    /// Anchors of levels with the given `(height, width)` feature-map sizes and [`STRIDES`].
    pub fn new(level_sizes: &[[usize; 2]]) -> Self {
        let mut points = Vec::new();
        let mut strides = Vec::new();
        for (&[h, w], &stride) in level_sizes.iter().zip(STRIDES.iter()) {
            for y in 0..h {
                for x in 0..w {
                    points.push([x as f32 + 0.5, y as f32 + 0.5]);
                    strides.push(stride as f32);
                }
            }
        }
        Self { points, strides }
    }

    /// Anchors of a square `image_size` input (a multiple of 32).
    pub fn for_image(image_size: usize) -> Self {
        let sizes: Vec<[usize; 2]> = STRIDES
            .iter()
            .map(|s| [image_size.div_ceil(*s), image_size.div_ceil(*s)])
            .collect();
        Self::new(&sizes)
    }

    /// Number of anchors.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl Detect {
    /// A head for `num_classes` classes over inputs of `channels` (P3, P4, P5).
    pub fn new(num_classes: usize, channels: [usize; 3], device: &Device) -> Self {
        let c2 = (channels[0] / 4).max(4 * REG_MAX).max(16);
        let c3 = channels[0].max(num_classes.min(100));
        let mut head = Self {
            cv2: channels
                .iter()
                .map(|&c| branch(c, c2, 4 * REG_MAX, device))
                .collect(),
            cv3: channels
                .iter()
                .map(|&c| branch(c, c3, num_classes, device))
                .collect(),
            dfl: Dfl {
                conv: Conv2dConfig::new([REG_MAX, 1], [1, 1])
                    .with_bias(false)
                    .init(device),
            },
            num_classes,
        };
        head.reset_priors();
        head
    }

    /// Ultralytics' `bias_init`: box biases 1.0, class biases `ln(5 / nc / (640 / stride)²)`
    /// (a prior of ~5 objects per 640² image), and the DFL weight `0..16`.
    pub fn reset_priors(&mut self) {
        let nc = self.num_classes.max(1);
        for branch in &mut self.cv2 {
            set_pred_bias(branch, |_| 1.0);
        }
        for (branch, stride) in self.cv3.iter_mut().zip(STRIDES) {
            let cells = 640.0 / stride as f64;
            let prior = (5.0 / nc as f64 / (cells * cells)).ln();
            set_pred_bias(branch, |_| prior as f32);
        }
        let weight = &mut self.dfl.conv.weight;
        let device = weight.lazy_device();
        let bins: Vec<f32> = (0..REG_MAX).map(|i| i as f32).collect();
        let value = Tensor::<4>::from_data(TensorData::new(bins, [1, REG_MAX, 1, 1]), &device);
        *weight = Param::from_tensor(value).set_require_grad(false);
    }

    /// Raw outputs per level, `[B, 4·16 + classes, H, W]` (box logits first), for P3, P4, P5.
    pub fn forward(&self, features: [Tensor<4>; 3]) -> Vec<Tensor<4>> {
        self.branches(features)
            .map(|(boxes, classes)| crate::kernels::cat(vec![boxes, classes], 1))
            .collect()
    }

    /// The raw outputs of all levels with box and class logits apart (what the loss and the
    /// decoder read: no concatenation to split again, forward or backward).
    pub fn forward_flat(&self, features: [Tensor<4>; 3]) -> HeadOutput {
        let (boxes, classes): (Vec<_>, Vec<_>) = self.branches(features).unzip();
        HeadOutput {
            sizes: level_sizes(&boxes),
            boxes: Self::flatten(&boxes),
            classes: Self::flatten(&classes),
        }
    }

    /// Each level's box logits `[B, 4·16, H, W]` and class logits `[B, classes, H, W]`.
    fn branches(
        &self,
        features: [Tensor<4>; 3],
    ) -> impl Iterator<Item = (Tensor<4>, Tensor<4>)> + '_ {
        features.into_iter().enumerate().map(|(i, x)| {
            let boxes = run(&self.cv2[i], x.clone());
            (boxes, run(&self.cv3[i], x))
        })
    }

    /// Concatenates the levels' outputs `[B, C, H, W]` into `[B, C, A]` (anchor order of
    /// [`Anchors`]).
    pub fn flatten(levels: &[Tensor<4>]) -> Tensor<3> {
        let flat: Vec<Tensor<3>> = levels
            .iter()
            .map(|level| {
                let [b, c, h, w] = level.dims();
                level.clone().reshape([b, c, h * w])
            })
            .collect();
        crate::kernels::cat(flat, 2)
    }

    /// Expected distance per side from box logits `[B, 4·16, A]`: softmax over each side's bins
    /// dotted with the DFL weight → `[B, 4, A]` (left, top, right, bottom in grid cells).
    pub fn distances(&self, box_logits: Tensor<3>) -> Tensor<3> {
        let [b, _, a] = box_logits.dims();
        let probabilities = softmax(box_logits.reshape([b, 4, REG_MAX, a]), 2);
        let bins = self
            .dfl
            .conv
            .weight
            .val()
            .detach()
            .reshape([1, 1, REG_MAX, 1]);
        probabilities.mul(bins).sum_dim(2).reshape([b, 4, a])
    }

    /// [`Self::distances`] on the host, for the loss's assignment (which reads them there):
    /// `logits` `[B, 4·16, A]` → `[B, 4, A]`. Each (image, side) in parallel, anchors innermost
    /// so the softmax vectorises; burn's softmax, product and sum were three single-threaded
    /// passes over the batch's box logits in every training step.
    pub(crate) fn host_distances(
        &self,
        logits: &[f32],
        anchors: usize,
    ) -> Result<Vec<f32>, MlError> {
        let bins = host(self.dfl.conv.weight.val().detach())?;
        let mut distances = vec![0.0; logits.len() / REG_MAX];
        if anchors == 0 {
            return Ok(distances);
        }
        distances
            .par_chunks_mut(anchors)
            .zip(logits.par_chunks(REG_MAX * anchors))
            .for_each(|(out, side)| {
                vectorized(
                    #[inline(always)]
                    || expected_bin(side, &bins, out),
                )
            });
        Ok(distances)
    }

    /// Decoded predictions of raw outputs: boxes `[B, A, 4]` (`x1, y1, x2, y2` in input pixels)
    /// and class probabilities `[B, A, classes]`.
    pub fn decode(&self, output: &HeadOutput) -> (Tensor<3>, Tensor<3>) {
        let anchors = output.anchors();
        let device = output.boxes.device();
        let distances = self.distances(output.boxes.clone());
        let a = anchors.len();
        let xy: Vec<f32> = anchors
            .points
            .iter()
            .map(|p| p[0])
            .chain(anchors.points.iter().map(|p| p[1]))
            .collect();
        let centres = Tensor::<3>::from_data(TensorData::new(xy, [1, 2, a]), &device);
        let strides = Tensor::<3>::from_data(TensorData::new(anchors.strides, [1, 1, a]), &device);
        let lt = distances.clone().narrow(1, 0, 2);
        let rb = distances.narrow(1, 2, 2);
        let top_left = centres.clone().sub(lt).mul(strides.clone());
        let bottom_right = centres.add(rb).mul(strides);
        let boxes = Tensor::cat(vec![top_left, bottom_right], 1).swap_dims(1, 2);
        let scores = sigmoid(output.classes.clone()).swap_dims(1, 2);
        (boxes, scores)
    }

    /// The same head with `f` applied to every conv + BatchNorm block.
    pub(crate) fn map_blocks(self, f: &mut dyn FnMut(ConvBnSilu) -> ConvBnSilu) -> Self {
        let mut map = |branches: Vec<Vec<HeadLayer>>| -> Vec<Vec<HeadLayer>> {
            branches
                .into_iter()
                .map(|b| b.into_iter().map(|layer| layer.map_blocks(f)).collect())
                .collect()
        };
        Self {
            cv2: map(self.cv2),
            cv3: map(self.cv3),
            dfl: self.dfl,
            num_classes: self.num_classes,
        }
    }
}

/// The raw outputs of all levels, anchors in the order of [`Anchors`].
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// Box logits `[B, 4·16, A]`.
    pub boxes: Tensor<3>,
    /// Class logits `[B, classes, A]`.
    pub classes: Tensor<3>,
    /// Each level's `[height, width]`.
    pub sizes: Vec<[usize; 2]>,
}

impl HeadOutput {
    /// From raw outputs per level `[B, 4·16 + classes, H, W]` (box logits first), as
    /// [`Detect::forward`] and the serving plans give them.
    pub fn from_levels(levels: &[Tensor<4>]) -> Self {
        let flat = Detect::flatten(levels);
        let [_, channels, _] = flat.dims();
        let classes = channels.saturating_sub(4 * REG_MAX);
        Self {
            sizes: level_sizes(levels),
            boxes: narrow(flat.clone(), 1, 0, 4 * REG_MAX),
            classes: narrow(flat, 1, 4 * REG_MAX, classes),
        }
    }

    /// The anchors of the levels.
    pub fn anchors(&self) -> Anchors {
        Anchors::new(&self.sizes)
    }
}

/// `[height, width]` of each `[B, C, H, W]` level.
fn level_sizes(levels: &[Tensor<4>]) -> Vec<[usize; 2]> {
    levels
        .iter()
        .map(|l| {
            let [_, _, h, w] = l.dims();
            [h, w]
        })
        .collect()
}

fn run(branch: &[HeadLayer], mut x: Tensor<4>) -> Tensor<4> {
    for layer in branch {
        x = layer.forward(x);
    }
    x
}

fn set_pred_bias(branch: &mut [HeadLayer], value: impl Fn(usize) -> f32) {
    if let Some(HeadLayer::Pred(conv)) = branch.last_mut()
        && let Some(bias) = &mut conv.bias
    {
        let [n] = bias.val().dims();
        let device = bias.lazy_device();
        let values: Vec<f32> = (0..n).map(value).collect();
        *bias = Param::from_tensor(Tensor::from_data(TensorData::new(values, [n]), &device));
    }
}

/// `out[i] = Σ_j softmax(rows)_j,i · bins[j]` for the `bins.len()` rows of `side` (one row of
/// `out.len()` logits per bin).
#[inline(always)]
fn expected_bin(side: &[f32], bins: &[f32], out: &mut [f32]) {
    let n = out.len();
    let mut max = vec![f32::NEG_INFINITY; n];
    for row in side.chunks_exact(n) {
        max.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
    }
    let mut total = vec![0.0f32; n];
    out.fill(0.0);
    for (row, &bin) in side.chunks_exact(n).zip(bins) {
        for (((o, t), &m), &v) in out.iter_mut().zip(&mut total).zip(&max).zip(row) {
            let e = exp_one(v - m);
            *t += e;
            *o += e * bin;
        }
    }
    out.iter_mut().zip(&total).for_each(|(o, &t)| *o /= t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// The host distances against the tensor version, on logits wide enough that an unstable
    /// softmax would overflow.
    #[test]
    fn host_distances_match_the_tensor_version() -> Result<(), MlError> {
        let device = Device::flex();
        let head = Detect::new(3, [8, 8, 8], &device);
        let (batch, anchors) = (2, 37);
        let logits = Tensor::<3>::random(
            [batch, 4 * REG_MAX, anchors],
            Distribution::Uniform(-100.0, 100.0),
            &device,
        );
        let expected = host(head.distances(logits.clone()))?;
        let ours = head.host_distances(&host(logits)?, anchors)?;
        assert_eq!(ours.len(), batch * 4 * anchors);
        for (a, b) in ours.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        Ok(())
    }
}
