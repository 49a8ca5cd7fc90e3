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

use rayon::prelude::*;

use crate::gemm::{MatRef, matmul};

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

    /// A 1×1, stride-1, unpadded convolution: im2col is the input itself, channels first.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.padding_end == [0, 0]
    }

    /// The input pixel `(y, x)` read by output pixel `(oy, ox)` at kernel tap `(ky, kx)`, if it
    /// is not padding.
    fn source(&self, axis: usize, out: usize, tap: usize) -> Option<usize> {
        (out * self.stride[axis] + tap * self.dilation[axis])
            .checked_sub(self.padding[axis])
            .filter(|&i| i < self.input[axis])
    }
}

/// The convolution of `x` (`[N, Cin, H, W]`) with `weight` (`[Cout, Cin, kh, kw]`), NCHW.
pub(crate) fn forward(shape: &ConvShape, x: &[f32], weight: &[f32]) -> Vec<f32> {
    check_lengths(shape, x.len(), weight.len(), None);
    let (k, q) = (shape.patch(), shape.batch * shape.output_pixels());
    let cols = im2col(shape, x);
    let mut product = vec![0.0; shape.out_channels * q];
    matmul(
        &mut product,
        MatRef::dense(weight, shape.out_channels, k),
        MatRef::dense(&cols, k, q),
        true,
    );
    batch_last_to_first(
        &product,
        shape.out_channels,
        shape.batch,
        shape.output_pixels(),
    )
}

/// The gradient with respect to the input, given the gradient `grad` of the output.
pub(crate) fn input_grad(shape: &ConvShape, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    check_lengths(shape, shape.input_len(), weight.len(), Some(grad.len()));
    let (k, q) = (shape.patch(), shape.batch * shape.output_pixels());
    let grad = batch_first_to_last(grad, shape.batch, shape.out_channels, shape.output_pixels());
    let mut dcols = vec![0.0; k * q];
    matmul(
        &mut dcols,
        MatRef::dense(weight, shape.out_channels, k).t(),
        MatRef::dense(&grad, shape.out_channels, q),
        true,
    );
    if shape.is_pointwise() {
        return batch_last_to_first(&dcols, shape.in_channels, shape.batch, shape.input_pixels());
    }
    col2im(shape, &dcols)
}

/// The gradient with respect to the weight, given the input `x` and the output gradient `grad`.
pub(crate) fn weight_grad(shape: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    check_lengths(shape, x.len(), shape.weight_len(), Some(grad.len()));
    let (k, q) = (shape.patch(), shape.batch * shape.output_pixels());
    let cols = im2col(shape, x);
    let grad = batch_first_to_last(grad, shape.batch, shape.out_channels, shape.output_pixels());
    let mut dw = vec![0.0; shape.out_channels * k];
    matmul(
        &mut dw,
        MatRef::dense(&grad, shape.out_channels, q),
        MatRef::dense(&cols, k, q).t(),
        true,
    );
    dw
}

fn check_lengths(shape: &ConvShape, x: usize, weight: usize, grad: Option<usize>) {
    assert_eq!(x, shape.input_len(), "conv: input length");
    assert_eq!(weight, shape.weight_len(), "conv: weight length");
    if let Some(grad) = grad {
        assert_eq!(grad, shape.output_len(), "conv: output-gradient length");
    }
}

/// `[A, B, P]` → `[B, A, P]`: moves the batch index from first to second place.
fn batch_first_to_last(data: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
    swap_outer(data, batch, channels, pixels)
}

/// `[C, N, P]` → `[N, C, P]`.
fn batch_last_to_first(data: &[f32], channels: usize, batch: usize, pixels: usize) -> Vec<f32> {
    swap_outer(data, channels, batch, pixels)
}

/// `[A, B, P]` → `[B, A, P]`, copying runs of `P` in parallel over `B`.
fn swap_outer(data: &[f32], a: usize, b: usize, pixels: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    if pixels == 0 {
        return out;
    }
    out.par_chunks_mut(a * pixels)
        .enumerate()
        .for_each(|(j, block)| {
            for (i, run) in block.chunks_mut(pixels).enumerate() {
                let start = (i * b + j) * pixels;
                run.copy_from_slice(&data[start..start + pixels]);
            }
        });
    out
}

/// The batch's im2col matrix `[Cin·kh·kw, N·oh·ow]`, rows filled in parallel.
fn im2col(shape: &ConvShape, x: &[f32]) -> Vec<f32> {
    let [oh, ow] = shape.output();
    let (q, pixels) = (shape.batch * oh * ow, shape.input_pixels());
    if shape.is_pointwise() {
        return batch_first_to_last(x, shape.batch, shape.in_channels, pixels);
    }
    let [kh, kw] = shape.kernel;
    let mut cols = vec![0.0; shape.patch() * q];
    if q == 0 {
        return cols;
    }
    cols.par_chunks_mut(q).enumerate().for_each(|(row, out)| {
        let (ci, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
        for (n, image_out) in out.chunks_mut(oh * ow).enumerate() {
            let plane = &x[(n * shape.in_channels + ci) * pixels..][..pixels];
            for (oy, line) in image_out.chunks_mut(ow).enumerate() {
                let Some(y) = shape.source(0, oy, ky) else {
                    continue; // stays zero: padding row
                };
                let src = &plane[y * shape.input[1]..][..shape.input[1]];
                for (ox, value) in line.iter_mut().enumerate() {
                    if let Some(x) = shape.source(1, ox, kx) {
                        *value = src[x];
                    }
                }
            }
        }
    });
    cols
}

/// Adds each column of `dcols` (`[Cin·kh·kw, N·oh·ow]`) back onto the input pixel it was read
/// from: the input gradient `[N, Cin, H, W]`. Parallel over input channels, which own disjoint
/// rows of `dcols` and disjoint planes of the result.
fn col2im(shape: &ConvShape, dcols: &[f32]) -> Vec<f32> {
    let [oh, ow] = shape.output();
    let [kh, kw] = shape.kernel;
    let (q, pixels, taps) = (shape.batch * oh * ow, shape.input_pixels(), kh * kw);
    // channel-major scratch `[Cin, N, H, W]`, so each channel's planes are one chunk
    let mut dx = vec![0.0; shape.input_len()];
    if q == 0 || pixels == 0 {
        return dx;
    }
    dx.par_chunks_mut(shape.batch * pixels)
        .enumerate()
        .for_each(|(ci, planes)| {
            for tap in 0..taps {
                let (ky, kx) = (tap / kw, tap % kw);
                let row = &dcols[(ci * taps + tap) * q..][..q];
                for (n, plane) in planes.chunks_mut(pixels).enumerate() {
                    let image = &row[n * oh * ow..][..oh * ow];
                    for (oy, line) in image.chunks(ow).enumerate() {
                        let Some(y) = shape.source(0, oy, ky) else {
                            continue;
                        };
                        let dst = &mut plane[y * shape.input[1]..][..shape.input[1]];
                        for (ox, value) in line.iter().enumerate() {
                            if let Some(x) = shape.source(1, ox, kx) {
                                dst[x] += value;
                            }
                        }
                    }
                }
            }
        });
    batch_last_to_first(&dx, shape.in_channels, shape.batch, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len as u64)
            .map(|i| (((i * 2_654_435_761 + seed * 97) % 2001) as f32 - 1000.0) / 1000.0)
            .collect()
    }

    fn close(actual: &[f32], expected: &[f64]) -> Result<(), TestCaseError> {
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
            close(&forward(&shape, &x, &w), &naive_forward(&shape, &x, &w))?;
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
            close(&input_grad(&shape, &w, &g), &dx_expected)?;
            close(&weight_grad(&shape, &x, &g), &dw_expected)?;
        }
    }
}
