use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use test_support::data::{png, shapes_zip};
use test_support::{TestApp, assert_error, spawn_app, spawn_app_with};

/// Trains a small shapes classifier through the API; its workflow id.
async fn trained(app: &TestApp, token: &str) -> String {
    let dataset = app
        .ready_dataset(token, shapes_zip(20, 5, 32, 9), "shapes")
        .await;
    let id = app
        .create_workflow(
            token,
            &json!({
            "name": "shapes",
            "config": {"task_type": "classification", "model": "small_cnn", "dataset_id": dataset,
                       "hyperparameters": {"epochs": 3, "image_size": 32, "learning_rate": 0.003}}
        }),
        )
        .await;
    let done = app
        .wait_for_workflow(token, &id, Duration::from_secs(120), |w| {
            w["status"] != "pending" && w["status"] != "training"
        })
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    id
}

async fn predict(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.post_authed(&format!("/api/v1/inference/{id}/predict"), token, &body)
        .await
}

/// Serves `bytes` at `/image.png` and a redirect chain at `/hop/{n}` on a local port.
async fn image_server(bytes: Vec<u8>) -> String {
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/image.png",
            get(move || {
                let bytes = bytes.clone();
                async move { ([("content-type", "image/png")], bytes).into_response() }
            }),
        )
        .route(
            "/hop/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    if n == 0 {
                        Redirect::temporary("/image.png")
                    } else {
                        Redirect::temporary(&format!("/hop/{}", n - 1))
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn shape_png() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    ml::data::synthetic::write_shapes_dataset(dir.path(), 1, 0, 32, 77).unwrap();
    let circle = dir.path().join("train/circle/00000.png");
    std::fs::read(circle).unwrap()
}

#[tokio::test]
async fn predicts_from_base64_and_url_with_the_trained_model() {
    let app = spawn_app_with(|s| s.inference.allow_private_urls = true).await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let id = trained(&app, token).await;
    let image = shape_png();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&image);
    for body in [
        json!({ "image_base64": format!("data:image/png;base64,{encoded}") }),
        json!({ "image_base64": encoded }),
    ] {
        let response = predict(&app, token, &id, body).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        let predictions = answer["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), 4, "top-5 of 4 classes: {answer}");
        let confidences: Vec<f64> = predictions
            .iter()
            .map(|p| p["confidence"].as_f64().unwrap())
            .collect();
        assert!(
            confidences.windows(2).all(|w| w[0] >= w[1]),
            "sorted: {answer}"
        );
        assert!((confidences.iter().sum::<f64>() - 1.0).abs() < 1e-3);
        let classes = ["circle", "square", "triangle", "cross"];
        assert!(classes.contains(&predictions[0]["class"].as_str().unwrap()));
        assert!(answer["inference_time_ms"].as_f64().unwrap() >= 0.0);
        assert!(
            answer["model_version"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{id}_epoch_")),
            "{answer}"
        );
    }

    let server = image_server(image.clone()).await;
    let by_url = predict(
        &app,
        token,
        &id,
        json!({ "image_url": format!("{server}/image.png") }),
    )
    .await;
    assert_eq!(by_url.status(), 200);
    let redirected = predict(
        &app,
        token,
        &id,
        json!({ "image_url": format!("{server}/hop/2") }),
    )
    .await;
    assert_eq!(
        redirected.status(),
        200,
        "redirects within the limit are followed"
    );
    let too_many = predict(
        &app,
        token,
        &id,
        json!({ "image_url": format!("{server}/hop/5") }),
    )
    .await;
    assert_error(too_many, 400, "INVALID_REQUEST").await;
    let missing = predict(
        &app,
        token,
        &id,
        json!({ "image_url": format!("{server}/nothing.png") }),
    )
    .await;
    assert_error(missing, 400, "INVALID_REQUEST").await;

    // Bad images.
    let text = base64::engine::general_purpose::STANDARD.encode(b"definitely not an image");
    let truncated = base64::engine::general_purpose::STANDARD.encode(&image[..40]);
    for body in [
        json!({ "image_base64": text }),
        json!({ "image_base64": truncated }),
        json!({ "image_base64": "%%%not base64%%%" }),
        json!({}),
        json!({ "image_url": "http://x", "image_base64": encoded }),
        json!({ "image_url": "ftp://example.com/a.png" }),
    ] {
        assert_error(
            predict(&app, token, &id, body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }

    // A durable batch of 20: 18 base64, one URL, one broken image (answered with an error).
    let mut images: Vec<Value> = (0..18)
        .map(|_| json!({ "image_base64": encoded }))
        .collect();
    images.push(json!({ "image_url": format!("{server}/image.png") }));
    images.push(json!({ "image_base64": text }));
    let response = app
        .post_authed(
            &format!("/api/v1/inference/{id}/batch"),
            token,
            &json!({ "images": images }),
        )
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "processing");
    assert_eq!(accepted["total_images"], 20);
    assert!(accepted["estimated_completion_time"].is_string());
    let job = accepted["job_id"].as_str().unwrap();
    let path = format!("/api/v1/inference/{id}/batch/{job}");
    let status = app.wait_for_batch(token, &id, job).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["completed_images"], 20);
    let results = status["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    assert!(
        results[..19]
            .iter()
            .all(|r| r["predictions"].as_array().is_some_and(|p| p.len() == 4))
    );
    assert_eq!(results[18]["image_url"], format!("{server}/image.png"));
    assert!(results[19]["error"].is_string(), "{}", results[19]);
    assert!(status["completed_at"].is_string());
    let empty = app
        .post_authed(
            &format!("/api/v1/inference/{id}/batch"),
            token,
            &json!({ "images": [] }),
        )
        .await;
    assert_error(empty, 422, "VALIDATION_ERROR").await;

    // Someone else's workflow, an unknown one.
    let other = app.new_user().await;
    assert_error(app.get(&path, &other.access_token).await, 404, "NOT_FOUND").await;
    let body = json!({ "image_base64": encoded });
    assert_error(
        predict(&app, &other.access_token, &id, body.clone()).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        predict(&app, token, "wf_unknown", body).await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn refuses_private_addresses_huge_images_and_unfinished_workflows() {
    let app = spawn_app_with(|s| {
        s.datasets.max_image_pixels = 100 * 100;
        s.inference.max_image_bytes = 64 * 1024;
    })
    .await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let id = trained(&app, token).await;
    for url in [
        "http://127.0.0.1:9/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x.png",
        "http://10.0.0.1/x.png",
    ] {
        let error = assert_error(
            predict(&app, token, &id, json!({ "image_url": url })).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert!(
            error["error"]["details"]["reason"]
                .as_str()
                .unwrap()
                .contains("private"),
            "{error}"
        );
    }
    let big = base64::engine::general_purpose::STANDARD.encode(png(200, 200, [1, 2, 3]));
    let error = assert_error(
        predict(&app, token, &id, json!({ "image_base64": big })).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert!(error.to_string().contains("pixels"), "{error}");
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let oversized = base64::engine::general_purpose::STANDARD.encode(noise);
    assert_error(
        predict(&app, token, &id, json!({ "image_base64": oversized })).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // A workflow that has not completed cannot serve.
    let dataset = app
        .ready_dataset(token, shapes_zip(4, 1, 16, 1), "tiny")
        .await;
    let response = app
        .post_authed(
            "/api/v1/workflows",
            token,
            &json!({"name": "later", "config": {"task_type": "classification",
            "model": "small_cnn", "dataset_id": dataset, "hyperparameters": {"epochs": 1000}}}),
        )
        .await;
    let pending = response.json::<Value>().await.unwrap()["workflow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let small = base64::engine::general_purpose::STANDARD.encode(png(8, 8, [1, 2, 3]));
    assert_error(
        predict(&app, token, &pending, json!({ "image_base64": small })).await,
        409,
        "CONFLICT",
    )
    .await;
    app.authed(
        Method::DELETE,
        &format!("/api/v1/workflows/{pending}"),
        token,
    )
    .send()
    .await
    .unwrap();
}

#[tokio::test]
async fn model_catalogue_lists_what_the_platform_trains() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let all: Value = app.get_json("/api/v1/models", token).await;
    let ids: Vec<&str> = all["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"resnet50") && ids.contains(&"small_cnn"),
        "{all}"
    );
    assert_eq!(all["total"], ids.len());
    let resnet50 = all["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model_id"] == "resnet50")
        .unwrap();
    assert_eq!(resnet50["parameters"], "25.6M");
    assert_eq!(resnet50["task_types"], json!(["classification"]));
    assert!(resnet50.get("metrics").is_none(), "no unmeasured metrics");
    let searched: Value = app
        .get_json("/api/v1/models?search=ResNet&limit=2", token)
        .await;
    assert_eq!(searched["total"], 3);
    assert_eq!(searched["models"].as_array().unwrap().len(), 2);
    let none: Value = app
        .get_json("/api/v1/models?task_type=segmentation", token)
        .await;
    assert_eq!(none["total"], 0);
    let detail: Value = app.get_json("/api/v1/models/resnet18", token).await;
    assert_eq!(detail["input_size"], json!([224, 224, 3]));
    assert_eq!(detail["parameters"], "11.7M");
    assert!(
        detail["supported_backends"]
            .as_array()
            .unwrap()
            .contains(&json!("flex"))
    );
    assert!(
        detail["example_usage"]
            .as_str()
            .unwrap()
            .contains("/api/v1/workflows")
    );
    assert_error(
        app.get("/api/v1/models/resnet999", token).await,
        404,
        "NOT_FOUND",
    )
    .await;
}
