//! The segmentation backend API (`vision segment-backend`), and workers that hand tasks to it.

use app::App;
use reqwest::Client;
use serde_json::{Value, json};
use std::sync::Arc;
use test_support::{TestApp, edge_data, spawn_app_with, with_sam3};

const KEY: &str = "backend-test-key";

/// Serves the backend API over `edge`'s database and objects with `configure`d settings.
async fn spawn_backend(edge: &TestApp, configure: impl FnOnce(&mut app::Settings)) -> String {
    let mut settings = (*edge.app.settings).clone();
    settings.segmentation.api_key = KEY.into();
    settings.segmentation.backend_bind = "127.0.0.1:0".into();
    settings.server.public_url = edge.address.clone();
    configure(&mut settings);
    let backend = App {
        segmenter: Arc::new(app::segmentation::Segmenter::new(&settings)),
        settings: Arc::new(settings),
        ..edge.app.clone()
    };
    let _ = backend.segmenter.engine().await;
    let server = server::Server::bind_backend(backend).await.unwrap();
    let address = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run_until(std::future::pending()));
    address
}

fn photo() -> Vec<u8> {
    test_support::data::png(40, 30, [200, 30, 30])
}

/// An uploaded image and a pending task on it (the edge runs no worker).
async fn pending_task(edge: &TestApp) -> (test_support::TestUser, String, String) {
    let user = edge.new_user().await;
    let image = edge_data(
        edge.upload_image(&user.access_token, "a.png", photo())
            .await,
        200,
    )
    .await;
    let url = image["image_url"].as_str().unwrap().to_owned();
    let task = edge_data(edge.segment(&user.access_token, &url, "apple").await, 202).await;
    (user, url, task["task_id"].as_str().unwrap().to_owned())
}

/// A client of one backend.
struct Backend {
    client: Client,
    base: String,
}

impl Backend {
    /// `method path` with `X-API-Key` and a JSON body when given: status and JSON body.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, key, None).await
    }

    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, key, Some(body))
            .await
    }

    /// Status of a `GET` on a (signed) file URL the backend returned.
    async fn fetch(&self, url: &Value) -> reqwest::Response {
        self.client.get(url.as_str().unwrap()).send().await.unwrap()
    }
}

/// An edge app without a worker (tasks stay pending until a backend serves them) and a backend
/// beside it configured by `configure`.
async fn edge_and_backend(configure: impl FnOnce(&mut app::Settings)) -> (TestApp, Backend) {
    let edge = spawn_app_with(|s| {
        with_sam3(s);
        s.worker.enabled = false;
    })
    .await;
    let base = spawn_backend(&edge, configure).await;
    let backend = Backend {
        client: Client::new(),
        base,
    };
    (edge, backend)
}

#[tokio::test]
async fn backend_predicts_updates_the_task_and_reports_the_model() {
    let (edge, backend) = edge_and_backend(|_| {}).await;
    let (_, health) = backend.get("/health", None).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["model_loaded"], true);
    assert_eq!(health["gpu_available"], false);
    assert!(health["gpu_name"].is_null() && health["vram_used_mb"].is_null());
    assert!(health["ram_used_mb"].as_f64().unwrap() > 1.0, "{health}");
    assert!(health["ram_total_mb"].as_f64() > health["ram_used_mb"].as_f64());

    let (status, info) = backend.get("/api/v1/model/info", Some(KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(info["model_name"], "SAM3");
    assert_eq!(info["model_version"], "sam3-tiny");
    assert_eq!(info["dtype"], "float32");
    assert_eq!(info["device"], "cpu");
    let weights = std::fs::metadata(format!(
        "{}/model.safetensors",
        test_support::sam3_tiny_dir()
    ))
    .unwrap()
    .len() as f64;
    let parameters = info["parameters"].as_f64().unwrap();
    assert!(
        parameters * 4.0 <= weights && parameters * 4.0 > weights * 0.9,
        "{info}"
    );

    let (user, url, task_id) = pending_task(&edge).await;
    let body = json!({"image_url": url, "text_prompt": "apple", "user_id": user.user_id, "task_id": task_id});
    let (status, missing) = backend.post("/api/v1/predict", None, &body).await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (401, Some("AUTH_INVALID")),
        "{missing}"
    );
    let (status, _) = backend.post("/api/v1/predict", Some("wrong"), &body).await;
    assert_eq!(status, 401);
    let wrong_owner =
        json!({"image_url": url, "text_prompt": "apple", "user_id": "user_x", "task_id": task_id});
    let (status, _) = backend
        .post("/api/v1/predict", Some(KEY), &wrong_owner)
        .await;
    assert_eq!(status, 404);

    let (status, answer) = backend.post("/api/v1/predict", Some(KEY), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["task_id"], task_id.as_str());
    assert!(
        answer["labels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l == "apple")
    );
    assert!(answer["inference_time_ms"].as_f64().unwrap() > 0.0);
    assert!(
        answer.get("success").is_none(),
        "no envelope on the backend"
    );
    let mask = backend.fetch(&answer["mask_url"]).await;
    assert_eq!(mask.status(), 200);
    let mask = image::load_from_memory(&mask.bytes().await.unwrap()).unwrap();
    assert_eq!((mask.width(), mask.height()), (40, 30));
    let task = edge_data(
        edge.get(&format!("/api/v1/tasks/{task_id}"), &user.access_token)
            .await,
        200,
    )
    .await;
    assert_eq!(task["status"], "done");
    // Retried calls answer from the stored result.
    let (status, again) = backend.post("/api/v1/predict", Some(KEY), &body).await;
    assert_eq!((status, &again["labels"]), (200, &answer["labels"]));

    let (user, url, task_id) = pending_task(&edge).await;
    let batch = json!({"image_url": url, "prompts": ["apple", "leaf", "stem"], "user_id": user.user_id, "task_id": task_id});
    let (status, answer) = backend
        .post("/api/v1/predict/batch", Some(KEY), &batch)
        .await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (result, prompt) in results.iter().zip(["apple", "leaf", "stem"]) {
        assert!(
            result["labels"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l == prompt)
        );
        assert_eq!(backend.fetch(&result["mask_url"]).await.status(), 200);
    }
    let detail = edge_data(
        edge.get(&format!("/api/v1/results/{task_id}"), &user.access_token)
            .await,
        200,
    )
    .await;
    assert_eq!(detail["status"], "done");
    let empty =
        json!({"image_url": url, "prompts": [], "user_id": user.user_id, "task_id": task_id});
    let (status, body) = backend
        .post("/api/v1/predict/batch", Some(KEY), &empty)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
}

#[tokio::test]
async fn backend_without_weights_answers_503() {
    let (edge, backend) = edge_and_backend(|s| s.segmentation.weights_dir = String::new()).await;
    let (_, health) = backend.get("/health", None).await;
    assert_eq!(health["model_loaded"], false);
    let (status, _) = backend.get("/api/v1/model/info", Some(KEY)).await;
    assert_eq!(status, 503);
    let (user, url, task_id) = pending_task(&edge).await;
    let body = json!({"image_url": url, "text_prompt": "apple", "user_id": user.user_id, "task_id": task_id});
    let (status, answer) = backend.post("/api/v1/predict", Some(KEY), &body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("MODEL_NOT_LOADED")),
        "{answer}"
    );
    let task = edge
        .app
        .store
        .seg_task_by_id(&task_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        task.status, "pending",
        "an unserved task stays queued for a backend that can"
    );
}

#[tokio::test]
async fn workers_hand_tasks_to_remote_backends() {
    // The backend holds the weights; the edge and its worker have none, only the backend list.
    let (edge, backend) = edge_and_backend(|_| {}).await;
    let mut settings = (*edge.app.settings).clone();
    settings.segmentation.weights_dir = String::new();
    settings.segmentation.backends = vec!["http://127.0.0.1:9".into(), backend.base];
    settings.segmentation.api_key = KEY.into();
    let worker_app = App {
        segmenter: Arc::new(app::segmentation::Segmenter::new(&settings)),
        settings: Arc::new(settings),
        ..edge.app.clone()
    };
    let (stop, handle) = worker::spawn(worker_app);

    let (user, _, task_id) = pending_task(&edge).await;
    let done = edge.wait_for_task(&user.access_token, &task_id).await;
    assert_eq!(done["status"], "done", "{done}");
    let _ = stop.send(true);
    handle.await.unwrap();
}
