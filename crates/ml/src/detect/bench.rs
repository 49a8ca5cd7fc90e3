//! Detection benchmarks with the shapes of `shared/tools/bench/pytorch_reference.py`
//! (`yolov8n-train`: batch 8 × 3×320×320, 80 classes, one box per image, forward + loss + SGD step;
//! `yolov8n-infer`: one 3×640×640 image, eval mode, raw outputs). Random weights and inputs; the
//! median of the timed iterations counts, like the Python script.

use std::time::Instant;

use burn::module::Module;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Distribution, Tensor};

use super::assign::GtBox;
use super::loss::DetectionLoss;
use super::model::{YoloSize, YoloV8};
use crate::bench::{BenchOptions, BenchResult, InferPath, bench_result, time_inference, timed};
use crate::error::MlError;
use crate::nhwc::{FeatureMap, YoloNhwc, tensor_values};

fn sync(device: &burn::tensor::Device) -> Result<(), MlError> {
    device
        .sync()
        .map_err(|e| MlError::External(format!("device sync: {e:?}")))
}

/// YOLOv8-n training step, batch 8 × 3×320×320, 80 classes, one box (centre, 30 % of the side)
/// per image, SGD (lr 0.01, momentum 0.9). `detail` gives the median split of a step into
/// forward, loss (assigner included), backward and optimizer milliseconds.
pub fn train_yolov8n(options: &BenchOptions) -> Result<BenchResult, MlError> {
    crate::device::on_training_pool(|| train_step(options, YoloSize::N, 8, 320, 80))
}

/// A YOLOv8 training step of `batch` × 3×`size`², `classes` classes (see [`train_yolov8n`]).
pub fn train_step(
    options: &BenchOptions,
    yolo: YoloSize,
    batch: usize,
    size: usize,
    classes: usize,
) -> Result<BenchResult, MlError> {
    let device = options.device.device()?.autodiff();
    device.seed(0);
    let mut model = YoloV8::seeded(yolo, classes, 0, &device);
    let mut optimizer = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .init();
    let x = Tensor::<4>::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let s = size as f32;
    let targets = vec![
        vec![GtBox {
            class_id: 0,
            xyxy: [0.35 * s, 0.35 * s, 0.65 * s, 0.65 * s],
        }];
        batch
    ];
    let loss = DetectionLoss::default();
    let mut phases: Vec<[f64; 4]> = Vec::new();
    let secs = timed(options, || {
        let t0 = Instant::now();
        let output = model.forward_flat(x.clone());
        sync(&device)?;
        let t1 = Instant::now();
        let (total, _) = loss.forward(&model.detect, &output, &targets)?;
        let t2 = Instant::now();
        let grads = GradientsParams::from_grads(total.backward(), &model);
        sync(&device)?;
        let t3 = Instant::now();
        model = optimizer.step(0.01, model.clone(), grads);
        sync(&device)?;
        let t4 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        phases.push([ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, t4)]);
        Ok(())
    })?;
    let median = |i: usize| {
        let mut v: Vec<f64> = phases.iter().map(|p| p[i]).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let detail = format!(
        "sgd momentum 0.9; forward {:.0} ms, loss {:.0} ms, backward {:.0} ms, step {:.0} ms",
        median(0),
        median(1),
        median(2),
        median(3)
    );
    let case = match yolo {
        YoloSize::N => "yolov8n-train",
        YoloSize::S => "yolov8s-train",
    };
    Ok(bench_result(case, options, batch, size, secs, detail))
}

/// YOLOv8-n inference on one 3×640×640 image (80 classes, raw outputs read back) along `path`.
/// `median_secs · 1000` is the latency in ms.
pub fn infer_yolov8n(options: &BenchOptions, path: InferPath) -> Result<BenchResult, MlError> {
    let (batch, size) = (1, 640);
    let device = options.device.device()?;
    device.seed(0);
    let model = YoloV8::seeded(YoloSize::N, 80, 0, &device).valid();
    let x = Tensor::<4>::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let readback = |levels: Vec<Tensor<4>>| {
        for level in levels {
            level
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| MlError::External(format!("readback: {e:?}")))?;
        }
        Ok(())
    };
    let secs = time_inference(
        options,
        path,
        model,
        YoloV8::fold_batchnorm,
        |model| readback(model.forward(x.clone())),
        |model| {
            let plan = YoloNhwc::new(model)?;
            let pixels = tensor_values(x.clone())?;
            Ok(Box::new(move || {
                let input = FeatureMap::from_nchw_values(&pixels, batch, 3, size, size);
                readback(plan.forward(&input, &device))
            }))
        },
    )?;
    Ok(bench_result(
        "yolov8n-infer",
        options,
        batch,
        size,
        secs,
        path.detail().into(),
    ))
}
