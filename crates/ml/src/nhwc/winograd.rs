//! 3×3, stride-1, padding-1 convolutions of channels-last maps by Winograd's F(2×2, 3×3) (tile
//! arithmetic in [`crate::winograd`]). Each image's tile rows go in chunks of about
//! [`CHUNK_TILES`] tiles over the threads; a chunk transforms its input tiles (whole channel runs
//! at a time, so the transform is vectorised over channels), runs the 16 products
//! `M_p[tiles, Cout] = V_p[tiles, Cin] · U_p[Cin, Cout]`, writes the transformed-back 2×2 tiles
//! into its output rows and hands them to the layer's epilogue while they are in cache.

use std::ops::Range;

use rayon::prelude::*;

use super::FeatureMap;
use crate::gemm::{MatRef, matmul};
use crate::pool;
use crate::simd::vectorized;
use crate::winograd::{POINTS, input_tile, kernel_tile, map, output_tile, rows};

/// Tiles per chunk (at least; a chunk is whole tile rows of one image).
const CHUNK_TILES: usize = 64;

/// A 3×3 convolution's kernels transformed for F(2×2, 3×3): `u[point][cin][cout]`.
#[derive(Debug, Clone)]
pub(super) struct WinogradKernels {
    u: Vec<f32>,
    in_channels: usize,
    out_channels: usize,
}

impl WinogradKernels {
    /// From a `[Cout, Cin, 3, 3]` weight.
    pub fn new(weight: &[f32], out_channels: usize, in_channels: usize) -> Self {
        let mut u = vec![0.0; POINTS * in_channels * out_channels];
        for (pair, g) in weight.chunks_exact(9).enumerate() {
            let (co, ci) = (pair / in_channels, pair % in_channels);
            for (p, value) in kernel_tile(g).into_iter().enumerate() {
                u[(p * in_channels + ci) * out_channels + co] = value;
            }
        }
        Self {
            u,
            in_channels,
            out_channels,
        }
    }

    /// The convolution (padding 1, no bias) of the channels `channels` of `x` into `out` (same
    /// height and width, `Cout` channels), then `finish(rows, first_pixel)` on each chunk's output
    /// pixels, `first_pixel` the index of its first pixel in `out`.
    pub fn forward(
        &self,
        x: &FeatureMap,
        channels: Range<usize>,
        out: &mut FeatureMap,
        finish: impl Fn(&mut [f32], usize) + Sync,
    ) {
        let (h, w, cout) = (x.height, x.width, self.out_channels);
        let [th, tw] = [h.div_ceil(2), w.div_ceil(2)];
        if h * w * cout == 0 || self.in_channels == 0 {
            return;
        }
        let rows_per_chunk = CHUNK_TILES.div_ceil(tw).min(th);
        out.data
            .par_chunks_mut(h * w * cout)
            .enumerate()
            .flat_map(|(b, image)| {
                image
                    .par_chunks_mut(2 * rows_per_chunk * w * cout)
                    .enumerate()
                    .map(move |(j, rows)| (b, j * rows_per_chunk, rows))
            })
            .for_each(|(b, first_tile_row, rows)| {
                let tile_rows = first_tile_row..(first_tile_row + rows_per_chunk).min(th);
                self.chunk(x, &channels, b, tile_rows, rows);
                finish(rows, (b * h + 2 * first_tile_row) * w);
            });
    }

    /// The output rows `out` of image `b` from its tile rows `tile_rows`.
    fn chunk(
        &self,
        x: &FeatureMap,
        channels: &Range<usize>,
        b: usize,
        tile_rows: Range<usize>,
        out: &mut [f32],
    ) {
        let (cin, cout) = (self.in_channels, self.out_channels);
        let (h, w) = (x.height, x.width);
        let tw = w.div_ceil(2);
        let tiles = tile_rows.len() * tw;
        let mut v = pool::scratch(POINTS * tiles * cin);
        let mut m = pool::scratch(POINTS * tiles * cout);
        let mut zeros = pool::scratch(cin);
        zeros.fill(0.0);
        let (data, zeros): (&[f32], &[f32]) = (&x.data, &zeros);
        let pixel = move |iy: usize, ix: usize| {
            if iy < h && ix < w {
                &data[((b * h + iy) * w + ix) * x.channels + channels.start..][..cin]
            } else {
                zeros
            }
        };
        for (t, (ty, tx)) in tile_rows
            .clone()
            .flat_map(|ty| (0..tw).map(move |tx| (ty, tx)))
            .enumerate()
        {
            // Input rows 2ty − 1 … 2ty + 2 and columns 2tx − 1 … 2tx + 2 (wrapping below zero
            // reads as padding).
            let input: [&[f32]; POINTS] = std::array::from_fn(|kj| {
                let (k, j) = (kj / 4, kj % 4);
                pixel((2 * ty + k).wrapping_sub(1), (2 * tx + j).wrapping_sub(1))
            });
            let mut out = rows::<POINTS>(&mut v, tiles * cin, t * cin, cin);
            vectorized(|| {
                let out = out.each_mut().map(|o| &mut **o);
                map(out, input, input_tile);
            });
        }
        for (p, m) in m.chunks_mut(tiles * cout).enumerate() {
            let v = MatRef::dense(&v[p * tiles * cin..][..tiles * cin], tiles, cin);
            let u = MatRef::dense(&self.u[p * cin * cout..][..cin * cout], cin, cout);
            matmul(m, v, u, false);
        }
        let mut y = pool::scratch(4 * cout);
        let first_row = 2 * tile_rows.start;
        for (t, (ty, tx)) in tile_rows
            .flat_map(|ty| (0..tw).map(move |tx| (ty, tx)))
            .enumerate()
        {
            let input: [&[f32]; POINTS] =
                std::array::from_fn(|p| &m[(p * tiles + t) * cout..][..cout]);
            vectorized(|| map(rows(&mut y, cout, 0, cout), input, output_tile));
            for (i, values) in y.chunks(cout).enumerate() {
                let (oy, ox) = (2 * ty + i / 2, 2 * tx + i % 2);
                if oy < h && ox < w {
                    out[((oy - first_row) * w + ox) * cout..][..cout].copy_from_slice(values);
                }
            }
        }
    }
}
