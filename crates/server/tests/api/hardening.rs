//! What an attacker or a careless client can do to the server: floods, races, made-up methods,
//! slow bodies, a shutdown in the middle of a job.

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use test_support::data::shapes_zip;
use test_support::{TestApp, assert_error, spawn_app, spawn_app_with};

fn register_body(i: usize) -> Value {
    json!({
        "email": format!("flood{i}-{}@example.com", domain::IdKind::Request.new_id()),
        "password": "securepassword123",
        "name": "Flood",
    })
}

async fn statuses(responses: Vec<reqwest::Response>) -> Vec<u16> {
    let mut codes: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    codes.sort_unstable();
    codes
}

#[tokio::test]
async fn a_registration_flood_is_limited_per_client() {
    let app = spawn_app_with(|s| s.auth.registrations_per_client_per_hour = 5).await;
    let bodies: Vec<Value> = (0..12).map(register_body).collect();
    let flood = bodies
        .iter()
        .map(|body| app.post_json("/api/v1/auth/register", body));
    let codes = statuses(futures::future::join_all(flood).await).await;
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 5, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 7, "{codes:?}");
}

async fn login_with(app: &TestApp, email: &str, password: &str, client: Option<&str>) -> u16 {
    let mut request = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"email": email, "password": password}));
    if let Some(client) = client {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn concurrent_wrong_passwords_never_exceed_the_limit() {
    let app = spawn_app_with(|s| {
        s.auth.login_failures_per_minute = 10;
        s.auth.login_failures_per_client_per_minute = 1000;
    })
    .await;
    let user = app.new_user().await;
    let race = (0..40).map(|_| login_with(&app, &user.email, "wrong-password", None));
    let mut codes = futures::future::join_all(race).await;
    codes.sort_unstable();
    assert_eq!(codes.iter().filter(|c| **c == 401).count(), 10, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 30, "{codes:?}");
}

#[tokio::test]
async fn successful_logins_do_not_use_up_the_allowance() {
    let app = spawn_app_with(|s| s.auth.login_failures_per_minute = 3).await;
    let user = app.new_user().await;
    for _ in 0..6 {
        assert_eq!(
            login_with(&app, &user.email, &user.password, None).await,
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(
            login_with(&app, &user.email, "wrong-password", None).await,
            401
        );
    }
    assert_eq!(
        login_with(&app, &user.email, &user.password, None).await,
        429
    );
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_told_apart() {
    let app = spawn_app_with(|s| {
        s.auth.login_failures_per_minute = 1000;
        s.auth.login_failures_per_client_per_minute = 4;
        s.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let victim = app.new_user().await;
    let attacker = Some("198.51.100.66");
    for i in 0..4 {
        let email = format!("nobody{i}@example.com");
        assert_eq!(login_with(&app, &email, "guess-guess", attacker).await, 401);
    }
    // The guessing client is blocked on any account, even one it got right…
    assert_eq!(
        login_with(&app, &victim.email, &victim.password, attacker).await,
        429
    );
    // … while another client behind the same proxy logs in, and a forged left-most entry
    // does not make the attacker someone else.
    assert_eq!(
        login_with(&app, &victim.email, &victim.password, Some("203.0.113.5")).await,
        200
    );
    assert_eq!(
        login_with(
            &app,
            &victim.email,
            "guess-guess",
            Some("203.0.113.5, 198.51.100.66")
        )
        .await,
        429
    );
}

#[tokio::test]
async fn one_guesser_does_not_lock_the_owner_out_but_many_lock_the_account() {
    let app = spawn_app_with(|s| {
        s.auth.login_failures_per_minute = 2;
        s.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let owner = app.new_user().await;
    for _ in 0..2 {
        assert_eq!(
            login_with(&app, &owner.email, "guess", Some("198.51.100.1")).await,
            401
        );
    }
    assert_eq!(
        login_with(&app, &owner.email, "guess", Some("198.51.100.1")).await,
        429
    );
    assert_eq!(
        login_with(&app, &owner.email, &owner.password, Some("203.0.113.5")).await,
        200
    );
    // Guesses from many addresses meet the account's total (10 × 2) and lock it everywhere.
    for i in 2..20 {
        let client = format!("198.51.100.{i}");
        assert_eq!(
            login_with(&app, &owner.email, "guess", Some(&client)).await,
            401
        );
    }
    assert_eq!(
        login_with(&app, &owner.email, &owner.password, Some("203.0.113.5")).await,
        429
    );
}

#[tokio::test]
async fn forwarded_for_is_ignored_without_trusted_proxies() {
    let app = spawn_app_with(|s| {
        s.auth.login_failures_per_minute = 1000;
        s.auth.login_failures_per_client_per_minute = 3;
    })
    .await;
    for i in 0..3 {
        let forged = format!("192.0.2.{i}");
        let email = format!("nobody{i}@example.com");
        assert_eq!(
            login_with(&app, &email, "guess-guess", Some(&forged)).await,
            401
        );
    }
    assert_eq!(
        login_with(&app, "x@example.com", "guess-guess", Some("192.0.2.200")).await,
        429
    );
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    for i in 0..60 {
        let method = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
    }
    let text = app.metrics_text().await;
    assert!(!text.contains("BREW"), "{text}");
    let series = text
        .lines()
        .filter(|l| l.starts_with("vision_http_requests_total{"))
        .count();
    assert!(series <= 3, "{series} series:\n{text}");
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app_with(|s| s.server.public_url = "https://vision.example.com".into()).await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    let headers = health.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers.contains_key("strict-transport-security"));
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let csp = docs.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

/// A body that sends `first` bytes, then nothing for `pause`.
fn stalling_body(first: usize, pause: Duration) -> reqwest::Body {
    let chunks = futures::stream::iter([(Duration::ZERO, first), (pause, 16)]).then(
        |(wait, len)| async move {
            tokio::time::sleep(wait).await;
            Ok::<_, std::io::Error>(vec![b'{'; len])
        },
    );
    reqwest::Body::wrap_stream(chunks)
}

/// A new user's POST of a body that stalls after 100 bytes; the answer must come within 10 s.
async fn stalled_post(app: &TestApp, path: &str, content_type: &str) -> reqwest::Response {
    let user = app.new_user().await;
    let started = std::time::Instant::now();
    let response = app
        .authed(Method::POST, path, &user.access_token)
        .header("content-type", content_type)
        .body(stalling_body(100, Duration::from_secs(30)))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    response
}

#[tokio::test]
async fn a_stalled_upload_is_cut_off_with_408() {
    let app = spawn_app_with(|s| {
        s.server.min_transfer_bytes_per_sec = 1000;
        s.server.transfer_window_secs = 1;
    })
    .await;
    let response = stalled_post(
        &app,
        "/api/v1/datasets/upload",
        "multipart/form-data; boundary=xyz",
    )
    .await;
    assert_error(response, 408, "REQUEST_TIMEOUT").await;
}

#[tokio::test]
async fn a_slow_json_body_meets_the_request_timeout() {
    let app = spawn_app_with(|s| s.server.request_timeout_secs = 1).await;
    let response = stalled_post(&app, "/api/v1/projects", "application/json").await;
    assert_error(response, 503, "SERVICE_UNAVAILABLE").await;
}

/// A worker that shuts down in the middle of a training hands the job back: another worker
/// claims it at once, and the interrupted attempt is not counted against `max_attempts`.
#[tokio::test]
async fn shutdown_hands_running_jobs_back() {
    let app = spawn_app_with(|s| s.worker.kinds = vec!["dataset_ingest".into()]).await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let dataset = app
        .ready_dataset(token, shapes_zip(40, 10, 32, 3), "shapes")
        .await;
    let workflow = app
        .create_workflow(
            token,
            &json!({"name": "interrupted", "config": {"task_type": "classification",
                "model": "small_cnn", "dataset_id": dataset,
                "hyperparameters": {"epochs": 200, "batch_size": 8, "image_size": 32}}}),
        )
        .await;
    let mut settings = (*app.app.settings).clone();
    settings.worker.kinds = vec!["training".into()];
    let config = worker::WorkerConfig::from_settings(&settings);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(worker::run(
        app.app.clone(),
        app::jobs::configured_handlers(&settings),
        config,
        stopped,
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let detail = app
            .get_json(&format!("/api/v1/workflows/{workflow}"), token)
            .await;
        if detail["progress"]["current_epoch"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never trained: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("the worker stops within its grace period")
        .unwrap();
    let now = chrono::Utc::now();
    let job = app
        .app
        .store
        .claim(
            "training",
            "next-worker",
            now,
            now + chrono::Duration::seconds(30),
        )
        .await
        .unwrap()
        .expect("the job is claimable at once, not after its lease");
    assert_eq!(job.subject_id, workflow);
    assert_eq!(
        job.attempts, 1,
        "the interrupted attempt was counted: {job:?}"
    );
}
