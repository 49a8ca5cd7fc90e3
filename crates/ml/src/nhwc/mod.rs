//! Forward-only execution of BatchNorm-folded convolutional nets on channels-last (NHWC) data.
//!
//! burn-flex runs every convolution on NCHW tensors: it converts the input to NHWC on one
//! thread, builds im2col tiles, multiplies, scatters the result back to NCHW, and then bias,
//! activation and residual each take another pass over memory. On ResNet-18 inference that
//! overhead was ~45 % of the time next to the matrix products themselves. Serving keeps the
//! activations channels-last from the first layer to the last, so a pointwise convolution is a
//! single product on the activations as they lie, im2col copies whole channel runs, and each
//! output tile gets its bias, residual and activation while still in cache.
//!
//! Training stays on burn's tensors and autodiff (with our NCHW convolutions, `crate::kernels`);
//! the plans here are built from a trained model's folded weights and checked against burn's
//! forward in the tests.

mod classifier;
mod conv;
mod ops;
mod winograd;
mod yolo;

pub use classifier::ClassifierNhwc;
pub use conv::{Activation, ConvNhwc};
pub use ops::{LinearNhwc, MaxPoolNhwc, concat_channels, global_average_pool, upsample_nearest};
pub use yolo::YoloNhwc;

use burn::nn::PaddingConfig2d;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use crate::error::MlError;
use crate::gemm::MatRef;
use crate::pool;

/// A batch of feature maps, channels last: element `(b, y, x, c)` is at
/// `((b · height + y) · width + x) · channels + c`. Its buffer is recycled when dropped.
#[derive(Debug, PartialEq)]
pub struct FeatureMap {
    /// Images.
    pub batch: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Channels.
    pub channels: usize,
    /// Values.
    pub data: Vec<f32>,
}

impl Clone for FeatureMap {
    fn clone(&self) -> Self {
        let mut copy = Self::scratch(self.batch, self.height, self.width, self.channels);
        copy.data.copy_from_slice(&self.data);
        copy
    }
}

impl Drop for FeatureMap {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
    }
}

impl FeatureMap {
    /// A map whose values are unspecified: for outputs that are written in full.
    pub(crate) fn scratch(batch: usize, height: usize, width: usize, channels: usize) -> Self {
        Self {
            batch,
            height,
            width,
            channels,
            data: pool::take(batch * height * width * channels),
        }
    }

    /// All zeros.
    pub fn zeros(batch: usize, height: usize, width: usize, channels: usize) -> Self {
        Self {
            batch,
            height,
            width,
            channels,
            data: vec![0.0; batch * height * width * channels],
        }
    }

    /// `[batch, height, width, channels]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.batch, self.height, self.width, self.channels]
    }

    /// Pixels over the whole batch (rows of the `pixels × channels` matrix).
    pub fn pixels(&self) -> usize {
        self.batch * self.height * self.width
    }

    /// The channel range `channels` of the pixels `pixels` as a matrix view.
    pub(crate) fn rows(
        &self,
        channels: std::ops::Range<usize>,
        pixels: std::ops::Range<usize>,
    ) -> MatRef<'_> {
        let start = pixels.start * self.channels + channels.start;
        let end = (pixels.end * self.channels).max(start);
        MatRef::rows(
            &self.data[start..end],
            pixels.len(),
            channels.len(),
            self.channels,
        )
    }

    /// A copy of the channel range `channels`.
    pub fn channel_slice(&self, channels: std::ops::Range<usize>) -> Self {
        let mut out = Self::scratch(self.batch, self.height, self.width, channels.len());
        for (dst, src) in out
            .data
            .chunks_exact_mut(channels.len())
            .zip(self.data.chunks_exact(self.channels))
        {
            dst.copy_from_slice(&src[channels.clone()]);
        }
        out
    }

    /// From burn's NCHW layout.
    pub fn from_nchw(tensor: Tensor<4>) -> Result<Self, MlError> {
        let [batch, channels, height, width] = tensor.dims();
        let source = tensor_values(tensor)?;
        Ok(Self::from_nchw_values(
            &source, batch, channels, height, width,
        ))
    }

    /// From NCHW values (e.g. preprocessed images).
    pub fn from_nchw_values(
        source: &[f32],
        batch: usize,
        channels: usize,
        height: usize,
        width: usize,
    ) -> Self {
        let mut map = Self::scratch(batch, height, width, channels);
        let plane = height * width;
        for b in 0..batch {
            for c in 0..channels {
                let src = &source[(b * channels + c) * plane..(b * channels + c + 1) * plane];
                for (p, v) in src.iter().enumerate() {
                    map.data[(b * plane + p) * channels + c] = *v;
                }
            }
        }
        map
    }

    /// To burn's NCHW layout on `device`.
    pub fn to_nchw(&self, device: &Device) -> Tensor<4> {
        let plane = self.height * self.width;
        let mut values = vec![0.0f32; self.data.len()];
        for b in 0..self.batch {
            for (p, pixel) in self.data[b * plane * self.channels..(b + 1) * plane * self.channels]
                .chunks_exact(self.channels)
                .enumerate()
            {
                for (c, v) in pixel.iter().enumerate() {
                    values[(b * self.channels + c) * plane + p] = *v;
                }
            }
        }
        Tensor::from_data(
            TensorData::new(values, [self.batch, self.channels, self.height, self.width]),
            device,
        )
    }
}

/// Kernel, stride and padding of a sliding window (a convolution or a pooling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal step.
    pub stride: [usize; 2],
    /// Top, left, bottom, right.
    pub padding: [usize; 4],
}

impl Window {
    /// A window with burn's padding configuration (`Same` is refused: none of our models uses it).
    pub fn new(
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: &PaddingConfig2d,
        layer: &str,
    ) -> Result<Self, MlError> {
        let padding = match padding {
            PaddingConfig2d::Explicit(top, left, bottom, right) => [*top, *left, *bottom, *right],
            PaddingConfig2d::Valid => [0; 4],
            PaddingConfig2d::Same => {
                return Err(MlError::InvalidConfig(format!(
                    "channels-last {layer}: `Same` padding is not supported"
                )));
            }
        };
        Ok(Self {
            kernel,
            stride,
            padding,
        })
    }

    /// Whether the padded `height × width` input holds at least one window.
    pub fn fits(&self, height: usize, width: usize) -> bool {
        let [top, left, bottom, right] = self.padding;
        height + top + bottom >= self.kernel[0]
            && width + left + right >= self.kernel[1]
            && self.stride.iter().all(|&s| s > 0)
    }

    /// Output height and width over an input of `height × width`.
    pub fn output(&self, height: usize, width: usize) -> (usize, usize) {
        let [top, left, bottom, right] = self.padding;
        (
            (height + top + bottom - self.kernel[0]) / self.stride[0] + 1,
            (width + left + right - self.kernel[1]) / self.stride[1] + 1,
        )
    }
}

impl FeatureMap {
    /// Fills every image row in parallel: `fill(image, y, row)` with `row` the `width · channels`
    /// values of row `y` of image `image`.
    pub(crate) fn fill_rows(&mut self, fill: impl Fn(usize, usize, &mut [f32]) + Sync + Send) {
        let height = self.height.max(1);
        self.data
            .par_chunks_mut((self.width * self.channels).max(1))
            .enumerate()
            .for_each(|(i, row)| fill(i / height, i % height, row));
    }
}

/// The values of an f32 tensor, row-major.
pub fn tensor_values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, MlError> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| MlError::Weights(format!("reading a tensor: {e:?}")))
}

#[cfg(test)]
mod tests;
