use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use test_support::data::{imagefolder_zip, shapes_zip};
use test_support::ws::receive_until_closed;
use test_support::{TestApp, assert_error, spawn_app, spawn_app_with};

/// Datasets get ingested, workflows stay queued.
fn ingest_only(settings: &mut app::Settings) {
    settings.worker.kinds = vec!["dataset_ingest".into()];
}

fn workflow_body(dataset_id: &str, hyper: Value) -> Value {
    json!({
        "name": "도형 분류",
        "description": "circle, square, triangle, cross",
        "config": {
            "task_type": "classification",
            "model": "small_cnn",
            "dataset_id": dataset_id,
            "hyperparameters": hyper,
        }
    })
}

async fn submit(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.post_authed("/api/v1/workflows", token, body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// The whole path a user takes: register, upload, train, watch live, read the results.
#[tokio::test]
async fn user_trains_a_classifier_and_watches_it_live() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let dataset = app
        .ready_dataset(token, shapes_zip(40, 10, 32, 7), "shapes")
        .await;
    let created = submit(
        &app,
        token,
        &workflow_body(
            &dataset,
            json!({"epochs": 6, "batch_size": 32, "learning_rate": 0.003, "image_size": 32}),
        ),
    )
    .await;
    let id = created["workflow_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("wf_"), "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["name"], "도형 분류");
    // 0 when the in-process worker claimed the job before the answer was written (the queued
    // positions are checked with the worker off, below).
    assert!(created["queue_position"].as_i64().unwrap() >= 0);
    assert!(created["estimated_duration_minutes"].as_f64().unwrap() > 0.0);

    let mut socket = app
        .ws_connect(&format!("/api/v1/ws/workflows/{id}?token={token}"))
        .await;
    let received = receive_until_closed(&mut socket, Duration::from_secs(300)).await;
    let kinds: Vec<&str> = received
        .events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(received.close_code, Some(1000), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"training_complete"), "{kinds:?}");
    assert!(kinds.contains(&"checkpoint_saved"), "{kinds:?}");
    let progress = received
        .events
        .iter()
        .find(|e| e["type"] == "training_progress")
        .expect("progress events");
    assert_eq!(progress["workflow_id"], id.as_str());
    for key in ["epoch", "step", "metrics", "eta_minutes", "memory_usage_gb"] {
        assert!(!progress["data"][key].is_null(), "{key} in {progress}");
    }
    assert!(progress["data"]["memory_usage_gb"].as_f64().unwrap() > 0.0);

    let detail: Value = app
        .get_json(&format!("/api/v1/workflows/{id}"), token)
        .await;
    assert_eq!(detail["status"], "completed", "{detail}");
    assert_eq!(detail["progress"]["percentage"], 100);
    assert_eq!(detail["progress"]["total_epochs"], 6);
    assert_eq!(detail["resources"]["device"], "cpu");
    assert!(detail["started_at"].is_string() && detail["completed_at"].is_string());
    let val_accuracy = detail["metrics"]["val_accuracy"].as_f64().unwrap();
    assert!(val_accuracy >= 0.6, "4 classes, chance 0.25: {detail}");
    // The config echo says what was used and why: the user's values and the recipe's choices.
    let recipe = detail["config"]["recipe"]
        .as_array()
        .expect("recipe in the config echo");
    let choice = |field: &str| recipe.iter().find(|c| c["field"] == field).cloned();
    assert_eq!(choice("image_size").unwrap()["source"], "user", "{detail}");
    let flip = choice("hflip_probability").unwrap();
    assert_eq!(flip["source"], "recipe", "{detail}");
    assert!(
        flip["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{flip}"
    );
    assert_eq!(
        detail["config"]["augment"]["hflip_probability"],
        flip["value"]
    );

    let history: Value = app
        .get_json(
            &format!("/api/v1/workflows/{id}/metrics?metric=loss,accuracy"),
            token,
        )
        .await;
    let points = history["metrics"].as_array().unwrap();
    assert_eq!(points.len(), 6, "{history}");
    assert!(
        points[0].get("val_loss").is_none(),
        "filtered to loss, accuracy"
    );
    let first = points[0]["loss"].as_f64().unwrap();
    let last = points[5]["loss"].as_f64().unwrap();
    assert!(last < first, "loss falls: {first} → {last}");
    assert!(points[5]["step"].as_i64().unwrap() > points[0]["step"].as_i64().unwrap());

    let logs: Value = app
        .get_json(&format!("/api/v1/workflows/{id}/logs?tail=3"), token)
        .await;
    assert_eq!(logs["logs"].as_array().unwrap().len(), 3);
    assert!(logs["total_lines"].as_i64().unwrap() >= 8, "{logs}");
    assert!(
        logs["logs"][2]["message"]
            .as_str()
            .unwrap()
            .starts_with("Training complete")
    );

    // The worker books the attempt's compute time as it records the job's end.
    let mut used = 0.0;
    for _ in 0..50 {
        let profile: Value = app.get_json("/api/v1/user/profile", token).await;
        used = profile["usage"]["gpu_hours_used"].as_f64().unwrap();
        if used > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(used > 0.0, "compute time booked");

    // A client joining after the end gets the final event and a normal close.
    let mut late = app
        .ws_connect(&format!("/ws/workflows/{id}?token={token}"))
        .await;
    let replay = receive_until_closed(&mut late, Duration::from_secs(10)).await;
    assert_eq!(replay.events.len(), 1);
    assert_eq!(replay.events[0]["type"], "training_complete");
    assert_eq!(
        replay.events[0]["data"]["model_version"],
        format!("{id}_epoch_{}", replay.events[0]["data"]["exported_epoch"])
    );
}

#[tokio::test]
async fn invalid_configs_name_every_bad_field() {
    let app = spawn_app_with(ingest_only).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let token = &user.access_token;
    let post = |body: Value| {
        app.authed(Method::POST, "/api/v1/workflows", token)
            .json(&body)
            .send()
    };

    let mut body = workflow_body("ds_none", json!({}));
    body["config"]["model"] = json!("resnet999");
    let error = assert_error(post(body).await.unwrap(), 400, "INVALID_REQUEST").await;
    assert_eq!(error["error"]["details"]["field"], "model");
    assert!(
        error["error"]["details"]["available_models"]
            .as_array()
            .unwrap()
            .contains(&json!("resnet50"))
    );

    let body = workflow_body(
        "ds_none",
        json!({"epochs": 5000, "batch_size": -32, "optimizer": "rmsprop"}),
    );
    let error = assert_error(post(body).await.unwrap(), 422, "VALIDATION_ERROR").await;
    let fields: Vec<&str> = error["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "hyperparameters.epochs",
        "hyperparameters.batch_size",
        "hyperparameters.optimizer",
    ] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let batch = error["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "hyperparameters.batch_size")
        .unwrap();
    assert_eq!(batch["message"], "Must be a positive integer");
    assert_eq!(batch["value"], -32);

    // Unknown and foreign datasets read the same.
    let foreign = app
        .ready_dataset(
            &other.access_token,
            imagefolder_zip(&["a", "b"], 6),
            "theirs",
        )
        .await;
    for dataset in ["ds_unknown", foreign.as_str()] {
        let error = assert_error(
            post(workflow_body(dataset, json!({}))).await.unwrap(),
            422,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(
            error["error"]["details"]["errors"][0]["field"],
            "config.dataset_id"
        );
        assert_eq!(
            error["error"]["details"]["errors"][0]["message"],
            "Dataset not found"
        );
    }

    let mut wrong_task = workflow_body(&foreign, json!({}));
    wrong_task["config"]["task_type"] = json!("painting");
    assert_error(post(wrong_task).await.unwrap(), 422, "VALIDATION_ERROR").await;
    let missing = json!({"name": "x"});
    let error = assert_error(post(missing).await.unwrap(), 422, "VALIDATION_ERROR").await;
    assert!(error.to_string().contains("config"), "{error}");
}

/// A run estimated to need more memory than a worker may use is refused when it is created,
/// naming the field to lower and both figures; a modest run of the same model is accepted.
#[tokio::test]
async fn runs_needing_more_memory_than_a_worker_has_are_refused() {
    let app = spawn_app_with(|settings| {
        ingest_only(settings);
        settings.training.max_memory_bytes = 2 << 30;
    })
    .await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let dataset = app
        .ready_dataset(token, imagefolder_zip(&["a", "b"], 6), "ab")
        .await;
    let resnet50 = |hyper: Value| {
        let mut body = workflow_body(&dataset, hyper);
        body["config"]["model"] = json!("resnet50");
        body
    };
    let post = |body: Value| {
        app.authed(Method::POST, "/api/v1/workflows", token)
            .json(&body)
            .send()
    };

    let error = assert_error(
        post(resnet50(json!({"batch_size": 1024, "image_size": 1024})))
            .await
            .unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    // Not even one image of this size fits: the image size is what must go down.
    let errors = error["error"]["details"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{error}");
    assert_eq!(errors[0]["field"], "hyperparameters.image_size", "{error}");
    assert_eq!(errors[0]["value"], 1024);
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("needs about") && message.contains("more than the 2.0 GiB"),
        "estimate and limit: {message}"
    );

    // At 224x224 a smaller batch fits: the batch size is named, with what would fit.
    let error = assert_error(
        post(resnet50(json!({"batch_size": 1024, "image_size": 224})))
            .await
            .unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    let errors = error["error"]["details"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{error}");
    assert_eq!(errors[0]["field"], "hyperparameters.batch_size", "{error}");
    assert_eq!(errors[0]["value"], 1024);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("images per batch fit"),
        "{error}"
    );

    let created = submit(
        &app,
        token,
        &resnet50(json!({"epochs": 1, "batch_size": 8, "image_size": 64})),
    )
    .await;
    assert_eq!(created["status"], "pending");
    submit(
        &app,
        token,
        &resnet50(json!({"epochs": 1, "batch_size": 8, "image_size": 224})),
    )
    .await;
}

#[tokio::test]
async fn listing_paging_cancel_and_foreign_ids() {
    let app = spawn_app_with(ingest_only).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let token = &user.access_token;
    let dataset = app
        .ready_dataset(token, imagefolder_zip(&["a", "b"], 6), "ab")
        .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let created = submit(&app, token, &workflow_body(&dataset, json!({"epochs": 1}))).await;
        assert_eq!(created["queue_position"], i + 1, "{created}");
        ids.push(created["workflow_id"].as_str().unwrap().to_owned());
    }
    let page: Value = app.get_json("/api/v1/workflows?limit=2", token).await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["has_next"], true);
    assert_eq!(
        page["workflows"][0]["workflow_id"],
        ids[2].as_str(),
        "newest first"
    );
    assert_eq!(page["workflows"][0]["progress"], 0);
    let oldest: Value = app
        .get_json("/api/v1/workflows?sort=created_at&page=2&limit=2", token)
        .await;
    assert_eq!(oldest["workflows"][0]["workflow_id"], ids[2].as_str());
    assert_eq!(oldest["has_next"], false);
    assert_error(
        app.get("/api/v1/workflows?status=running", token).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        app.get("/api/v1/workflows?limit=101", token).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;

    let detail: Value = app
        .get_json(&format!("/api/v1/workflows/{}", ids[1]), token)
        .await;
    assert_eq!(detail["status"], "pending");
    assert_eq!(detail["queue_position"], 2);
    assert!(detail["resources"].is_null());

    // Someone else's workflow does not exist for them.
    let theirs = &other.access_token;
    for path in ["", "/metrics", "/logs"] {
        assert_error(
            app.get(&format!("/api/v1/workflows/{}{path}", ids[0]), theirs)
                .await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    let delete = |id: &str, token: &str| {
        app.authed(Method::DELETE, &format!("/api/v1/workflows/{id}"), token)
            .send()
    };
    assert_error(delete(&ids[0], theirs).await.unwrap(), 404, "NOT_FOUND").await;

    let cancelled: Value = delete(&ids[0], token).await.unwrap().json().await.unwrap();
    assert_eq!(cancelled["workflow_id"], ids[0].as_str());
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    assert_error(delete(&ids[0], token).await.unwrap(), 409, "CONFLICT").await;
    let filtered: Value = app
        .get_json("/api/v1/workflows?status=cancelled", token)
        .await;
    assert_eq!(filtered["total"], 1);
    let moved: Value = app
        .get_json(&format!("/api/v1/workflows/{}", ids[1]), token)
        .await;
    assert_eq!(moved["queue_position"], 1, "the queue moved up");
    let logs: Value = app
        .get_json(&format!("/api/v1/workflows/{}/logs", ids[0]), token)
        .await;
    assert_eq!(logs["logs"][0]["message"], "Cancelled by the user");

    // WebSocket: bad token and foreign workflow close with policy violation.
    for query in [
        format!("{}?token=garbage", ids[1]),
        format!("{}?token={theirs}", ids[1]),
        ids[1].clone(),
    ] {
        let mut socket = app
            .ws_connect(&format!("/api/v1/ws/workflows/{query}"))
            .await;
        let received = receive_until_closed(&mut socket, Duration::from_secs(10)).await;
        assert_eq!(received.close_code, Some(1008), "{query}");
        assert!(received.events.is_empty());
    }
}

/// Cancelling a training run stops it within a step; the plan's concurrency cap holds the
/// second workflow of a Free user back until then.
#[tokio::test]
async fn cancel_stops_training_and_frees_the_slot() {
    let app = spawn_app_with(|s| s.training.progress_interval_millis = 50).await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let dataset = app
        .ready_dataset(token, shapes_zip(40, 5, 32, 3), "shapes")
        .await;
    let long = workflow_body(
        &dataset,
        json!({"epochs": 500, "batch_size": 4, "image_size": 32}),
    );
    let first = submit(&app, token, &long).await["workflow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = submit(&app, token, &long).await["workflow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let training = app
        .wait_for_workflow(token, &first, Duration::from_secs(60), |w| {
            w["status"] == "training" && w["metrics"]["loss"].is_number()
        })
        .await;
    assert_eq!(training["resources"]["device"], "cpu");
    assert!(
        training["estimated_completion_at"].is_string(),
        "{training}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting: Value = app
        .get_json(&format!("/api/v1/workflows/{second}"), token)
        .await;
    assert_eq!(waiting["status"], "pending", "Free plan: one at a time");

    let response = app
        .authed(Method::DELETE, &format!("/api/v1/workflows/{first}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The slot frees once the worker has stopped: the second one starts.
    app.wait_for_workflow(token, &second, Duration::from_secs(30), |w| {
        w["status"] == "training"
    })
    .await;
    let stopped: Value = app
        .get_json(&format!("/api/v1/workflows/{first}"), token)
        .await;
    assert_eq!(stopped["status"], "cancelled");
    let step = stopped["progress"]["percentage"].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later: Value = app
        .get_json(&format!("/api/v1/workflows/{first}"), token)
        .await;
    assert_eq!(
        later["progress"]["percentage"], step,
        "no progress after cancel"
    );
    app.authed(
        Method::DELETE,
        &format!("/api/v1/workflows/{second}"),
        token,
    )
    .send()
    .await
    .unwrap();
}

#[tokio::test]
async fn internal_api_needs_its_token_and_is_off_by_default() {
    let closed = spawn_app_with(|s| s.worker.enabled = false).await;
    let response = closed
        .client
        .post(closed.url("/internal/models/prepare"))
        .json(&json!({"model_name": "resnet18", "task_type": "classification"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "NOT_FOUND").await;

    let app = spawn_app_with(|s| {
        ingest_only(s);
        s.internal.token = "internal-secret-token".into();
    })
    .await;
    let call = |path: &str, token: Option<&str>, body: Value| {
        let mut request = app.client.post(app.url(path)).json(&body);
        if let Some(token) = token {
            request = request.header("X-Internal-Auth", token);
        }
        request.send()
    };
    let prepare = json!({"model_name": "resnet18", "task_type": "classification", "config": {}});
    for token in [None, Some("wrong")] {
        let response = call("/internal/models/prepare", token, prepare.clone())
            .await
            .unwrap();
        assert_error(response, 401, "UNAUTHORIZED").await;
    }
    let prepared: Value = call(
        "/internal/models/prepare",
        Some("internal-secret-token"),
        prepare,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(prepared["parameters"], 11_689_512, "torchvision resnet18");
    assert_eq!(prepared["status"], "ready");

    let user = app.new_user().await;
    let dataset = app
        .ready_dataset(&user.access_token, imagefolder_zip(&["a", "b"], 6), "ab")
        .await;
    let body = json!({
        "experiment_name": "from the orchestrator",
        "user_id": user.user_id,
        "training_config": {"task_type": "classification", "model": "small_cnn", "dataset_id": dataset}
    });
    let response = call(
        "/internal/orchestrator/create-workflow",
        Some("internal-secret-token"),
        body,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let mine: Value = app
        .get_json(
            &format!(
                "/api/v1/workflows/{}",
                created["workflow_id"].as_str().unwrap()
            ),
            &user.access_token,
        )
        .await;
    assert_eq!(mine["name"], "from the orchestrator");
}

/// Two server replicas on one PostgreSQL database: a client of replica B follows a workflow
/// trained by replica A's worker, live (LISTEN/NOTIFY). Runs when `VISION_TEST_DATABASE_URL` is set.
#[tokio::test]
async fn events_reach_clients_of_another_replica() {
    if std::env::var("VISION_TEST_DATABASE_URL").is_err() {
        eprintln!("skipped: VISION_TEST_DATABASE_URL not set");
        return;
    }
    let a = spawn_app().await;
    let shared = (*a.app.settings).clone();
    let b = spawn_app_with(|s| {
        s.worker.enabled = false;
        s.database = shared.database.clone();
        s.objects = shared.objects.clone();
        if s.objects.root.is_empty() {
            s.objects.root = shared.data_dir.join("objects").display().to_string();
        }
    })
    .await;
    assert_eq!(b.app.events.backend(), "postgres");
    let user = a.new_user().await;
    let token = &user.access_token;
    let dataset = a
        .ready_dataset(token, shapes_zip(10, 2, 32, 1), "shapes")
        .await;
    let created = submit(
        &b,
        token,
        &workflow_body(&dataset, json!({"epochs": 2, "image_size": 32})),
    )
    .await;
    let id = created["workflow_id"].as_str().unwrap();
    let mut socket = b
        .ws_connect(&format!("/api/v1/ws/workflows/{id}?token={token}"))
        .await;
    let received = receive_until_closed(&mut socket, Duration::from_secs(120)).await;
    let kinds: Vec<&str> = received
        .events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"training_progress"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"training_complete"), "{kinds:?}");
}
