//! Every channels-last layer and plan against burn's NCHW forward on the same weights.

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, silu};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Tensor};
use proptest::prelude::*;

use super::*;
use crate::detect::{YoloSize, YoloV8};
use crate::models::{Architecture, Classifier};

fn device() -> Device {
    Device::flex()
}

fn random(shape: [usize; 4]) -> Tensor<4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    tensor_values(t).unwrap_or_default()
}

/// `max|a − b| ≤ 1e-4 + 1e-4 · max|reference|`, the tolerance of the model parity tests.
fn assert_close(ours: &[f32], reference: &[f32], what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: sizes");
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = ours
        .iter()
        .zip(reference)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= 1e-4 + 1e-4 * scale,
        "{what}: max |difference| {worst} (reference max {scale})"
    );
}

fn nchw(map: &FeatureMap) -> Vec<f32> {
    values(map.to_nchw(&device()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn convolution_matches_burn(
        batch in 1usize..3, cin in 1usize..9, cout in 1usize..12, height in 1usize..12,
        width in 1usize..12, kernel in 1usize..4, stride in 1usize..3, pad in 0usize..2,
        act in 0usize..3, with_residual: bool, big in 0usize..2,
    ) {
        // `big` pushes the output past one product so the tiled path runs too.
        let (height, width) = if big == 1 { (height + 40, width + 40) } else { (height, width) };
        prop_assume!(height + 2 * pad >= kernel && width + 2 * pad >= kernel);
        let conv = Conv2dConfig::new([cin, cout], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init(&device());
        let x = random([batch, cin, height, width]);
        let mut want = conv.forward(x.clone());
        let residual = with_residual.then(|| random(want.dims()));
        if let Some(r) = &residual {
            want = want.add(r.clone());
        }
        let (want, activation) = match act {
            0 => (want, Activation::Identity),
            1 => (relu(want), Activation::Relu),
            _ => (silu(want), Activation::Silu),
        };
        let ours = ConvNhwc::from_burn(&conv).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let input = FeatureMap::from_nchw(x).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let residual = residual
            .map(FeatureMap::from_nchw)
            .transpose()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = ours.forward(&input, activation, residual.as_ref());
        assert_close(&nchw(&got), &values(want), "conv");
    }

    #[test]
    fn max_pooling_matches_burn(
        channels in 1usize..6, height in 2usize..14, width in 2usize..14, kernel in 2usize..6,
        stride in 1usize..3, pad in 0usize..3,
    ) {
        prop_assume!(pad <= kernel / 2 && height + 2 * pad >= kernel && width + 2 * pad >= kernel);
        let pool = MaxPool2dConfig::new([kernel, kernel])
            .with_strides([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init();
        let x = random([2, channels, height, width]);
        let ours = MaxPoolNhwc::from_burn(&pool).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let input = FeatureMap::from_nchw(x.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        assert_close(&nchw(&ours.forward(&input)), &values(pool.forward(x)), "max pool");
    }
}

#[test]
fn winograd_convolutions_match_burn() {
    // 3×3, stride 1, padding 1 with ≥ 64 channels and ≥ 10 columns: the Winograd path, on odd
    // and even sizes, with a residual and over a channel range.
    for (height, width) in [(9, 13), (12, 10), (1, 11)] {
        let conv = Conv2dConfig::new([64, 80], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device());
        let x = random([2, 70, height, width]);
        let middle = x.clone().narrow(1, 3, 64);
        let want = conv.forward(middle);
        let residual = random(want.dims());
        let want = silu(want.add(residual.clone()));
        let ours = ConvNhwc::from_burn(&conv).unwrap_or_else(|e| panic!("{e}"));
        let input = FeatureMap::from_nchw(x).unwrap_or_else(|e| panic!("{e}"));
        let residual = FeatureMap::from_nchw(residual).unwrap_or_else(|e| panic!("{e}"));
        let got = ours.forward_channels(&input, 3..67, Activation::Silu, Some(&residual));
        assert_close(&nchw(&got), &values(want), "winograd conv");
    }
}

#[test]
fn a_convolution_over_a_channel_range_reads_only_that_range() {
    let conv = Conv2dConfig::new([3, 5], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device());
    let x = random([2, 8, 6, 7]);
    let middle = x.clone().narrow(1, 2, 3);
    let ours = ConvNhwc::from_burn(&conv).unwrap_or_else(|e| panic!("{e}"));
    let input = FeatureMap::from_nchw(x).unwrap_or_else(|e| panic!("{e}"));
    let got = ours.forward_channels(&input, 2..5, Activation::Identity, None);
    assert_close(&nchw(&got), &values(conv.forward(middle)), "channel range");
    let slice = input.channel_slice(2..5);
    assert_eq!(
        ours.forward(&slice, Activation::Identity, None),
        got,
        "a copied slice gives the same result"
    );
}

#[test]
fn layout_round_trip_concat_upsample_pool_and_linear() {
    let x = random([2, 3, 4, 5]);
    let map = FeatureMap::from_nchw(x.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(nchw(&map), values(x.clone()));
    let y = random([2, 2, 4, 5]);
    let both = concat_channels(&[
        &map,
        &FeatureMap::from_nchw(y.clone()).unwrap_or_else(|e| panic!("{e}")),
    ]);
    assert_eq!(nchw(&both), values(Tensor::cat(vec![x.clone(), y], 1)));
    let up = upsample_nearest(&map, 2);
    assert_eq!(up.shape(), [2, 8, 10, 3]);
    let want = interpolate(
        x.clone(),
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([8, 10]),
    );
    assert_eq!(nchw(&up), values(want));
    let mean = values(x.clone().mean_dim(3).mean_dim(2).reshape([2, 3]));
    assert_close(&global_average_pool(&map), &mean, "average pool");
    let linear = LinearConfig::new(3, 4).init(&device());
    let want = values(linear.forward(x.mean_dim(3).mean_dim(2).reshape([2, 3])));
    let ours = LinearNhwc::from_burn(&linear).unwrap_or_else(|e| panic!("{e}"));
    assert_close(&ours.forward(&global_average_pool(&map)), &want, "linear");
}

#[test]
fn classifiers_match_burn() {
    for (architecture, size) in [
        (Architecture::SmallCnn, 32),
        (Architecture::Resnet18, 64),
        (Architecture::Resnet50, 64),
    ] {
        let model = Classifier::seeded(architecture, 7, 3, &device())
            .unwrap_or_else(|e| panic!("{e}"))
            .valid();
        let x = random([2, 3, size, size]);
        let want = values(model.forward(x.clone()));
        let plan = ClassifierNhwc::new(model).unwrap_or_else(|e| panic!("{e}"));
        let got = plan.forward(&FeatureMap::from_nchw(x).unwrap_or_else(|e| panic!("{e}")));
        assert_close(&got, &want, architecture.name());
    }
}

#[test]
fn yolov8n_matches_burn() {
    let model = YoloV8::seeded(YoloSize::N, 5, 1, &device()).valid();
    let x = Tensor::<4>::random([2, 3, 64, 96], Distribution::Uniform(0.0, 1.0), &device());
    let want = model.forward(x.clone());
    let plan = YoloNhwc::new(model).unwrap_or_else(|e| panic!("{e}"));
    let got = plan.forward(
        &FeatureMap::from_nchw(x).unwrap_or_else(|e| panic!("{e}")),
        &device(),
    );
    assert_eq!(got.len(), 3);
    for (i, (g, w)) in got.into_iter().zip(want).enumerate() {
        assert_eq!(g.dims(), w.dims(), "level {i}");
        assert_close(&values(g), &values(w), &format!("level {i}"));
    }
}
