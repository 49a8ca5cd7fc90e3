//! Crash safety with real processes: a `vision worker` is killed with SIGKILL mid-training and
//! another `vision worker` process resumes the run from its last stored checkpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use test_support::data::shapes_zip;
use test_support::{TestApp, spawn_app_with};

/// Starts `vision worker` on the test server's database and object store, with its own
/// scratch directory (as if on another machine).
fn start_worker(app: &TestApp, name: &str) -> Child {
    let mut settings = (*app.app.settings).clone();
    settings.training.work_dir = app.data_dir.path().join(name).display().to_string();
    settings.database.url = settings.database_url();
    settings.log.level = "info".into();
    let config = app.data_dir.path().join(format!("{name}.toml"));
    std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_vision"))
        .arg("--config")
        .arg(&config)
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vision worker starts")
}

#[tokio::test]
async fn killed_worker_is_resumed_from_its_checkpoint_by_another() {
    let app = spawn_app_with(|s| {
        s.worker.enabled = false;
        s.worker.lease_secs = 2;
        s.training.progress_interval_millis = 100;
    })
    .await;
    let user = app.new_user().await;
    let token = &user.access_token;
    // Datasets are ingested in process; only training runs in the worker processes.
    let (stop_ingest, ingest) = tokio::sync::watch::channel(false);
    tokio::spawn(worker::run(
        app.app.clone(),
        vec![Arc::new(app::datasets::IngestHandler)],
        worker::WorkerConfig::from_settings(&app.app.settings),
        ingest,
    ));
    let dataset = app
        .ready_dataset(token, shapes_zip(30, 5, 32, 5), "shapes")
        .await;
    stop_ingest.send(true).unwrap();
    let epochs = 6;
    let id = app
        .create_workflow(
            token,
            &json!({
                "name": "crash test",
                "config": {
                    "task_type": "classification", "model": "small_cnn", "dataset_id": dataset,
                    "hyperparameters": {"epochs": epochs, "batch_size": 4, "image_size": 32}
                }
            }),
        )
        .await;

    let mut first = start_worker(&app, "first");
    let at_kill = app
        .wait_for_workflow(token, &id, Duration::from_secs(120), |w| {
            w["progress"]["current_epoch"].as_i64().unwrap_or(0) >= 2
        })
        .await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    assert_eq!(at_kill["status"], "training");

    let mut second = start_worker(&app, "second");
    let done = app
        .wait_for_workflow(token, &id, Duration::from_secs(180), |w| {
            w["status"] != "training"
        })
        .await;
    second.kill().ok();
    second.wait().ok();
    assert_eq!(done["status"], "completed", "{done}");

    let job = app.app.store.job_for_subject(&id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 2, "claimed once by each worker: {job:?}");
    let logs: Value = app
        .get_json(&format!("/api/v1/workflows/{id}/logs?tail=1000"), token)
        .await;
    let messages: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    let resumed = messages
        .iter()
        .find(|m| m.starts_with("Resuming training from the checkpoint of epoch"))
        .unwrap_or_else(|| panic!("no resume in {messages:?}"));
    let from: usize = resumed
        .trim_start_matches("Resuming training from the checkpoint of epoch ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(from >= 1, "{resumed}");
    let starts = messages
        .iter()
        .filter(|m| m.starts_with("Starting training"))
        .count();
    assert_eq!(starts, 1, "trained from scratch only once: {messages:?}");
    let history: Value = app
        .get_json(&format!("/api/v1/workflows/{id}/metrics"), token)
        .await;
    let epochs_seen: Vec<i64> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(
        epochs_seen,
        (1..=epochs).collect::<Vec<i64>>(),
        "one point per epoch"
    );
    assert!(
        !Path::new(&app.data_dir.path().join("second").join(&id)).exists(),
        "scratch cleaned"
    );
}

/// A segmentation task whose worker is SIGKILLed mid-task is retried by another worker and
/// ends `done`: never stuck in `processing`, charged once.
#[tokio::test]
async fn killed_worker_never_leaves_a_segmentation_task_processing() {
    let app = spawn_app_with(|s| {
        test_support::with_sam3(s);
        s.worker.enabled = false;
        s.worker.lease_secs = 2;
        s.worker.kinds = vec!["segmentation".into()];
        s.rate_limit.enabled = false;
    })
    .await;
    let user = app.new_user().await;
    let token = &user.access_token;
    // A large, noisy image makes each task last long enough to be caught mid-way.
    let image = image::RgbImage::from_fn(1600, 1200, |x, y| {
        let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7;
        image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Jpeg)
        .unwrap();
    let upload = test_support::edge_data(
        app.upload_image(token, "big.jpg", bytes.into_inner()).await,
        200,
    )
    .await;
    let url = upload["image_url"].as_str().unwrap();
    let before = app.app.store.credits(&user.user_id).await.unwrap();
    let mut tasks = Vec::new();
    for prompt in ["cat", "dog", "bird", "tree"] {
        let task = test_support::edge_data(app.segment(token, url, prompt).await, 202).await;
        tasks.push(task["task_id"].as_str().unwrap().to_owned());
    }

    // Kill the worker while a task is `processing` (try again if a task finished in between).
    let mut victim = None;
    for attempt in 0..5 {
        let mut worker = start_worker(&app, &format!("seg-{attempt}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let caught = loop {
            let mut processing = None;
            for id in &tasks {
                let row = app.app.store.seg_task_by_id(id).await.unwrap().unwrap();
                if row.status == "processing" {
                    processing = Some(id.clone());
                }
            }
            if let Some(id) = processing {
                worker.kill().expect("SIGKILL");
                worker.wait().unwrap();
                break Some(id);
            }
            if std::time::Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        worker.kill().ok();
        worker.wait().ok();
        let Some(id) = caught else { continue };
        let row = app.app.store.seg_task_by_id(&id).await.unwrap().unwrap();
        if row.status == "processing" {
            victim = Some(id);
            break;
        }
    }
    let victim = victim.expect("a worker was killed mid-task");

    let mut second = start_worker(&app, "seg-final");
    for id in &tasks {
        let done = app.wait_for_task(token, id).await;
        assert_eq!(done["status"], "done", "{done}");
    }
    second.kill().ok();
    second.wait().ok();
    let job = app
        .app
        .store
        .job_for_subject(&victim)
        .await
        .unwrap()
        .unwrap();
    assert!(
        job.attempts >= 2,
        "the killed task was claimed again: {job:?}"
    );
    assert_eq!(
        app.app.store.credits(&user.user_id).await.unwrap(),
        before - 4,
        "each task charged exactly once"
    );
}
