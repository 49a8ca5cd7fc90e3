//! The kernels on burn-flex tensors: contiguous f32 slices in, a new tensor out.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ConvOptions;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{Shape, TensorData};

use super::conv::{self, ConvShape};
use super::norm::{self, NormShape};
use super::{TrainGradients, TrainKernels};
use crate::models::activation::{Activation, silu_grad_in_place, silu_into};

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
        let mut out = vec![0.0; dims.num_elements()];
        silu_into(x.storage(), &mut out);
        tensor(out, dims)
    }
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
