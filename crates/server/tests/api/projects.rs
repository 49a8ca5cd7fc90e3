use reqwest::Method;
use serde_json::{Value, json};
use test_support::{TestApp, assert_error, spawn_app};

async fn create(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post_authed("/api/v1/projects", token, &body).await
}

#[tokio::test]
async fn project_lifecycle() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let created = create(
        &app,
        &user.access_token,
        json!({"name": "고양이 분류 프로젝트", "description": "여러 품종 분류"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let project: Value = created.json().await.unwrap();
    let id = project["project_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("proj_"));
    assert_eq!(project["workflow_count"], 0);
    assert_eq!(project["dataset_count"], 0);

    let list: Value = app.get_json("/api/v1/projects", &user.access_token).await;
    assert_eq!(list["projects"].as_array().unwrap().len(), 1);
    let entry = &list["projects"][0];
    for key in [
        "project_id",
        "name",
        "description",
        "workflow_count",
        "dataset_count",
        "created_at",
    ] {
        assert!(entry.get(key).is_some(), "missing {key}");
    }

    let patched = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/projects/{id}"),
            &user.access_token,
        )
        .json(&json!({"description": "세 품종"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["name"], "고양이 분류 프로젝트");
    assert_eq!(patched["description"], "세 품종");

    let deleted = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/projects/{id}"),
            &user.access_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_error(
        app.get(&format!("/api/v1/projects/{id}"), &user.access_token)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn other_users_projects_are_404() {
    let app = spawn_app().await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let project: Value = create(&app, &owner.access_token, json!({"name": "mine"}))
        .await
        .json()
        .await
        .unwrap();
    let path = format!(
        "/api/v1/projects/{}",
        project["project_id"].as_str().unwrap()
    );

    assert_error(app.get(&path, &other.access_token).await, 404, "NOT_FOUND").await;
    let patch = app
        .authed(Method::PATCH, &path, &other.access_token)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(patch, 404, "NOT_FOUND").await;
    let delete = app
        .authed(Method::DELETE, &path, &other.access_token)
        .send()
        .await
        .unwrap();
    assert_error(delete, 404, "NOT_FOUND").await;
    let list: Value = app.get_json("/api/v1/projects", &other.access_token).await;
    assert!(list["projects"].as_array().unwrap().is_empty());
    // Still there for the owner.
    assert_eq!(app.get(&path, &owner.access_token).await.status(), 200);
}

#[tokio::test]
async fn project_input_is_validated() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let empty = create(&app, &user.access_token, json!({"name": "   "})).await;
    assert_error(empty, 422, "VALIDATION_ERROR").await;
    let long = create(&app, &user.access_token, json!({"name": "x".repeat(101)})).await;
    assert_error(long, 422, "VALIDATION_ERROR").await;
    let wrong_type = create(&app, &user.access_token, json!({"name": 5})).await;
    assert_error(wrong_type, 422, "VALIDATION_ERROR").await;
    assert_eq!(
        create(&app, &user.access_token, json!({"name": "dup"}))
            .await
            .status(),
        201
    );
    assert_error(
        create(&app, &user.access_token, json!({"name": "dup"})).await,
        409,
        "CONFLICT",
    )
    .await;
    let missing = app
        .get("/api/v1/projects/proj_doesnotexist", &user.access_token)
        .await;
    assert_error(missing, 404, "NOT_FOUND").await;
}
