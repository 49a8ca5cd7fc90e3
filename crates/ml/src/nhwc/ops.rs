//! The parameter-light layers around the convolutions: max pooling, global average pooling, a
//! linear head, channel concatenation and nearest-neighbour upsampling.

use burn::nn::Linear;
use burn::nn::pool::MaxPool2d;
use rayon::prelude::*;

use super::{FeatureMap, Window, tensor_values};
use crate::error::MlError;
use crate::gemm::{MatRef, matmul};

/// Max pooling (dilation 1, floor mode); padded taps never win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPoolNhwc {
    window: Window,
}

impl MaxPoolNhwc {
    /// The same pooling as burn's `pool`.
    pub fn from_burn(pool: &MaxPool2d) -> Result<Self, MlError> {
        if pool.dilation != [1, 1] || pool.ceil_mode {
            return Err(MlError::InvalidConfig(
                "channels-last max pooling: only dilation 1 in floor mode".into(),
            ));
        }
        Ok(Self {
            window: Window::new(pool.kernel_size, pool.stride, &pool.padding, "max pooling")?,
        })
    }

    /// Pools `x`.
    pub fn forward(&self, x: &FeatureMap) -> FeatureMap {
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let [top, left, _, _] = self.window.padding;
        let (out_h, out_w) = self.window.output(x.height, x.width);
        let c = x.channels;
        let mut out = FeatureMap::scratch(x.batch, out_h, out_w, c);
        out.fill_rows(|b, oy, row| {
            for (ox, pixel) in row.chunks_exact_mut(c).enumerate() {
                pixel.fill(f32::NEG_INFINITY);
                for ky in 0..kh {
                    let iy = (oy * sh + ky).wrapping_sub(top);
                    if iy >= x.height {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * sw + kx).wrapping_sub(left);
                        if ix >= x.width {
                            continue;
                        }
                        let start = ((b * x.height + iy) * x.width + ix) * c;
                        for (o, v) in pixel.iter_mut().zip(&x.data[start..start + c]) {
                            *o = o.max(*v);
                        }
                    }
                }
            }
        });
        out
    }
}

/// The mean of every channel over each image's pixels: `[batch, channels]`, row-major.
pub fn global_average_pool(x: &FeatureMap) -> Vec<f32> {
    let plane = x.height * x.width;
    let mut out = vec![0.0f32; x.batch * x.channels];
    for (b, sums) in out.chunks_exact_mut(x.channels).enumerate() {
        for pixel in
            x.data[b * plane * x.channels..(b + 1) * plane * x.channels].chunks_exact(x.channels)
        {
            for (s, v) in sums.iter_mut().zip(pixel) {
                *s += v;
            }
        }
        for s in sums.iter_mut() {
            *s /= plane as f32;
        }
    }
    out
}

/// A linear layer (`y = x·W + b`, burn's `[in, out]` weight).
#[derive(Debug, Clone)]
pub struct LinearNhwc {
    inputs: usize,
    outputs: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl LinearNhwc {
    /// The same layer as burn's `linear`.
    pub fn from_burn(linear: &Linear) -> Result<Self, MlError> {
        let [inputs, outputs] = linear.weight.dims();
        Ok(Self {
            inputs,
            outputs,
            weight: tensor_values(linear.weight.val())?,
            bias: match &linear.bias {
                Some(bias) => tensor_values(bias.val())?,
                None => vec![0.0; outputs],
            },
        })
    }

    /// `[rows, outputs]` for `x` = `[rows, inputs]`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let rows = x.len() / self.inputs;
        let mut out = vec![0.0f32; rows * self.outputs];
        matmul(
            &mut out,
            MatRef::dense(x, rows, self.inputs),
            MatRef::dense(&self.weight, self.inputs, self.outputs),
            false,
        );
        for row in out.chunks_exact_mut(self.outputs) {
            for (v, b) in row.iter_mut().zip(&self.bias) {
                *v += b;
            }
        }
        out
    }
}

/// `parts` side by side along the channels (same batch and size).
///
/// # Panics
/// When the parts differ in batch or size.
pub fn concat_channels(parts: &[&FeatureMap]) -> FeatureMap {
    let first = parts[0];
    let channels: usize = parts.iter().map(|p| p.channels).sum();
    let mut out = FeatureMap::scratch(first.batch, first.height, first.width, channels);
    for p in parts {
        assert_eq!(
            p.pixels(),
            first.pixels(),
            "concatenated maps differ in size"
        );
    }
    out.data
        .par_chunks_mut(channels * 64)
        .enumerate()
        .for_each(|(block, out_rows)| {
            for (i, pixel) in out_rows.chunks_exact_mut(channels).enumerate() {
                let p = block * 64 + i;
                let mut at = 0;
                for part in parts {
                    let c = part.channels;
                    pixel[at..at + c].copy_from_slice(&part.data[p * c..(p + 1) * c]);
                    at += c;
                }
            }
        });
    out
}

/// Nearest-neighbour upsampling by an integer `factor`.
pub fn upsample_nearest(x: &FeatureMap, factor: usize) -> FeatureMap {
    let (out_h, out_w, c) = (x.height * factor, x.width * factor, x.channels);
    let mut out = FeatureMap::scratch(x.batch, out_h, out_w, c);
    out.fill_rows(|b, oy, row| {
        let iy = oy / factor;
        for (ox, pixel) in row.chunks_exact_mut(c).enumerate() {
            let start = ((b * x.height + iy) * x.width + ox / factor) * c;
            pixel.copy_from_slice(&x.data[start..start + c]);
        }
    });
    out
}
