use domain::Plan;
use serde_json::Value;
use test_support::spawn_app;

#[tokio::test]
async fn profile_shows_plan_usage_and_limits() {
    let app = spawn_app().await;
    let user = app.new_user_with_plan(Plan::Pro).await;
    // 45.5 compute hours recorded by jobs, 12.3 GB stored.
    app.app
        .store
        .add_usage(&user.user_id, 45.5 * 3600.0, 12_300_000_000)
        .await
        .unwrap();

    let response = app.get("/api/v1/user/profile", &user.access_token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], user.user_id.as_str());
    assert_eq!(body["email"], user.email.as_str());
    assert_eq!(body["plan"], "pro");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    let mut redacted = body.clone();
    for key in ["user_id", "email", "created_at"] {
        redacted[key] = Value::String(format!("[{key}]"));
    }
    insta::assert_json_snapshot!(redacted, @r#"
    {
      "created_at": "[created_at]",
      "credits": 2000,
      "email": "[email]",
      "name": "Op",
      "plan": "pro",
      "usage": {
        "gpu_hours_limit": 100,
        "gpu_hours_used": 45.5,
        "storage_gb_limit": 50,
        "storage_gb_used": 12.3
      },
      "user_id": "[user_id]"
    }
    "#);
}
