//! `vision train`: train a classifier or a detector locally from an ImageFolder directory or a
//! dataset archive.

use anyhow::Context;
use ml::train::{CancelToken, TrainConfig, TrainRequest, TrainingEvent};
use serde_json::{Map, Value, json};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Options of `vision train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// An ImageFolder directory (one folder per class, optionally under train/ val/ test/) or a
    /// dataset archive (.zip, .tar, .tar.gz in any format `POST /datasets/upload` accepts).
    #[arg(long)]
    dataset: PathBuf,
    /// Model: small_cnn, resnet18, resnet34, resnet50 (classification), yolov8n, yolov8s
    /// (detection: the dataset must have boxes).
    #[arg(long, default_value = "small_cnn")]
    model: String,
    /// Passes over the training images.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// adam, adamw or sgd.
    #[arg(long)]
    optimizer: Option<String>,
    /// Side of the square model input.
    #[arg(long)]
    image_size: Option<usize>,
    /// Seed of initialisation, augmentation and splits.
    #[arg(long)]
    seed: Option<u64>,
    /// torchvision/timm safetensors weights to start from.
    #[arg(long)]
    pretrained_weights: Option<PathBuf>,
    /// cpu, cuda:0 or tch-cpu.
    #[arg(long)]
    device: Option<String>,
    /// Where the trained model (model.safetensors + config.json) is written.
    #[arg(long, default_value = "model")]
    out: PathBuf,
    /// Resume from the checkpoints in `<out>/checkpoints`.
    #[arg(long)]
    resume: bool,
}

impl TrainArgs {
    /// The flags given, as a training configuration over the defaults.
    fn config(&self) -> anyhow::Result<TrainConfig> {
        let mut fields = Map::new();
        fields.insert("model".into(), json!(self.model));
        let optional = [
            ("epochs", self.epochs.map(|v| json!(v))),
            ("batch_size", self.batch_size.map(|v| json!(v))),
            ("learning_rate", self.lr.map(|v| json!(v))),
            ("optimizer", self.optimizer.as_ref().map(|v| json!(v))),
            ("image_size", self.image_size.map(|v| json!(v))),
            ("seed", self.seed.map(|v| json!(v))),
            (
                "pretrained_weights",
                self.pretrained_weights.as_ref().map(|v| json!(v)),
            ),
            ("device", self.device.as_ref().map(|v| json!(v))),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                fields.insert(key.into(), value);
            }
        }
        serde_json::from_value(Value::Object(fields)).context("invalid training options")
    }
}

/// Trains with a progress line and writes the model to `--out`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let work = tempfile::tempdir()?;
    let (manifest, image_root) = if args.dataset.is_dir() {
        (
            ml::cli_support::read_image_folder(&args.dataset)?,
            args.dataset.clone(),
        )
    } else {
        let ingested = datasets::ingest(
            &args.dataset,
            None,
            work.path(),
            &datasets::Limits::default(),
            config.seed,
        )
        .with_context(|| format!("reading {}", args.dataset.display()))?;
        (ingested.manifest, ingested.root)
    };
    println!(
        "training {} on {} images in {} classes ({})",
        args.model,
        manifest.images.len(),
        manifest.classes.len(),
        args.dataset.display()
    );
    let request = TrainRequest {
        manifest,
        image_root,
        config,
        output_dir: args.out.clone(),
        checkpoint_dir: args.out.join("checkpoints"),
        resume: args.resume,
    };
    let cancel = CancelToken::new();
    let interactive = std::io::stderr().is_terminal();
    let mut progress = |event: TrainingEvent| {
        let line = ml::cli_support::format_event(&event);
        let mut err = std::io::stderr();
        match event {
            // Steps overwrite one line on a terminal; epochs and the rest stay.
            TrainingEvent::Step { .. } if interactive => {
                let _ = write!(err, "\r\x1b[2K{line}");
            }
            TrainingEvent::Step { .. } => {}
            _ => {
                let _ = writeln!(err, "{}{line}", if interactive { "\r\x1b[2K" } else { "" });
            }
        }
    };
    let summary = ml::train::train(&request, &cancel, &mut progress)?;
    let last = summary.history.last();
    let quality = match last {
        Some(m) if m.val_map50.is_some() => format!(
            "val_map50 {:.4}, val_map50_95 {:.4}",
            m.val_map50.unwrap_or_default(),
            m.val_map50_95.unwrap_or_default()
        ),
        _ => format!(
            "val_accuracy {}",
            last.and_then(|m| m.val_accuracy)
                .map_or("-".to_owned(), |a| format!("{a:.4}"))
        ),
    };
    println!(
        "done in {:.1} s: {} epochs{}, {quality}, model in {}",
        summary.elapsed_secs,
        summary.epochs_completed,
        if summary.stopped_early {
            " (stopped early)"
        } else {
            ""
        },
        args.out.display()
    );
    Ok(())
}
