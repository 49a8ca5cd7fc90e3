//! Queue benchmark: many small workflows from many users at once, trained by two workers.
//!
//! Checks that every workflow completes exactly once (one claim each, one metric point per
//! epoch) and reports how evenly the two workers served the users (per-user mean wait, Jain's
//! fairness index over those means).

use anyhow::{Context, bail};
use api_types::workflows::{Hyperparameters, WorkflowConfig};
use app::auth::{NewAccount, Principal};
use app::{App, Settings};
use bytes::Bytes;
use domain::{Plan, WorkflowStatus};
use std::io::Write;
use std::time::{Duration, Instant};

/// Options of `vision bench workflows`.
#[derive(Debug, clap::Args)]
pub struct WorkflowBenchArgs {
    /// Users submitting.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Workflows per user.
    #[arg(long, default_value_t = 10)]
    per_user: usize,
    /// Worker loops training at the same time.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// A two-class ImageFolder zip of 16×16 images (bright vs dark), 8 per class.
fn tiny_dataset() -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (class, base) in [("bright", 200u8), ("dark", 40u8)] {
        for i in 0..8u8 {
            let image = image::RgbImage::from_fn(16, 16, |x, y| {
                let v = base.saturating_add(((x + y) as u8 + i) % 30);
                image::Rgb([v, v, v])
            });
            let mut png = Vec::new();
            image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            zip.start_file(
                format!("{class}/{i}.png"),
                zip::write::SimpleFileOptions::default(),
            )?;
            zip.write_all(&png)?;
        }
    }
    Ok(zip.finish()?.into_inner())
}

async fn ready_dataset(app: &App, principal: &Principal) -> anyhow::Result<String> {
    let bytes = Bytes::from(tiny_dataset()?);
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    let archive = app::datasets::store_archive(app, principal, stream).await?;
    let form = app::datasets::UploadForm {
        name: Some("tiny".into()),
        format: Some("auto".into()),
        ..Default::default()
    };
    let summary = app::datasets::create(app, principal, form, Some(archive))
        .await
        .map_err(|e| anyhow::anyhow!("dataset: {e:?}"))?;
    for _ in 0..600 {
        let detail = app::datasets::get(app, principal, &summary.dataset_id).await?;
        match detail.status.as_str() {
            "ready" => return Ok(summary.dataset_id),
            "failed" => bail!("dataset failed: {:?}", detail.error),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    bail!("dataset not ready after 30 s")
}

/// Runs the benchmark and prints its report.
pub async fn run(args: WorkflowBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::for_data_dir(dir.path())?;
    settings.log.level = "warn".into();
    settings.worker.poll_millis = 20;
    let app = App::start(settings).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = worker::WorkerConfig::from_settings(&app.settings);
    let mut workers = Vec::new();
    for _ in 0..args.workers.max(1) {
        workers.push(tokio::spawn(worker::run(
            app.clone(),
            app::jobs::handlers(),
            config,
            stopped.clone(),
        )));
    }

    let mut users = Vec::new();
    for i in 0..args.users {
        let account = NewAccount {
            email: format!("bench{i}@example.com"),
            password: "benchmark-password".into(),
            name: format!("Bench {i}"),
            plan: Plan::Free,
        };
        let user = app::auth::create_account(&app, account).await?;
        let principal = Principal {
            user_id: user.id,
            plan: user.plan,
        };
        let dataset = ready_dataset(&app, &principal).await?;
        users.push((principal, dataset));
    }

    // Everyone submits at once.
    let started = Instant::now();
    let submissions = users
        .iter()
        .enumerate()
        .flat_map(|(u, (principal, dataset))| {
            (0..args.per_user).map(move |n| (u, n, principal, dataset))
        });
    let submitted = futures::future::join_all(submissions.map(|(u, n, principal, dataset)| {
        let app = app.clone();
        async move {
            let config = WorkflowConfig {
                task_type: "classification".into(),
                model: "small_cnn".into(),
                dataset_id: dataset.clone(),
                hyperparameters: Hyperparameters {
                    epochs: Some(2),
                    batch_size: Some(8),
                    image_size: Some(16),
                    ..Default::default()
                },
            };
            let name = format!("user{u}-wf{n}");
            app::workflows::submit(&app, principal, &name, "", None, &config)
                .await
                .map(|created| (u, created.workflow_id, Instant::now()))
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| anyhow::anyhow!("submitting: {e:?}"))?;
    let submit_secs = started.elapsed().as_secs_f64();

    // Wait for every workflow to end.
    let total = submitted.len();
    let mut waits: Vec<Vec<f64>> = vec![Vec::new(); args.users];
    let mut pending: Vec<(usize, String, Instant)> = submitted;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut problems = Vec::new();
    while !pending.is_empty() {
        if Instant::now() > deadline {
            bail!("{} workflows still running after an hour", pending.len());
        }
        let mut still = Vec::new();
        for (u, id, at) in pending {
            let workflow = app
                .store
                .workflow_by_id(&id)
                .await?
                .context("workflow lost")?;
            if workflow.status.is_terminal() {
                if workflow.status != WorkflowStatus::Completed {
                    problems.push(format!(
                        "{id}: {} {:?}",
                        workflow.status.as_str(),
                        workflow.error
                    ));
                }
                if let Some(start) = workflow.started_at {
                    let wait = (start - workflow.created_at).num_milliseconds() as f64 / 1000.0;
                    waits[u].push(wait);
                }
                let job = app.store.job_for_subject(&id).await?.context("job lost")?;
                if job.attempts != 1 {
                    problems.push(format!("{id}: claimed {} times", job.attempts));
                }
                let points = app.store.metrics(&id, None).await?;
                if points.len() != 2 {
                    problems.push(format!("{id}: {} metric points for 2 epochs", points.len()));
                }
            } else {
                still.push((u, id, at));
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    for worker in workers {
        let _ = worker.await;
    }

    let means: Vec<f64> = waits
        .iter()
        .map(|w| w.iter().sum::<f64>() / w.len().max(1) as f64)
        .collect();
    let sum: f64 = means.iter().sum();
    let squares: f64 = means.iter().map(|m| m * m).sum();
    let jain = if squares > 0.0 {
        sum * sum / (means.len() as f64 * squares)
    } else {
        1.0
    };
    println!(
        "workflows: {total} from {} users ({} each), {} workers, small_cnn 2 epochs × 16 images 16²",
        args.users, args.per_user, args.workers
    );
    println!(
        "submitted in {submit_secs:.2} s; all ended after {elapsed:.1} s ({:.2} workflows/s)",
        total as f64 / elapsed
    );
    println!(
        "completed exactly once: {}/{total}{}",
        total - problems.len().min(total),
        if problems.is_empty() {
            String::new()
        } else {
            format!(" — problems: {problems:?}")
        }
    );
    println!(
        "{:<8} {:>14} {:>10} {:>10}",
        "user", "mean wait (s)", "min", "max"
    );
    for (u, w) in waits.iter().enumerate() {
        let min = w.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = w.iter().cloned().fold(0.0, f64::max);
        println!(
            "{:<8} {:>14.2} {:>10.2} {:>10.2}",
            format!("user{u}"),
            means[u],
            min,
            max
        );
    }
    println!("fairness (Jain's index over per-user mean waits, 1 = equal): {jain:.3}");
    if !problems.is_empty() {
        bail!("{} workflows did not complete exactly once", problems.len());
    }
    Ok(())
}
