use chrono::{DateTime, Utc};
use domain::Plan;
use test_support::{assert_error, spawn_app};

#[tokio::test]
async fn headers_on_every_authenticated_response() {
    let app = spawn_app().await;
    let user = app.new_user_with_plan(Plan::Pro).await;
    let first = app.get("/api/v1/user/profile", &user.access_token).await;
    let remaining: u64 = first.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(first.headers()["x-ratelimit-limit"], "300");
    assert_eq!(remaining, 299);
    let reset: i64 = first.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > Utc::now().timestamp() && reset <= Utc::now().timestamp() + 60);
    // Error responses of authenticated routes carry them too.
    let missing = app
        .get("/api/v1/projects/proj_nope", &user.access_token)
        .await;
    assert_eq!(missing.headers()["x-ratelimit-remaining"], "298");
}

#[tokio::test]
async fn free_plan_is_limited_to_60_per_minute() {
    let app = spawn_app().await;
    let user = app.new_user_with_plan(Plan::Free).await;
    for _ in 0..60 {
        assert_eq!(
            app.get("/api/v1/user/profile", &user.access_token)
                .await
                .status(),
            200
        );
    }
    let refused = app.get("/api/v1/user/profile", &user.access_token).await;
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    assert!(refused.headers().contains_key("retry-after"));
    let body = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
    assert_eq!(body["error"]["details"]["limit"], 60);
    let reset_at: DateTime<Utc> = body["error"]["details"]["reset_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset_at > Utc::now());

    // Limits are per user: someone else is unaffected.
    let other = app.new_user_with_plan(Plan::Free).await;
    assert_eq!(
        app.get("/api/v1/user/profile", &other.access_token)
            .await
            .status(),
        200
    );
}
