//! Loops compiled for the widest instruction set the CPU has.
//!
//! pulp's `Arch::dispatch` runs a `WithSimd` value inside one function per instruction set
//! (`#[target_feature]` AVX-512, AVX2, …); loops inlined there vectorise with that set. pulp calls
//! a plain closure handed to `dispatch` as `FnOnce`, i.e. through the closure's `call_once` shim,
//! and when the closure's body is a whole loop that shim is not inlined: the loop is compiled for
//! the SSE2 baseline. Seen with `perf annotate` on an AVX-512 Xeon: BatchNorm + SiLU ran 4-lane
//! `divps`/`mulps` that way. [`vectorized`] calls its body as `FnMut`, which for `Fn` and `FnMut`
//! closures is the closure's own function (no shim), inlined when marked `#[inline(always)]` (as
//! must be what it calls). Kernels written as `WithSimd` types (`activation::Map`, the plans'
//! epilogues) need no wrapper.

/// `body()` compiled for the widest instruction set pulp finds on this CPU. Mark the closure
/// `#[inline(always)]`.
#[inline(always)]
pub(crate) fn vectorized<R>(body: impl FnMut() -> R) -> R {
    pulp::Arch::new().dispatch(Vectorized(body))
}

struct Vectorized<F>(F);

impl<R, F: FnMut() -> R> pulp::WithSimd for Vectorized<F> {
    type Output = R;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(mut self, _simd: S) -> R {
        (self.0)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body runs once, may write what it captures and returns its value.
    #[test]
    fn runs_the_body_once_with_its_captures() {
        let mut calls = 0;
        let mut values = [1.0f32; 37];
        let total = vectorized(
            #[inline(always)]
            || {
                calls += 1;
                values.iter_mut().for_each(|v| *v *= 2.0);
                values.iter().sum::<f32>()
            },
        );
        assert_eq!((calls, total), (1, 74.0));
        assert!(values.iter().all(|v| *v == 2.0));
    }
}
