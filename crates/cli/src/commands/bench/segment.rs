//! Segmentation service load: many `POST /api/v1/segment` at once over HTTP against the real
//! server with its in-process worker and SAM3 engine; every task must end `done`, the credits
//! must match exactly, and submit → done latency is reported.

use super::api::Sample;
use anyhow::{Context, bail};
use app::auth::NewAccount;
use app::{App, Settings};
use domain::Plan;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `vision bench segment`.
#[derive(Debug, clap::Args)]
pub struct SegmentBenchArgs {
    /// SAM3 weights directory (default: the tiny fixture model of `../shared/fixtures`).
    #[arg(long, default_value = "../shared/fixtures/sam3-tiny")]
    weights: PathBuf,
    /// Segment requests sent at once.
    #[arg(long, default_value_t = 50)]
    requests: usize,
}

fn photo() -> anyhow::Result<Vec<u8>> {
    let image = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// Runs the benchmark.
pub async fn run(base: Settings, args: SegmentBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::for_data_dir(dir.path())?;
    settings.server.bind = "127.0.0.1:0".into();
    settings.log = base.log;
    settings.worker.poll_millis = 10;
    settings.segmentation.weights_dir = args.weights.display().to_string();
    let app = App::start(settings).await?;
    app.segmenter
        .engine()
        .await
        .context("loading the SAM3 weights")?;
    let server = server::Server::bind(app.clone()).await?;
    let address = format!("http://{}", server.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let (stop_worker, worker) = worker::spawn(app.clone());

    let user = app::auth::create_account(
        &app,
        NewAccount {
            email: "segment-bench@example.com".into(),
            password: "benchmark-password".into(),
            name: "Bench".into(),
            plan: Plan::Enterprise,
        },
    )
    .await?;
    let token = app.tokens.access_token_at(&user, chrono::Utc::now())?;
    let client = reqwest::Client::new();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(photo()?).file_name("bench.png"),
    );
    let upload: serde_json::Value = client
        .post(format!("{address}/api/v1/upload"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await?
        .json()
        .await?;
    let image_url = upload["data"]["image_url"]
        .as_str()
        .with_context(|| format!("upload failed: {upload}"))?
        .to_owned();
    let credits_before = app.store.credits(&user.id).await?;

    let started = Instant::now();
    let submits = (0..args.requests).map(|i| {
        let (client, address, token, image_url) = (
            client.clone(),
            address.clone(),
            token.clone(),
            image_url.clone(),
        );
        async move {
            let body =
                serde_json::json!({"image_url": image_url, "text_prompt": format!("object {i}")});
            let response = client
                .post(format!("{address}/api/v1/segment"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            let answer: serde_json::Value = response.json().await?;
            anyhow::ensure!(status == 202, "segment answered {status}: {answer}");
            Ok::<_, anyhow::Error>(
                answer["data"]["task_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    });
    let tasks = futures::future::try_join_all(submits).await?;
    let accepted_in = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut latencies = Vec::new();
    let mut failed = Vec::new();
    for id in &tasks {
        loop {
            let task = app.store.seg_task_by_id(id).await?.context("task lost")?;
            if task.status == "done" || task.status == "error" {
                if task.status == "error" {
                    failed.push(format!("{id}: {:?}", task.error_message));
                }
                let ms = (task.updated_at - task.created_at)
                    .num_milliseconds()
                    .max(0);
                latencies.push(Duration::from_millis(ms as u64));
                break;
            }
            if Instant::now() > deadline {
                bail!("task {id} still {} after 30 minutes", task.status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let elapsed = started.elapsed();
    let credits_after = app.store.credits(&user.id).await?;
    let _ = stop_worker.send(true);
    let _ = worker.await;
    let _ = stop.send(());

    latencies.sort_unstable();
    let sample = Sample {
        latencies,
        errors: failed.len(),
        elapsed,
    };
    let charged = credits_before - credits_after;
    println!(
        "segmentation service, {} concurrent segment requests ({})",
        args.requests,
        args.weights.display()
    );
    println!(
        "  accepted (202) in        {:>9.1} ms",
        accepted_in.as_secs_f64() * 1000.0
    );
    println!(
        "  all done in              {:>9.1} s  ({:.1} tasks/s)",
        elapsed.as_secs_f64(),
        sample.rate()
    );
    println!(
        "  submit → done p50 / p99  {:>9.1} / {:.1} ms",
        sample.percentile(0.5),
        sample.percentile(0.99)
    );
    println!(
        "  tasks done / error       {:>9} / {}",
        tasks.len() - failed.len(),
        failed.len()
    );
    println!(
        "  credits charged          {charged:>9} (expected {})",
        tasks.len()
    );
    if !failed.is_empty() || charged != tasks.len() as i64 {
        bail!("tasks failed or credits wrong: {failed:?}, charged {charged}");
    }
    Ok(())
}
