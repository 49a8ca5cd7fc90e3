//! Nearest-neighbour upsampling by an integer factor (YOLOv8's neck) and its gradient, over the
//! threads: burn-flex's interpolation and its backward ran on one thread.

use crate::pool;

/// Each value of `x` (`planes` planes of `[h, w]`) repeated over a `factor × factor` block:
/// `[planes, h·factor, w·factor]`.
pub(crate) fn forward(x: &[f32], planes: usize, [h, w]: [usize; 2], factor: usize) -> Vec<f32> {
    assert_eq!(x.len(), planes * h * w, "upsample: input length");
    let (oh, ow) = (h * factor, w * factor);
    pool::fresh(planes * oh * ow, oh * ow, |i, out| {
        let plane = &x[i * h * w..][..h * w];
        for (block, line) in out
            .zeroed()
            .chunks_exact_mut(factor * ow)
            .zip(plane.chunks_exact(w))
        {
            let (first, rest) = block.split_at_mut(ow);
            for (pixels, &v) in first.chunks_exact_mut(factor).zip(line) {
                pixels.fill(v);
            }
            for row in rest.chunks_exact_mut(ow) {
                row.copy_from_slice(first);
            }
        }
    })
}

/// The gradient of [`forward`] given its output gradient `grad`: each input pixel's block summed.
pub(crate) fn backward(grad: &[f32], planes: usize, [h, w]: [usize; 2], factor: usize) -> Vec<f32> {
    let (oh, ow) = (h * factor, w * factor);
    assert_eq!(grad.len(), planes * oh * ow, "upsample: gradient length");
    pool::fresh(planes * h * w, h * w, |i, dx| {
        let grad = &grad[i * oh * ow..][..oh * ow];
        for (line, block) in dx
            .zeroed()
            .chunks_exact_mut(w)
            .zip(grad.chunks_exact(factor * ow))
        {
            for row in block.chunks_exact(ow) {
                for (d, pixels) in line.iter_mut().zip(row.chunks_exact(factor)) {
                    *d += pixels.iter().sum::<f32>();
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Output `(y, x)` is input `(y / f, x / f)`, and the gradient is the adjoint:
        /// ⟨forward(x), g⟩ = ⟨x, backward(g)⟩ (exact with small integers).
        #[test]
        fn repeats_and_sums_blocks(
            planes in 1usize..4, h in 1usize..6, w in 1usize..6, factor in 1usize..4,
        ) {
            let x: Vec<f32> = (0..planes * h * w).map(|i| (i % 7) as f32 - 3.0).collect();
            let out = forward(&x, planes, [h, w], factor);
            let (oh, ow) = (h * factor, w * factor);
            for p in 0..planes {
                for y in 0..oh {
                    for c in 0..ow {
                        prop_assert_eq!(
                            out[(p * oh + y) * ow + c],
                            x[(p * h + y / factor) * w + c / factor]
                        );
                    }
                }
            }
            let g: Vec<f32> = (0..out.len()).map(|i| (i % 5) as f32 - 2.0).collect();
            let dx = backward(&g, planes, [h, w], factor);
            let lhs: f32 = out.iter().zip(&g).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            prop_assert_eq!(lhs, rhs);
        }
    }
}
