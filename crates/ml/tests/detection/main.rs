//! Detection end-to-end tests: learning on generated shapes, resume, cancellation, the served
//! artefact, and parity with Ultralytics (ignored unless its files are present).

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use ml::data::synthetic::write_detection_dataset;
use ml::detect::assign::GtBox;
use ml::detect::loss::DetectionLoss;
use ml::detect::{
    CocoEvaluator, Detect, DetectionOptions, DetectorEngine, EvalBox, HeadOutput, NmsOptions,
    YoloSize, YoloV8,
};
use ml::infer::{EngineOptions, ImageInput};
use ml::train::{
    CancelToken, EpochMetrics, LrScheduleKind, OptimizerKind, TrainConfig, TrainRequest,
    TrainSummary, TrainingEvent,
};
use ml::{Architecture, DeviceSpec, MlError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn yolo_config(image_size: usize, epochs: usize, batch_size: usize) -> TrainConfig {
    TrainConfig {
        model: Architecture::Yolov8n,
        image_size: Some(image_size),
        epochs,
        batch_size,
        learning_rate: 2e-3,
        optimizer: OptimizerKind::Adamw,
        weight_decay: Some(5e-4),
        lr_schedule: LrScheduleKind::Cosine,
        min_lr: 1e-4,
        warmup_epochs: 1.0,
        seed: 3,
        ..TrainConfig::default()
    }
}

/// Trains on a generated set written to a temporary directory; prints the curve.
fn train_shapes(
    config: TrainConfig,
    train_images: usize,
    val_images: usize,
    work: &Path,
) -> Result<TrainSummary, MlError> {
    let request = shapes_request(config, train_images, val_images, work, "run")?;
    let started = Instant::now();
    ml::train::train(&request, &CancelToken::new(), &mut |event| match &event {
        TrainingEvent::Epoch { metrics, .. } => {
            print_epoch(metrics, started.elapsed().as_secs_f64())
        }
        TrainingEvent::Step {
            images_per_sec,
            step,
            ..
        } if std::env::var_os("ML_DETECT_STEPS").is_some() => {
            println!("  step {step}: {images_per_sec:.1} img/s")
        }
        _ => {}
    })
}

fn print_epoch(m: &EpochMetrics, secs: f64) {
    println!(
        "epoch {:>2}  loss {:.3} (box {:.3} cls {:.3} dfl {:.3})  val_loss {:.3}  mAP50 {:.3}  mAP50-95 {:.3}  lr {:.2e}  {:.0} s",
        m.epoch,
        m.loss,
        m.box_loss.unwrap_or(f64::NAN),
        m.cls_loss.unwrap_or(f64::NAN),
        m.dfl_loss.unwrap_or(f64::NAN),
        m.val_loss.unwrap_or(f64::NAN),
        m.val_map50.unwrap_or(f64::NAN),
        m.val_map50_95.unwrap_or(f64::NAN),
        m.lr,
        secs
    );
}

/// Proof of learning: YOLOv8-n from scratch on generated shapes at 128² reaches val mAP50 ≥ 0.8.
#[test]
#[ignore = "several minutes in the dev profile; run with --ignored --nocapture"]
fn yolov8n_learns_generated_shapes() -> TestResult {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let work = tempfile::tempdir()?;
    let config = TrainConfig {
        detection: Some(DetectionOptions {
            close_mosaic_epochs: 3,
            ..DetectionOptions::default()
        }),
        ..yolo_config(128, env("ML_DETECT_EPOCHS", 12), 16)
    };
    let summary = train_shapes(config, env("ML_DETECT_TRAIN", 320), 80, work.path())?;
    let best = summary
        .history
        .iter()
        .filter_map(|m| m.val_map50)
        .fold(0.0, f64::max);
    println!("best val mAP50 {best:.3} in {:.0} s", summary.elapsed_secs);
    assert!(best >= 0.8, "val mAP50 {best}");
    Ok(())
}

/// Reads an f32 tensor of a safetensors file: shape and values.
fn read_f32(
    file: &safetensors::SafeTensors<'_>,
    key: &str,
) -> Result<(Vec<usize>, Vec<f32>), Box<dyn std::error::Error>> {
    let view = file.tensor(key)?;
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((view.shape().to_vec(), values))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    Ok(t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?)
}

/// Writes a generated set and returns a request for it.
fn shapes_request(
    config: TrainConfig,
    train_images: usize,
    val_images: usize,
    work: &Path,
    name: &str,
) -> Result<TrainRequest, MlError> {
    let size = config.image_size() as u32;
    let data = work.join("data");
    let manifest = write_detection_dataset(&data, train_images, val_images, size, 17)?;
    Ok(TrainRequest {
        manifest,
        image_root: data,
        config,
        output_dir: work.join(name).join("model"),
        checkpoint_dir: work.join(name).join("checkpoints"),
        resume: false,
    })
}

/// The fast proof of learning: on a tiny generated set the training loss falls and the
/// validation mAP rises within a few epochs; the exported artefact then detects through the
/// engine with the validation boxes' quality.
#[test]
fn detector_learns_a_tiny_set_and_serves_it() -> TestResult {
    let work = tempfile::tempdir()?;
    let config = TrainConfig {
        detection: Some(DetectionOptions {
            close_mosaic_epochs: 2,
            ..DetectionOptions::default()
        }),
        ..yolo_config(96, 8, 4)
    };
    let request = shapes_request(config, 64, 16, work.path(), "tiny")?;
    let started = Instant::now();
    let summary = ml::train::train(&request, &CancelToken::new(), &mut |event| {
        if let TrainingEvent::Epoch { metrics, .. } = &event {
            print_epoch(metrics, started.elapsed().as_secs_f64());
        }
    })?;
    let first = &summary.history[0];
    let last = summary.history.last().ok_or("no epochs")?;
    assert!(
        last.loss < 0.8 * first.loss,
        "loss {} → {}",
        first.loss,
        last.loss
    );
    let map = |m: &EpochMetrics| m.val_map50.unwrap_or(0.0);
    let best = summary.history.iter().map(map).fold(0.0, f64::max);
    assert!(
        best > map(first) + 0.05,
        "val mAP50 did not rise: {:?}",
        summary.history.iter().map(map).collect::<Vec<_>>()
    );
    assert!(first.accuracy.is_nan() && first.box_loss.is_some());
    let json = serde_json::to_value(first)?;
    assert!(json.get("accuracy").is_none() && json.get("val_map50").is_some());

    // The artefact: config says detection, the engine answers with boxes in image pixels.
    let config = ml::artefact::read_config(&summary.artefact.dir)?;
    assert_eq!(config.task, "detection");
    assert_eq!(config.classes.len(), 4);
    let engine = DetectorEngine::load(&summary.artefact.dir, EngineOptions::default())?;
    let val: Vec<_> = request
        .manifest
        .images
        .iter()
        .filter(|i| i.split == domain::dataset::Split::Val)
        .collect();
    let inputs: Vec<ImageInput> = val
        .iter()
        .map(|i| {
            Ok(ImageInput::Encoded(std::fs::read(
                request.image_root.join(&i.file),
            )?))
        })
        .collect::<Result<_, std::io::Error>>()?;
    // Validation's NMS settings, so the served boxes can be scored like validation did.
    let answers = engine.predict_blocking(inputs, NmsOptions::EVALUATION)?;
    assert_eq!(answers.len(), val.len());
    let mut evaluator = CocoEvaluator::new();
    for (i, (entry, found)) in val.iter().zip(&answers).enumerate() {
        for d in found {
            assert_eq!(config.classes[d.class_id], d.class);
            let [x, y, w, h] = d.bbox_xywh_pixels;
            assert!(x >= 0.0 && y >= 0.0 && x + w <= 96.01 && y + h <= 96.01);
        }
        let truth: Vec<EvalBox> = entry
            .boxes
            .iter()
            .map(|b| EvalBox {
                class_id: b.class_id,
                bbox: b.bbox,
                score: 0.0,
            })
            .collect();
        let detections: Vec<EvalBox> = found
            .iter()
            .map(|d| EvalBox {
                class_id: d.class_id,
                bbox: d.bbox_xywh_pixels.map(f64::from),
                score: d.confidence as f64,
            })
            .collect();
        evaluator.add_image(i as u64, &truth, &detections);
    }
    // Same letterbox and NMS; BatchNorm folded in the engine (rounding differences only).
    let served = evaluator.evaluate().map50.unwrap_or(0.0);
    let exported = summary
        .history
        .iter()
        .find(|m| m.epoch == summary.exported_epoch)
        .and_then(|m| m.val_map50)
        .unwrap_or(0.0);
    println!("served mAP50 {served:.3}, validation mAP50 of the exported epoch {exported:.3}");
    // At mAP50 ~0.3 after 8 epochs many detections sit near the score threshold, and BatchNorm
    // folding and another summation order move some across it; on a validation set this small a
    // few flipped detections move mAP50 by several hundredths (0.021 seen with AVX2 kernels,
    // 0.056 with AVX-512 ones, whose rounding gives another training run). A wrong serving path
    // differs by tenths.
    assert!((served - exported).abs() < 0.08, "{served} vs {exported}");
    Ok(())
}

/// Two epochs straight give the same history and weights as one epoch, an interruption and a
/// resume; cancellation is honoured before the next step.
#[test]
fn detection_resume_is_bit_exact_and_cancel_works() -> TestResult {
    let work = tempfile::tempdir()?;
    let config = yolo_config(64, 2, 8);
    let straight = shapes_request(config.clone(), 16, 8, work.path(), "straight")?;
    let a = ml::train::train(&straight, &CancelToken::new(), &mut |_| {})?;

    let interrupted = TrainRequest {
        output_dir: work.path().join("resumed/model"),
        checkpoint_dir: work.path().join("resumed/checkpoints"),
        ..straight.clone()
    };
    let cancel = CancelToken::new();
    let result = ml::train::train(&interrupted, &cancel, &mut |e| {
        if matches!(e, TrainingEvent::Checkpoint { epoch: 1, .. }) {
            cancel.cancel();
        }
    });
    assert!(matches!(result, Err(MlError::Cancelled)));
    let resumed = TrainRequest {
        resume: true,
        ..interrupted
    };
    let mut started_at = None;
    let b = ml::train::train(&resumed, &CancelToken::new(), &mut |e| {
        if let TrainingEvent::Started { start_epoch, .. } = e {
            started_at = Some(start_epoch);
        }
    })?;
    assert_eq!(started_at, Some(2));
    // NaN accuracies compare unequal in Rust; their JSON (accuracy omitted) compares exactly.
    assert_eq!(
        serde_json::to_string(&a.history)?,
        serde_json::to_string(&b.history)?
    );
    assert_eq!(a.exported_epoch, b.exported_epoch);
    let wa = std::fs::read(&a.artefact.weights)?;
    let wb = std::fs::read(&b.artefact.weights)?;
    let (ta, tb) = (
        safetensors::SafeTensors::deserialize(&wa)?,
        safetensors::SafeTensors::deserialize(&wb)?,
    );
    let mut names = ta.names();
    names.sort();
    assert_eq!(names.len(), tb.names().len());
    let differing: Vec<&str> = names
        .into_iter()
        .filter(|n| match (ta.tensor(n), tb.tensor(n)) {
            (Ok(x), Ok(y)) => x.data() != y.data(),
            _ => true,
        })
        .collect();
    assert!(differing.is_empty(), "differ after resume: {differing:?}");

    let cancel = CancelToken::new();
    let mut steps = 0;
    let cancelled = TrainRequest {
        output_dir: work.path().join("cancelled/model"),
        checkpoint_dir: work.path().join("cancelled/checkpoints"),
        ..straight
    };
    let result = ml::train::train(&cancelled, &cancel, &mut |e| {
        if matches!(e, TrainingEvent::Step { .. }) {
            steps += 1;
            cancel.cancel();
        }
    });
    assert!(matches!(result, Err(MlError::Cancelled)));
    assert_eq!(steps, 1);
    Ok(())
}

/// Ultralytics' YOLOv8-n weights (made by `tests/fixtures/make_ultralytics_parity.py` with
/// ultralytics 8.4 / torch 2.15, pointed to by `ML_ULTRALYTICS_PARITY_DIR`) load into our model and
/// give the same raw outputs (eval and training mode), decoded boxes and loss parts.
#[test]
#[ignore = "needs Ultralytics-made files in ML_ULTRALYTICS_PARITY_DIR"]
fn ultralytics_weights_give_ultralytics_outputs() -> TestResult {
    let Ok(dir) = std::env::var("ML_ULTRALYTICS_PARITY_DIR") else {
        return Err("set ML_ULTRALYTICS_PARITY_DIR".into());
    };
    let dir = Path::new(&dir);
    let device = DeviceSpec::Cpu.device()?;
    let (model, report) = ml::detect::weights::load_safetensors(
        YoloV8::new(YoloSize::N, 80, &device),
        &dir.join("yolov8n.safetensors"),
    )?;
    assert!(
        report.replaced_head.is_empty() && report.unused.is_empty(),
        "{report:?}"
    );
    let io = std::fs::read(dir.join("yolov8n_io.safetensors"))?;
    let io = safetensors::SafeTensors::deserialize(&io)?;
    let (shape, input) = read_f32(&io, "input")?;
    let x = Tensor::<4>::from_data(TensorData::new(input, shape), &device);

    // Eval mode: raw outputs, with and without BatchNorm folded, and decoded boxes.
    for folded in [false, true] {
        let m = if folded {
            model.clone().fold_batchnorm()
        } else {
            model.clone()
        };
        let levels = m.forward(x.clone());
        let flat = values(Detect::flatten(&levels))?;
        let (_, boxes) = read_f32(&io, "eval_boxes")?;
        let (_, scores) = read_f32(&io, "eval_scores")?;
        let [b, _, a] = Detect::flatten(&levels).dims();
        let mut expected = Vec::new();
        for i in 0..b {
            expected.extend_from_slice(&boxes[i * 64 * a..(i + 1) * 64 * a]);
            expected.extend_from_slice(&scores[i * 80 * a..(i + 1) * 80 * a]);
        }
        let diff = max_abs_diff(&flat, &expected);
        println!("eval raw outputs (folded: {folded}): max |difference| = {diff:e}");
        assert!(diff < 1e-3, "{diff}");

        let (xyxy, probabilities) = m.detect.decode(&HeadOutput::from_levels(&levels));
        let xyxy = values(xyxy)?;
        let probabilities = values(probabilities)?;
        let (_, decoded) = read_f32(&io, "decoded")?; // [B, 4 + 80, A]: cx, cy, w, h, scores
        let (mut box_diff, mut prob_diff) = (0.0f32, 0.0f32);
        for i in 0..b {
            for j in 0..a {
                let d = |c: usize| decoded[(i * 84 + c) * a + j];
                let q = &xyxy[(i * a + j) * 4..(i * a + j) * 4 + 4];
                let ours = [
                    (q[0] + q[2]) / 2.0,
                    (q[1] + q[3]) / 2.0,
                    q[2] - q[0],
                    q[3] - q[1],
                ];
                for (c, v) in ours.iter().enumerate() {
                    box_diff = box_diff.max((v - d(c)).abs());
                }
                for c in 0..80 {
                    prob_diff =
                        prob_diff.max((probabilities[(i * a + j) * 80 + c] - d(4 + c)).abs());
                }
            }
        }
        println!(
            "decoded (folded: {folded}): max |box difference| = {box_diff:e} px, max |probability difference| = {prob_diff:e}"
        );
        assert!(box_diff < 1e-2 && prob_diff < 1e-4);
    }

    // Training mode: batch statistics, and the loss parts.
    let train_device = device.clone().autodiff();
    let (model, _) = ml::detect::weights::load_safetensors(
        YoloV8::new(YoloSize::N, 80, &train_device),
        &dir.join("yolov8n.safetensors"),
    )?;
    let levels = model.forward(x.clone().to_device(&train_device));
    let flat = values(Detect::flatten(&levels).detach())?;
    let (_, boxes) = read_f32(&io, "train_boxes")?;
    let (_, scores) = read_f32(&io, "train_scores")?;
    let a = flat.len() / 2 / 144;
    let mut expected = Vec::new();
    for i in 0..2 {
        expected.extend_from_slice(&boxes[i * 64 * a..(i + 1) * 64 * a]);
        expected.extend_from_slice(&scores[i * 80 * a..(i + 1) * 80 * a]);
    }
    let diff = max_abs_diff(&flat, &expected);
    println!("training-mode raw outputs: max |difference| = {diff:e}");
    assert!(diff < 1e-3, "{diff}");

    let (_, targets) = read_f32(&io, "targets")?;
    let mut gts: Vec<Vec<GtBox>> = vec![Vec::new(); 2];
    for t in targets.chunks_exact(6) {
        let (cx, cy, w, h) = (t[2] * 96.0, t[3] * 64.0, t[4] * 96.0, t[5] * 64.0);
        gts[t[0] as usize].push(GtBox {
            class_id: t[1] as usize,
            xyxy: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
        });
    }
    // The training path: box and class logits never concatenated.
    let output = model.forward_flat(x.to_device(&train_device));
    let (_, parts) = DetectionLoss::default().forward(&model.detect, &output, &gts)?;
    let (_, expected) = read_f32(&io, "loss_items")?;
    let ours = [
        parts.box_loss as f32,
        parts.cls_loss as f32,
        parts.dfl_loss as f32,
    ];
    println!("loss parts (box, cls, dfl): ours {ours:?}, Ultralytics {expected:?}");
    for (o, e) in ours.iter().zip(&expected) {
        assert!(
            (o - e).abs() < 1e-3 * e.abs().max(1.0),
            "{ours:?} vs {expected:?}"
        );
    }
    Ok(())
}
