//! Convolution as im2col + gemm on channels-last data, with the bias, an optional residual and
//! the activation applied to each output tile while it is still in cache.

use std::ops::Range;

use burn::nn::conv::Conv2d;
use rayon::prelude::*;

use super::winograd::WinogradKernels;
use super::{FeatureMap, Window, tensor_values};
use crate::error::MlError;
use crate::gemm::{MatRef, matmul};
use crate::models::activation::silu_one;
use crate::pool;
use crate::winograd::{self, MIN_WIDTH};

/// Output rows (pixels) per parallel tile: its im2col block stays within a core's L2 for the
/// kernel sizes of our models, and the weights packed once per tile cost little next to its work.
const TILE_ROWS: usize = 256;
/// Below this many output pixels the layer is one product that gemm itself splits over threads
/// (deep layers: few pixels, large weights that should be packed once).
const SINGLE_PRODUCT_ROWS: usize = 2 * TILE_ROWS;
pub use crate::models::activation::Activation;

/// A convolution (groups 1, dilation 1) with its weight laid out for channels-last im2col:
/// `[kh · kw · in_channels, out_channels]`, row index `(ky · kw + kx) · in_channels + c`.
#[derive(Debug, Clone)]
pub struct ConvNhwc {
    in_channels: usize,
    out_channels: usize,
    window: Window,
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// The kernels transformed for Winograd's F(2×2, 3×3), when the layer runs by it.
    winograd: Option<WinogradKernels>,
}

impl ConvNhwc {
    /// The same convolution as burn's `conv` (BatchNorm already folded into it, if any).
    pub fn from_burn(conv: &Conv2d) -> Result<Self, MlError> {
        let [out_channels, in_channels, kh, kw] = conv.weight.dims();
        if conv.groups != 1 || conv.dilation != [1, 1] {
            return Err(MlError::InvalidConfig(
                "channels-last convolution: only groups 1 and dilation 1".into(),
            ));
        }
        let window = Window::new([kh, kw], conv.stride, &conv.padding, "convolution")?;
        let source = tensor_values(conv.weight.val())?;
        let mut weight = vec![0.0f32; source.len()];
        for o in 0..out_channels {
            for c in 0..in_channels {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let from = ((o * in_channels + c) * kh + ky) * kw + kx;
                        let to = ((ky * kw + kx) * in_channels + c) * out_channels + o;
                        weight[to] = source[from];
                    }
                }
            }
        }
        let winograd = (winograd::fits(window.kernel, window.stride, window.padding)
            && in_channels.min(out_channels) >= winograd::MIN_CHANNELS)
            .then(|| WinogradKernels::new(&source, out_channels, in_channels));
        let bias = match &conv.bias {
            Some(bias) => tensor_values(bias.val())?,
            None => vec![0.0; out_channels],
        };
        Ok(Self {
            in_channels,
            out_channels,
            window,
            weight,
            bias,
            winograd,
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// `activation(conv(x) + bias + residual)` over all channels of `x`.
    pub fn forward(
        &self,
        x: &FeatureMap,
        activation: Activation,
        residual: Option<&FeatureMap>,
    ) -> FeatureMap {
        self.forward_channels(x, 0..x.channels, activation, residual)
    }

    /// Like [`ConvNhwc::forward`] over the channel range `channels` of `x` (a split without a copy).
    ///
    /// # Panics
    /// When the channel count or the residual's shape does not fit the convolution.
    pub fn forward_channels(
        &self,
        x: &FeatureMap,
        channels: Range<usize>,
        activation: Activation,
        residual: Option<&FeatureMap>,
    ) -> FeatureMap {
        assert_eq!(channels.len(), self.in_channels, "conv input channels");
        assert!(channels.end <= x.channels, "conv channel range");
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let (out_h, out_w) = self.window.output(x.height, x.width);
        let mut out = FeatureMap::scratch(x.batch, out_h, out_w, self.out_channels);
        if let Some(r) = residual {
            assert_eq!(r.shape(), out.shape(), "residual shape");
        }
        let rows = out.pixels();
        let k = kh * kw * self.in_channels;
        let n = self.out_channels;
        let weight = MatRef::dense(&self.weight, k, n);
        let pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && self.window.padding == [0; 4];
        let geometry = Geometry {
            x,
            channels: channels.clone(),
            out_w,
            out_hw: out_h * out_w,
            window: self.window,
        };
        let finish = |tile: &mut [f32], first_row: usize| {
            let res = residual.map(|r| &r.data[first_row * n..first_row * n + tile.len()]);
            epilogue(tile, &self.bias, res, activation);
        };
        if let Some(winograd) = self.winograd.as_ref().filter(|_| x.width >= MIN_WIDTH) {
            winograd.forward(x, channels, &mut out, finish);
            return out;
        }
        if rows <= SINGLE_PRODUCT_ROWS {
            if pointwise {
                matmul(&mut out.data, x.rows(channels, 0..rows), weight, true);
            } else {
                let mut cols = pool::scratch(rows * k);
                cols.par_chunks_mut(k * 64)
                    .enumerate()
                    .for_each(|(i, block)| geometry.im2col(block, i * 64));
                matmul(&mut out.data, MatRef::dense(&cols, rows, k), weight, true);
            }
            out.data
                .par_chunks_mut(TILE_ROWS * n)
                .enumerate()
                .for_each(|(i, tile)| finish(tile, i * TILE_ROWS));
        } else {
            out.data
                .par_chunks_mut(TILE_ROWS * n)
                .enumerate()
                .for_each_init(Vec::new, |cols, (i, tile)| {
                    let first = i * TILE_ROWS;
                    let count = tile.len() / n;
                    if pointwise {
                        matmul(
                            tile,
                            x.rows(channels.clone(), first..first + count),
                            weight,
                            false,
                        );
                    } else {
                        cols.resize(count * k, 0.0);
                        geometry.im2col(cols, first);
                        matmul(tile, MatRef::dense(cols, count, k), weight, false);
                    }
                    finish(tile, first);
                });
        }
        out
    }
}

/// What im2col needs to know about the input and the output grid.
struct Geometry<'a> {
    x: &'a FeatureMap,
    channels: Range<usize>,
    out_w: usize,
    out_hw: usize,
    window: Window,
}

impl Geometry<'_> {
    /// Fills `cols` (whole rows of `kh · kw · channels`) with the patches of the output pixels
    /// starting at `first_row`; taps outside the image are zero.
    fn im2col(&self, cols: &mut [f32], first_row: usize) {
        let x = self.x;
        let c = self.channels.len();
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let [pt, pl, _, _] = self.window.padding;
        let row_len = kh * kw * c;
        for (i, row) in cols.chunks_exact_mut(row_len).enumerate() {
            let p = first_row + i;
            let (b, rem) = (p / self.out_hw, p % self.out_hw);
            let (oy, ox) = (rem / self.out_w, rem % self.out_w);
            let ix0 = (ox * sw).wrapping_sub(pl);
            for ky in 0..kh {
                let iy = (oy * sh + ky).wrapping_sub(pt);
                let taps = &mut row[ky * kw * c..(ky + 1) * kw * c];
                if iy >= x.height {
                    taps.fill(0.0);
                    continue;
                }
                let line = (b * x.height + iy) * x.width;
                // All of the kernel row inside the image and every channel taken: the taps are
                // one contiguous run of the input (the common case, one copy instead of `kw`).
                if c == x.channels && ix0 < x.width && ix0 + kw <= x.width {
                    let start = (line + ix0) * c;
                    taps.copy_from_slice(&x.data[start..start + kw * c]);
                    continue;
                }
                for (kx, dst) in taps.chunks_exact_mut(c).enumerate() {
                    let ix = ix0.wrapping_add(kx);
                    if ix < x.width {
                        let start = (line + ix) * x.channels;
                        dst.copy_from_slice(
                            &x.data[start + self.channels.start..start + self.channels.end],
                        );
                    } else {
                        dst.fill(0.0);
                    }
                }
            }
        }
    }
}

/// `tile[r][c] = activation(tile[r][c] + bias[c] + residual[r][c])`, vectorised over channels.
fn epilogue(tile: &mut [f32], bias: &[f32], residual: Option<&[f32]>, activation: Activation) {
    let arch = pulp::Arch::new();
    match activation {
        Activation::Identity => arch.dispatch(Epilogue(tile, bias, residual, |v: f32| v)),
        Activation::Relu => arch.dispatch(Epilogue(tile, bias, residual, |v: f32| v.max(0.0))),
        Activation::Silu => arch.dispatch(Epilogue(tile, bias, residual, silu_one)),
    }
}

/// The epilogue as a pulp kernel (see [`crate::models::activation::Map`]).
struct Epilogue<'a, F>(&'a mut [f32], &'a [f32], Option<&'a [f32]>, F);

impl<F: Fn(f32) -> f32> pulp::WithSimd for Epilogue<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Epilogue(tile, bias, residual, f) = self;
        let width = bias.len();
        match residual {
            Some(residual) => {
                for (row, res) in tile
                    .chunks_exact_mut(width)
                    .zip(residual.chunks_exact(width))
                {
                    for ((v, b), r) in row.iter_mut().zip(bias).zip(res) {
                        *v = f(*v + b + r);
                    }
                }
            }
            None => {
                for row in tile.chunks_exact_mut(width) {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v = f(*v + b);
                    }
                }
            }
        }
    }
}
