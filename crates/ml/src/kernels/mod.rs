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
mod concat;
mod conv;
mod conv_taps;
mod conv_winograd;

pub(crate) use conv::channels_last;
mod flex;
mod max_pool;
mod norm;
mod upsample;

use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Dispatch, DispatchDevice, backend_extension};
use burn::module::RunningState;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{DType, Shape, Tensor};

use crate::models::activation::Activation;
use crate::nhwc::Window;

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

    /// Max pooling of `x` (`[N, C, H, W]`, f32) over `window` (dilation 1, floor mode).
    fn max_pool2d_fused(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self>;

    /// The concatenation of two f32 tensors along `dim` (the caller checks [`cat`]'s
    /// conditions). One method per count: the extension macro takes no lists of tensors.
    fn cat2_fused(a: FloatTensor<Self>, b: FloatTensor<Self>, dim: usize) -> FloatTensor<Self>;

    /// Nearest-neighbour upsampling of `x` (`[N, C, H, W]`, f32) by `factor` (≥ 1) on both axes.
    fn upsample_nearest_fused(x: FloatTensor<Self>, factor: usize) -> FloatTensor<Self>;

    /// `x.narrow(dim, start, length)` of an f32 tensor, contiguous.
    fn narrow_fused(
        x: FloatTensor<Self>,
        dim: usize,
        start: usize,
        length: usize,
    ) -> FloatTensor<Self>;

    /// [`TrainKernels::cat2_fused`] of three tensors.
    fn cat3_fused(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        dim: usize,
    ) -> FloatTensor<Self>;

    /// [`TrainKernels::cat2_fused`] of four tensors.
    fn cat4_fused(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
        dim: usize,
    ) -> FloatTensor<Self>;
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

    /// The gradient of [`TrainKernels::max_pool2d_fused`] with respect to `x`, given the output
    /// gradient `grad`.
    fn max_pool2d_fused_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        window: Window,
    ) -> FloatTensor<Self>;

    /// The gradient of [`TrainKernels::upsample_nearest_fused`] given the output gradient.
    fn upsample_nearest_fused_backward(grad: FloatTensor<Self>, factor: usize)
    -> FloatTensor<Self>;

    /// The gradient of [`TrainKernels::narrow_fused`] of an input of shape `input`, given the
    /// output gradient `grad`.
    fn narrow_fused_backward(
        grad: FloatTensor<Self>,
        input: Shape,
        dim: usize,
        start: usize,
    ) -> FloatTensor<Self>;

    /// The gradients of a concatenation ([`TrainKernels::cat2_fused`] and the others): each
    /// input's share of `grad` (whose inputs had `sizes` along `dim`), where `wanted`.
    fn cat_fused_backward(
        grad: FloatTensor<Self>,
        dim: usize,
        sizes: &[usize],
        wanted: &[bool],
    ) -> Vec<Option<FloatTensor<Self>>>;
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

/// `pool.forward(x)`, through our kernel on flex in f32 (dilation 1, floor mode, explicit or no
/// padding), through burn's otherwise.
pub(crate) fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    if pool.dilation != [1, 1] || pool.ceil_mode || x.dtype() != DType::F32 || !on_flex(&x) {
        return pool.forward(x);
    }
    let [_, _, h, w] = x.dims();
    match Window::new(pool.kernel_size, pool.stride, &pool.padding, "max pooling") {
        Ok(window) if window.fits(h, w) => {
            Tensor::from_dispatch(Dispatch::max_pool2d_fused(x.into_dispatch(), window))
        }
        _ => pool.forward(x),
    }
}

/// `Tensor::cat(tensors, dim)`, through our kernel for two to four f32 tensors on flex (YOLOv8's
/// concatenations: C2f's of two to four, SPPF's four, the neck's and head's two or three), through
/// burn's otherwise.
pub(crate) fn cat<const D: usize>(tensors: Vec<Tensor<D>>, dim: usize) -> Tensor<D> {
    if !tensors
        .iter()
        .all(|t| t.dtype() == DType::F32 && on_flex(t))
    {
        return Tensor::cat(tensors, dim);
    }
    let tensors: Vec<_> = tensors.into_iter().map(Tensor::into_dispatch).collect();
    let tensors = match <[_; 2]>::try_from(tensors) {
        Ok([a, b]) => return Tensor::from_dispatch(Dispatch::cat2_fused(a, b, dim)),
        Err(tensors) => tensors,
    };
    let tensors = match <[_; 3]>::try_from(tensors) {
        Ok([a, b, c]) => return Tensor::from_dispatch(Dispatch::cat3_fused(a, b, c, dim)),
        Err(tensors) => tensors,
    };
    match <[_; 4]>::try_from(tensors) {
        Ok([a, b, c, d]) => Tensor::from_dispatch(Dispatch::cat4_fused(a, b, c, d, dim)),
        Err(tensors) => Tensor::cat(
            tensors.into_iter().map(Tensor::from_dispatch).collect(),
            dim,
        ),
    }
}

/// `x` upsampled by `factor` on both axes, nearest neighbour (burn's `interpolate` with output
/// size `[h·factor, w·factor]`): our kernel on flex in f32, burn's elsewhere.
pub(crate) fn upsample_nearest(x: Tensor<4>, factor: usize) -> Tensor<4> {
    if factor == 0 || x.dtype() != DType::F32 || !on_flex(&x) {
        let [_, _, h, w] = x.dims();
        return burn::tensor::module::interpolate(
            x,
            burn::tensor::ops::InterpolateOptions::new(burn::tensor::ops::InterpolateMode::Nearest)
                .with_output_size([h * factor, w * factor]),
        );
    }
    Tensor::from_dispatch(Dispatch::upsample_nearest_fused(x.into_dispatch(), factor))
}

/// `x.narrow(dim, start, length)` as a contiguous tensor made over the threads on flex in f32
/// (burn's is a view, copied to contiguous on one thread by whatever reads it next, and its
/// gradient is assigned into zeros on one thread too); burn's elsewhere.
pub(crate) fn narrow<const D: usize>(
    x: Tensor<D>,
    dim: usize,
    start: usize,
    length: usize,
) -> Tensor<D> {
    if x.dtype() != DType::F32 || !on_flex(&x) || start + length > x.dims()[dim] {
        return x.narrow(dim, start, length);
    }
    Tensor::from_dispatch(Dispatch::narrow_fused(
        x.into_dispatch(),
        dim,
        start,
        length,
    ))
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
    use burn::nn::pool::MaxPool2dConfig;
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

    /// `ours` against `reference`, the same function of `inputs` through burn's ops: values
    /// within `tolerance`, and the gradients of ⟨output, g⟩ (random `g`) with respect to each
    /// input (none for an input that is not tracked).
    fn assert_matches_burn<const D: usize, const E: usize>(
        inputs: &[Tensor<E>],
        ours: Tensor<D>,
        reference: Tensor<D>,
        tolerance: f32,
    ) {
        let tolerance = Tolerance::absolute(tolerance);
        ours.to_data()
            .assert_approx_eq::<f32>(&reference.to_data(), tolerance);
        let g = Tensor::<D>::random(reference.dims(), Distribution::Default, &reference.device());
        let grads_ours = (ours * g.clone()).sum().backward();
        let grads_ref = (reference * g).sum().backward();
        for x in inputs {
            match (x.grad(&grads_ours), x.grad(&grads_ref)) {
                (Some(a), Some(b)) => a.to_data().assert_approx_eq::<f32>(&b.to_data(), tolerance),
                (a, b) => assert_eq!(a.is_some(), b.is_some(), "tracked on one side only"),
            }
        }
    }

    /// Output and input gradient of max pooling through our kernel against burn's layer, for
    /// SPPF's, ResNet's and the small CNN's pools (random values: no ties).
    #[test]
    fn max_pool_matches_burns_layer() {
        let device = Device::flex().autodiff();
        for (kernel, stride, pad, input) in [
            (5, 1, 2, [2, 3, 7, 6]),
            (3, 2, 1, [2, 2, 9, 8]),
            (2, 2, 0, [1, 3, 7, 7]),
        ] {
            let pool = MaxPool2dConfig::new([kernel, kernel])
                .with_strides([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .init();
            let x =
                Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device).require_grad();
            let ours = max_pool2d(&pool, x.clone());
            assert_matches_burn(
                std::slice::from_ref(&x),
                ours,
                pool.forward(x.clone()),
                1e-6,
            );
        }
    }

    /// Concatenations of two to four tensors along each axis through our kernel, one of them
    /// untracked, against burn's.
    #[test]
    fn cat_matches_burns() {
        let device = Device::flex().autodiff();
        for count in 2..=4 {
            for dim in 0..3 {
                let inputs: Vec<Tensor<3>> = (0..count)
                    .map(|i| {
                        let mut dims = [2, 3, 4];
                        dims[dim] = i + 1;
                        let t = Tensor::<3>::random(dims, Distribution::Default, &device);
                        if i == 1 { t } else { t.require_grad() }
                    })
                    .collect();
                let ours = cat(inputs.clone(), dim);
                assert_matches_burn(&inputs, ours, Tensor::cat(inputs.clone(), dim), 0.0);
            }
        }
    }

    /// Nearest-neighbour upsampling through our kernel against burn's interpolation: values
    /// and gradient.
    #[test]
    fn upsample_matches_burns_interpolation() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 3, 4, 5], Distribution::Default, &device).require_grad();
        let ours = upsample_nearest(x.clone(), 2);
        let reference = burn::tensor::module::interpolate(
            x.clone(),
            burn::tensor::ops::InterpolateOptions::new(burn::tensor::ops::InterpolateMode::Nearest)
                .with_output_size([8, 10]),
        );
        assert_matches_burn(&[x], ours, reference, 1e-5);
    }

    /// Narrowing along each axis through our kernel against burn's: values and gradient.
    #[test]
    fn narrow_matches_burns() {
        let device = Device::flex().autodiff();
        for dim in 0..3 {
            let x = Tensor::<3>::random([3, 4, 5], Distribution::Default, &device).require_grad();
            let ours = narrow(x.clone(), dim, 1, 2);
            assert_matches_burn(
                std::slice::from_ref(&x),
                ours,
                x.clone().narrow(dim, 1, 2),
                0.0,
            );
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
