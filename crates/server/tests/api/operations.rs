use serde_json::Value;
use test_support::{json_of, spawn_app};

#[tokio::test]
async fn health_reports_backends() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert!(["sqlite", "postgres"].contains(&body["database_backend"].as_str().unwrap()));
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app().await;
    app.client.get(app.url("/health")).send().await.unwrap();
    let text = app.metrics_text().await;
    assert!(
        text.contains(
            "vision_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("vision_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn swagger_ui_and_openapi_are_served_offline() {
    let app = spawn_app().await;
    let spec = json_of(app.client.get(app.url("/api/v1/openapi.json"))).await;
    assert!(spec["paths"]["/api/v1/auth/token"]["post"].is_object());
    let ui = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(ui.status(), 200);
    let html = ui.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let js = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
}

/// CI check: the committed `docs/openapi.json` is what the code generates
/// (`cargo run -p vision -- openapi` rewrites it).
#[test]
fn committed_openapi_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == server::openapi::openapi_json(),
        "docs/openapi.json is stale: run `cargo run -p vision -- openapi`"
    );
}
