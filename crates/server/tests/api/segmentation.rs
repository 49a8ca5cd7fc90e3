//! The segmentation edge API as the mobile client uses it, every error code of the spec's
//! table, credits under concurrency, and the backend API.

use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use test_support::data::png;
use test_support::{
    TestApp, TestUser, assert_edge_error, edge_data, json_of, spawn_app, spawn_app_with, with_sam3,
};

fn photo() -> Vec<u8> {
    // Texture, so the image is not one flat colour.
    let image = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn uploaded(app: &TestApp, user: &TestUser) -> Value {
    edge_data(
        app.upload_image(&user.access_token, "cat.png", photo())
            .await,
        200,
    )
    .await
}

#[tokio::test]
async fn mobile_client_flow() {
    let app = spawn_app_with(with_sam3).await;
    let user = app.new_user().await;
    let token = &user.access_token;

    let upload = app.upload_image(token, "cat.png", photo()).await;
    let header_id = upload.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = upload.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["meta"]["request_id"], header_id.as_str());
    let image = body["data"].clone();
    assert_eq!(image["content_type"], "image/png", "{image}");
    assert_eq!(image["size_bytes"], photo().len());
    uuid::Uuid::parse_str(image["image_id"].as_str().unwrap()).unwrap();
    let image_url = image["image_url"].as_str().unwrap();
    // The URL works without a token, as an <img src> would use it.
    let fetched = app.client.get(image_url).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), photo());

    let accepted = edge_data(app.segment(token, image_url, "the red car").await, 202).await;
    assert_eq!(accepted["status"], "pending");
    let task_id = accepted["task_id"].as_str().unwrap();
    let task = app.wait_for_task(token, task_id).await;
    assert_eq!(task["status"], "done", "{task}");
    assert_eq!(task["result_id"], task_id);
    assert!(task.get("error_message").is_none(), "{task}");

    let result = edge_data(
        app.get(&format!("/api/v1/results/{task_id}"), token).await,
        200,
    )
    .await;
    assert_eq!(result["text_prompt"], "the red car");
    assert_eq!(result["status"], "done");
    assert!(result["project_id"].is_null());
    let instances = result["instances"].as_array().unwrap();
    assert!(
        !instances.is_empty(),
        "threshold 0 keeps every query: {result}"
    );
    assert_eq!(result["labels"].as_array().unwrap().len(), instances.len());
    assert_eq!(result["metadata"]["model_version"], "sam3-tiny");
    assert!(result["metadata"]["inference_time_ms"].as_f64().unwrap() > 0.0);
    let best = instances
        .iter()
        .map(|i| i["score"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!((result["metadata"]["confidence"].as_f64().unwrap() - best).abs() < 1e-3);
    for instance in instances {
        assert_eq!(instance["segmentation"]["size"], json!([48, 64]));
        let counts: u64 = instance["segmentation"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(counts, 48 * 64, "RLE covers the image");
        let bbox: Vec<f64> = serde_json::from_value(instance["bbox"].clone()).unwrap();
        assert!(bbox[0] >= 0.0 && bbox[0] + bbox[2] <= 64.01 && bbox[1] + bbox[3] <= 48.01);
    }

    let mask_url = result["mask_image_url"].as_str().unwrap();
    let mask = app.client.get(mask_url).send().await.unwrap();
    assert_eq!(mask.status(), 200);
    let mask = image::load_from_memory(&mask.bytes().await.unwrap())
        .unwrap()
        .to_luma8();
    assert_eq!(mask.dimensions(), (64, 48));
    let white = mask.pixels().filter(|p| p.0[0] == 255).count() as u64;
    let union_area = instances
        .iter()
        .map(|i| i["area"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        white >= union_area,
        "the mask is the union of the instances"
    );

    let list = edge_data(app.get("/api/v1/results?page=1&limit=10", token).await, 200).await;
    assert_eq!(list["total"], 1);
    assert_eq!(
        (list["page"].as_u64(), list["limit"].as_u64()),
        (Some(1), Some(10))
    );
    let summary = &list["results"][0];
    assert_eq!(summary["id"], task_id);
    assert!(
        summary["mask_image_url"]
            .as_str()
            .unwrap()
            .contains("/api/v1/files/masks/")
    );
    assert!(
        summary["source_image_url"]
            .as_str()
            .unwrap()
            .contains("/api/v1/files/images/")
    );

    let profile = app.get("/api/v1/user/profile", token).await;
    let profile: Value = profile.json().await.unwrap();
    assert_eq!(profile["credits"], 99, "one credit per prompt: {profile}");
}

#[tokio::test]
async fn projects_filter_results() {
    let app = spawn_app_with(with_sam3).await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let project = json_of(
        app.authed(Method::POST, "/api/v1/projects", token)
            .json(&json!({"name": "cars"})),
    )
    .await;
    let project_id = project["project_id"].as_str().unwrap().to_owned();
    let image = uploaded(&app, &user).await;
    let url = image["image_url"].as_str().unwrap();
    let body = json!({"image_url": url, "text_prompt": "car", "project_id": project_id});
    let in_project = edge_data(app.post_authed("/api/v1/segment", token, &body).await, 202).await;
    edge_data(app.segment(token, url, "road").await, 202).await;
    let filtered = edge_data(
        app.get(&format!("/api/v1/results?project_id={project_id}"), token)
            .await,
        200,
    )
    .await;
    assert_eq!(filtered["total"], 1, "{filtered}");
    assert_eq!(filtered["results"][0]["id"], in_project["task_id"]);
    let all = edge_data(app.get("/api/v1/results", token).await, 200).await;
    assert_eq!(
        (all["total"].as_u64(), all["limit"].as_u64()),
        (Some(2), Some(20))
    );
}

#[tokio::test]
async fn every_error_code_of_the_table() {
    let app = spawn_app_with(|s| {
        with_sam3(s);
        s.segmentation.max_upload_bytes = 200_000;
    })
    .await;
    // Pro's 20 segment requests per minute leave room for the checks before RATE_LIMITED.
    let user = app.new_user_with_plan(domain::Plan::Pro).await;
    let other = app.new_user().await;
    let token = &user.access_token;
    let image = uploaded(&app, &user).await;
    let url = image["image_url"].as_str().unwrap().to_owned();

    // AUTH_REQUIRED / AUTH_INVALID
    let anonymous = app
        .client
        .get(app.url("/api/v1/results"))
        .send()
        .await
        .unwrap();
    assert_edge_error(anonymous, 401, "AUTH_REQUIRED").await;
    assert_edge_error(
        app.get("/api/v1/results", "not-a-jwt").await,
        401,
        "AUTH_INVALID",
    )
    .await;
    let expired = app.token_issued_at(
        &user.user_id,
        domain::Plan::Free,
        chrono::Utc::now() - chrono::Duration::days(2),
    );
    assert_edge_error(
        app.get("/api/v1/results", &expired).await,
        401,
        "AUTH_INVALID",
    )
    .await;

    // INVALID_REQUEST
    assert_edge_error(
        app.segment(token, &url, "   ").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_edge_error(
        app.segment(token, &url, &"x".repeat(201)).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let other_image = uploaded(&app, &other).await;
    let foreign = other_image["image_url"].as_str().unwrap();
    let refused = assert_edge_error(
        app.segment(token, foreign, "cat").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("uploaded"),
        "{refused}"
    );
    let ssrf = assert_edge_error(
        app.segment(token, "http://169.254.169.254/latest/meta-data", "cat")
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert!(
        ssrf["error"]["message"]
            .as_str()
            .unwrap()
            .contains("private"),
        "{ssrf}"
    );
    assert_edge_error(
        app.segment(token, "ftp://example.com/a.png", "cat").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let malformed = app
        .authed(Method::POST, "/api/v1/segment", token)
        .header("content-type", "application/json")
        .body("{\"image_url\":")
        .send()
        .await
        .unwrap();
    assert_edge_error(malformed, 400, "INVALID_REQUEST").await;
    let missing = app
        .post_authed("/api/v1/segment", token, &json!({"image_url": url}))
        .await;
    assert_edge_error(missing, 400, "INVALID_REQUEST").await;
    let text_file = app
        .upload_image(token, "cat.png", b"GIF89a-or-not, just text".to_vec())
        .await;
    assert_edge_error(text_file, 400, "INVALID_REQUEST").await;
    let mut truncated = photo();
    truncated.truncate(truncated.len() / 2);
    assert_edge_error(
        app.upload_image(token, "cut.png", truncated).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_edge_error(
        app.get("/api/v1/results?limit=500", token).await,
        400,
        "INVALID_REQUEST",
    )
    .await;

    // FILE_TOO_LARGE
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut big = png(1, 1, [0, 0, 0]);
    big.extend(noise);
    assert_edge_error(
        app.upload_image(token, "big.png", big).await,
        413,
        "FILE_TOO_LARGE",
    )
    .await;

    // NOT_FOUND: unknown and other users' ids alike
    let theirs = edge_data(app.segment(&other.access_token, foreign, "dog").await, 202).await;
    let their_task = theirs["task_id"].as_str().unwrap();
    for path in [
        format!("/api/v1/tasks/{their_task}"),
        format!("/api/v1/results/{their_task}"),
        format!("/api/v1/tasks/{}", uuid::Uuid::new_v4()),
        "/api/v1/results/not-a-uuid".to_owned(),
    ] {
        assert_edge_error(app.get(&path, token).await, 404, "NOT_FOUND").await;
    }

    // FORBIDDEN: a tampered or expired link
    let tampered = url.replace("signature=", "signature=00");
    assert_edge_error(
        app.client.get(&tampered).send().await.unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    let expired_link = app.app.urls.url(
        &app.address,
        app::segmentation::urls::FileKind::Image,
        image["image_id"].as_str().unwrap(),
        chrono::Utc::now().timestamp() - 1,
    );
    assert_edge_error(
        app.client.get(&expired_link).send().await.unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;

    // INSUFFICIENT_CREDITS, and the refused request costs nothing
    let balance = app.app.store.credits(&user.user_id).await.unwrap();
    app.app
        .store
        .add_credits(&user.user_id, -balance)
        .await
        .unwrap();
    assert_edge_error(
        app.segment(token, &url, "cat").await,
        402,
        "INSUFFICIENT_CREDITS",
    )
    .await;
    assert_eq!(app.app.store.credits(&user.user_id).await.unwrap(), 0);
    app.app.store.add_credits(&user.user_id, 100).await.unwrap();

    // RATE_LIMITED: the free tier's 5 segment requests per minute, then 429
    let free = app.new_user().await;
    let free_image = uploaded(&app, &free).await;
    let free_url = free_image["image_url"].as_str().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            app.segment(&free.access_token, free_url, "cat")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [202; 5]);
    let limited = app.segment(&free.access_token, free_url, "cat").await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_edge_error(limited, 429, "RATE_LIMITED").await;
}

#[tokio::test]
async fn no_model_means_model_not_loaded() {
    let app = spawn_app_with(|_| {}).await;
    let user = app.new_user().await;
    let image = uploaded(&app, &user).await;
    let url = image["image_url"].as_str().unwrap();
    assert_edge_error(
        app.segment(&user.access_token, url, "cat").await,
        503,
        "MODEL_NOT_LOADED",
    )
    .await;
    assert_eq!(
        app.app.store.credits(&user.user_id).await.unwrap(),
        i64::from(domain::Plan::Free.limits().segmentation_credits),
        "nothing reserved"
    );
}

#[tokio::test]
async fn internal_failures_are_enveloped_and_a_failed_task_refunds() {
    let app = spawn_app_with(|s| {
        with_sam3(s);
        s.objects.kind = "filesystem".into();
    })
    .await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let image = uploaded(&app, &user).await;
    let url = image["image_url"].as_str().unwrap();
    let before = app.app.store.credits(&user.user_id).await.unwrap();

    // The stored image disappears behind the platform's back: the task ends in `error` and its
    // credit comes back.
    let row = app
        .app
        .store
        .seg_image_by_id(image["image_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    app.app.objects.delete(&row.object_key).await.unwrap();
    let task = edge_data(app.segment(token, url, "cat").await, 202).await;
    let done = app
        .wait_for_task(token, task["task_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "error", "{done}");
    assert!(
        done["error_message"]
            .as_str()
            .unwrap()
            .starts_with("INTERNAL_ERROR"),
        "{done}"
    );
    assert!(done.get("result_id").is_none());
    assert_eq!(app.app.store.credits(&user.user_id).await.unwrap(), before);

    // Storage that cannot be written: 500 INTERNAL_ERROR in the envelope, cause not leaked.
    let root = app.data_dir.path().join("objects");
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();
    let failed = assert_edge_error(
        app.upload_image(token, "cat.png", photo()).await,
        500,
        "INTERNAL_ERROR",
    )
    .await;
    assert_eq!(failed["error"]["message"], "Internal server error");
}

#[tokio::test]
async fn concurrent_submits_never_overdraw() {
    let app = Arc::new(
        spawn_app_with(|s| {
            with_sam3(s);
            s.rate_limit.enabled = false;
        })
        .await,
    );
    let user = app.new_user().await;
    let image = uploaded(&app, &user).await;
    let url = image["image_url"].as_str().unwrap().to_owned();
    let balance = app.app.store.credits(&user.user_id).await.unwrap();
    app.app
        .store
        .add_credits(&user.user_id, 3 - balance)
        .await
        .unwrap();

    let requests = (0..12).map(|_| {
        let (app, token, url) = (app.clone(), user.access_token.clone(), url.clone());
        tokio::spawn(async move { app.segment(&token, &url, "cat").await.status().as_u16() })
    });
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(r.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [[202; 3].as_slice(), [402; 9].as_slice()].concat()
    );
    assert_eq!(app.app.store.credits(&user.user_id).await.unwrap(), 0);
    let list = edge_data(app.get("/api/v1/results", &user.access_token).await, 200).await;
    for result in list["results"].as_array().unwrap() {
        let done = app
            .wait_for_task(&user.access_token, result["id"].as_str().unwrap())
            .await;
        assert_eq!(done["status"], "done", "{done}");
    }
    assert_eq!(
        app.app.store.credits(&user.user_id).await.unwrap(),
        0,
        "settled, not refunded"
    );
}

#[tokio::test]
async fn upload_counts_against_the_storage_quota() {
    let app = spawn_app().await;
    let user = app.new_user_with_plan(domain::Plan::Free).await;
    let token = &user.access_token;
    let quota = i64::from(domain::Plan::Free.limits().storage_gb) * 1_000_000_000;
    let image = photo();
    let size = image.len() as i64;

    // Uploaded bytes count in usage.
    uploaded(&app, &user).await;
    let used = app
        .app
        .store
        .usage(&user.user_id)
        .await
        .unwrap()
        .storage_bytes;
    assert_eq!(used, size);

    // One byte short of room for the next image: refused with the envelope, nothing stored.
    app.app
        .store
        .add_usage(&user.user_id, 0.0, quota - 2 * size + 1)
        .await
        .unwrap();
    let refused = app.upload_image(token, "cat.png", image.clone()).await;
    let body = assert_edge_error(refused, 403, "FORBIDDEN").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Storage quota exceeded"),
        "{body}"
    );
    let usage = app
        .app
        .store
        .usage(&user.user_id)
        .await
        .unwrap()
        .storage_bytes;
    assert_eq!(usage, quota - size + 1);
    let stored = app
        .app
        .objects
        .list(&format!("users/{}/segmentation/images/", user.user_id))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");

    // Exactly enough room: accepted.
    app.app
        .store
        .add_usage(&user.user_id, 0.0, -1)
        .await
        .unwrap();
    edge_data(app.upload_image(token, "cat.png", image).await, 200).await;
}

async fn post_segment(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.authed(Method::POST, "/api/v1/segment", token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The instances of a finished task.
async fn instances_of(app: &TestApp, token: &str, accepted: Value) -> Value {
    let id = accepted["task_id"].as_str().unwrap();
    let done = app.wait_for_task(token, id).await;
    assert_eq!(done["status"], "done", "{done}");
    let result = edge_data(app.get(&format!("/api/v1/results/{id}"), token).await, 200).await;
    result["instances"].clone()
}

#[tokio::test]
async fn a_box_prompt_guides_the_segmentation_and_is_checked() {
    let app = spawn_app_with(with_sam3).await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let image = uploaded(&app, &user).await;
    let url = image["image_url"].as_str().unwrap();
    let plain = json!({"image_url": url, "text_prompt": "cat"});
    let plain = edge_data(post_segment(&app, token, plain).await, 202).await;
    // A box reaching past the 64 × 48 image is cut at its edges.
    let boxed = json!({"image_url": url, "text_prompt": "cat", "box": [8, 6, 100, 20]});
    let boxed = edge_data(post_segment(&app, token, boxed).await, 202).await;
    let plain = instances_of(&app, token, plain).await;
    let boxed = instances_of(&app, token, boxed).await;
    assert_ne!(plain, boxed, "the box prompt changed nothing");

    for bad in [json!([0, 0, 0, 5]), json!([-1, 0, 5, 5]), json!([1, 2, 3])] {
        let body = json!({"image_url": url, "text_prompt": "cat", "box": bad});
        let response = post_segment(&app, token, body).await;
        assert_edge_error(response, 400, "INVALID_REQUEST").await;
    }
}
