//! 2-D convolution of NCHW tensors and its two gradients, each as one matrix product over the
//! whole batch.
//!
//! With `K = in_channels·kh·kw` and `Q = batch·out_h·out_w`, the batch's im2col matrix is
//! `cols[K, Q]` (row `(ci, ky, kx)`, column `(n, oy, ox)`), and
//! - forward: `out[Cout, Q] = W[Cout, K] · cols`,
//! - input gradient: `dcols[K, Q] = Wᵀ · g[Cout, Q]`, scattered back by col2im,
//! - weight gradient: `dW[Cout, K] = g · colsᵀ`.
//!
//! One product per pass keeps gemm's blocks full even in the deep layers of a small-image
//! network (ResNet-18's last stage at 64² input has 2×2 pixels per image), and the weight
//! gradient's sum over the batch happens inside the product instead of in per-image partials.
//! The `[Cout, Q]` matrices and NCHW tensors differ only in where the batch index sits, so
//! outputs and incoming gradients are moved between them with one parallel copy.
//!
//! Once an image alone has enough output pixels to fill gemm's blocks ([`PER_IMAGE_PIXELS`]), the
//! forward and input-gradient products run per image instead, reading and writing the NCHW
//! planes in place (a column block of `cols`/`dcols` is a strided view), so the copies between
//! the two layouts are not made (memcpy was 8 % of a YOLOv8 training step in `perf`, these copies
//! among it; no wall-clock change was measurable on the 2-core host, whose speed drifts ±20 %).
//! When the batch shares out among the threads, those per-image passes go one thread per
//! contiguous group of images: each thread makes one image's im2col in its own scratch, runs a
//! single-threaded product on it and scatters it back, and the weight gradient becomes one
//! partial `Σ cols · gᵀ` per group, summed at the end. gemm splitting one per-image product over
//! two threads reached 51–113 GFLOP/s on YOLOv8n's shapes at 320², batch 8, where one thread per
//! image reached 72–167 (forward), and the weight gradient 59–189 → 102–254.
//!
//! Splitting one product over the threads, gemm runs 3–4× slower when its right-hand side is
//! column-major (measured here: 55 vs 160–250 GFLOP/s on 2 cores), which `g · colsᵀ` would be; the
//! batch-wide weight gradient therefore transposes whichever of `cols` and the product is smaller
//! first. Single-threaded on one image's matrices it measured the other way round, so the image
//! groups read the gradient planes as a column-major view (see `weight_grad_by_groups`).

use rayon::prelude::*;

use std::ops::Range;

use super::conv_taps::Taps;
use super::conv_winograd::Winograd;
use crate::gemm::{MatRef, matmul, matmul_add, matmul_rows};
use crate::pool::{self, Scratch};
use crate::winograd;

/// Output pixels per image from which the forward and input-gradient products run per image.
const PER_IMAGE_PIXELS: usize = 1024;
/// Output pixels per image from which a stride-1 convolution with enough input channels runs by
/// taps (one thread per group of images).
const TAP_PIXELS: usize = 64;
/// Input channels from which a wide layer's weight gradient may go by image groups (see
/// [`Tuning::wide_weight_grad_by_groups`]).
const WIDE_WEIGHT_GRAD_CHANNELS: usize = 32;

/// The thresholds of [`ConvShape::products`] that depend on gemm's microkernel, each measured
/// with every path on YOLOv8n's training shapes (batch 8 at 320², minimum of 5–7 runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tuning {
    /// Output pixels per image from which the passes go one thread per group of images.
    group_pixels: usize,
    /// Input channels from which a stride-1 convolution runs by taps.
    tap_channels: usize,
    /// Whether the weight gradient of a layer run by taps goes by im2col image groups instead
    /// when it has at least [`PER_IMAGE_PIXELS`] output pixels and [`WIDE_WEIGHT_GRAD_CHANNELS`]
    /// input channels.
    wide_weight_grad_by_groups: bool,
}

impl Tuning {
    /// AVX2 (8-lane microkernels, measured on a 2-core AMD EPYC Zen 3): with 16 input channels
    /// a tap product ran at 43 against 63 GFLOP/s for the im2col product; image groups from 256
    /// pixels; the weight gradients by taps and by image groups tied (134 against 132 ms per
    /// step).
    const AVX2: Self = Self {
        group_pixels: 256,
        tap_channels: 64,
        wide_weight_grad_by_groups: false,
    };

    /// AVX-512 (gemm's 64×6 microkernel, measured on a 2-core Xeon with 2 MiB L2 per core): one
    /// image's im2col matrix of a 16-channel 80² layer (3.7 MB) no longer fits in L2, and by taps
    /// it ran 1.5–2.8× faster in all three passes (forward 1.7–2.1 against 3.5–4.9 ms), the
    /// 32-channel 40² forward 1.6–1.8 against 2.0–2.2 ms; the 40² weight gradients with 32–80
    /// input channels were 10–25 % faster by image groups (80→80: 8.5–8.8 against 10.0–13.0 ms)
    /// while at 20² and below taps won or tied; image groups beat one batched product down to
    /// 10² (1×1 512→256: 1.10 against 1.31 ms).
    const AVX512: Self = Self {
        group_pixels: 64,
        tap_channels: 16,
        wide_weight_grad_by_groups: true,
    };

    /// The tuning of the microkernel gemm dispatches to on this CPU (AVX-512F with AVX2 and FMA).
    fn here() -> Self {
        static TUNING: std::sync::OnceLock<Tuning> = std::sync::OnceLock::new();
        *TUNING.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Tuning::AVX512;
            }
            Tuning::AVX2
        })
    }
}

/// How the matrix products cover the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Products {
    /// One product over the whole batch's `[·, N·P]` matrices, results moved to NCHW by a copy.
    Batched,
    /// One product per image split by gemm over the threads, reading and writing NCHW planes in
    /// place (a batch too small to share out among the threads).
    PerImage,
    /// The batch shared out in this many contiguous groups of images, one per thread: each
    /// image's im2col, product and col2im run on its group's thread alone, in a scratch matrix
    /// of one image, and the weight gradient sums one partial per group.
    ImageGroups(usize),
    /// As `ImageGroups`, each image's products one per kernel tap over its zero-padded planes
    /// instead of one over its im2col matrix (see [`super::conv_taps`]; stride 1 only).
    Taps(usize),
    /// As `ImageGroups`, by Winograd's F(2×2, 3×3) over each group's tiles (see
    /// [`super::conv_winograd`]; 3×3, stride 1, padding 1 only).
    Winograd(usize),
}

/// The geometry of one convolution (groups 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Zero padding before the first row and column.
    pub padding: [usize; 2],
    /// Zero padding after the last row and column.
    pub padding_end: [usize; 2],
    /// Dilation `[vertical, horizontal]`.
    pub dilation: [usize; 2],
}

impl ConvShape {
    /// Output `[height, width]`.
    pub fn output(&self) -> [usize; 2] {
        std::array::from_fn(|axis| {
            let span = self.dilation[axis] * (self.kernel[axis] - 1) + 1;
            let padded = self.input[axis] + self.padding[axis] + self.padding_end[axis];
            if padded < span {
                0
            } else {
                (padded - span) / self.stride[axis] + 1
            }
        })
    }

    /// Rows of the im2col matrix: `in_channels · kh · kw`.
    fn patch(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    fn input_pixels(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn output_pixels(&self) -> usize {
        let [h, w] = self.output();
        h * w
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.input_pixels()
    }

    /// Elements of the weight tensor.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch()
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.output_pixels()
    }

    /// How the forward and input-gradient passes run: by taps for a stride-1 convolution with
    /// enough input channels, per image when an image fills gemm's blocks by itself (both in
    /// groups of images, one per thread, when the batch shares out evenly enough), else batched
    /// (thresholds in [`Tuning`]).
    fn products(&self) -> Products {
        self.products_tuned(Tuning::here())
    }

    /// The number of image groups, one per thread, when the batch shares out evenly enough among
    /// rayon's threads (a multiple of them, or at least three images per thread).
    fn image_groups(&self) -> Option<usize> {
        let threads = rayon::current_num_threads().max(1);
        (self.batch.is_multiple_of(threads) || self.batch >= 3 * threads)
            .then(|| threads.min(self.batch))
    }

    fn products_tuned(&self, tuning: Tuning) -> Products {
        let by_taps = self.stride == [1, 1]
            && !self.is_pointwise()
            && self.in_channels >= tuning.tap_channels
            && self.output_pixels() >= TAP_PIXELS;
        let winograd = Winograd::applies(self)
            && self.in_channels.min(self.out_channels) >= winograd::MIN_CHANNELS
            && self.input[1] >= winograd::MIN_WIDTH;
        match self.image_groups() {
            Some(groups) if winograd => Products::Winograd(groups),
            Some(groups) if by_taps => Products::Taps(groups),
            Some(groups) if self.output_pixels() >= tuning.group_pixels => {
                Products::ImageGroups(groups)
            }
            _ if self.output_pixels() >= PER_IMAGE_PIXELS => Products::PerImage,
            _ => Products::Batched,
        }
    }

    /// How the weight-gradient pass runs: as [`Self::products`], except that wide layers run by
    /// taps may go by image groups (see [`Tuning::wide_weight_grad_by_groups`]).
    fn weight_products(&self) -> Products {
        self.weight_products_tuned(Tuning::here())
    }

    fn weight_products_tuned(&self, tuning: Tuning) -> Products {
        match self.products_tuned(tuning) {
            Products::Taps(groups)
                if tuning.wide_weight_grad_by_groups
                    && self.output_pixels() >= PER_IMAGE_PIXELS
                    && self.in_channels >= WIDE_WEIGHT_GRAD_CHANNELS =>
            {
                Products::ImageGroups(groups)
            }
            products => products,
        }
    }

    /// Whether each tap's valid block is one run in both the input plane and the tap's im2col
    /// row: stride 1 and output rows as wide as the input's, so consecutive output rows read
    /// consecutive input rows. The run also covers the padding columns between the valid
    /// pixels, where it pairs each with a pixel of the neighbouring row.
    fn taps_are_runs(&self) -> bool {
        self.stride == [1, 1] && self.output()[1] == self.input[1]
    }

    /// The run of tap `(ky, kx)` when [`Self::taps_are_runs`]: its start in the tap's im2col row
    /// of one image, its start in the input plane, and its length; `None` when the tap reads only
    /// padding.
    fn tap_run(&self, ky: usize, kx: usize) -> Option<(usize, usize, usize)> {
        let ow = self.output()[1];
        let (rows, first_y) = self.reads(0, ky);
        let (columns, first_x) = self.reads(1, kx);
        (!rows.is_empty() && !columns.is_empty()).then(|| {
            (
                rows.start * ow + columns.start,
                first_y * self.input[1] + first_x,
                (rows.len() - 1) * ow + columns.len(),
            )
        })
    }

    /// The same convolution on one image.
    pub(super) fn one_image(&self) -> Self {
        Self { batch: 1, ..*self }
    }

    /// Scratch for one image's im2col matrix (none for a pointwise convolution, whose matrix is
    /// the image itself); `self.batch` is 1.
    fn image_scratch(&self) -> Scratch {
        pool::scratch(if self.is_pointwise() {
            0
        } else {
            self.patch() * self.output_pixels()
        })
    }

    /// One image's im2col matrix `[Cin·kh·kw, oh·ow]` (`self.batch` is 1): the image itself for
    /// a pointwise convolution, else written into `cols` on this thread.
    fn image_cols<'a>(&self, image: &'a [f32], cols: &'a mut [f32]) -> MatRef<'a> {
        let (k, p) = (self.patch(), self.output_pixels());
        if self.is_pointwise() {
            return MatRef::dense(image, k, p);
        }
        im2col_into(self, image, cols, false);
        MatRef::dense(cols, k, p)
    }

    /// A 1×1, stride-1, unpadded convolution: im2col is the input itself, channels first.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.padding_end == [0, 0]
    }

    /// The input index read along `axis` by output index `out` at kernel tap `tap`, if it is
    /// not padding.
    #[cfg(test)]
    fn source(&self, axis: usize, out: usize, tap: usize) -> Option<usize> {
        (out * self.stride[axis] + tap * self.dilation[axis])
            .checked_sub(self.padding[axis])
            .filter(|&i| i < self.input[axis])
    }

    /// Along `axis`, the output indices whose tap `tap` reads inside the input (not padding),
    /// and the input index the first of them reads.
    fn reads(&self, axis: usize, tap: usize) -> (Range<usize>, usize) {
        let (stride, offset) = (self.stride[axis], tap * self.dilation[axis]);
        let (padding, size) = (self.padding[axis], self.input[axis]);
        let out = self.output()[axis];
        // out·stride + offset − padding ∈ [0, size)
        let first = padding.saturating_sub(offset).div_ceil(stride).min(out);
        let end = if size + padding > offset {
            ((size + padding - offset - 1) / stride + 1).min(out)
        } else {
            0
        };
        let end = end.max(first);
        (
            first..end,
            (first * stride + offset).saturating_sub(padding),
        )
    }
}

/// The convolution of `x` (`[N, Cin, H, W]`) with `weight` (`[Cout, Cin, kh, kw]`), NCHW.
pub(crate) fn forward(shape: &ConvShape, x: &[f32], weight: &[f32]) -> Vec<f32> {
    forward_with(shape, x, weight, shape.products())
}

pub(super) fn forward_with(
    shape: &ConvShape,
    x: &[f32],
    weight: &[f32],
    products: Products,
) -> Vec<f32> {
    check_lengths(shape, x.len(), weight.len(), None);
    let (k, p) = (shape.patch(), shape.output_pixels());
    let (q, cout) = (shape.batch * p, shape.out_channels);
    let weight = MatRef::dense(weight, cout, k);
    let len = shape.output_len();
    match products {
        Products::Winograd(groups) => Winograd::new(shape).forward(x, weight.data, groups),
        Products::Taps(groups) => {
            let taps = Taps::new(shape);
            let scratch = || {
                let padded = pool::scratch(taps.padded_len());
                (padded, pool::scratch(taps.spread_len()))
            };
            let groups = ImageGroups::new(shape, groups, cout * p);
            groups.run(x, scratch, |(padded, spread), out, image| {
                taps.pad(image, padded);
                taps.forward(padded, weight.data, spread, out);
            })
        }
        Products::ImageGroups(groups) => {
            let one = shape.one_image();
            let groups = ImageGroups::new(shape, groups, cout * p);
            groups.run(
                x,
                || one.image_scratch(),
                |cols, out, image| {
                    matmul(out, weight, one.image_cols(image, cols), false);
                },
            )
        }
        Products::PerImage if shape.is_pointwise() => whole(len, |out| {
            // im2col of a pointwise convolution is each image's own `[Cin, P]` planes.
            for (image, out) in x.chunks(k * p).zip(out.chunks_mut(cout * p)) {
                matmul(out, weight, MatRef::dense(image, k, p), true);
            }
        }),
        Products::PerImage => whole(len, |out| {
            let cols = im2col(shape, x);
            for (n, out) in out.chunks_mut(cout * p).enumerate() {
                matmul(out, weight, MatRef::rows(&cols[n * p..], k, p, q), true);
            }
        }),
        Products::Batched => whole(len, |out| {
            let cols = im2col(shape, x);
            let mut product = pool::scratch(cout * q);
            matmul(&mut product, weight, MatRef::dense(&cols, k, q), true);
            drop(cols);
            swap_outer(&product, cout, shape.batch, out);
        }),
    }
}

/// A new buffer of `len` zeros that `write` then fills, all on this thread (the paths that
/// parallelise inside their products).
fn whole(len: usize, write: impl Fn(&mut [f32]) + Sync) -> Vec<f32> {
    pool::fresh(len, len, |_, part| write(part.zeroed()))
}

/// Group `g` of `data` cut in runs of `size` values (empty past its end).
pub(super) fn group(data: &[f32], g: usize, size: usize) -> &[f32] {
    let start = g.saturating_mul(size).min(data.len());
    &data[start..start.saturating_add(size).min(data.len())]
}

/// The gradient with respect to the input, given the gradient `grad` of the output.
pub(crate) fn input_grad(shape: &ConvShape, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    input_grad_with(shape, weight, grad, shape.products())
}

pub(super) fn input_grad_with(
    shape: &ConvShape,
    weight: &[f32],
    grad: &[f32],
    products: Products,
) -> Vec<f32> {
    check_lengths(shape, shape.input_len(), weight.len(), Some(grad.len()));
    let (k, p) = (shape.patch(), shape.output_pixels());
    let (q, cout) = (shape.batch * p, shape.out_channels);
    let weight_t = MatRef::dense(weight, cout, k).t();
    let len = shape.input_len();
    if grad.is_empty() {
        return vec![0.0; len];
    }
    match products {
        Products::Winograd(groups) => Winograd::new(shape).input_grad(weight, grad, groups),
        Products::Taps(groups) => {
            let taps = Taps::new(shape);
            let scratch = || {
                let spread = pool::scratch(taps.spread_len());
                (spread, pool::scratch(taps.padded_len()))
            };
            let groups = ImageGroups::new(shape, groups, cout * p).backward();
            groups.run(grad, scratch, |(spread, dpadded), dx, grad| {
                taps.spread(grad, spread);
                taps.input_grad(spread, weight, dpadded, dx);
            })
        }
        Products::ImageGroups(groups) => {
            let one = shape.one_image();
            let groups = ImageGroups::new(shape, groups, cout * p).backward();
            groups.run(
                grad,
                || one.image_scratch(),
                |dcols, dx, grad| {
                    let grad = MatRef::dense(grad, cout, p);
                    if one.is_pointwise() {
                        matmul(dx, weight_t, grad, false);
                    } else {
                        matmul(dcols, weight_t, grad, false);
                        col2im_image(&one, dcols, dx);
                    }
                },
            )
        }
        Products::PerImage if shape.is_pointwise() => whole(len, |dx| {
            for (dx, grad) in dx.chunks_mut(k * p).zip(grad.chunks(cout * p)) {
                matmul(dx, weight_t, MatRef::dense(grad, cout, p), true);
            }
        }),
        Products::PerImage => whole(len, |dx| {
            let mut dcols = pool::scratch(k * q);
            for (n, grad) in grad.chunks(cout * p).enumerate() {
                let grad = MatRef::dense(grad, cout, p);
                matmul_rows(&mut dcols[n * p..], q, weight_t, grad, true);
            }
            col2im(shape, &dcols, dx, true);
        }),
        Products::Batched => whole(len, |dx| {
            let grad = channels_first(grad, shape.batch, cout);
            let mut dcols = pool::scratch(k * q);
            matmul(&mut dcols, weight_t, MatRef::dense(&grad, cout, q), true);
            drop(grad);
            if shape.is_pointwise() {
                swap_outer(&dcols, shape.in_channels, shape.batch, dx);
            } else {
                col2im(shape, &dcols, dx, true);
            }
        }),
    }
}

/// The gradient with respect to the weight, given the input `x` and the output gradient `grad`.
pub(crate) fn weight_grad(shape: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    weight_grad_with(shape, x, grad, shape.weight_products())
}

pub(super) fn weight_grad_with(
    shape: &ConvShape,
    x: &[f32],
    grad: &[f32],
    products: Products,
) -> Vec<f32> {
    check_lengths(shape, x.len(), shape.weight_len(), Some(grad.len()));
    match products {
        Products::ImageGroups(groups) => return weight_grad_by_groups(shape, x, grad, groups),
        Products::Taps(groups) => return weight_grad_by_taps(shape, x, grad, groups),
        Products::Winograd(groups) => return Winograd::new(shape).weight_grad(x, grad, groups),
        Products::PerImage | Products::Batched => {}
    }
    let (k, q) = (shape.patch(), shape.batch * shape.output_pixels());
    let cols = im2col(shape, x);
    let cout = shape.out_channels;
    // gemm is fast only with a row-major right-hand side, so one side gets transposed: the
    // im2col matrix when there are fewer pixels than output channels (deep layers), else the
    // product (early layers, where the weight is small and the pixels many).
    let mut dw = vec![0.0; cout * k];
    if q < cout {
        let mut cols_t = pool::scratch(k * q);
        transpose(&cols, k, q, &mut cols_t, true);
        let grad_cf = channels_first(grad, shape.batch, cout);
        matmul(
            &mut dw,
            MatRef::dense(&grad_cf, cout, q),
            MatRef::dense(&cols_t, q, k),
            true,
        );
    } else {
        let grad_cl = channels_last(grad, shape.batch, cout);
        let mut dwt = pool::scratch(k * cout);
        matmul(
            &mut dwt,
            MatRef::dense(&cols, k, q),
            MatRef::dense(&grad_cl, q, cout),
            true,
        );
        transpose(&dwt, k, cout, &mut dw, true);
    }
    dw
}

/// The weight gradient as one partial `dWᵀ = Σ cols · gᵀ` (`[K, Cout]`) per group of images,
/// each image's im2col made on its group's thread (see [`sum_over_groups`]). `gᵀ` is the image's
/// gradient planes read as a column-major `[P, Cout]` view: single-threaded, gemm ran that
/// product at 46–158 GFLOP/s on YOLOv8n's shapes against 22–123 with the gradient transposed
/// first.
fn weight_grad_by_groups(shape: &ConvShape, x: &[f32], grad: &[f32], groups: usize) -> Vec<f32> {
    let one = shape.one_image();
    let (k, p, cout) = (shape.patch(), shape.output_pixels(), shape.out_channels);
    let sum = sum_over_groups(shape, x, grad, groups, k * cout, |images, grads, dwt| {
        let mut cols = one.image_scratch();
        for (i, (image, grad)) in images
            .chunks(one.input_len())
            .zip(grads.chunks(cout * p))
            .enumerate()
        {
            let grad_t = MatRef::dense(grad, cout, p).t();
            let cols = one.image_cols(image, &mut cols);
            if i == 0 {
                matmul(dwt, cols, grad_t, false);
            } else {
                matmul_add(dwt, cols, grad_t, false);
            }
        }
    });
    let mut dw = vec![0.0; cout * k];
    transpose(&sum, k, cout, &mut dw, true);
    dw
}

/// The weight gradient of a convolution run by taps: one partial `[kh·kw, Cin, Cout]` per group
/// of images (see [`Taps::weight_grad`]), summed, then reordered to `[Cout, Cin, kh, kw]`.
fn weight_grad_by_taps(shape: &ConvShape, x: &[f32], grad: &[f32], groups: usize) -> Vec<f32> {
    let taps = Taps::new(shape);
    let (cin, cout, p) = (shape.in_channels, shape.out_channels, shape.output_pixels());
    let image_len = shape.one_image().input_len();
    let sum = sum_over_groups(
        shape,
        x,
        grad,
        groups,
        shape.weight_len(),
        |images, grads, dwt| {
            let mut padded = pool::scratch(taps.padded_len());
            let mut spread = pool::scratch(taps.spread_len());
            for (i, (image, grad)) in images
                .chunks(image_len)
                .zip(grads.chunks(cout * p))
                .enumerate()
            {
                taps.pad(image, &mut padded);
                taps.spread(grad, &mut spread);
                taps.weight_grad(&padded, &spread, dwt, i == 0);
            }
        },
    );
    let kernel_taps = shape.kernel[0] * shape.kernel[1];
    let mut dw = vec![0.0; shape.weight_len()];
    for (tap, block) in sum.chunks(cin * cout).enumerate() {
        for (ci, row) in block.chunks(cout).enumerate() {
            for (co, v) in row.iter().enumerate() {
                dw[(co * cin + ci) * kernel_taps + tap] = *v;
            }
        }
    }
    dw
}

/// `partial(images, output gradients, dst)` for each group of `groups` contiguous groups of
/// images over the threads, each writing a `len`-value partial, summed in group order (the result
/// does not depend on which thread ran which group).
pub(super) fn sum_over_groups<F>(
    shape: &ConvShape,
    x: &[f32],
    grad: &[f32],
    groups: usize,
    len: usize,
    partial: F,
) -> Scratch
where
    F: Fn(&[f32], &[f32], &mut [f32]) + Sync,
{
    let per_group = shape.batch.div_ceil(groups);
    let (image_len, grad_len) = (
        shape.one_image().input_len(),
        shape.out_channels * shape.output_pixels(),
    );
    let mut partials: Vec<Scratch> = x
        .par_chunks(per_group * image_len)
        .zip(grad.par_chunks(per_group * grad_len))
        .map(|(images, grads)| {
            let mut dst = pool::scratch(len);
            partial(images, grads, &mut dst);
            dst
        })
        .collect();
    let mut sum = if partials.is_empty() {
        let mut zeros = pool::scratch(len);
        zeros.fill(0.0);
        zeros
    } else {
        partials.remove(0)
    };
    for partial in partials {
        sum.iter_mut()
            .zip(partial.iter())
            .for_each(|(a, b)| *a += b);
    }
    sum
}

/// The batch shared out in contiguous groups of images, one per thread, and how many values each
/// image has in the slice written (`out`) and the slice read (`input`).
#[derive(Debug, Clone, Copy)]
struct ImageGroups {
    images: usize,
    per_group: usize,
    out: usize,
    input: usize,
}

impl ImageGroups {
    /// `groups` groups of `shape`'s images, written per image `out` values (the output) from its
    /// input image.
    fn new(shape: &ConvShape, groups: usize, out: usize) -> Self {
        Self {
            images: shape.batch,
            per_group: shape.batch.div_ceil(groups),
            out,
            input: shape.one_image().input_len(),
        }
    }

    /// The other direction: the input (gradient) written from the output (gradient).
    fn backward(self) -> Self {
        Self {
            out: self.input,
            input: self.out,
            ..self
        }
    }

    /// The images written: `each(scratch, written, read)` for every image, `written` zeroed
    /// just before, the groups over the threads, each group with the scratch `scratch()`
    /// makes, its images in order.
    fn run<S, M, F>(&self, read: &[f32], scratch: M, each: F) -> Vec<f32>
    where
        M: Fn() -> S + Sync,
        F: Fn(&mut S, &mut [f32], &[f32]) + Sync,
    {
        let per_group = self.per_group * self.out;
        pool::fresh(self.images * self.out, per_group, |g, written| {
            let read = group(read, g, self.per_group * self.input);
            let mut state = scratch();
            for (written, read) in written.chunks(self.out).zip(read.chunks(self.input.max(1))) {
                each(&mut state, written.zeroed(), read);
            }
        })
    }
}

fn check_lengths(shape: &ConvShape, x: usize, weight: usize, grad: Option<usize>) {
    assert_eq!(x, shape.input_len(), "conv: input length");
    assert_eq!(weight, shape.weight_len(), "conv: weight length");
    if let Some(grad) = grad {
        assert_eq!(grad, shape.output_len(), "conv: output-gradient length");
    }
}

/// `[N, C, P]` → `[C, N, P]` in a pooled buffer.
fn channels_first(data: &[f32], batch: usize, channels: usize) -> Scratch {
    let mut out = pool::scratch(data.len());
    swap_outer(data, batch, channels, &mut out);
    out
}

/// `[N, C, P]` → `[N, P, C]` in a pooled buffer.
pub(crate) fn channels_last(data: &[f32], batch: usize, channels: usize) -> Scratch {
    let mut out = pool::scratch(data.len());
    if !data.is_empty() {
        let pixels = data.len() / (batch * channels);
        for (dst, src) in out
            .chunks_mut(channels * pixels)
            .zip(data.chunks(channels * pixels))
        {
            transpose(src, channels, pixels, dst, true);
        }
    }
    out
}

/// Runs `f` on each `len`-element chunk of `data` with its index: over rayon's threads with
/// `parallel`, else on this thread.
fn for_each_chunk<F>(data: &mut [f32], len: usize, parallel: bool, f: F)
where
    F: Fn((usize, &mut [f32])) + Send + Sync,
{
    if parallel {
        data.par_chunks_mut(len).enumerate().for_each(f);
    } else {
        data.chunks_mut(len).enumerate().for_each(f);
    }
}

/// `dst[c][r] = src[r][c]` for a row-major `rows × cols` matrix `src`, in 32×32 blocks so that
/// both sides stay in cache; with `parallel`, over rayon's threads by blocks of destination rows.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], parallel: bool) {
    const BLOCK: usize = 32;
    assert_eq!(src.len(), rows * cols, "transpose: source length");
    assert_eq!(dst.len(), rows * cols, "transpose: destination length");
    if src.is_empty() {
        return;
    }
    for_each_chunk(dst, BLOCK * rows, parallel, |(block, dst_rows)| {
        let c0 = block * BLOCK;
        let width = dst_rows.len() / rows;
        for r0 in (0..rows).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                let run = &src[r * cols + c0..][..width];
                for (i, v) in run.iter().enumerate() {
                    dst_rows[i * rows + r] = *v;
                }
            }
        }
    });
}

/// `[A, B, P]` → `[B, A, P]` into `out`, copying runs of `P` in parallel over `B`.
fn swap_outer(data: &[f32], a: usize, b: usize, out: &mut [f32]) {
    assert_eq!(data.len(), out.len(), "swap_outer: lengths");
    if data.is_empty() {
        return;
    }
    let pixels = data.len() / (a * b);
    out.par_chunks_mut(a * pixels)
        .enumerate()
        .for_each(|(j, block)| {
            for (i, run) in block.chunks_mut(pixels).enumerate() {
                let start = (i * b + j) * pixels;
                run.copy_from_slice(&data[start..start + pixels]);
            }
        });
}

/// The batch's im2col matrix `[Cin·kh·kw, N·oh·ow]` in a pooled buffer, rows filled in parallel.
fn im2col(shape: &ConvShape, x: &[f32]) -> Scratch {
    if shape.is_pointwise() {
        return channels_first(x, shape.batch, shape.in_channels);
    }
    let mut cols = pool::scratch(shape.patch() * shape.batch * shape.output_pixels());
    im2col_into(shape, x, &mut cols, true);
    cols
}

/// Writes the im2col matrix `[Cin·kh·kw, N·oh·ow]` of `x` into `cols` (not pointwise), with
/// `parallel` over rayon's threads by rows.
fn im2col_into(shape: &ConvShape, x: &[f32], cols: &mut [f32], parallel: bool) {
    let [oh, ow] = shape.output();
    let [kh, kw] = shape.kernel;
    let (q, pixels, width) = (shape.batch * oh * ow, shape.input_pixels(), shape.input[1]);
    assert_eq!(cols.len(), shape.patch() * q, "im2col: matrix size");
    if q == 0 {
        return;
    }
    for_each_chunk(cols, q, parallel, |(row, out)| {
        let (ci, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
        let (rows, first_y) = shape.reads(0, ky);
        let (columns, first_x) = shape.reads(1, kx);
        // When the tap's valid block is one run, it is one copy; the padding columns it fills
        // from the neighbouring rows are zeroed below like every other padding.
        let run = if shape.taps_are_runs() {
            shape.tap_run(ky, kx)
        } else {
            None
        };
        for (n, image_out) in out.chunks_mut(oh * ow).enumerate() {
            let plane = &x[(n * shape.in_channels + ci) * pixels..][..pixels];
            if let Some((start, source, len)) = run {
                image_out[start..start + len].copy_from_slice(&plane[source..][..len]);
            }
            for (oy, line) in image_out.chunks_mut(ow).enumerate() {
                if !rows.contains(&oy) || columns.is_empty() {
                    line.fill(0.0); // reads only padding
                    continue;
                }
                line[..columns.start].fill(0.0);
                line[columns.end..].fill(0.0);
                if run.is_some() {
                    continue;
                }
                let y = first_y + (oy - rows.start) * shape.stride[0];
                let src = &plane[y * width + first_x..(y + 1) * width];
                let line = &mut line[columns.clone()];
                if shape.stride[1] == 1 {
                    line.copy_from_slice(&src[..line.len()]);
                } else {
                    gather_strided(line, src, shape.stride[1]);
                }
            }
        }
    });
}

/// `line[i] = src[i · stride]`. Stride 2 (every downsampling convolution here) reads `src` as
/// `[f32; 2]` pairs, a loop the compiler vectorises; a run-time stride stays a scalar loop.
fn gather_strided(line: &mut [f32], src: &[f32], stride: usize) {
    let whole = if stride == 2 {
        let (pairs, _) = src.as_chunks::<2>();
        let whole = line.len().min(pairs.len());
        for (value, pair) in line[..whole].iter_mut().zip(pairs) {
            *value = pair[0];
        }
        whole
    } else {
        0
    };
    for (i, value) in line[whole..].iter_mut().enumerate() {
        *value = src[(whole + i) * stride];
    }
}

/// Adds each column of `dcols` (`[Cin·kh·kw, N·oh·ow]`) onto the input pixel it was read from,
/// into the input gradient `dx` (`[N, Cin, H, W]`, zero on entry). With `parallel` over the
/// `N·Cin` input planes, each gathering its channel's rows of `dcols` for its image.
fn col2im(shape: &ConvShape, dcols: &[f32], dx: &mut [f32], parallel: bool) {
    let [oh, ow] = shape.output();
    let [kh, kw] = shape.kernel;
    let (q, pixels, taps, width) = (
        shape.batch * oh * ow,
        shape.input_pixels(),
        kh * kw,
        shape.input[1],
    );
    if q == 0 || pixels == 0 {
        return;
    }
    for_each_chunk(dx, pixels, parallel, |(index, plane)| {
        let (n, ci) = (index / shape.in_channels, index % shape.in_channels);
        for tap in 0..taps {
            let (rows, first_y) = shape.reads(0, tap / kw);
            let (columns, first_x) = shape.reads(1, tap % kw);
            if columns.is_empty() {
                continue;
            }
            let image = &dcols[(ci * taps + tap) * q + n * oh * ow..][..oh * ow];
            for oy in rows.clone() {
                let y = first_y + (oy - rows.start) * shape.stride[0];
                let line = &image[oy * ow..][columns.clone()];
                let dst = &mut plane[y * width + first_x..(y + 1) * width];
                if shape.stride[1] == 1 {
                    for (d, v) in dst.iter_mut().zip(line) {
                        *d += v;
                    }
                } else {
                    for (d, v) in dst.iter_mut().step_by(shape.stride[1]).zip(line) {
                        *d += v;
                    }
                }
            }
        }
    });
}

/// [`col2im`] of one image on this thread, free to overwrite `dcols` (`[Cin·kh·kw, oh·ow]`).
/// With stride 1 and output rows as wide as the input's, each tap's valid block is added in one
/// run, after the padding columns of `dcols` (which that run adds onto the neighbouring rows'
/// pixels) are set to zero; otherwise as [`col2im`].
fn col2im_image(shape: &ConvShape, dcols: &mut [f32], dx: &mut [f32]) {
    let [oh, ow] = shape.output();
    let [kh, kw] = shape.kernel;
    let (pixels, taps) = (shape.input_pixels(), kh * kw);
    if !shape.taps_are_runs() || oh * ow == 0 || pixels == 0 {
        col2im(shape, dcols, dx, false);
        return;
    }
    for (row, tap_cols) in dcols.chunks_mut(oh * ow).enumerate() {
        let (ci, ky, kx) = (row / taps, row % taps / kw, row % kw);
        let Some((start, source, len)) = shape.tap_run(ky, kx) else {
            continue;
        };
        let (rows, _) = shape.reads(0, ky);
        let (columns, _) = shape.reads(1, kx);
        for line in tap_cols.chunks_mut(ow).skip(rows.start).take(rows.len()) {
            line[..columns.start].fill(0.0);
            line[columns.end..].fill(0.0);
        }
        let plane = &mut dx[ci * pixels..][..pixels];
        for (d, v) in plane[source..][..len]
            .iter_mut()
            .zip(&tap_cols[start..start + len])
        {
            *d += v;
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// YOLOv8n's 3×3 stride-1 layers at batch 8 take the paths each instruction set's tuning
    /// names: narrow layers by taps only with AVX-512, wide weight gradients by image groups;
    /// wide layers by Winograd with both, from 10 columns.
    #[test]
    fn paths_follow_the_tuning() {
        let layer = |channels: usize, size: usize| ConvShape {
            batch: 8,
            in_channels: channels,
            out_channels: channels,
            input: [size, size],
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            padding_end: [1, 1],
            dilation: [1, 1],
        };
        let (narrow, wide, small) = (layer(16, 80), layer(80, 40), layer(128, 10));
        let Some(groups) = narrow.image_groups() else {
            return; // a thread count the batch does not share out among
        };
        let paths = |shape: &ConvShape, tuning| {
            (
                shape.products_tuned(tuning),
                shape.weight_products_tuned(tuning),
            )
        };
        let (taps, images) = (Products::Taps(groups), Products::ImageGroups(groups));
        let winograd = Products::Winograd(groups);
        assert_eq!(paths(&narrow, Tuning::AVX512), (taps, taps));
        assert_eq!(paths(&narrow, Tuning::AVX2), (images, images));
        assert_eq!(paths(&wide, Tuning::AVX512), (winograd, winograd));
        assert_eq!(paths(&wide, Tuning::AVX2), (winograd, winograd));
        assert_eq!(paths(&small, Tuning::AVX512), (winograd, winograd));
        let tiny = layer(128, winograd::MIN_WIDTH - 1);
        assert_eq!(paths(&tiny, Tuning::AVX512), (taps, taps));
        assert_eq!(paths(&small, Tuning::AVX2), (winograd, winograd));
        assert_eq!(paths(&tiny, Tuning::AVX2), (taps, taps));
        let wide_taps = ConvShape {
            padding: [2, 2],
            padding_end: [2, 2],
            dilation: [2, 2],
            ..wide
        };
        assert_eq!(paths(&wide_taps, Tuning::AVX512), (taps, images));
    }

    /// "Same" stride-1 convolutions (where one image's col2im adds each tap in one run) give the
    /// batched input gradient, with several groups.
    #[test]
    fn same_size_input_gradients_agree_across_products() {
        for (kernel, padding, dilation) in [
            ([3, 3], [1, 1], [1, 1]),
            ([3, 3], [2, 2], [2, 2]),
            ([1, 3], [0, 1], [1, 1]),
            ([5, 5], [2, 2], [1, 1]),
        ] {
            let shape = ConvShape {
                batch: 3,
                in_channels: 4,
                out_channels: 5,
                input: [7, 9],
                kernel,
                stride: [1, 1],
                padding,
                padding_end: padding,
                dilation,
            };
            assert_eq!(shape.output(), shape.input);
            let w = values(shape.weight_len(), 1);
            let g = values(shape.output_len(), 2);
            let expected = input_grad_with(&shape, &w, &g, Products::Batched);
            for groups in [1, 2, 3] {
                let ours = input_grad_with(&shape, &w, &g, Products::ImageGroups(groups));
                for (a, b) in ours.iter().zip(&expected) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
                }
            }
        }
    }

    /// The convolution by its definition, in f64.
    fn naive_forward(shape: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f64> {
        let [oh, ow] = shape.output();
        let [kh, kw] = shape.kernel;
        let mut out = vec![0.0f64; shape.output_len()];
        for n in 0..shape.batch {
            for co in 0..shape.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut sum = 0.0f64;
                        for ci in 0..shape.in_channels {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let (Some(y), Some(xx)) =
                                        (shape.source(0, oy, ky), shape.source(1, ox, kx))
                                    else {
                                        continue;
                                    };
                                    let xi = ((n * shape.in_channels + ci) * shape.input[0] + y)
                                        * shape.input[1]
                                        + xx;
                                    let wi = ((co * shape.in_channels + ci) * kh + ky) * kw + kx;
                                    sum += f64::from(x[xi]) * f64::from(w[wi]);
                                }
                            }
                        }
                        out[((n * shape.out_channels + co) * oh + oy) * ow + ox] = sum;
                    }
                }
            }
        }
        out
    }

    pub(in crate::kernels) fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len as u64)
            .map(|i| (((i * 2_654_435_761 + seed * 97) % 2001) as f32 - 1000.0) / 1000.0)
            .collect()
    }

    pub(in crate::kernels) fn close(actual: &[f32], expected: &[f64]) -> Result<(), TestCaseError> {
        prop_assert_eq!(actual.len(), expected.len());
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            prop_assert!(
                (f64::from(*a) - e).abs() <= 1e-5 + 1e-5 * scale,
                "element {}: {} vs {}",
                i,
                a,
                e
            );
        }
        Ok(())
    }

    /// Every way of covering the batch, with one group, two and more groups than images.
    /// Every way of running `shape`'s products (by taps only at stride 1).
    fn all_products(shape: &ConvShape) -> Vec<Products> {
        let mut all = vec![
            Products::Batched,
            Products::PerImage,
            Products::ImageGroups(1),
            Products::ImageGroups(2),
            Products::ImageGroups(5),
        ];
        if shape.stride == [1, 1] {
            all.extend([Products::Taps(1), Products::Taps(2), Products::Taps(5)]);
        }
        all
    }

    fn shapes() -> impl Strategy<Value = ConvShape> {
        (
            (1usize..4, 1usize..6, 1usize..6),
            (1usize..9, 1usize..9),
            (1usize..4, 1usize..4),
            (1usize..3, 1usize..3),
            (0usize..3, 0usize..3, 0usize..2),
            (1usize..3, 1usize..3),
        )
            .prop_filter_map(
                "output not empty",
                |((batch, cin, cout), (h, w), (kh, kw), (sy, sx), (py, px, extra), (dy, dx))| {
                    let shape = ConvShape {
                        batch,
                        in_channels: cin,
                        out_channels: cout,
                        input: [h, w],
                        kernel: [kh, kw],
                        stride: [sy, sx],
                        padding: [py, px],
                        padding_end: [py + extra, px],
                        dilation: [dy, dx],
                    };
                    (shape.output_pixels() > 0).then_some(shape)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn forward_is_the_definition(shape in shapes(), seed in 0u64..100) {
            let x = values(shape.input_len(), seed);
            let w = values(shape.weight_len(), seed + 1);
            let expected = naive_forward(&shape, &x, &w);
            for products in all_products(&shape) {
                close(&forward_with(&shape, &x, &w, products), &expected)?;
            }
        }

        /// Both gradients against the adjoint identity: the convolution is linear in `x` and in
        /// `W`, so `⟨g, conv(e_i)⟩` is the gradient's `i`-th element; checked on every element.
        #[test]
        fn gradients_are_the_adjoints_of_the_forward(shape in shapes(), seed in 0u64..100) {
            let x = values(shape.input_len(), seed);
            let w = values(shape.weight_len(), seed + 1);
            let g = values(shape.output_len(), seed + 2);
            let dot = |out: Vec<f64>| out.iter().zip(&g).map(|(o, g)| o * f64::from(*g)).sum::<f64>();
            let unit = |len: usize, i: usize| {
                let mut e = vec![0.0f32; len];
                e[i] = 1.0;
                e
            };
            let dx_expected: Vec<f64> = (0..x.len())
                .map(|i| dot(naive_forward(&shape, &unit(x.len(), i), &w)))
                .collect();
            let dw_expected: Vec<f64> = (0..w.len())
                .map(|i| dot(naive_forward(&shape, &x, &unit(w.len(), i))))
                .collect();
            for products in all_products(&shape) {
                close(&input_grad_with(&shape, &w, &g, products), &dx_expected)?;
                close(&weight_grad_with(&shape, &x, &g, products), &dw_expected)?;
            }
        }
    }
}
