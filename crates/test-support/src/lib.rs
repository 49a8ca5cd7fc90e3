//! Helpers for black-box tests: [`spawn_app`] starts the real server on port 0 with a fresh
//! data directory, and the client helpers speak its API like a user would.
//!
//! Backends follow the environment like production configuration does: a fresh PostgreSQL
//! database when `VISION_TEST_DATABASE_URL` is set, Redis counters when `VISION_TEST_REDIS_URL`
//! is set, an S3 bucket when `VISION_TEST_S3_ENDPOINT` is set; SQLite, memory and the local
//! filesystem otherwise.

pub mod browser;
pub mod data;
pub mod ws;

use app::{App, Settings};
use chrono::{DateTime, Utc};
use domain::{Plan, User};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The fixed JWT secret of test servers, so tests can mint tokens (e.g. expired ones).
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// A running server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// HTTP client (no default headers).
    pub client: Client,
    /// The server's use-case layer, for set-up that has no API (plans, usage).
    pub app: App,
    /// The server's data directory (deleted on drop).
    pub data_dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A registered user with live tokens.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// `user_…` id.
    pub user_id: String,
    /// Login e-mail.
    pub email: String,
    /// Login password.
    pub password: String,
    /// Bearer token.
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
}

fn fresh_credentials() -> (String, String) {
    let email = format!("{}@example.com", domain::IdKind::User.new_id());
    (email, "correct horse battery".to_owned())
}

/// Starts a server with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after `configure` adjusts the test settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::for_data_dir(data_dir.path()).expect("default settings");
    settings.server.bind = "127.0.0.1:0".into();
    settings.auth.jwt_secret = TEST_JWT_SECRET.into();
    settings.log.level = "warn".into();
    settings.worker.poll_millis = 50;
    // Every test user registers from 127.0.0.1; tests of the limit set it themselves.
    settings.auth.registrations_per_client_per_hour = 1_000_000;
    if let Some(url) = store::testing::fresh_postgres_url().await {
        settings.database.url = url;
        settings.database.max_connections = 4;
    }
    if let Ok(url) = std::env::var("VISION_TEST_REDIS_URL") {
        settings.rate_limit.redis_url = url;
        // Each test server is its own deployment: counters must not leak between tests.
        settings.rate_limit.namespace = domain::IdKind::Request.new_id();
    }
    if let Ok(endpoint) = std::env::var("VISION_TEST_S3_ENDPOINT") {
        let bucket = objects::testing::create_bucket(&endpoint).await;
        settings.objects.kind = "s3".into();
        settings.objects.bucket = bucket;
        settings.objects.endpoint = endpoint;
        settings.objects.access_key_id = "test".into();
        settings.objects.secret_access_key = "test".into();
        settings.objects.allow_http = true;
    }
    configure(&mut settings);
    let app = App::start(settings).await.expect("app starts");
    let server = server::Server::bind(app.clone())
        .await
        .expect("server binds");
    let address = format!("http://{}", server.local_addr().expect("bound address"));
    let (tx, rx) = oneshot::channel::<()>();
    // Like `vision serve`: an in-process worker unless the test turned it off.
    let worker = app
        .settings
        .worker
        .enabled
        .then(|| worker::spawn(app.clone()));
    tokio::spawn(async move {
        let _ = server
            .run_until(async {
                let _ = rx.await;
            })
            .await;
        if let Some((stop, _)) = worker {
            let _ = stop.send(true);
        }
    });
    TestApp {
        address,
        client: Client::new(),
        app,
        data_dir,
        shutdown: Some(tx),
    }
}

/// Sends `request`; its JSON body, whatever the status.
pub async fn json_of(request: RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON body")
}

impl TestApp {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with a bearer token.
    pub fn authed(&self, method: reqwest::Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// `GET path` with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.authed(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST path` with a bearer token and a JSON body.
    pub async fn post_authed(&self, path: &str, token: &str, body: &Value) -> Response {
        self.authed(reqwest::Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path` with a bearer token; the JSON body, whatever the status.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token).await.json().await.expect("JSON body")
    }

    /// Polls `GET /inference/{workflow_id}/batch/{job_id}` until the batch is no longer
    /// `processing` (at most 30 s); its last body.
    pub async fn wait_for_batch(&self, token: &str, workflow_id: &str, job_id: &str) -> Value {
        let path = format!("/api/v1/inference/{workflow_id}/batch/{job_id}");
        for _ in 0..60 {
            let status = self.get_json(&path, token).await;
            if status["status"] != "processing" {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        panic!("batch {job_id} still processing after 30 s");
    }

    /// `POST path` with a JSON body and no token.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers through the API and logs in; panics on failure.
    pub async fn new_user(&self) -> TestUser {
        let (email, password) = fresh_credentials();
        let response = self
            .post_json(
                "/api/v1/auth/register",
                &json!({"email": email, "password": password, "name": "Tester"}),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "register: {}",
            response.text().await.unwrap_or_default()
        );
        let body: Value = response.json().await.expect("json");
        let user_id = body["user_id"].as_str().expect("user_id").to_owned();
        self.logged_in(user_id, email, password).await
    }

    /// A user on `plan`, created through the operator path (like `vision user create`).
    pub async fn new_user_with_plan(&self, plan: Plan) -> TestUser {
        let (email, password) = fresh_credentials();
        let account = app::auth::NewAccount {
            email: email.clone(),
            password: password.clone(),
            name: "Op".into(),
            plan,
        };
        let user = app::auth::create_account(&self.app, account)
            .await
            .expect("account");
        self.logged_in(user.id, email, password).await
    }

    async fn logged_in(&self, user_id: String, email: String, password: String) -> TestUser {
        let tokens = self.login(&email, &password).await;
        let token = |key: &str| tokens[key].as_str().expect("token").to_owned();
        TestUser {
            user_id,
            access_token: token("access_token"),
            refresh_token: token("refresh_token"),
            email,
            password,
        }
    }

    /// The text of the public `/metrics`.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// `POST /auth/token`; panics unless 200.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .post_json(
                "/api/v1/auth/token",
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "login: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("json")
    }

    /// An access token for `user_id` as if issued at `issued_at`, signed with the test secret.
    pub fn token_issued_at(&self, user_id: &str, plan: Plan, issued_at: DateTime<Utc>) -> String {
        let user = User {
            id: user_id.to_owned(),
            email: String::new(),
            name: String::new(),
            plan,
            password_hash: String::new(),
            created_at: Utc::now(),
        };
        self.app
            .tokens
            .access_token_at(&user, issued_at)
            .expect("token")
    }
}

/// Asserts the platform error envelope with `status` and `code`, and returns the body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["error"]["code"], code, "body: {text}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message: {text}"
    );
    assert!(body["error"]["details"].is_object(), "details: {text}");
    assert_eq!(
        body["error"]["request_id"].as_str(),
        request_id.as_deref(),
        "request id: {text}"
    );
    body
}

/// The tiny SAM3 checkpoint of the shared fixtures (random weights, real structure).
pub fn sam3_tiny_dir() -> String {
    format!(
        "{}/../../../shared/fixtures/sam3-tiny",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Test settings for the segmentation service: the tiny SAM3 weights, and every instance kept
/// (random weights score low).
pub fn with_sam3(settings: &mut Settings) {
    settings.segmentation.weights_dir = sam3_tiny_dir();
    settings.segmentation.score_threshold = 0.0;
}

/// Asserts the segmentation envelope of an error with `status` and `code`, and returns the
/// body.
pub async fn assert_edge_error(response: Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["success"], false, "{text}");
    assert!(body["data"].is_null(), "{text}");
    assert_eq!(body["error"]["code"], code, "{text}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{text}"
    );
    assert_meta(&body);
    body
}

/// Asserts a successful segmentation envelope with `status` and returns its `data`.
pub async fn edge_data(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["success"], true, "{text}");
    assert!(body["error"].is_null(), "{text}");
    assert_meta(&body);
    body["data"].clone()
}

fn assert_meta(body: &Value) {
    let id = body["meta"]["request_id"]
        .as_str()
        .expect("meta.request_id");
    let parsed = uuid::Uuid::parse_str(id).expect("request_id is a UUID");
    assert_eq!(parsed.get_version_num(), 4, "UUID v4: {id}");
    let timestamp = body["meta"]["timestamp"].as_str().expect("meta.timestamp");
    DateTime::parse_from_rfc3339(timestamp).expect("ISO 8601 timestamp");
}

impl TestApp {
    /// Uploads `bytes` as `file` to `POST /api/v1/upload`.
    pub async fn upload_image(&self, token: &str, name: &str, bytes: Vec<u8>) -> Response {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        self.authed(reqwest::Method::POST, "/api/v1/upload", token)
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    /// Submits `POST /api/v1/segment`.
    pub async fn segment(&self, token: &str, image_url: &str, prompt: &str) -> Response {
        self.authed(reqwest::Method::POST, "/api/v1/segment", token)
            .json(&json!({ "image_url": image_url, "text_prompt": prompt }))
            .send()
            .await
            .expect("segment")
    }

    /// Waits until the task is `done` or `error` (at most 60 s; polling the database so the
    /// results rate limit is not spent), then returns `GET /api/v1/tasks/{id}`.
    pub async fn wait_for_task(&self, token: &str, task_id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let row = self.app.store.seg_task_by_id(task_id).await.expect("store");
            let status = row.as_ref().map(|t| t.status.as_str()).unwrap_or_default();
            if status == "done" || status == "error" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "task stuck: {row:?}");
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        edge_data(
            self.get(&format!("/api/v1/tasks/{task_id}"), token).await,
            200,
        )
        .await
    }
}
