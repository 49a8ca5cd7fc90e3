//! Building blocks shared by the models: conv constructors, conv+BN forward and BN folding.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::activation::Activation;

/// A bias-free convolution with torchvision's ResNet initialisation (Kaiming normal, fan-out).
pub(crate) fn conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
}

/// A BatchNorm with PyTorch's defaults (eps 1e-5, momentum 0.1).
pub(crate) fn batch_norm(channels: usize, device: &Device) -> Option<BatchNorm> {
    Some(BatchNormConfig::new(channels).init(device))
}

/// `bn(conv(x))`, or `conv(x)` when the BatchNorm has been folded away.
pub(crate) fn conv_bn(conv: &Conv2d, bn: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    conv_bn_act(conv, bn, x, Activation::Identity)
}

/// `activation(bn(conv(x)))`, the BatchNorm and activation one training kernel; without the
/// BatchNorm (folded away), `activation(conv(x))`.
pub(crate) fn conv_bn_act(
    conv: &Conv2d,
    bn: &Option<BatchNorm>,
    x: Tensor<4>,
    activation: Activation,
) -> Tensor<4> {
    let y = crate::kernels::conv2d(conv, x);
    match bn {
        Some(bn) => crate::kernels::batch_norm(bn, y, activation),
        None => activation.tensor(y),
    }
}

/// Folds `bn` into `conv`: `W' = W·γ/√(σ²+ε)`, `b' = β + (b − μ)·γ/√(σ²+ε)`.
pub(crate) fn fold(mut conv: Conv2d, bn: Option<BatchNorm>) -> (Conv2d, Option<BatchNorm>) {
    let Some(bn) = bn else {
        return (conv, None);
    };
    let weight = conv.weight.val();
    let [out_channels, _, _, _] = weight.dims();
    let scale = bn
        .gamma
        .val()
        .div(bn.running_var.value().add_scalar(bn.epsilon).sqrt());
    let folded_weight = weight.mul(scale.clone().reshape([out_channels, 1, 1, 1]));
    let bias = match &conv.bias {
        Some(bias) => bias.val(),
        None => Tensor::zeros([out_channels], &scale.device()),
    };
    let folded_bias = bn
        .beta
        .val()
        .add(bias.sub(bn.running_mean.value()).mul(scale));
    conv.weight = Param::from_tensor(folded_weight);
    conv.bias = Some(Param::from_tensor(folded_bias));
    (conv, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn folding_preserves_inference_output() {
        let device = Device::flex();
        let c = conv(3, 4, 3, 1, 1, &device);
        let bn = batch_norm(4, &device).map(|mut bn| {
            bn.gamma = Param::from_tensor(Tensor::random(
                [4],
                Distribution::Uniform(0.5, 2.0),
                &device,
            ));
            bn.beta = Param::from_tensor(Tensor::random([4], Distribution::Default, &device));
            bn.running_mean = burn::module::RunningState::new(Tensor::random(
                [4],
                Distribution::Default,
                &device,
            ));
            bn.running_var = burn::module::RunningState::new(Tensor::random(
                [4],
                Distribution::Uniform(0.5, 2.0),
                &device,
            ));
            bn
        });
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device);
        let reference = conv_bn(&c, &bn, x.clone());
        let (fc, fbn) = fold(c.valid(), bn);
        assert!(fbn.is_none());
        let folded = conv_bn(&fc, &fbn, x);
        reference
            .into_data()
            .assert_approx_eq::<f32>(&folded.into_data(), Tolerance::absolute(1e-4));
    }
}
