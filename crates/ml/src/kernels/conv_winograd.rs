//! 3×3, stride-1, padding-1 convolutions by Winograd's minimal filtering F(2×2, 3×3).
//!
//! The output is cut into 2×2 tiles; each reads a 4×4 input tile (overlapping its neighbours by
//! two rows and columns), and one tile of one output channel is `Y = Aᵀ [Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B)] A`
//! (the tile arithmetic is [`crate::winograd`]'s), so each of the 16 points `p` of the transformed
//! tile is one matrix product over the channels,
//! - forward: `M_p[Cout, T] = U_p[Cout, Cin] · V_p[Cin, T]` (`U = G g Gᵀ`, `V = Bᵀ d B`, `T` tiles),
//! - input gradient: the forward of the output gradient with the kernel flipped and its channels
//!   swapped (a 3×3, padding-1 convolution's adjoint is one),
//! - weight gradient: `dU_p[Cout, Cin] = Σ_T (A dY Aᵀ)_p · V_pᵀ`, then `dg = Gᵀ dU G`,
//!
//! 16 products of `K = Cin` in place of one of `K = 9·Cin` over 4× as many columns: 2.25× fewer
//! multiplications, and no im2col matrix. The transforms run over whole images: each plane is
//! split by the parity of its rows and columns into four arrays ([`Parity`]) in which every
//! tile's 16 inputs sit at fixed offsets, so one vectorised map (`winograd::map`) transforms all
//! of an image's tiles; with tile rows of 5–40 tiles, maps per tile row had run mostly in their
//! scalar remainders, and the transforms had cost more than the products saved.
//!
//! The batch goes one thread per contiguous group of images, like the other image-group paths
//! of `conv.rs`; each group runs its tiles in chunks whose transformed values fit in about 2 MiB.

use std::ops::Range;

use super::conv::{ConvShape, group, sum_over_groups};
use crate::gemm::{MatRef, matmul, matmul_add};
use crate::pool::{self, Scratch};
use crate::simd::vectorized;
use crate::winograd::{
    self, POINTS, input_tile, kernel_grad_tile, kernel_tile, map, output_grad_tile, output_tile,
    rows,
};

/// Transformed values (of one side of a product) per chunk of tiles: 2 MiB.
const CHUNK_VALUES: usize = 1 << 19;

/// The tiling of a 3×3, stride-1, padding-1 convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Winograd {
    shape: ConvShape,
    /// Tiles per image: `[rows, columns]`.
    tiles: [usize; 2],
}

impl Winograd {
    /// Whether `shape` is a convolution this module computes.
    pub(super) fn applies(shape: &ConvShape) -> bool {
        let ([top, left], [bottom, right]) = (shape.padding, shape.padding_end);
        shape.dilation == [1, 1]
            && winograd::fits(shape.kernel, shape.stride, [top, left, bottom, right])
    }

    /// The tiling of `shape` (see [`Self::applies`]).
    pub(super) fn new(shape: &ConvShape) -> Self {
        debug_assert!(
            Self::applies(shape),
            "Winograd F(2, 3): 3×3, stride 1, padding 1"
        );
        let [h, w] = shape.input;
        Self {
            shape: *shape,
            tiles: [h.div_ceil(2), w.div_ceil(2)],
        }
    }

    fn pixels(&self) -> usize {
        self.shape.input[0] * self.shape.input[1]
    }

    /// Tile slots per image: `rows · (columns + 1)`. Each tile row has one slot past its last
    /// tile, so that the tiles' inputs are the same arrays at fixed offsets for a whole image
    /// (see [`Parity`]); those slots' products are computed and dropped.
    fn slots(&self) -> usize {
        self.tiles[0] * (self.tiles[1] + 1)
    }

    /// Images per chunk so that the transformed planes of the wider side hold about
    /// [`CHUNK_VALUES`] values (at least one image).
    fn chunk_images(&self) -> usize {
        let widest = self.shape.in_channels.max(self.shape.out_channels).max(1);
        (CHUNK_VALUES / (POINTS * widest * self.slots())).max(1)
    }

    /// The chunks of a group of `images` images.
    fn chunks(&self, images: usize) -> impl Iterator<Item = Range<usize>> {
        let step = self.chunk_images();
        (0..images)
            .step_by(step)
            .map(move |i| i..(i + step).min(images))
    }

    /// The convolution of `x` with `weight` (`[Cout, Cin, 3, 3]`), the batch in `groups`
    /// groups of images over the threads.
    pub(super) fn forward(&self, x: &[f32], weight: &[f32], groups: usize) -> Vec<f32> {
        let (cin, cout) = (self.shape.in_channels, self.shape.out_channels);
        let (pixels, batch) = (self.pixels(), self.shape.batch);
        if pixels == 0 || batch == 0 || cin == 0 || cout == 0 {
            return vec![0.0; batch * cout * pixels];
        }
        let u = transform_weight(weight, cout, cin);
        let per_group = batch.div_ceil(groups.max(1));
        let capacity = self.chunk_images() * self.slots();
        let step = self.chunk_images() * cout * pixels;
        pool::fresh(
            batch * cout * pixels,
            per_group * cout * pixels,
            |g, out| {
                let x = group(x, g, per_group * cin * pixels);
                let mut v = pool::scratch(POINTS * cin * capacity);
                let mut m = pool::scratch(POINTS * cout * capacity);
                for (images, out) in self.chunks(x.len() / (cin * pixels)).zip(out.chunks(step)) {
                    let tiles = images.len() * self.slots();
                    let (v, m) = (
                        &mut v[..POINTS * cin * tiles],
                        &mut m[..POINTS * cout * tiles],
                    );
                    self.transform_input(x, cin, images.clone(), v);
                    for (p, m) in m.chunks_mut(cout * tiles).enumerate() {
                        let u = MatRef::dense(&u[p * cout * cin..][..cout * cin], cout, cin);
                        let v = MatRef::dense(&v[p * cin * tiles..][..cin * tiles], cin, tiles);
                        matmul(m, u, v, false);
                    }
                    self.transform_output(m, cout, images.len(), out.zeroed());
                }
            },
        )
    }

    /// The gradient of the input given the output gradient `grad`: the forward of `grad` with the
    /// kernel flipped and its two channel axes swapped.
    pub(super) fn input_grad(&self, weight: &[f32], grad: &[f32], groups: usize) -> Vec<f32> {
        let (cin, cout) = (self.shape.in_channels, self.shape.out_channels);
        if weight.is_empty() {
            return vec![0.0; self.shape.input_len()];
        }
        let mut flipped = pool::scratch(weight.len());
        for (co, kernels) in weight.chunks_exact(cin * 9).enumerate() {
            for (ci, kernel) in kernels.chunks_exact(9).enumerate() {
                let dst = &mut flipped[(ci * cout + co) * 9..][..9];
                for (d, s) in dst.iter_mut().zip(kernel.iter().rev()) {
                    *d = *s;
                }
            }
        }
        let adjoint = Self {
            shape: ConvShape {
                in_channels: cout,
                out_channels: cin,
                ..self.shape
            },
            ..*self
        };
        adjoint.forward(grad, &flipped, groups)
    }

    /// The gradient of the weight (`[Cout, Cin, 3, 3]`) given the input `x` and the output
    /// gradient `grad`: one partial `dU` per group of images, summed, then transformed back.
    pub(super) fn weight_grad(&self, x: &[f32], grad: &[f32], groups: usize) -> Vec<f32> {
        let (cin, cout) = (self.shape.in_channels, self.shape.out_channels);
        if cin == 0 || cout == 0 || self.pixels() == 0 {
            return vec![0.0; cout * cin * 9];
        }
        let capacity = self.chunk_images() * self.slots();
        let du = sum_over_groups(
            &self.shape,
            x,
            grad,
            groups,
            POINTS * cout * cin,
            |x, grad, du| {
                let mut v = pool::scratch(POINTS * cin * capacity);
                let mut dm = pool::scratch(POINTS * cout * capacity);
                du.fill(0.0);
                for images in self.chunks(x.len() / (cin * self.pixels())) {
                    let tiles = images.len() * self.slots();
                    let (v, dm) = (
                        &mut v[..POINTS * cin * tiles],
                        &mut dm[..POINTS * cout * tiles],
                    );
                    self.transform_input(x, cin, images.clone(), v);
                    self.transform_output_grad(grad, cout, images, dm);
                    for (p, du) in du.chunks_mut(cout * cin).enumerate() {
                        let dm =
                            MatRef::dense(&dm[p * cout * tiles..][..cout * tiles], cout, tiles);
                        let v = MatRef::dense(&v[p * cin * tiles..][..cin * tiles], cin, tiles);
                        matmul_add(du, dm, v.t(), false);
                    }
                }
            },
        );
        let mut dw = vec![0.0; cout * cin * 9];
        for (pair, dst) in dw.chunks_exact_mut(9).enumerate() {
            let du: [f32; POINTS] = std::array::from_fn(|p| du[p * cout * cin + pair]);
            dst.copy_from_slice(&kernel_grad_tile(&du));
        }
        dw
    }

    /// `V = Bᵀ d B` of the tiles of the group's images `images` (in `x`, `channels` planes
    /// each) into `v[point][channel][slot]`.
    fn transform_input(&self, x: &[f32], channels: usize, images: Range<usize>, v: &mut [f32]) {
        let (tw, slots, pixels) = (self.tiles[1], self.slots(), self.pixels());
        let planes = channels * images.len() * slots;
        let mut parity = Parity::new(self);
        for c in 0..channels {
            for (i, image) in images.clone().enumerate() {
                parity.load_padded(&x[(image * channels + c) * pixels..][..pixels]);
                // Tile (ty, tx) reads padded rows 2ty + k, columns 2tx + j: parity (k % 2, j % 2)
                // at slot + (k / 2)·(tw + 1) + j / 2.
                let input: [&[f32]; POINTS] = std::array::from_fn(|kj| {
                    let (k, j) = (kj / 4, kj % 4);
                    &parity.plane(k % 2, j % 2)[(k / 2) * (tw + 1) + j / 2..][..slots]
                });
                let mut out = rows::<POINTS>(v, planes, (c * images.len() + i) * slots, slots);
                vectorized(|| {
                    map(out.each_mut().map(|o| &mut **o), input, input_tile);
                });
            }
        }
    }

    /// `Y = Aᵀ M A` of the products `m[point][channel][slot]` into the 2×2 output tiles of
    /// `images` images (`out`, `channels` planes each), dropping positions past the image's
    /// edge and the extra slots.
    fn transform_output(&self, m: &[f32], channels: usize, images: usize, out: &mut [f32]) {
        let (tw, w) = (self.tiles[1], self.shape.input[1]);
        let (slots, pixels) = (self.slots(), self.pixels());
        let planes = channels * images * slots;
        let mut y = pool::scratch(4 * slots);
        for c in 0..channels {
            for image in 0..images {
                let slot = (c * images + image) * slots;
                let input: [&[f32]; POINTS] =
                    std::array::from_fn(|p| &m[p * planes + slot..][..slots]);
                vectorized(|| {
                    map(rows(&mut y, slots, 0, slots), input, output_tile);
                });
                let plane = &mut out[(image * channels + c) * pixels..][..pixels];
                for (row, line) in plane.chunks_mut(w).enumerate() {
                    let (ty, k) = (row / 2, row % 2);
                    let at = |j: usize| &y[(2 * k + j) * slots + ty * (tw + 1)..][..tw];
                    for ((pair, left), right) in line.chunks_mut(2).zip(at(0)).zip(at(1)) {
                        pair[0] = *left;
                        if let Some(second) = pair.get_mut(1) {
                            *second = *right;
                        }
                    }
                }
            }
        }
    }

    /// `A dY Aᵀ` of the output gradient's 2×2 tiles of the group's images `images` (in `grad`,
    /// `channels` planes each) into `dm[point][channel][slot]`; positions past the edge and the
    /// extra slots are zeros.
    fn transform_output_grad(
        &self,
        grad: &[f32],
        channels: usize,
        images: Range<usize>,
        dm: &mut [f32],
    ) {
        let (slots, pixels) = (self.slots(), self.pixels());
        let planes = channels * images.len() * slots;
        let mut parity = Parity::new(self);
        for c in 0..channels {
            for (i, image) in images.clone().enumerate() {
                parity.load(&grad[(image * channels + c) * pixels..][..pixels]);
                let input: [&[f32]; 4] =
                    std::array::from_fn(|rc| &parity.plane(rc / 2, rc % 2)[..slots]);
                let mut out = rows::<POINTS>(dm, planes, (c * images.len() + i) * slots, slots);
                vectorized(|| {
                    map(out.each_mut().map(|o| &mut **o), input, output_grad_tile);
                });
            }
        }
    }
}

/// One image plane split by the parity of its rows and columns into four arrays of
/// `(tiles rows + 1) × (tile columns + 1)` (plus one zero): `plane(r, c)[ty·(tw + 1) + tx]` is
/// the pixel at row `2ty + r`, column `2tx + c` (of the plane padded by one on every side for
/// [`Parity::load_padded`]), zero outside the image.
struct Parity {
    /// Values of a row of each array: tile columns + 1.
    width: usize,
    /// Values of each array.
    len: usize,
    values: Scratch,
    /// The image's `[height, width]`.
    image: [usize; 2],
}

impl Parity {
    fn new(winograd: &Winograd) -> Self {
        let [th, tw] = winograd.tiles;
        let len = (th + 1) * (tw + 1) + 1;
        Self {
            width: tw + 1,
            len,
            values: pool::scratch(4 * len),
            image: winograd.shape.input,
        }
    }

    fn plane(&self, row_parity: usize, column_parity: usize) -> &[f32] {
        &self.values[(2 * row_parity + column_parity) * self.len..][..self.len]
    }

    /// `plane` (unpadded).
    fn load(&mut self, plane: &[f32]) {
        self.fill(plane, 0);
    }

    /// `plane` padded by one zero row and column on every side.
    fn load_padded(&mut self, plane: &[f32]) {
        self.fill(plane, 1);
    }

    fn fill(&mut self, plane: &[f32], pad: usize) {
        self.values.fill(0.0);
        let (width, len) = (self.width, self.len);
        for (y, line) in plane.chunks_exact(self.image[1]).enumerate() {
            let y = y + pad;
            let row = (y / 2) * width;
            let (even, odd) = {
                let (first, second) = self.values.split_at_mut(2 * len);
                let rows = if y.is_multiple_of(2) { first } else { second };
                let (even, odd) = rows.split_at_mut(len);
                (&mut even[row..][..width], &mut odd[row..][..width])
            };
            // Column x lands at x + pad: with padding, even columns of the image are odd ones.
            let (first, second) = if pad == 0 { (even, odd) } else { (odd, even) };
            let second = &mut second[pad..];
            for ((pair, a), b) in line.chunks(2).zip(first.iter_mut()).zip(second.iter_mut()) {
                *a = pair[0];
                if let Some(v) = pair.get(1) {
                    *b = *v;
                }
            }
        }
    }
}

/// `U = G g Gᵀ` of every kernel of `weight` (`[Cout, Cin, 3, 3]`), as `u[point][cout][cin]`.
fn transform_weight(weight: &[f32], cout: usize, cin: usize) -> Scratch {
    let mut u = pool::scratch(POINTS * cout * cin);
    for (pair, g) in weight.chunks_exact(9).enumerate() {
        for (p, value) in kernel_tile(g).into_iter().enumerate() {
            u[p * cout * cin + pair] = value;
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::{close, values};
    use crate::kernels::conv::{Products, forward_with, input_grad_with, weight_grad_with};
    use proptest::prelude::*;

    /// A 3×3, stride-1, padding-1 convolution.
    fn same_3x3(batch: usize, [cin, cout]: [usize; 2], input: [usize; 2]) -> ConvShape {
        ConvShape {
            batch,
            in_channels: cin,
            out_channels: cout,
            input,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            padding_end: [1, 1],
            dilation: [1, 1],
        }
    }

    fn wide(values: Vec<f32>) -> Vec<f64> {
        values.into_iter().map(f64::from).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn agrees_with_im2col(
            (batch, cin, cout) in (1usize..5, 1usize..7, 1usize..7),
            (h, w) in (1usize..12, 1usize..12),
            groups in 1usize..4,
            seed in 0u64..100,
        ) {
            let shape = same_3x3(batch, [cin, cout], [h, w]);
            let x = values(shape.input_len(), seed);
            let weight = values(shape.weight_len(), seed + 1);
            let g = values(shape.output_len(), seed + 2);
            let (ours, im2col) = (Products::Winograd(groups), Products::Batched);
            close(
                &forward_with(&shape, &x, &weight, ours),
                &wide(forward_with(&shape, &x, &weight, im2col)),
            )?;
            close(
                &input_grad_with(&shape, &weight, &g, ours),
                &wide(input_grad_with(&shape, &weight, &g, im2col)),
            )?;
            close(
                &weight_grad_with(&shape, &x, &g, ours),
                &wide(weight_grad_with(&shape, &x, &g, im2col)),
            )?;
        }
    }

    #[test]
    fn chunks_cover_every_image_once() {
        let chunks = |channels: usize, size: usize| {
            let shape = same_3x3(3, [channels, channels], [size, size]);
            Winograd::new(&shape).chunks(3).collect::<Vec<_>>()
        };
        assert_eq!(chunks(512, 40), vec![0..1, 1..2, 2..3]);
        assert_eq!(chunks(8, 4), vec![0..3]);
    }
}
