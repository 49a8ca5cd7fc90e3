//! `vision train`: train a classifier or a detector locally from an ImageFolder directory or a
//! dataset archive.

use anyhow::Context;
use ml::train::recipe::{self, DataProfile, Overrides};
use ml::train::{
    CancelToken, LrScheduleKind, OptimizerKind, TrainConfig, TrainRequest, TrainingEvent,
};
use ml::{Architecture, DeviceSpec};
use serde_json::json;
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
    /// Passes over the training images. Every setting left out is chosen from the dataset by
    /// the training recipe, which is printed before training.
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
    /// constant, step or cosine (default cosine after a warm-up).
    #[arg(long)]
    lr_schedule: Option<String>,
    /// Weight decay.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// SGD momentum.
    #[arg(long)]
    momentum: Option<f64>,
    /// Linear warm-up in epochs.
    #[arg(long)]
    warmup_epochs: Option<f64>,
    /// Early-stopping patience in epochs (0: off).
    #[arg(long)]
    patience: Option<usize>,
    /// Fraction of the train split held out when there is no val split.
    #[arg(long)]
    val_fraction: Option<f64>,
    /// No training augmentation (the settings below still apply).
    #[arg(long)]
    no_augment: bool,
    /// Probability of a horizontal flip.
    #[arg(long)]
    hflip: Option<f64>,
    /// Smallest random crop as a fraction of the image area (1: no crop).
    #[arg(long)]
    crop_min_scale: Option<f64>,
    /// Largest random shift as a fraction of the input side.
    #[arg(long)]
    translate: Option<f64>,
    /// Largest random rotation in degrees either way.
    #[arg(long)]
    rotate_degrees: Option<f64>,
    /// Label smoothing of the classification loss (0: none).
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Detection: mosaic probability.
    #[arg(long)]
    mosaic: Option<f64>,
    /// Detection: scale jitter (scale drawn from [1 - s, 1 + s]).
    #[arg(long)]
    scale_jitter: Option<f64>,
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
    /// The flags given, as the training recipe's overrides (everything else is chosen from the
    /// dataset).
    fn overrides(&self) -> anyhow::Result<Overrides> {
        let lower = |v: &Option<String>| v.as_ref().map(|v| json!(v.trim().to_ascii_lowercase()));
        let optimizer: Option<OptimizerKind> = lower(&self.optimizer)
            .map(serde_json::from_value)
            .transpose()
            .context("--optimizer must be adam, adamw or sgd")?;
        let lr_schedule: Option<LrScheduleKind> = lower(&self.lr_schedule)
            .map(serde_json::from_value)
            .transpose()
            .context("--lr-schedule must be constant, step or cosine")?;
        let device = self
            .device
            .as_deref()
            .map(str::parse::<DeviceSpec>)
            .transpose()?;
        Ok(Overrides {
            epochs: self.epochs,
            batch_size: self.batch_size,
            image_size: self.image_size,
            learning_rate: self.lr,
            optimizer,
            lr_schedule,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            warmup_epochs: self.warmup_epochs,
            early_stopping_patience: self.patience,
            val_fraction: self.val_fraction,
            seed: self.seed,
            augment: self.no_augment.then_some(false),
            hflip_probability: self.hflip,
            crop_min_scale: self.crop_min_scale,
            translate: self.translate,
            rotate_degrees: self.rotate_degrees,
            label_smoothing: self.label_smoothing,
            mosaic: self.mosaic,
            scale_jitter: self.scale_jitter,
            pretrained_weights: self.pretrained_weights.clone(),
            device,
        })
    }
}

/// Trains with a progress line and writes the model to `--out`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let model: Architecture = args.model.parse()?;
    let overrides = args.overrides()?;
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
            overrides.seed.unwrap_or(TrainConfig::default().seed),
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
    let config = recipe::resolve(model, &DataProfile::of(&manifest), &overrides);
    config.validate()?;
    for choice in &config.recipe {
        println!("  {}", choice.describe());
    }
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
