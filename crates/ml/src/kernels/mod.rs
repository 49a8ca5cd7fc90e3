//! Our own kernels behind burn's backend-extension mechanism, for the operations where burn-flex's
//! generic implementation dominated a training step.
//!
//! burn-flex computes a convolution's input gradient as a transposed convolution and its weight
//! gradient as a convolution of the input with the output gradient (batch and channels swapped),
//! both through its general 3-D path with strided copies. Here both gradients and the forward are
//! one matrix product each over the whole batch ([`conv`]), registered with burn's autodiff graph
//! through a hand-written backward ([`autodiff`]). Other devices (CUDA, libtorch) keep burn's own
//! convolution.

mod autodiff;
mod conv;

pub(crate) use conv::channels_last;
mod flex;
mod norm;

use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Dispatch, DispatchDevice, backend_extension};
use burn::module::RunningState;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{DType, Tensor};

use crate::models::activation::Activation;

/// Operations of ours that the dispatch layer routes to the tensor's backend.
#[backend_extension(Flex, Autodiff)]
pub trait TrainKernels: burn::backend::Backend {
    /// A 2-D convolution without bias, groups 1, f32 (the caller checks [`conv2d`]'s conditions).
    fn conv2d_gemm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// BatchNorm of `x` (`[N, C, …]`, f32) with its own batch statistics, followed by
    /// `activation`: `(output, mean, biased variance)`.
    fn batch_norm_fused(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        activation: Activation,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `x · sigmoid(x)` of an f32 tensor.
    fn silu_fused(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The gradients behind [`TrainKernels`], called by their autodiff backward steps.
pub trait TrainGradients: burn::backend::Backend {
    /// The gradients of the convolution of `x` with `weight` with respect to `x` and to
    /// `weight`, given the output gradient `grad`; each computed only when `wanted`.
    fn conv2d_gemm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        wanted: [bool; 2],
    ) -> [Option<FloatTensor<Self>>; 2];

    /// The gradients `[dx, dγ, dβ]` of [`TrainKernels::batch_norm_fused`], given its inputs,
    /// the statistics it returned and the output gradient `grad`.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_fused_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        activation: Activation,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3];

    /// The gradient of [`TrainKernels::silu_fused`] at `x`, given the output gradient `grad`.
    fn silu_fused_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `conv.forward(x)`, through our kernels where they apply (f32 on the flex CPU backend, with or
/// without autodiff, groups 1, explicit or no padding), through burn's otherwise.
pub(crate) fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return conv.forward(x),
    };
    if conv.groups != 1 || x.dtype() != DType::F32 || !on_flex(&x) {
        return conv.forward(x);
    }
    let weight = conv.weight.val();
    if weight.dtype() != DType::F32 {
        return conv.forward(x);
    }
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, 1);
    let y = Tensor::from_dispatch(Dispatch::conv2d_gemm(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ));
    match &conv.bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.val().reshape([1, channels, 1, 1])
        }
        None => y,
    }
}

/// `activation(bn.forward(x))`; in training (autodiff device, layer not frozen) on flex in f32
/// as one kernel, updating the running statistics as burn's layer does.
pub(crate) fn batch_norm(bn: &BatchNorm, x: Tensor<4>, activation: Activation) -> Tensor<4> {
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    let gamma = bn.gamma.val();
    if !training || x.dtype() != DType::F32 || gamma.dtype() != DType::F32 || !on_flex(&x) {
        return activation.tensor(bn.forward(x));
    }
    let device = x.device();
    let (output, mean, variance) = Dispatch::batch_norm_fused(
        x.into_dispatch(),
        gamma.into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
        activation,
    );
    let update = |state: &RunningState<Tensor<1>>, batch: Tensor<1>| {
        let running = state
            .value_sync()
            .to_device(&device)
            .mul_scalar(1.0 - bn.momentum)
            .add(batch.detach().mul_scalar(bn.momentum));
        state.update(running.detach());
    };
    update(&bn.running_mean, Tensor::from_dispatch(mean));
    update(&bn.running_var, Tensor::from_dispatch(variance));
    Tensor::from_dispatch(output)
}

/// SiLU of a tensor that records a graph: our fused kernel on flex, burn's op elsewhere.
pub(crate) fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() != DType::F32 || !on_flex(&x) {
        return burn::tensor::activation::silu(x);
    }
    Tensor::from_dispatch(Dispatch::silu_fused(x.into_dispatch()))
}

/// Whether `x` lives on the flex backend, directly or under autodiff.
fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    match x.device().as_dispatch() {
        DispatchDevice::Flex(_) => true,
        DispatchDevice::Autodiff(inner) => matches!(**inner, DispatchDevice::Flex(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::BatchNormConfig;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution, Tensor, TensorData, Tolerance};

    use super::*;

    /// Forward and all three gradients of a convolution layer through our kernels, against
    /// burn's own convolution on the same autodiff device.
    fn check(config: Conv2dConfig, input: [usize; 4]) {
        let device = Device::flex().autodiff();
        let conv = config.init(&device);
        let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let ours = conv2d(&conv, x.clone());
        let reference = conv.forward(x.clone());
        ours.to_data()
            .assert_approx_eq::<f32>(&reference.to_data(), Tolerance::absolute(1e-4));
        let g = Tensor::<4>::random(reference.dims(), Distribution::Default, &device);
        let grads_ours = (ours * g.clone()).sum().backward();
        let grads_ref = (reference * g).sum().backward();
        let grad = |grads, t: &Tensor<4>| -> TensorData { t.grad(grads).unwrap().to_data() };
        grad(&grads_ours, &x)
            .assert_approx_eq::<f32>(&grad(&grads_ref, &x), Tolerance::absolute(1e-4));
        let weight = conv.weight.val();
        weight
            .grad(&grads_ours)
            .unwrap()
            .to_data()
            .assert_approx_eq::<f32>(
                &weight.grad(&grads_ref).unwrap().to_data(),
                Tolerance::absolute(1e-3),
            );
        if let Some(bias) = &conv.bias {
            let bias = bias.val();
            bias.grad(&grads_ours)
                .unwrap()
                .to_data()
                .assert_approx_eq::<f32>(
                    &bias.grad(&grads_ref).unwrap().to_data(),
                    Tolerance::absolute(1e-3),
                );
        }
    }

    #[test]
    fn layers_match_burns_convolution_and_its_gradients() {
        check(
            Conv2dConfig::new([3, 8], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
            [2, 3, 9, 11],
        );
        check(
            Conv2dConfig::new([5, 4], [1, 1]).with_bias(false),
            [3, 5, 6, 6],
        );
        check(
            Conv2dConfig::new([4, 6], [3, 3]).with_padding(PaddingConfig2d::Explicit(0, 1, 2, 1)),
            [1, 4, 7, 5],
        );
    }

    /// Output, the three gradients and the running statistics of a training BatchNorm and each
    /// activation through our kernel, against burn's layer and activation on the same autodiff
    /// device.
    #[test]
    fn batch_norm_matches_burns_layer() {
        for (activation, burns) in [
            (Activation::Identity, (|x| x) as fn(Tensor<4>) -> Tensor<4>),
            (Activation::Relu, burn::tensor::activation::relu),
            (Activation::Silu, burn::tensor::activation::silu),
        ] {
            let device = Device::flex().autodiff();
            let config = BatchNormConfig::new(6).with_momentum(0.3);
            let (ours_bn, burn_bn) = (config.init(&device), config.init(&device));
            let x = Tensor::<4>::random([3, 6, 5, 7], Distribution::Normal(2.0, 3.0), &device)
                .require_grad();
            let g = Tensor::<4>::random([3, 6, 5, 7], Distribution::Default, &device);
            let ours = batch_norm(&ours_bn, x.clone(), activation);
            let reference = burns(burn_bn.forward(x.clone()));
            let tolerance = Tolerance::absolute(1e-4);
            ours.to_data()
                .assert_approx_eq::<f32>(&reference.to_data(), tolerance);
            let grads_ours = (ours * g.clone()).sum().backward();
            let grads_ref = (reference * g).sum().backward();
            x.grad(&grads_ours)
                .unwrap()
                .to_data()
                .assert_approx_eq::<f32>(&x.grad(&grads_ref).unwrap().to_data(), tolerance);
            for (a, b) in [
                (ours_bn.gamma.val(), burn_bn.gamma.val()),
                (ours_bn.beta.val(), burn_bn.beta.val()),
            ] {
                a.grad(&grads_ours)
                    .unwrap()
                    .to_data()
                    .assert_approx_eq::<f32>(&b.grad(&grads_ref).unwrap().to_data(), tolerance);
            }
            for (a, b) in [
                (&ours_bn.running_mean, &burn_bn.running_mean),
                (&ours_bn.running_var, &burn_bn.running_var),
            ] {
                a.value()
                    .to_data()
                    .assert_approx_eq::<f32>(&b.value().to_data(), tolerance);
            }
        }
    }

    #[test]
    fn unsupported_layers_fall_back_to_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::random([1, 4, 5, 5], Distribution::Default, &device);
        for config in [
            Conv2dConfig::new([4, 4], [3, 3]).with_groups(2),
            Conv2dConfig::new([4, 4], [3, 3]).with_padding(PaddingConfig2d::Same),
        ] {
            let conv = config.init(&device);
            conv2d(&conv, x.clone()).to_data().assert_approx_eq::<f32>(
                &conv.forward(x.clone()).to_data(),
                Tolerance::absolute(1e-5),
            );
        }
    }
}
