//! SiLU for forward-only passes.
//!
//! burn's `silu` is `x · sigmoid(x)`: on burn-flex that is a scalar `expf` on one thread (the
//! tensor is shared, so not even in place) followed by a second pass for the product. YOLO
//! applies SiLU after every convolution, so at 640² this took ~16 % of a detector's inference.
//! Tensors without autodiff take one pass instead, vectorised with the CPU's widest instruction
//! set (chosen at run time) and split over the cores; tensors that record a graph keep burn's op.

use burn::tensor::activation;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

/// Elements per parallel task: large enough that splitting costs nothing next to the work.
const CHUNK: usize = 1 << 15;

/// `x · sigmoid(x)`, element-wise.
pub(crate) fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.is_autodiff() || x.dtype() != DType::F32 {
        return activation::silu(x);
    }
    let device = x.device();
    let mut data = x.into_data();
    match data.as_mut_slice::<f32>() {
        Ok(values) => silu_in_place(values),
        // Unreachable for an f32 tensor; burn's op stays correct if it ever happens.
        Err(_) => return activation::silu(Tensor::from_data(data, &device)),
    }
    Tensor::from_data(data, &device)
}

/// SiLU over a slice, in place.
pub(crate) fn silu_in_place(values: &mut [f32]) {
    values
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| pulp::Arch::new().dispatch(Map(chunk, silu_one)));
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

/// `x / (1 + e^-x)`, branch-free so that the loop above vectorises. Below −88 the true value
/// is below 1e-36 in magnitude; clamping there keeps the saturated `exp` from giving −x/e^88.
#[inline(always)]
pub(crate) fn silu_one(x: f32) -> f32 {
    let x = x.clamp(-88.0, f32::MAX);
    x / (1.0 + exp(-x))
}

/// `e^x` to within ~2 ulp on the range f32 can represent (saturating outside it): `2^n · p(r)`
/// with `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, and a degree-6 Taylor polynomial for `p`.
#[inline(always)]
fn exp(x: f32) -> f32 {
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
    use burn::tensor::{Device, Distribution};
    use proptest::prelude::*;

    fn reference(x: f32) -> f32 {
        (f64::from(x) / (1.0 + (-f64::from(x)).exp())) as f32
    }

    proptest! {
        #[test]
        fn exp_is_within_a_few_ulp(x in -87.0f32..88.0) {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
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
    fn extremes_saturate_without_nan() {
        let mut v = [f32::MIN, -1e4, -88.5, 0.0, 88.5, 1e4, f32::MAX];
        silu_in_place(&mut v);
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
        assert!(v[0].abs() < 1e-30 && v[1].abs() < 1e-30, "{v:?}");
        assert_eq!(v[3], 0.0);
        assert_eq!(v[5], 1e4);
    }
}
