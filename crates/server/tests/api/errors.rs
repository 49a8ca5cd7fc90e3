use serde_json::{Value, json};
use test_support::{assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_use_the_envelope() {
    let app = spawn_app().await;
    let body = assert_error(
        app.client
            .get(app.url("/api/v1/nope"))
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(body["error"]["details"]["path"], "/api/v1/nope");
    let wrong = app
        .client
        .put(app.url("/api/v1/auth/token"))
        .send()
        .await
        .unwrap();
    assert_error(wrong, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn malformed_json_is_400_with_position() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 400, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["details"]["line"], 1);
}

#[tokio::test]
async fn missing_fields_and_wrong_types_name_the_field() {
    let app = spawn_app().await;
    let missing = app
        .post_json("/api/v1/auth/token", &json!({"email": "a@b.co"}))
        .await;
    let body = assert_error(missing, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "password");

    let wrong_type = app
        .post_json(
            "/api/v1/auth/token",
            &json!({"email": "a@b.co", "password": 12345}),
        )
        .await;
    let body = assert_error(wrong_type, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "password");

    let unknown = app
        .post_json(
            "/api/v1/auth/token",
            &json!({"email": "a", "password": "b", "admin": true}),
        )
        .await;
    let body = assert_error(unknown, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "admin");
}

#[tokio::test]
async fn wrong_content_type_is_400() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 1024).await;
    let big = json!({"email": "a@b.co", "password": "x".repeat(4096)});
    assert_error(
        app.post_json("/api/v1/auth/token", &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "req_client42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req_client42");

    let generated = app.client.get(app.url("/health")).send().await.unwrap();
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("req_"), "{id}");

    // Unprintable or huge ids are replaced, not echoed.
    let hostile = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "a".repeat(500))
        .send()
        .await
        .unwrap();
    assert!(
        hostile.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );

    let error = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "trace-7")
        .send()
        .await
        .unwrap();
    let body = assert_error(error, 404, "NOT_FOUND").await;
    assert_eq!(body["error"]["request_id"], "trace-7");
}

#[tokio::test]
async fn server_errors_do_not_leak_internals() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    // Break the database under the running server.
    let store = store::SqlStore::connect(&app.app.settings.database_url(), 1)
        .await
        .unwrap();
    sqlx::query("DROP TABLE usage")
        .execute(store.pool())
        .await
        .unwrap();

    let response = app.get("/api/v1/user/profile", &user.access_token).await;
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
    assert_eq!(body["error"]["message"], "Internal server error");
    assert!(
        !text.to_lowercase().contains("usage") && !text.contains("sql"),
        "{text}"
    );
}
