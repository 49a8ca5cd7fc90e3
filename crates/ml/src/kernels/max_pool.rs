//! Max pooling of NCHW tensors in training: the forward, and the input gradient from the same
//! input.
//!
//! burn-flex pools through its general 3-D path, keeping an index tensor per output, on one
//! thread (YOLOv8n's SPPF, three chained 5×5 pools per step and their backward, showed up as 2 %
//! of a training step with the second core idle). Here the planes are shared out among the
//! threads, and the backward finds each window's winner again from the input instead of keeping
//! indices: a window of 9–25 values is cheaper to scan than an index tensor is to write and read.

use rayon::prelude::*;

use crate::nhwc::Window;
use crate::pool;

/// The geometry of a pooled NCHW input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolShape {
    /// Images × channels: the planes pooled one by one.
    pub planes: usize,
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Kernel, stride and padding (padded cells never win).
    pub window: Window,
}

impl PoolShape {
    /// Output `[height, width]`.
    pub fn output(&self) -> [usize; 2] {
        let [h, w] = self.input;
        let (oh, ow) = self.window.output(h, w);
        [oh, ow]
    }

    fn input_pixels(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn output_pixels(&self) -> usize {
        let [oh, ow] = self.output();
        oh * ow
    }

    /// Calls `visit(output index, input index)` for each output pixel of `plane` with the input
    /// pixel holding its window's maximum: the first in row-major order among equal values, a
    /// NaN winning over numbers (PyTorch's rule); windows lying wholly in the padding are skipped.
    ///
    /// Separable: first each input row's maximum over every window's columns (value and place),
    /// in `rows`, then each window's maximum over its rows of those. The first row holding the
    /// window's maximum, and in it the first column, is the first place in row-major order; a
    /// 5×5 window costs 10 comparisons instead of 25.
    #[inline(always)]
    fn each_winner(
        &self,
        plane: &[f32],
        rows: &mut Vec<Winner>,
        mut visit: impl FnMut(usize, usize),
    ) {
        let [h, w] = self.input;
        let [oh, ow] = self.output();
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let [top, left, _, _] = self.window.padding;
        // the taps of output index `o` along an axis that fall inside the input
        let inside = |o: usize, stride: usize, pad: usize, kernel: usize, size: usize| {
            let first = (o * stride).max(pad) - pad;
            first
                ..(o * stride + kernel)
                    .min(size + pad)
                    .saturating_sub(pad)
                    .max(first)
        };
        rows.clear();
        for line in plane.chunks_exact(w) {
            let start = rows.len() / ow.max(1) * w;
            rows.extend((0..ow).map(|ox| {
                let columns = inside(ox, sw, left, kw, w);
                Winner::first_of(columns.clone().map(|x| (line[x], start + x)))
            }));
        }
        for oy in 0..oh {
            let window_rows = inside(oy, sh, top, kh, h);
            for ox in 0..ow {
                let best = Winner::first_of(
                    window_rows
                        .clone()
                        .map(|y| rows[y * ow + ox])
                        .filter(|r| r.place != Winner::NONE)
                        .map(|r| (r.value, r.place)),
                );
                if best.place != Winner::NONE {
                    visit(oy * ow + ox, best.place);
                }
            }
        }
    }
}

/// A window's maximum and where it is in the plane ([`Winner::NONE`] for an empty window).
#[derive(Debug, Clone, Copy)]
struct Winner {
    value: f32,
    place: usize,
}

impl Winner {
    const NONE: usize = usize::MAX;

    /// The first of the largest `(value, place)` pairs, a NaN replacing whatever came before.
    #[inline(always)]
    fn first_of(candidates: impl Iterator<Item = (f32, usize)>) -> Self {
        let mut best = Self {
            value: f32::NEG_INFINITY,
            place: Self::NONE,
        };
        for (value, place) in candidates {
            if best.place == Self::NONE || value > best.value || value.is_nan() {
                best = Self { value, place };
            }
        }
        best
    }
}

/// The max-pooled `x`, `[planes, oh, ow]`; a window wholly in the padding gives −∞.
pub(crate) fn forward(shape: &PoolShape, x: &[f32]) -> Vec<f32> {
    assert_eq!(
        x.len(),
        shape.planes * shape.input_pixels(),
        "max pool: input length"
    );
    let mut out = vec![f32::NEG_INFINITY; shape.planes * shape.output_pixels()];
    if out.is_empty() || x.is_empty() {
        return out;
    }
    out.par_chunks_mut(shape.output_pixels())
        .zip(x.par_chunks(shape.input_pixels()))
        .for_each_init(Vec::new, |rows, (out, plane)| {
            shape.each_winner(plane, rows, |o, i| out[o] = plane[i]);
        });
    out
}

/// The gradient with respect to `x` given the output gradient `grad`: each output's gradient
/// added onto its window's winner.
pub(crate) fn backward(shape: &PoolShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(
        x.len(),
        shape.planes * shape.input_pixels(),
        "max pool: input length"
    );
    assert_eq!(
        grad.len(),
        shape.planes * shape.output_pixels(),
        "max pool: gradient length"
    );
    if grad.is_empty() {
        return vec![0.0; x.len()];
    }
    let (input, output) = (shape.input_pixels(), shape.output_pixels());
    pool::fresh(x.len(), input, |i, dx| {
        let (dx, plane) = (dx.zeroed(), &x[i * input..][..input]);
        let grad = &grad[i * output..][..output];
        let mut rows = Vec::new();
        shape.each_winner(plane, &mut rows, |o, i| dx[i] += grad[o]);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The pooled value of output `(oy, ox)` of one plane by the definition (padding as −∞).
    fn naive(shape: &PoolShape, plane: &[f32], oy: usize, ox: usize) -> f32 {
        let [h, w] = shape.input;
        let [top, left, _, _] = shape.window.padding;
        let mut best = f32::NEG_INFINITY;
        for ky in 0..shape.window.kernel[0] {
            for kx in 0..shape.window.kernel[1] {
                let y = (oy * shape.window.stride[0] + ky).checked_sub(top);
                let x = (ox * shape.window.stride[1] + kx).checked_sub(left);
                if let (Some(y), Some(x)) = (y, x)
                    && y < h
                    && x < w
                {
                    best = best.max(plane[y * w + x]);
                }
            }
        }
        best
    }

    fn shapes() -> impl Strategy<Value = PoolShape> {
        (
            1usize..4,
            1usize..9,
            1usize..9,
            1usize..4,
            1usize..4,
            1usize..3,
            0usize..2,
        )
            .prop_filter_map(
                "kernel larger than the padded input",
                |(planes, h, w, kh, kw, stride, pad)| {
                    let padding = [
                        pad.min(kh / 2),
                        pad.min(kw / 2),
                        pad.min(kh / 2),
                        pad.min(kw / 2),
                    ];
                    (h + 2 * padding[0] >= kh && w + 2 * padding[1] >= kw).then_some(PoolShape {
                        planes,
                        input: [h, w],
                        window: Window {
                            kernel: [kh, kw],
                            stride: [stride, stride],
                            padding,
                        },
                    })
                },
            )
    }

    proptest! {
        /// The forward is the definition, and the backward is its adjoint: ⟨dx, e⟩ for a
        /// one-hot `e` at an input pixel is the gradient flowing to it, the sum of the output
        /// gradients of the windows it wins (values distinct, so winners are unique).
        #[test]
        fn forward_and_gradient_follow_the_definition(shape in shapes(), seed in 0u64..1000) {
            let len = shape.planes * shape.input_pixels();
            // distinct values: a permutation of 0..len, scaled
            let x: Vec<f32> = (0..len as u64)
                .map(|i| ((i * 7919 + seed) % len as u64) as f32 * 0.5 - 3.0)
                .collect();
            let out = forward(&shape, &x);
            let [oh, ow] = shape.output();
            for (p, plane) in x.chunks(shape.input_pixels()).enumerate() {
                for oy in 0..oh {
                    for ox in 0..ow {
                        prop_assert_eq!(out[(p * oh + oy) * ow + ox], naive(&shape, plane, oy, ox));
                    }
                }
            }
            let grad: Vec<f32> = (0..out.len()).map(|i| (i % 5) as f32 + 1.0).collect();
            let dx = backward(&shape, &x, &grad);
            let mut expected = vec![0.0f32; len];
            for (o, (&value, &g)) in out.iter().zip(&grad).enumerate() {
                let plane = o / (oh * ow);
                let winner = x[plane * shape.input_pixels()..][..shape.input_pixels()]
                    .iter()
                    .position(|&v| v == value)
                    .map(|i| plane * shape.input_pixels() + i);
                if let Some(i) = winner {
                    expected[i] += g;
                }
            }
            prop_assert_eq!(dx, expected);
        }
    }

    /// Among equal values the first in row-major order wins, as in PyTorch (SPPF chains pools,
    /// whose outputs repeat values).
    #[test]
    fn ties_go_to_the_first_value() {
        let shape = PoolShape {
            planes: 1,
            input: [2, 2],
            window: Window {
                kernel: [2, 2],
                stride: [1, 1],
                padding: [0; 4],
            },
        };
        let dx = backward(&shape, &[1.0, 3.0, 3.0, 3.0], &[1.0]);
        assert_eq!(dx, [0.0, 1.0, 0.0, 0.0]);
    }
}
