//! Serving overhead: `POST /inference/{wf}/predict` (HTTP, JSON, base64, auth, cache lookup)
//! against the raw engine call on the same image, at concurrency 1 and 16, for the small CNN and
//! ResNet-18 (untrained weights: speed does not depend on them).

use super::api::{MakeRequest, Sample, create_tokens, load};
use super::http1;
use anyhow::Context;
use app::{App, Settings};
use base64::Engine as _;
use bytes::Bytes;
use chrono::Utc;
use ml::Architecture;
use ml::artefact::ArtefactConfig;
use ml::data::{Normalization, Preprocess};
use ml::infer::{EngineOptions, ImageInput, InferenceEngine};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{NewJob, NewWorkflow, WorkflowEnd};

/// Rounds per side: the engine and HTTP measurements alternate so that the machine's drift
/// (other load, clock changes) falls on both alike.
const ROUNDS: usize = 4;

/// Options of `vision bench inference`.
#[derive(Debug, clap::Args)]
pub struct InferenceBenchArgs {
    /// Seconds per round; each side runs [`ROUNDS`] rounds, alternating with the other.
    #[arg(long, default_value_t = 2)]
    seconds: u64,
    /// Models to measure (default: the small CNN and ResNet-18).
    #[arg(long, value_delimiter = ',', default_values_t = [Architecture::SmallCnn, Architecture::Resnet18])]
    models: Vec<Architecture>,
    /// Requests in flight (default: 1 and 16).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16])]
    concurrency: Vec<usize>,
    /// HTTP client: `lean` (pre-built requests on keep-alive connections, as `wrk`) or
    /// `reqwest` (a general client, whose own per-request work then counts as overhead).
    #[arg(long, value_enum, default_value_t = Client::Lean)]
    client: Client,
}

/// The load generator's HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Client {
    Lean,
    Reqwest,
}

/// A completed workflow serving an untrained `architecture` model; its id and artefact dir.
async fn serving_workflow(
    app: &App,
    user_id: &str,
    architecture: Architecture,
    dir: &std::path::Path,
) -> anyhow::Result<String> {
    let classes: Vec<String> = (0..10).map(|i| format!("class{i}")).collect();
    let preprocess = Preprocess {
        image_size: architecture.default_image_size(),
        crop_pct: 0.875,
        normalization: Normalization::IMAGENET,
    };
    let device = ml::DeviceSpec::Cpu.device()?;
    let model = ml::Classifier::new(architecture, classes.len(), &device)?;
    ml::artefact::write(
        dir,
        &model,
        &ArtefactConfig::new(architecture, classes, preprocess),
    )?;
    let id = domain::IdKind::Workflow.new_id();
    let job_id = domain::IdKind::Job.new_id();
    let now = Utc::now();
    let workflow = NewWorkflow {
        id: &id,
        user_id,
        project_id: None,
        name: architecture.name(),
        description: "",
        task_type: "classification",
        model: architecture.name(),
        dataset_id: "",
        config: "{}",
        total_epochs: 1,
        estimated_seconds: 0.0,
        now,
    };
    let job = NewJob {
        id: &job_id,
        kind: "bench",
        user_id,
        subject_id: &id,
        payload: "{}",
        max_attempts: 1,
        max_concurrent: None,
        now,
    };
    app.store.insert_workflow_with_job(workflow, job).await?;
    let prefix = format!("{}model/", objects::keys::workflow_prefix(user_id, &id));
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .context("file name")?
            .to_string_lossy()
            .to_string();
        app.objects
            .put(
                &format!("{prefix}{name}"),
                Bytes::from(std::fs::read(&path)?),
            )
            .await?;
    }
    app.store
        .finish_workflow(&id, WorkflowEnd::Completed { exported_epoch: 1 }, now)
        .await?;
    Ok(id)
}

/// Runs `concurrency` closed-loop slots until `duration` has passed: each sends its next
/// request as soon as its last one is answered. `slot` makes one slot's loop from the time to
/// stop; the loop returns each request's latency, or `None` for a failed request.
async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, slot: F) -> Sample
where
    F: Fn(Instant) -> Fut,
    Fut: Future<Output = Vec<Option<Duration>>> + Send + 'static,
{
    let start = Instant::now();
    let stop = start + duration;
    let slots: Vec<_> = (0..concurrency).map(|_| tokio::spawn(slot(stop))).collect();
    let mut sample = Sample::empty();
    for outcomes in futures::future::join_all(slots).await {
        outcomes
            .unwrap_or_default()
            .into_iter()
            .for_each(|o| sample.record(o));
    }
    sample.finish(start)
}

/// Calls the engine directly with `concurrency` requests in flight for `duration`.
async fn raw(
    engine: &Arc<InferenceEngine>,
    image: &[u8],
    concurrency: usize,
    duration: Duration,
) -> Sample {
    closed_loop(concurrency, duration, |stop| {
        let (engine, image) = (engine.clone(), image.to_vec());
        async move {
            let mut outcomes = Vec::new();
            while Instant::now() < stop {
                let sent = Instant::now();
                let ok = engine
                    .predict(vec![ImageInput::Encoded(image.clone())], 5)
                    .await
                    .is_ok();
                outcomes.push(ok.then(|| sent.elapsed()));
            }
            outcomes
        }
    })
    .await
}

/// Sends `request` over `concurrency` keep-alive connections for `duration`; a request counts
/// when answered 200.
async fn http(
    addr: SocketAddr,
    request: &Arc<Vec<u8>>,
    concurrency: usize,
    duration: Duration,
) -> Sample {
    closed_loop(concurrency, duration, |stop| {
        let request = request.clone();
        async move {
            let Ok(mut connection) = http1::Connection::open(addr).await else {
                return vec![None];
            };
            let mut outcomes = Vec::new();
            while Instant::now() < stop {
                let sent = Instant::now();
                let ok = matches!(connection.exchange(&request).await, Ok(200));
                outcomes.push(ok.then(|| sent.elapsed()));
                if !ok {
                    break;
                }
            }
            outcomes
        }
    })
    .await
}

fn test_image(size: u32) -> anyhow::Result<Vec<u8>> {
    let image = image::RgbImage::from_fn(size, size, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

/// Runs the benchmark and prints one line per model and concurrency.
pub async fn run(args: InferenceBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::for_data_dir(dir.path())?;
    settings.server.bind = "127.0.0.1:0".into();
    settings.log.level = "warn".into();
    settings.rate_limit.enabled = false;
    let app = App::start(settings).await?;
    let server = server::Server::bind(app.clone()).await?;
    let addr = server.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let tokens = create_tokens(&app, 1).await?;
    let user = app
        .store
        .user_by_email("bench0@example.com")
        .await?
        .context("bench user")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()?;
    let duration = Duration::from_secs(args.seconds);
    println!(
        "predict: HTTP (JSON + base64 PNG + auth + cache; {:?} client) vs the raw engine call, {ROUNDS} alternating rounds of {} s each, {} cores",
        args.client,
        args.seconds,
        super::cores()
    );
    let health = Arc::new(http1::request("GET", addr, "/metrics", &[], b""));
    let floor = http(addr, &health, 1, Duration::from_secs(2)).await;
    println!(
        "HTTP round trip alone (GET /metrics, concurrency 1): p50 {:.3} ms",
        floor.percentile(0.5)
    );
    println!(
        "{:<10} {:>4} {:>12} {:>9} {:>9} {:>12} {:>9} {:>9} {:>10} {:>10}",
        "model",
        "conc",
        "engine r/s",
        "p50 ms",
        "p99 ms",
        "HTTP r/s",
        "p50 ms",
        "p99 ms",
        "server ms",
        "overhead"
    );
    for &architecture in &args.models {
        let model_dir = dir.path().join(architecture.name());
        let id = serving_workflow(&app, &user.id, architecture, &model_dir).await?;
        let image = test_image(architecture.default_image_size() as u32)?;
        let engine_dir = model_dir.clone();
        let engine = Arc::new(
            tokio::task::spawn_blocking(move || {
                InferenceEngine::load(&engine_dir, EngineOptions::default())
            })
            .await??,
        );
        // Serialised once: the client shares the cores with the server, and its own JSON
        // encoding is not serving overhead.
        let body = Bytes::from(serde_json::to_vec(&json!({
            "image_base64": base64::engine::general_purpose::STANDARD.encode(&image)
        }))?);
        let path = format!("/api/v1/inference/{id}/predict");
        let token = tokens[0].clone();
        let request = Arc::new(http1::request(
            "POST",
            addr,
            &path,
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            &body,
        ));
        let (url, http_client) = (format!("http://{addr}{path}"), client.clone());
        let make: MakeRequest = Arc::new(move |_| {
            http_client
                .post(&url)
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        });
        let over_http = async |concurrency, duration| match args.client {
            Client::Lean => http(addr, &request, concurrency, duration).await,
            Client::Reqwest => load(&make, None, concurrency, duration).await,
        };
        // Warm-up: loads the served model into the cache.
        over_http(1, Duration::from_secs(1)).await;
        let _ = raw(&engine, &image, 1, Duration::from_secs(1)).await;
        for &concurrency in &args.concurrency {
            let (mut direct, mut http) = (Sample::empty(), Sample::empty());
            let before = predict_seconds(&client, addr).await?;
            for _ in 0..ROUNDS {
                direct.merge(raw(&engine, &image, concurrency, duration).await);
                http.merge(over_http(concurrency, duration).await);
            }
            let after = predict_seconds(&client, addr).await?;
            let server_ms = (after.0 - before.0) / (after.1 - before.1) * 1e3;
            let overhead = 1.0 - http.rate() / direct.rate();
            println!(
                "{:<10} {:>4} {:>12.1} {:>9.2} {:>9.2} {:>12.1} {:>9.2} {:>9.2} {:>10.2} {:>9.1}%{}",
                architecture.name(),
                concurrency,
                direct.rate(),
                direct.percentile(0.5),
                direct.percentile(0.99),
                http.rate(),
                http.percentile(0.5),
                http.percentile(0.99),
                server_ms,
                overhead * 100.0,
                if http.errors > 0 {
                    format!(" ({} errors)", http.errors)
                } else {
                    String::new()
                }
            );
        }
    }
    println!(
        "server ms: mean time inside the server (request middleware to response) per HTTP request"
    );
    println!("goal: overhead < 5 % of the engine's throughput");
    let _ = stop.send(());
    serving.await.context("server task")??;
    Ok(())
}

/// The server's running total of seconds spent in predict requests, and their count (its
/// Prometheus histogram).
async fn predict_seconds(client: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<(f64, f64)> {
    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let total = |suffix: &str| {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(&format!("vision_http_request_duration_seconds_{suffix}"))
                    && l.contains("/predict")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    Ok((total("sum"), total("count")))
}
