//! Concatenation along one axis and the split of its gradient back into one contiguous tensor
//! per input, both over the threads; read the other way round, a narrowing along one axis and
//! its gradient.
//!
//! burn-flex concatenates on the calling thread, and its autodiff hands each input a strided view
//! of the gradient that the next kernel then copies to contiguous, again on one thread: in a
//! YOLOv8n training step (a concatenation in every C2f, in SPPF, in the neck and the head) these
//! copies were ~2 % of the step with the second core idle.

use crate::pool;

/// The geometry of a concatenation: input `i` is `[outer, sizes[i], inner]`, the output
/// `[outer, Σ sizes, inner]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatShape {
    /// The product of the axes before the concatenated one.
    pub outer: usize,
    /// Each input's extent along the concatenated axis.
    pub sizes: Vec<usize>,
    /// The product of the axes after the concatenated one.
    pub inner: usize,
}

impl CatShape {
    /// Values of one output row (one `outer` index).
    fn row(&self) -> usize {
        self.sizes.iter().sum::<usize>() * self.inner
    }
}

/// The concatenation of `inputs` (each contiguous, laid out as `shape` says).
pub(crate) fn forward(shape: &CatShape, inputs: &[&[f32]]) -> Vec<f32> {
    assert_eq!(inputs.len(), shape.sizes.len(), "concat: input count");
    for (x, size) in inputs.iter().zip(&shape.sizes) {
        assert_eq!(
            x.len(),
            shape.outer * size * shape.inner,
            "concat: input length"
        );
    }
    let row = shape.row();
    pool::fresh(shape.outer * row, row, |o, out| {
        let (out, mut at) = (out.zeroed(), 0);
        for (x, size) in inputs.iter().zip(&shape.sizes) {
            let run = size * shape.inner;
            out[at..at + run].copy_from_slice(&x[o * run..][..run]);
            at += run;
        }
    })
}

/// Input `part`'s share of the output gradient `grad`, contiguous.
pub(crate) fn split(shape: &CatShape, grad: &[f32], part: usize) -> Vec<f32> {
    let row = shape.row();
    assert_eq!(grad.len(), shape.outer * row, "concat: gradient length");
    let run = shape.sizes[part] * shape.inner;
    let offset = shape.sizes[..part].iter().sum::<usize>() * shape.inner;
    pool::fresh(shape.outer * run, run, |o, out| {
        out.zeroed()
            .copy_from_slice(&grad[o * row + offset..][..run]);
    })
}

/// The output gradient of a concatenation whose input `part` had gradient `grad` and every
/// other input none: `grad` in its place, zeros around it (the backward of [`split`]).
pub(crate) fn embed(shape: &CatShape, grad: &[f32], part: usize) -> Vec<f32> {
    let row = shape.row();
    let run = shape.sizes[part] * shape.inner;
    assert_eq!(
        grad.len(),
        shape.outer * run,
        "concat: part gradient length"
    );
    let offset = shape.sizes[..part].iter().sum::<usize>() * shape.inner;
    pool::fresh(shape.outer * row, row, |o, out| {
        out.zeroed()[offset..offset + run].copy_from_slice(&grad[o * run..][..run]);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Each output value is the input value at the same place along the other axes, and
        /// splitting the concatenation gives the inputs back.
        #[test]
        fn concatenates_and_splits_back(
            outer in 0usize..4,
            sizes in proptest::collection::vec(0usize..4, 1..5),
            inner in 0usize..5,
        ) {
            let shape = CatShape { outer, sizes: sizes.clone(), inner };
            let inputs: Vec<Vec<f32>> = sizes
                .iter()
                .enumerate()
                .map(|(i, s)| (0..outer * s * inner).map(|v| (i * 1000 + v) as f32).collect())
                .collect();
            let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
            let out = forward(&shape, &views);
            let total: usize = sizes.iter().sum();
            prop_assert_eq!(out.len(), outer * total * inner);
            for o in 0..outer {
                let mut c = 0;
                for (i, s) in sizes.iter().enumerate() {
                    for k in 0..*s {
                        for j in 0..inner {
                            prop_assert_eq!(
                                out[(o * total + c) * inner + j],
                                inputs[i][(o * s + k) * inner + j]
                            );
                        }
                        c += 1;
                    }
                }
            }
            for (i, input) in inputs.iter().enumerate() {
                prop_assert_eq!(&split(&shape, &out, i), input);
                // embedding a part alone is the concatenation with the others zero
                let zeroed: Vec<Vec<f32>> = inputs
                    .iter()
                    .enumerate()
                    .map(|(j, x)| if j == i { x.clone() } else { vec![0.0; x.len()] })
                    .collect();
                let views: Vec<&[f32]> = zeroed.iter().map(Vec::as_slice).collect();
                prop_assert_eq!(embed(&shape, input, i), forward(&shape, &views));
            }
        }
    }
}
