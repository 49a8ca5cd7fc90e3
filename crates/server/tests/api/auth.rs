use chrono::{Duration, Utc};
use domain::Plan;
use serde_json::{Value, json};
use test_support::{assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn register_login_refresh_round_trip() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": " Kim@Example.com ", "password": "securepassword123", "name": "홍길동"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["user_id"].as_str().unwrap().starts_with("user_"));
    assert_eq!(body["email"], "kim@example.com");
    assert_eq!(body["plan"], "free");

    let tokens = app.login("KIM@example.com", "securepassword123").await;
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/user/profile", access).await.status(), 200);

    let refreshed: Value = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["token_type"], "bearer");
    assert_eq!(refreshed["expires_in"], 3600);
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/user/profile", new_access).await.status(),
        200
    );
}

#[tokio::test]
async fn refresh_tokens_are_single_use_and_replay_revokes_the_family() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let first = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(first.status(), 200);
    let rotated: Value = first.json().await.unwrap();

    let replay = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_error(replay, 401, "UNAUTHORIZED").await;
    // The replay revoked the rotated token too.
    let after = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": rotated["refresh_token"]}),
        )
        .await;
    assert_error(after, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn refresh_tokens_can_be_revoked() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let revoke = app
        .authed(
            reqwest::Method::POST,
            "/api/v1/auth/revoke",
            &user.access_token,
        )
        .json(&json!({"refresh_token": user.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_error(refresh, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token_and_vice_versa() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": user.access_token}),
        )
        .await;
    assert_error(refresh, 401, "UNAUTHORIZED").await;
    assert_error(
        app.get("/api/v1/user/profile", &user.refresh_token).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_401() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let wrong = app
        .post_json(
            "/api/v1/auth/token",
            &json!({"email": user.email, "password": "nope-nope-nope"}),
        )
        .await;
    let body = assert_error(wrong, 401, "UNAUTHORIZED").await;
    let unknown = app
        .post_json(
            "/api/v1/auth/token",
            &json!({"email": "ghost@example.com", "password": "whatever123"}),
        )
        .await;
    let body2 = assert_error(unknown, 401, "UNAUTHORIZED").await;
    // Same message: the API does not reveal which accounts exist.
    assert_eq!(body["error"]["message"], body2["error"]["message"]);
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let profile = "/api/v1/user/profile";

    let missing = app.client.get(app.url(profile)).send().await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_error(missing, 401, "UNAUTHORIZED").await;

    let basic = app
        .client
        .get(app.url(profile))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, "UNAUTHORIZED").await;
    assert_error(app.get(profile, "not.a.jwt").await, 401, "UNAUTHORIZED").await;

    // Signed with another secret.
    let other =
        spawn_app_with(|s| s.auth.jwt_secret = "another-secret-another-secret-another!!".into())
            .await;
    let foreign = other.token_issued_at(&user.user_id, Plan::Free, Utc::now());
    assert_error(app.get(profile, &foreign).await, 401, "UNAUTHORIZED").await;

    // Tampered payload keeps the header and signature of a real token.
    let parts: Vec<&str> = user.access_token.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], "eyJzdWIiOiJ1c2VyX3gifQ", parts[2]);
    assert_error(app.get(profile, &tampered).await, 401, "UNAUTHORIZED").await;

    // alg=none with the real claims.
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    assert_error(app.get(profile, &none).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn expired_token_says_when_it_expired() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let token = app.token_issued_at(&user.user_id, Plan::Free, Utc::now() - Duration::hours(2));
    let body = assert_error(
        app.get("/api/v1/user/profile", &token).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(body["error"]["message"], "Access token has expired");
    assert!(
        body["error"]["details"]["expired_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

#[tokio::test]
async fn registration_validates_and_conflicts() {
    let app = spawn_app().await;
    let bad = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "nope", "password": "short", "name": ""}),
        )
        .await;
    let body = assert_error(bad, 422, "VALIDATION_ERROR").await;
    let fields: Vec<&str> = body["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password", "name"]);

    let user = app.new_user().await;
    let again = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": user.email, "password": "another-pass", "name": "B"}),
        )
        .await;
    assert_error(again, 409, "CONFLICT").await;
}

#[tokio::test]
async fn registration_can_be_disabled_and_default_plan_configured() {
    let closed = spawn_app_with(|s| s.auth.allow_registration = false).await;
    let response = closed
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "a@b.co", "password": "longenough", "name": "A"}),
        )
        .await;
    assert_error(response, 403, "FORBIDDEN").await;

    let pro = spawn_app_with(|s| s.auth.default_plan = Plan::Pro).await;
    let response = pro
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "a@b.co", "password": "longenough", "name": "A"}),
        )
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["plan"], "pro");
}

#[tokio::test]
async fn repeated_failed_logins_are_limited() {
    let app = spawn_app_with(|s| s.auth.login_failures_per_minute = 3).await;
    let user = app.new_user().await;
    for _ in 0..3 {
        let r = app
            .post_json(
                "/api/v1/auth/token",
                &json!({"email": user.email, "password": "wrong-wrong"}),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    // Even the right password is refused while the window is exhausted.
    let r = app
        .post_json(
            "/api/v1/auth/token",
            &json!({"email": user.email, "password": user.password}),
        )
        .await;
    let body = assert_error(r, 429, "RATE_LIMIT_EXCEEDED").await;
    assert_eq!(body["error"]["details"]["limit"], 3);
}
