//! BatchNorm of NCHW tensors in training mode: batch statistics, normalisation and both
//! gradients, each one or two passes over the channel's planes.
//!
//! burn's generic version builds these from a dozen tensor operations (channel-first copies,
//! means, broadcasts), each a full pass over the activation; in a ResNet training step they cost
//! as much as a quarter of the convolutions. Here statistics are summed per channel in parallel
//! (f32 lanes, f64 per plane), and the output and input gradient are written plane by plane with
//! per-channel coefficients, always from the centred `x − mean` (folding the mean into an offset
//! cancels catastrophically when the variance is small next to the mean).
//!
//! The activation that follows every BatchNorm of our models (ReLU, SiLU) is part of the same
//! kernel: the forward applies it in the output pass, and the backward recomputes the
//! pre-activation value from `x` and the statistics to turn the incoming gradient into the
//! BatchNorm's, in place. The normalised tensor before the activation is never stored, which
//! saves a full activation per layer (its allocation, zeroing, write and read) and the
//! activation's own graph node.

use rayon::prelude::*;

use crate::models::activation::{Activation, silu_derivative, silu_one};
use crate::pool;
use crate::simd::vectorized;

/// The geometry of a BatchNorm input `[batch, channels, pixels…]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NormShape {
    /// Images.
    pub batch: usize,
    /// Channels (normalised separately).
    pub channels: usize,
    /// Values per channel and image.
    pub pixels: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.pixels
    }

    /// Values per channel over the batch (the statistics' sample count).
    fn samples(&self) -> f64 {
        (self.batch * self.pixels) as f64
    }

    /// Channel `c`'s plane of image `n`.
    fn plane<'a>(&self, data: &'a [f32], n: usize, c: usize) -> &'a [f32] {
        &data[(n * self.channels + c) * self.pixels..][..self.pixels]
    }
}

/// The result of [`forward`].
pub(crate) struct Normalised {
    /// `act((x − mean) / √(var + ε) · γ + β)`, NCHW.
    pub output: Vec<f32>,
    /// Per-channel batch mean.
    pub mean: Vec<f32>,
    /// Per-channel biased batch variance.
    pub variance: Vec<f32>,
}

/// Normalises `x` with its own batch statistics, scales by `gamma`, shifts by `beta`, then
/// applies `activation`.
pub(crate) fn forward(
    shape: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    activation: Activation,
) -> Normalised {
    check_lengths(shape, x.len(), gamma.len());
    assert_eq!(beta.len(), shape.channels, "batch norm: beta length");
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            vectorized(
                #[inline(always)]
                || {
                    let planes = || (0..shape.batch).map(|n| shape.plane(x, n, c));
                    let mean = planes().map(sum).sum::<f64>() / shape.samples();
                    let variance = planes()
                        .map(|p| squared_deviations(p, mean as f32))
                        .sum::<f64>()
                        / shape.samples();
                    (mean as f32, variance as f32)
                },
            )
        })
        .unzip();
    let affine = affine(gamma, beta, &mean, &variance, epsilon);
    let output = pool::fresh(shape.len(), shape.pixels, |i, out| {
        let (c, n) = (i % shape.channels, i / shape.channels);
        let (x, affine, out) = (shape.plane(x, n, c), affine[c], out.zeroed());
        vectorized(
            #[inline(always)]
            || match activation {
                Activation::Identity => each_normalised(out, x, affine, |o, y| *o = y),
                Activation::Relu => each_normalised(out, x, affine, |o, y| *o = y.max(0.0)),
                Activation::Silu => each_normalised(out, x, affine, |o, y| *o = silu_one(y)),
            },
        );
    });
    Normalised {
        output,
        mean,
        variance,
    }
}

/// The per-channel `(centre, scale, shift)` of the normalisation: `y = (x − centre)·scale + shift`.
/// Forward and backward compute them by the same code, so the backward's recomputed
/// pre-activation values are the forward's to the bit (ReLU's mask agrees exactly).
fn affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
) -> Vec<(f32, f32, f32)> {
    (0..gamma.len())
        .map(|c| {
            let scale = f64::from(gamma[c]) / (f64::from(variance[c]) + epsilon).sqrt();
            (mean[c], scale as f32, beta[c])
        })
        .collect()
}

/// `update(value, (x − centre)·scale + shift)` for each element of `values` and its `x`.
#[inline(always)]
fn each_normalised(
    values: &mut [f32],
    x: &[f32],
    (centre, scale, shift): (f32, f32, f32),
    update: impl Fn(&mut f32, f32),
) {
    for (value, v) in values.iter_mut().zip(x) {
        update(value, (v - centre) * scale + shift);
    }
}

/// The statistics and affine parameters [`forward`] used, for [`backward`].
pub(crate) struct Saved<'a> {
    /// The forward's input.
    pub x: &'a [f32],
    /// Scale per channel.
    pub gamma: &'a [f32],
    /// Shift per channel.
    pub beta: &'a [f32],
    /// The batch mean the forward returned.
    pub mean: &'a [f32],
    /// The biased batch variance the forward returned.
    pub variance: &'a [f32],
    /// ε.
    pub epsilon: f64,
    /// The activation applied after the normalisation.
    pub activation: Activation,
}

/// The gradients of [`forward`] given what it saw and returned and the output gradient `grad`:
/// `grad` is overwritten with the input gradient, `[dγ, dβ]` are returned.
pub(crate) fn backward(shape: &NormShape, saved: &Saved<'_>, grad: &mut [f32]) -> [Vec<f32>; 2] {
    let Saved {
        x,
        gamma,
        beta,
        mean,
        variance,
        epsilon,
        activation,
    } = *saved;
    check_lengths(shape, x.len(), gamma.len());
    assert_eq!(beta.len(), shape.channels, "batch norm: beta length");
    assert_eq!(grad.len(), shape.len(), "batch norm: gradient length");
    // grad ← grad · act'(y) (y the normalised value the activation received), then Σg and
    // Σg·(x − mean) of each plane while it is in cache, summed per channel in image order
    let affine = affine(gamma, beta, mean, variance, epsilon);
    let plane_sums = per_plane(shape, grad, |c, plane, n| {
        let (x, affine) = (shape.plane(x, n, c), affine[c]);
        vectorized(
            #[inline(always)]
            || {
                match activation {
                    Activation::Identity => {}
                    Activation::Relu => each_normalised(plane, x, affine, |g, y| {
                        *g = if y > 0.0 { *g } else { 0.0 };
                    }),
                    Activation::Silu => each_normalised(plane, x, affine, |g, y| {
                        *g *= silu_derivative(y);
                    }),
                }
                (sum(plane), centred_dot(plane, x, mean[c]))
            },
        )
    });
    let (mut sum_grad, mut sum_grad_centred) =
        (vec![0.0f64; shape.channels], vec![0.0f64; shape.channels]);
    for (i, (g, gx)) in plane_sums.into_iter().enumerate() {
        sum_grad[i % shape.channels] += g;
        sum_grad_centred[i % shape.channels] += gx;
    }
    let samples = shape.samples();
    let inv_std: Vec<f64> = (0..shape.channels)
        .map(|c| 1.0 / (f64::from(variance[c]) + epsilon).sqrt())
        .collect();
    let gamma_grad = (0..shape.channels)
        .map(|c| (sum_grad_centred[c] * inv_std[c]) as f32)
        .collect();
    let beta_grad = sum_grad.iter().map(|s| *s as f32).collect();
    // dx = k·(g − Σg/M − x̂·Σg·x̂/M) with k = γ/σ and x̂ = (x − mean)/σ, as a·g + b·(x − mean) + c
    let coefficients: Vec<(f32, f32, f32)> = (0..shape.channels)
        .map(|c| {
            let k = f64::from(gamma[c]) * inv_std[c];
            let b = -k * inv_std[c] * inv_std[c] * sum_grad_centred[c] / samples;
            let offset = -k * sum_grad[c] / samples;
            (k as f32, b as f32, offset as f32)
        })
        .collect();
    per_plane(shape, grad, |c, plane, n| {
        let ((a, b, offset), centre) = (coefficients[c], mean[c]);
        vectorized(
            #[inline(always)]
            || {
                for (g, v) in plane.iter_mut().zip(shape.plane(x, n, c)) {
                    *g = a * *g + b * (v - centre) + offset;
                }
            },
        );
    });
    [gamma_grad, beta_grad]
}

fn check_lengths(shape: &NormShape, x: usize, gamma: usize) {
    assert_eq!(x, shape.len(), "batch norm: input length");
    assert_eq!(gamma, shape.channels, "batch norm: gamma length");
}

/// Calls `f(channel, plane, image)` for every plane of `out`, in parallel; its results in plane
/// order.
fn per_plane<R: Send>(
    shape: &NormShape,
    out: &mut [f32],
    f: impl Fn(usize, &mut [f32], usize) -> R + Sync,
) -> Vec<R> {
    if shape.pixels == 0 {
        return Vec::new();
    }
    out.par_chunks_mut(shape.pixels)
        .enumerate()
        .map(|(i, plane)| f(i % shape.channels, plane, i / shape.channels))
        .collect()
}

/// Lanes of the partial sums below: eight f32 accumulators vectorise, one would not.
const LANES: usize = 8;

/// Σv, in f32 lanes added up in f64.
#[inline(always)]
fn sum(values: &[f32]) -> f64 {
    reduce(values, values, |v, _| v)
}

/// Σ(v − mean)².
#[inline(always)]
fn squared_deviations(values: &[f32], mean: f32) -> f64 {
    reduce(values, values, |v, _| (v - mean) * (v - mean))
}

/// Σg·(x − mean).
#[inline(always)]
fn centred_dot(grad: &[f32], x: &[f32], mean: f32) -> f64 {
    reduce(grad, x, |g, v| g * (v - mean))
}

/// Σ term(a, b) over paired values.
#[inline(always)]
fn reduce(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| f64::from(term(*x, *y)))
        .sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            lanes[i] += term(ca[i], cb[i]);
        }
    }
    lanes.iter().map(|v| f64::from(*v)).sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// BatchNorm in f64 by its definition: output and per-channel statistics.
    fn reference(
        shape: &NormShape,
        x: &[f64],
        gamma: &[f64],
        beta: &[f64],
        eps: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let m = shape.samples();
        let channel = |i: usize| i / shape.pixels % shape.channels;
        let mut mean = vec![0.0; shape.channels];
        let mut var = vec![0.0; shape.channels];
        for (i, v) in x.iter().enumerate() {
            mean[channel(i)] += v / m;
        }
        for (i, v) in x.iter().enumerate() {
            var[channel(i)] += (v - mean[channel(i)]).powi(2) / m;
        }
        let out = x
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let c = channel(i);
                (v - mean[c]) / (var[c] + eps).sqrt() * gamma[c] + beta[c]
            })
            .collect();
        (out, mean, var)
    }

    fn wide(values: &[f32]) -> Vec<f64> {
        values.iter().map(|v| f64::from(*v)).collect()
    }

    fn values(len: usize, seed: u64, offset: f32) -> Vec<f32> {
        (0..len as u64)
            .map(|i| (((i * 2_654_435_761 + seed * 97) % 2001) as f32 - 1000.0) / 500.0 + offset)
            .collect()
    }

    fn shapes() -> impl Strategy<Value = NormShape> {
        (1usize..5, 1usize..6, 1usize..40).prop_map(|(batch, channels, pixels)| NormShape {
            batch,
            channels,
            pixels,
        })
    }

    /// `activation` in f64.
    fn activate(activation: Activation, y: f64) -> f64 {
        match activation {
            Activation::Identity => y,
            Activation::Relu => y.max(0.0),
            Activation::Silu => y / (1.0 + (-y).exp()),
        }
    }

    fn activations() -> impl Strategy<Value = Activation> {
        prop_oneof![
            Just(Activation::Identity),
            Just(Activation::Relu),
            Just(Activation::Silu)
        ]
    }

    /// The statistics and parameters `backward` needs, from a forward with `activation`.
    fn saved<'a>(
        x: &'a [f32],
        gamma: &'a [f32],
        beta: &'a [f32],
        ours: &'a Normalised,
        epsilon: f64,
        activation: Activation,
    ) -> Saved<'a> {
        Saved {
            x,
            gamma,
            beta,
            mean: &ours.mean,
            variance: &ours.variance,
            epsilon,
            activation,
        }
    }

    fn close(actual: &[f32], expected: &[f64], tolerance: f64) -> Result<(), TestCaseError> {
        prop_assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            prop_assert!(
                (f64::from(*a) - e).abs() <= tolerance * (1.0 + e.abs()),
                "element {}: {} vs {}",
                i,
                a,
                e
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn forward_is_the_definition(
            shape in shapes(),
            seed in 0u64..100,
            activation in activations(),
        ) {
            let x = values(shape.len(), seed, 3.0);
            let gamma = values(shape.channels, seed + 1, 1.0);
            let beta = values(shape.channels, seed + 2, 0.0);
            let ours = forward(&shape, &x, &gamma, &beta, 1e-5, activation);
            let (out, mean, var) = reference(&shape, &wide(&x), &wide(&gamma), &wide(&beta), 1e-5);
            let out: Vec<f64> = out.into_iter().map(|y| activate(activation, y)).collect();
            close(&ours.output, &out, 1e-4)?;
            close(&ours.mean, &mean, 1e-5)?;
            close(&ours.variance, &var, 1e-5)?;
        }

        /// Each gradient element against a central difference of `⟨g, forward⟩` in f64 (SiLU is
        /// smooth; ReLU's kink would break the difference, see the next test).
        #[test]
        fn gradients_are_the_derivatives_of_the_forward(
            shape in shapes(),
            seed in 0u64..100,
            silu in any::<bool>(),
        ) {
            let activation = if silu { Activation::Silu } else { Activation::Identity };
            let x = values(shape.len(), seed, 1.0);
            let gamma = values(shape.channels, seed + 1, 1.0);
            let beta = values(shape.channels, seed + 2, 0.0);
            let g = values(shape.len(), seed + 3, 0.0);
            let eps = 1e-3;
            let ours = forward(&shape, &x, &gamma, &beta, eps, activation);
            let mut dx = g.clone();
            let [dgamma, dbeta] =
                backward(&shape, &saved(&x, &gamma, &beta, &ours, eps, activation), &mut dx);
            let objective = |inputs: &[Vec<f64>; 3]| {
                let (out, _, _) = reference(&shape, &inputs[0], &inputs[1], &inputs[2], eps);
                out.iter()
                    .zip(&g)
                    .map(|(o, g)| activate(activation, *o) * f64::from(*g))
                    .sum::<f64>()
            };
            let h = 1e-4;
            let derivative = |which: usize, i: usize| {
                let mut inputs = [wide(&x), wide(&gamma), wide(&beta)];
                inputs[which][i] += h;
                let up = objective(&inputs);
                inputs[which][i] -= 2.0 * h;
                (up - objective(&inputs)) / (2.0 * h)
            };
            let expected = |which: usize, len: usize| (0..len).map(|i| derivative(which, i)).collect::<Vec<_>>();
            close(&dx, &expected(0, x.len()), 1e-3)?;
            close(&dgamma, &expected(1, gamma.len()), 1e-3)?;
            close(&dbeta, &expected(2, beta.len()), 1e-3)?;
        }

        /// With ReLU the gradients are the plain BatchNorm's of `g` masked where the normalised
        /// value was not positive (the chain rule; ReLU's kink rules out finite differences).
        #[test]
        fn relu_gradients_follow_the_chain_rule(shape in shapes(), seed in 0u64..100) {
            let x = values(shape.len(), seed, 1.0);
            let gamma = values(shape.channels, seed + 1, 1.0);
            let beta = values(shape.channels, seed + 2, 0.0);
            let g = values(shape.len(), seed + 3, 0.0);
            let eps = 1e-3;
            let plain = forward(&shape, &x, &gamma, &beta, eps, Activation::Identity);
            let masked: Vec<f32> = g
                .iter()
                .zip(&plain.output)
                .map(|(g, y)| if *y > 0.0 { *g } else { 0.0 })
                .collect();
            let mut want = masked.clone();
            let want_params = backward(
                &shape,
                &saved(&x, &gamma, &beta, &plain, eps, Activation::Identity),
                &mut want,
            );
            let relu = forward(&shape, &x, &gamma, &beta, eps, Activation::Relu);
            let mut dx = g.clone();
            let params =
                backward(&shape, &saved(&x, &gamma, &beta, &relu, eps, Activation::Relu), &mut dx);
            prop_assert_eq!(dx, want);
            prop_assert_eq!(params, want_params);
        }
    }
}
