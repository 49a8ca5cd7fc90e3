//! Element-wise functions for forward-only passes: SiLU, `exp` and exact GELU.
//!
//! burn-flex computes transcendental unary ops with scalar `expf`/`erff` on one thread. burn's
//! `silu` is `x · sigmoid(x)`, such a pass plus a product: YOLO applies it after every
//! convolution, and at 640² it took ~16 % of a detector's inference. SAM3's attention
//! (`exp` over every score) and ViT MLPs (GELU over 5184 × 4096 values per layer) spent a fifth of
//! a forward in them with one core idle. Tensors without autodiff take one pass instead,
//! vectorised with the CPU's widest instruction set (chosen at run time) and split over the cores;
//! tensors that record a graph keep burn's ops, except SiLU on flex (a training kernel).

use burn::tensor::activation;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

/// The activation fused into a convolution's output (serving plans) or a training BatchNorm's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// None.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `x · sigmoid(x)`.
    Silu,
}

impl Activation {
    /// The activation of a tensor, as its own operation.
    pub(crate) fn tensor<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Identity => x,
            Self::Relu => activation::relu(x),
            Self::Silu => silu(x),
        }
    }
}

/// Elements per parallel task: large enough that splitting costs nothing next to the work.
const CHUNK: usize = 1 << 15;

/// `x · sigmoid(x)`, element-wise. A tensor that records a graph on flex goes through our fused
/// kernel ([`crate::kernels::silu`]: one vectorised pass forward, one backward, instead of burn's
/// sigmoid, product and their backward steps); on other devices through burn's op.
pub(crate) fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !x.is_autodiff() || x.dtype() != DType::F32 {
        return map_forward(x, silu_one, activation::silu);
    }
    crate::kernels::silu(x)
}

/// `silu(x)` in a new buffer, in parallel, vectorised.
pub(crate) fn silu_values(x: &[f32]) -> Vec<f32> {
    crate::pool::fresh(x.len(), CHUNK, |i, out| {
        let x = &x[i * CHUNK..][..out.len()];
        pulp::Arch::new().dispatch(SiluInto(x, out.zeroed()));
    })
}

/// `grad ← grad · silu'(x)` with `silu'(x) = s · (1 + x · (1 − s))`, `s = sigmoid(x)`, in place.
pub(crate) fn silu_grad_in_place(x: &[f32], grad: &mut [f32]) {
    assert_eq!(x.len(), grad.len(), "silu gradient: lengths");
    grad.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(grad, x)| pulp::Arch::new().dispatch(SiluGradInPlace(x, grad)));
}

struct SiluInto<'a>(&'a [f32], &'a mut [f32]);

impl pulp::WithSimd for SiluInto<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let SiluInto(x, out) = self;
        for (o, v) in out.iter_mut().zip(x) {
            *o = silu_one(*v);
        }
    }
}

struct SiluGradInPlace<'a>(&'a [f32], &'a mut [f32]);

impl pulp::WithSimd for SiluGradInPlace<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let SiluGradInPlace(x, grad) = self;
        for (g, v) in grad.iter_mut().zip(x) {
            *g *= silu_derivative(*v);
        }
    }
}

/// `e^x`, element-wise.
pub(crate) fn exp<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    map_forward(x, exp_one, Tensor::exp)
}

/// Exact GELU, `x · Φ(x)`, element-wise.
pub(crate) fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    map_forward(x, gelu_one, activation::gelu)
}

/// `f` over a forward-only f32 tensor (in place, parallel, vectorised), else `fallback`.
fn map_forward<const D: usize, F>(
    x: Tensor<D>,
    f: F,
    fallback: fn(Tensor<D>) -> Tensor<D>,
) -> Tensor<D>
where
    F: Fn(f32) -> f32 + Copy + Send + Sync,
{
    if x.is_autodiff() || x.dtype() != DType::F32 {
        return fallback(x);
    }
    let device = x.device();
    let mut data = x.into_data();
    match data.as_mut_slice::<f32>() {
        Ok(values) => map_in_place(values, f),
        // Unreachable for an f32 tensor; burn's op stays correct if it ever happens.
        Err(_) => return fallback(Tensor::from_data(data, &device)),
    }
    Tensor::from_data(data, &device)
}

/// `f` over a slice, in place, split over the cores.
fn map_in_place<F: Fn(f32) -> f32 + Copy + Send + Sync>(values: &mut [f32], f: F) {
    values
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| pulp::Arch::new().dispatch(Map(chunk, f)));
}

/// `f` applied to every element of a slice, as a pulp kernel: the loop is compiled inside pulp's
/// per-instruction-set functions (its body must inline, hence `#[inline(always)]` on `f`'s
/// callees), so it vectorises with AVX-512 or AVX2 where the CPU has them.
pub(crate) struct Map<'a, F>(pub &'a mut [f32], pub F);

impl<F: Fn(f32) -> f32> pulp::WithSimd for Map<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Map(values, f) = self;
        for v in values.iter_mut() {
            *v = f(*v);
        }
    }
}

/// `1 / (1 + e^−x)` of one value (the host-side scores of detection and segmentation).
pub(crate) fn sigmoid_one(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `x / (1 + e^-x)`, branch-free so that the loop above vectorises. Below −88 the true value
/// is below 1e-36 in magnitude; clamping there keeps the saturated `exp` from giving −x/e^88.
#[inline(always)]
pub(crate) fn silu_one(x: f32) -> f32 {
    let x = x.clamp(-88.0, f32::MAX);
    x / (1.0 + exp_one(-x))
}

/// `silu'(x) = s · (1 + x · (1 − s))` with `s = sigmoid(x)`, branch-free like [`silu_one`].
#[inline(always)]
pub(crate) fn silu_derivative(x: f32) -> f32 {
    // clamped like `silu_one`, so the `e` is the one the forward used
    let x = x.clamp(-88.0, 88.0);
    let s = 1.0 / (1.0 + exp_one(-x));
    s * (1.0 + x * (1.0 - s))
}

/// `x · Φ(x) = x/2 · (1 + erf(x/√2))`.
#[inline(always)]
fn gelu_one(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `erf` within 1.5e-7 (Abramowitz & Stegun 7.1.26), branch-free.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_72 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp_one(-a * a);
    y.copysign(x)
}

/// `e^x` to within ~2 ulp on the range f32 can represent (saturating outside it): `2^n · p(r)`
/// with `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, and a degree-6 Taylor polynomial for `p`.
#[inline(always)]
pub(crate) fn exp_one(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part exact in f32 and the rest, so `x − n·ln 2` loses nothing.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to the nearest integer with plain float arithmetic.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // `n` as an integer is in `t`'s low mantissa bits; `as i32` would not vectorise (it
    // saturates and maps NaN to 0 element by element). 2^n is the exponent field n + 127.
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};
    use proptest::prelude::*;

    fn reference(x: f32) -> f32 {
        (f64::from(x) / (1.0 + (-f64::from(x)).exp())) as f32
    }

    proptest! {
        #[test]
        fn exp_is_within_a_few_ulp(x in -87.0f32..88.0) {
            let want = f64::from(x).exp();
            let got = f64::from(exp_one(x));
            prop_assert!(((got - want) / want).abs() < 4e-7, "exp({x}) = {got}, want {want}");
        }

        #[test]
        fn silu_matches_the_definition(x in -200.0f32..200.0) {
            let want = reference(x);
            let got = silu_one(x);
            prop_assert!((got - want).abs() <= 1e-6 * want.abs().max(1e-3), "silu({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn forward_only_tensors_match_burns_silu() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 17, 19], Distribution::Normal(0.0, 4.0), &device);
        let ours = silu(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let burns = activation::silu(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        assert_eq!(ours.len(), 2 * 3 * 17 * 19);
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn forward_only_exp_and_gelu_match_burn() {
        let device = Device::flex();
        let x = Tensor::<3>::random([4, 33, 65], Distribution::Normal(0.0, 3.0), &device);
        let close = |ours: Tensor<3>, burns: Tensor<3>, what: &str| {
            let ours = ours.into_data().try_to_vec::<f32>().unwrap_or_default();
            let burns = burns.into_data().try_to_vec::<f32>().unwrap_or_default();
            assert_eq!(ours.len(), 4 * 33 * 65, "{what}");
            for (a, b) in ours.iter().zip(&burns) {
                assert!(
                    (a - b).abs() <= 2e-6 * b.abs().max(1.0),
                    "{what}: {a} vs {b}"
                );
            }
        };
        close(exp(x.clone()), x.clone().exp(), "exp");
        close(gelu(x.clone()), activation::gelu(x), "gelu");
        // erf at points of the table (Abramowitz & Stegun, table 7.1).
        for (x, want) in [
            (0.5f32, 0.520_499_9f32),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 2e-7 && (erf(-x) + want).abs() < 2e-7);
        }
    }

    #[test]
    fn recorded_silu_has_burns_value_and_gradient() {
        let device = Device::flex().autodiff();
        let data =
            Tensor::<2>::random([7, 129], Distribution::Normal(0.0, 4.0), &device).into_data();
        let run = |f: fn(Tensor<2>) -> Tensor<2>| {
            let x = Tensor::<2>::from_data(data.clone(), &device).require_grad();
            let weights = Tensor::<2>::random([7, 129], Distribution::Default, &device);
            let y = f(x.clone());
            let grads = (y.clone() * weights).sum().backward();
            let gradient = x.grad(&grads).map(|g| g.into_data());
            (y.into_data(), gradient)
        };
        device.seed(5);
        let (ours, our_grad) = run(silu);
        device.seed(5);
        let (burns, burn_grad) = run(activation::silu);
        let values = |d: TensorData| d.try_into_vec::<f32>().unwrap_or_default();
        let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
            assert_eq!(a.len(), 7 * 129, "{what}");
            for (a, b) in a.iter().zip(&b) {
                assert!(
                    (a - b).abs() <= 2e-6 * b.abs().max(1.0),
                    "{what}: {a} vs {b}"
                );
            }
        };
        close(values(ours), values(burns), "value");
        match (our_grad, burn_grad) {
            (Some(a), Some(b)) => close(values(a), values(b), "gradient"),
            other => panic!("missing gradient: {other:?}"),
        }
    }

    #[test]
    fn extremes_saturate_without_nan() {
        let mut v = [f32::MIN, -1e4, -88.5, 0.0, 88.5, 1e4, f32::MAX];
        map_in_place(&mut v, silu_one);
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
        assert!(v[0].abs() < 1e-30 && v[1].abs() < 1e-30, "{v:?}");
        assert_eq!(v[3], 0.0);
        assert_eq!(v[5], 1e4);
    }
}
