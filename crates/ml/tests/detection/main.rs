//! Detection end-to-end tests: parity with Ultralytics (ignored unless its files are present).

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use ml::DeviceSpec;
use ml::detect::assign::GtBox;
use ml::detect::loss::DetectionLoss;
use ml::detect::{Detect, YoloSize, YoloV8};

type TestResult = Result<(), Box<dyn std::error::Error>>;

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

        let (xyxy, probabilities) = m.detect.decode(&levels);
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
    let levels = model.forward(x.to_device(&train_device));
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
    let (_, parts) = DetectionLoss::default().forward(&model.detect, &levels, &gts)?;
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
