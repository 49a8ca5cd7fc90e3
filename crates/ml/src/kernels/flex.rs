//! The kernels on burn-flex tensors: contiguous f32 slices in, a new tensor out.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ConvOptions;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{Shape, TensorData};

use super::concat::{self, CatShape};
use super::conv::{self, ConvShape};
use super::max_pool::{self, PoolShape};
use super::norm::{self, NormShape};
use super::upsample;
use super::{TrainGradients, TrainKernels};
use crate::models::activation::{Activation, silu_grad_in_place, silu_values};
use crate::nhwc::Window;

impl TrainKernels for Flex {
    fn conv2d_gemm(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        let shape = conv_shape(&x, &weight, &options);
        let [oh, ow] = shape.output();
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let out = conv::forward(&shape, x.storage(), weight.storage());
        tensor(out, [shape.batch, shape.out_channels, oh, ow])
    }

    fn batch_norm_fused(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        activation: Activation,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (shape, dims) = (norm_shape(&x), x.shape());
        let (x, gamma, beta) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            beta.to_contiguous(),
        );
        let result = norm::forward(
            &shape,
            x.storage(),
            gamma.storage(),
            beta.storage(),
            epsilon,
            activation,
        );
        (
            tensor(result.output, dims),
            tensor(result.mean, [shape.channels]),
            tensor(result.variance, [shape.channels]),
        )
    }

    fn silu_fused(x: FlexTensor) -> FlexTensor {
        let (dims, x) = (x.shape(), x.to_contiguous());
        tensor(silu_values(x.storage()), dims)
    }

    fn max_pool2d_fused(x: FlexTensor, window: Window) -> FlexTensor {
        let shape = pool_shape(&x, window);
        let [oh, ow] = shape.output();
        let [n, c, _, _] = x.shape().dims();
        let x = x.to_contiguous();
        tensor(max_pool::forward(&shape, x.storage()), [n, c, oh, ow])
    }

    fn upsample_nearest_fused(x: FlexTensor, factor: usize) -> FlexTensor {
        let [n, c, h, w] = x.shape().dims();
        let x = x.to_contiguous();
        let out = upsample::forward(x.storage(), n * c, [h, w], factor);
        tensor(out, [n, c, h * factor, w * factor])
    }

    fn narrow_fused(x: FlexTensor, dim: usize, start: usize, length: usize) -> FlexTensor {
        let dims = x.shape();
        let shape = narrowing(&dims, dim, start, length);
        let x = x.to_contiguous();
        let mut out = dims;
        out[dim] = length;
        tensor(concat::split(&shape, x.storage(), 1), out)
    }

    fn cat2_fused(a: FlexTensor, b: FlexTensor, dim: usize) -> FlexTensor {
        concatenate(vec![a, b], dim)
    }

    fn cat3_fused(a: FlexTensor, b: FlexTensor, c: FlexTensor, dim: usize) -> FlexTensor {
        concatenate(vec![a, b, c], dim)
    }

    fn cat4_fused(
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        d: FlexTensor,
        dim: usize,
    ) -> FlexTensor {
        concatenate(vec![a, b, c, d], dim)
    }
}

/// The concatenation of `tensors` along `dim` by [`concat::forward`].
fn concatenate(tensors: Vec<FlexTensor>, dim: usize) -> FlexTensor {
    let shapes: Vec<Shape> = tensors.iter().map(|t| t.shape()).collect();
    let shape = cat_shape(&shapes, dim);
    let tensors: Vec<FlexTensor> = tensors.into_iter().map(|t| t.to_contiguous()).collect();
    let inputs: Vec<&[f32]> = tensors.iter().map(|t| t.storage()).collect();
    let mut dims = shapes[0].clone();
    dims[dim] = shape.sizes.iter().sum();
    tensor(concat::forward(&shape, &inputs), dims)
}

impl TrainGradients for Flex {
    fn conv2d_gemm_backward(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        options: ConvOptions<2>,
        [input, weights]: [bool; 2],
    ) -> [Option<FlexTensor>; 2] {
        let shape = conv_shape(&x, &weight, &options);
        let grad = grad.to_contiguous();
        let dx = input.then(|| {
            let weight = weight.to_contiguous();
            let [h, w] = shape.input;
            let dx = conv::input_grad(&shape, weight.storage(), grad.storage());
            tensor(dx, [shape.batch, shape.in_channels, h, w])
        });
        let dw = weights.then(|| {
            let x = x.to_contiguous();
            let [kh, kw] = shape.kernel;
            let dw = conv::weight_grad(&shape, x.storage(), grad.storage());
            tensor(dw, [shape.out_channels, shape.in_channels, kh, kw])
        });
        [dx, dw]
    }

    fn batch_norm_fused_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        activation: Activation,
        grad: FlexTensor,
    ) -> [FlexTensor; 3] {
        let shape = norm_shape(&x);
        let [x, gamma, beta, mean, variance] =
            [x, gamma, beta, mean, variance].map(|t| t.to_contiguous());
        let saved = norm::Saved {
            x: x.storage(),
            gamma: gamma.storage(),
            beta: beta.storage(),
            mean: mean.storage(),
            variance: variance.storage(),
            epsilon,
            activation,
        };
        let mut grad = owned_contiguous(grad);
        let [dgamma, dbeta] = norm::backward(&shape, &saved, grad.storage_mut());
        [
            grad,
            tensor(dgamma, [shape.channels]),
            tensor(dbeta, [shape.channels]),
        ]
    }

    fn silu_fused_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let (x, mut grad) = (x.to_contiguous(), owned_contiguous(grad));
        silu_grad_in_place(x.storage(), grad.storage_mut());
        grad
    }

    fn max_pool2d_fused_backward(x: FlexTensor, grad: FlexTensor, window: Window) -> FlexTensor {
        let (shape, dims) = (pool_shape(&x, window), x.shape());
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        tensor(
            max_pool::backward(&shape, x.storage(), grad.storage()),
            dims,
        )
    }

    fn upsample_nearest_fused_backward(grad: FlexTensor, factor: usize) -> FlexTensor {
        let [n, c, oh, ow] = grad.shape().dims();
        let (h, w) = (oh / factor, ow / factor);
        let grad = grad.to_contiguous();
        let dx = upsample::backward(grad.storage(), n * c, [h, w], factor);
        tensor(dx, [n, c, h, w])
    }

    fn narrow_fused_backward(
        grad: FlexTensor,
        input: Shape,
        dim: usize,
        start: usize,
    ) -> FlexTensor {
        let shape = narrowing(&input, dim, start, grad.shape()[dim]);
        let grad = grad.to_contiguous();
        tensor(concat::embed(&shape, grad.storage(), 1), input)
    }

    fn cat_fused_backward(
        grad: FlexTensor,
        dim: usize,
        sizes: &[usize],
        wanted: &[bool],
    ) -> Vec<Option<FlexTensor>> {
        let dims = grad.shape();
        let shapes: Vec<Shape> = sizes
            .iter()
            .map(|&size| {
                let mut part = dims.clone();
                part[dim] = size;
                part
            })
            .collect();
        let shape = cat_shape(&shapes, dim);
        let grad = grad.to_contiguous();
        shapes
            .into_iter()
            .zip(wanted)
            .enumerate()
            .map(|(i, (part, &wanted))| {
                wanted.then(|| tensor(concat::split(&shape, grad.storage(), i), part))
            })
            .collect()
    }
}

/// The geometry of concatenating tensors of `shapes` along `dim`.
///
/// # Panics
/// When the shapes differ in rank or along another axis (burn's `cat` refuses them too).
fn cat_shape(shapes: &[Shape], dim: usize) -> CatShape {
    let first = &shapes[0];
    for s in shapes {
        assert_eq!(s.num_dims(), first.num_dims(), "cat: ranks differ");
        for axis in (0..s.num_dims()).filter(|&a| a != dim) {
            assert_eq!(s[axis], first[axis], "cat: shapes differ along axis {axis}");
        }
    }
    CatShape {
        outer: (0..dim).map(|a| first[a]).product(),
        sizes: shapes.iter().map(|s| s[dim]).collect(),
        inner: (dim + 1..first.num_dims()).map(|a| first[a]).product(),
    }
}

/// A narrowing of `dims` along `dim` as the middle part of a concatenation of three.
fn narrowing(dims: &Shape, dim: usize, start: usize, length: usize) -> CatShape {
    let mut parts = [dims.clone(), dims.clone(), dims.clone()];
    for (part, size) in parts
        .iter_mut()
        .zip([start, length, dims[dim] - start - length])
    {
        part[dim] = size;
    }
    cat_shape(&parts, dim)
}

/// The geometry of max-pooling `x` (`[N, C, H, W]`) over `window`.
fn pool_shape(x: &FlexTensor, window: Window) -> PoolShape {
    let [n, c, h, w] = x.shape().dims();
    PoolShape {
        planes: n * c,
        input: [h, w],
        window,
    }
}

/// The geometry of convolving `x` with `weight`.
///
/// # Panics
/// When the channels disagree or the options ask for groups (callers check [`super::conv2d`]'s
/// conditions first).
fn conv_shape(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> ConvShape {
    let [batch, in_channels, h, w] = x.shape().dims();
    let [out_channels, weight_in, kh, kw] = weight.shape().dims();
    assert_eq!(options.groups, 1, "conv2d_gemm: groups");
    assert_eq!(in_channels, weight_in, "conv2d_gemm: input channels");
    ConvShape {
        batch,
        in_channels,
        out_channels,
        input: [h, w],
        kernel: [kh, kw],
        stride: options.stride,
        padding: options.padding_begin(),
        padding_end: options.padding_end(),
        dilation: options.dilation,
    }
}

/// The geometry of a BatchNorm input `[N, C, …]`.
fn norm_shape(x: &FlexTensor) -> NormShape {
    let dims = x.shape();
    let (batch, channels) = (dims[0], dims[1]);
    NormShape {
        batch,
        channels,
        pixels: dims.num_elements() / (batch * channels).max(1),
    }
}

/// `t` contiguous and holding its buffer alone (copied only when another handle shares it), for
/// the backward kernels that overwrite the incoming gradient with the outgoing one: autodiff
/// hands each step a gradient nothing else reads, so this saves an allocation and its zeroing.
fn owned_contiguous(t: FlexTensor) -> FlexTensor {
    let contiguous = t.to_contiguous();
    drop(t);
    contiguous
}

fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}
