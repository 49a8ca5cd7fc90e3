use domain::Plan;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Read;
use test_support::data::{imagefolder_zip, png, shapes_zip, yolo_zip, zip_of};
use test_support::{TestApp, assert_error, spawn_app, spawn_app_with};

async fn upload_ready(app: &TestApp, token: &str, bytes: Vec<u8>, format: &str) -> Value {
    let response = app
        .upload_dataset(token, bytes, "My Cat Dataset", format)
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "processing");
    assert!(created["dataset_id"].as_str().unwrap().starts_with("ds_"));
    let done = app
        .wait_for_dataset(token, created["dataset_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "ready", "{done}");
    done
}

#[tokio::test]
async fn imagefolder_upload_becomes_ready_with_statistics() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let detail = upload_ready(
        &app,
        &user.access_token,
        imagefolder_zip(&["치즈", "나비", "츄르"], 20),
        "auto",
    )
    .await;
    assert_eq!(detail["format"], "imagefolder");
    assert_eq!(detail["file_count"], 60);
    let stats = &detail["statistics"];
    assert_eq!(stats["total_images"], 60);
    let splits = ["train_images", "val_images", "test_images"].map(|k| stats[k].as_u64().unwrap());
    assert_eq!(splits.iter().sum::<u64>(), 60);
    assert_eq!(splits, [48, 9, 3], "stratified 80/15/5");
    let mut classes: Vec<(String, u64)> = stats["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    classes.sort();
    assert_eq!(
        classes,
        [
            ("나비".to_owned(), 20),
            ("츄르".to_owned(), 20),
            ("치즈".to_owned(), 20)
        ]
    );

    let list: Value = app
        .get_json("/api/v1/datasets?page=1&limit=20", &user.access_token)
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["page"], 1);
    assert_eq!(list["limit"], 20);
    assert_eq!(list["datasets"][0]["status"], "ready");
}

#[tokio::test]
async fn yolo_dataset_validates_exports_and_deletes() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let detail = upload_ready(&app, &user.access_token, yolo_zip(40), "yolo").await;
    let id = detail["dataset_id"].as_str().unwrap();
    assert_eq!(detail["statistics"]["total_images"], 40);

    let validate = |lang: &'static str, body: Value| {
        app.authed(
            Method::POST,
            &format!("/api/v1/datasets/{id}/validate"),
            &user.access_token,
        )
        .header("accept-language", lang)
        .json(&body)
        .send()
    };
    let report: Value = validate(
        "en",
        json!({"expected_format": "yolo", "expected_classes": 4}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(report["dataset_id"], id);
    assert_eq!(report["valid"], true, "{report}");
    let mismatch: Value = validate(
        "ko-KR,ko;q=0.9",
        json!({"expected_format": "coco", "expected_classes": 3}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(mismatch["valid"], false, "{mismatch}");
    let issues = mismatch["issues"].as_array().unwrap();
    assert!(issues.iter().all(|i| i["details"].is_object()));
    let hangul = |s: &str| s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c));
    assert!(
        issues
            .iter()
            .any(|i| hangul(i["message"].as_str().unwrap())),
        "{mismatch}"
    );

    for format in ["coco", "yolo", "voc"] {
        let response = app
            .get(
                &format!("/api/v1/datasets/{id}/export?format={format}"),
                &user.access_token,
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/zip");
        let bytes = response.bytes().await.unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let images = (0..zip.len())
            .filter(|&i| zip.by_index(i).unwrap().name().ends_with(".jpg"))
            .count();
        assert_eq!(images, 40, "{format}");
        let mut first = String::new();
        zip.by_index(0).unwrap().read_to_string(&mut first).ok();
    }
    let bad = app
        .get(
            &format!("/api/v1/datasets/{id}/export?format=tiff"),
            &user.access_token,
        )
        .await;
    assert_error(bad, 422, "VALIDATION_ERROR").await;

    let delete = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/datasets/{id}"),
            &user.access_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    assert_error(
        app.get(&format!("/api/v1/datasets/{id}"), &user.access_token)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let left = app
        .app
        .objects
        .list(&format!("users/{}/datasets/{id}/", user.user_id))
        .await
        .unwrap();
    assert!(left.is_empty(), "objects left behind: {left:?}");
}

#[tokio::test]
async fn other_users_datasets_are_404() {
    let app = spawn_app().await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let detail = upload_ready(
        &app,
        &owner.access_token,
        imagefolder_zip(&["a", "b"], 5),
        "imagefolder",
    )
    .await;
    let id = detail["dataset_id"].as_str().unwrap();
    for path in [
        format!("/api/v1/datasets/{id}"),
        format!("/api/v1/datasets/{id}/export"),
    ] {
        assert_error(app.get(&path, &other.access_token).await, 404, "NOT_FOUND").await;
    }
    let delete = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/datasets/{id}"),
            &other.access_token,
        )
        .send()
        .await
        .unwrap();
    assert_error(delete, 404, "NOT_FOUND").await;
    let list: Value = app.get_json("/api/v1/datasets", &other.access_token).await;
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn hostile_and_broken_archives_fail_with_a_reason_and_leave_nothing() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let traversal = zip_of(&[
        ("../evil.png", png(8, 8, [1, 2, 3])),
        ("cats/a.png", png(8, 8, [1, 2, 3])),
    ]);
    let malformed_coco = zip_of(&[
        ("images/a.png", png(8, 8, [9, 9, 9])),
        (
            "annotations/instances_train.json",
            b"{\"images\": [ {\"id\": 1,, } ], \"annotations\": []}".to_vec(),
        ),
    ]);
    let not_an_archive = b"just some text, not a zip".to_vec();
    for (bytes, format, expect) in [
        (traversal, "auto", ".."),
        (malformed_coco, "coco", "instances_train.json"),
        (not_an_archive, "auto", "archive"),
    ] {
        let created: Value = app
            .upload_dataset(&user.access_token, bytes, "bad", format)
            .await
            .json()
            .await
            .unwrap();
        let id = created["dataset_id"].as_str().unwrap();
        let done = app.wait_for_dataset(&user.access_token, id).await;
        assert_eq!(done["status"], "failed", "{done}");
        let error = done["error"].as_str().unwrap();
        assert!(
            error.contains(expect),
            "error should name {expect:?}: {error}"
        );
        let images = app
            .app
            .objects
            .list(&format!("users/{}/datasets/{id}/images/", user.user_id))
            .await
            .unwrap();
        assert!(images.is_empty(), "half-stored images: {images:?}");
    }
}

#[tokio::test]
async fn upload_input_is_checked() {
    let app = spawn_app_with(|s| s.datasets.max_upload_bytes = 10_000).await;
    let user = app.new_user().await;
    let too_big = app
        .upload_dataset(&user.access_token, vec![0u8; 50_000], "big", "auto")
        .await;
    assert_error(too_big, 413, "PAYLOAD_TOO_LARGE").await;
    let small = imagefolder_zip(&["a"], 1);
    let bad_format = app
        .upload_dataset(&user.access_token, small.clone(), "x", "tiff")
        .await;
    let body = assert_error(bad_format, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "format");
    let empty_name = app
        .upload_dataset(&user.access_token, small, "", "auto")
        .await;
    assert_error(empty_name, 422, "VALIDATION_ERROR").await;
    let no_file = app
        .authed(Method::POST, "/api/v1/datasets/upload", &user.access_token)
        .multipart(
            reqwest::multipart::Form::new()
                .text("name", "n")
                .text("format", "auto"),
        )
        .send()
        .await
        .unwrap();
    let body = assert_error(no_file, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "file");
    let json_body = app
        .post_authed("/api/v1/datasets/upload", &user.access_token, &json!({}))
        .await;
    assert_error(json_body, 400, "INVALID_REQUEST").await;
    // Refused uploads leave no objects behind.
    assert!(
        app.app
            .objects
            .list(&format!("users/{}/", user.user_id))
            .await
            .unwrap()
            .is_empty()
    );
    let page = app
        .get("/api/v1/datasets?limit=500", &user.access_token)
        .await;
    assert_error(page, 422, "VALIDATION_ERROR").await;
}

/// `POST /datasets/upload` with the archive streamed in chunks: the request has no
/// `Content-Length`, so only the bytes that arrive can be checked.
async fn upload_chunked(app: &TestApp, token: &str, bytes: Vec<u8>) -> reqwest::Response {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let form = reqwest::multipart::Form::new()
        .text("name", "chunked")
        .text("format", "auto")
        .part(
            "file",
            reqwest::multipart::Part::stream(body).file_name("data.zip"),
        );
    app.authed(Method::POST, "/api/v1/datasets/upload", token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn chunked_upload_stops_at_the_storage_quota() {
    let app = spawn_app().await;
    let user = app.new_user_with_plan(Plan::Free).await;
    let quota = i64::from(Plan::Free.limits().storage_gb) * 1_000_000_000;
    // 100 kB left; the archive is bigger.
    app.app
        .store
        .add_usage(&user.user_id, 0.0, quota - 100_000)
        .await
        .unwrap();
    // Noise (xorshift) does not compress: the zip is as big as its content.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..400_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let archive = zip_of(&[("blob.bin", noise)]);
    assert!(
        archive.len() > 300_000,
        "the archive must not compress away"
    );
    let response = upload_chunked(&app, &user.access_token, archive).await;
    let body = assert_error(response, 403, "FORBIDDEN").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Storage quota exceeded"),
        "{body}"
    );
    // Nothing registered, the partial upload aborted, usage unchanged.
    let list: Value = app.get_json("/api/v1/datasets", &user.access_token).await;
    assert_eq!(list["total"], 0);
    let stored = app
        .app
        .objects
        .list(&format!("users/{}/", user.user_id))
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    let usage = app.app.store.usage(&user.user_id).await.unwrap();
    assert_eq!(usage.storage_bytes, quota - 100_000);

    // Below the quota the same chunked path works.
    app.app
        .store
        .add_usage(&user.user_id, 0.0, -(quota - 100_000))
        .await
        .unwrap();
    let response = upload_chunked(&app, &user.access_token, imagefolder_zip(&["a", "b"], 2)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn ingest_that_cannot_work_ends_failed_without_internal_text() {
    // The work dir is a regular file: no scratch directory can be made under it.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let path = blocker.path().to_string_lossy().into_owned();
    let app = spawn_app_with(|s| s.training.work_dir = path.clone()).await;
    let user = app.new_user().await;
    let created: Value = app
        .upload_dataset(
            &user.access_token,
            imagefolder_zip(&["a", "b"], 3),
            "x",
            "auto",
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["dataset_id"].as_str().unwrap();
    let done = app.wait_for_dataset(&user.access_token, id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"], app::datasets::INTERNAL_FAILURE, "{done}");
}

#[tokio::test]
async fn ingest_and_export_scratch_live_under_the_work_dir() {
    let work = tempfile::tempdir().unwrap();
    let work_dir = work.path().join("work");
    let path = work_dir.to_string_lossy().into_owned();
    let app = spawn_app_with(|s| s.training.work_dir = path.clone()).await;
    let user = app.new_user().await;
    let detail = upload_ready(&app, &user.access_token, yolo_zip(6), "yolo").await;
    let id = detail["dataset_id"].as_str().unwrap();
    // The ingest made (and emptied again) its scratch under the work dir.
    assert!(
        work_dir.is_dir(),
        "ingest scratch was not under the work dir"
    );
    assert_eq!(
        std::fs::read_dir(&work_dir).unwrap().count(),
        0,
        "scratch left behind"
    );
    // Export needs its scratch there too: with the work dir unusable it cannot run.
    std::fs::remove_dir_all(&work_dir).unwrap();
    std::fs::write(&work_dir, b"not a directory").unwrap();
    let response = app
        .get(&format!("/api/v1/datasets/{id}/export"), &user.access_token)
        .await;
    let body = assert_error(response, 500, "INTERNAL_ERROR").await;
    let text = body.to_string();
    assert!(!text.contains(&path), "no server paths in errors: {text}");
    std::fs::remove_file(&work_dir).unwrap();
    let response = app
        .get(&format!("/api/v1/datasets/{id}/export"), &user.access_token)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        std::fs::read_dir(&work_dir).unwrap().count(),
        0,
        "scratch left behind"
    );
}

#[tokio::test]
async fn dataset_used_by_a_live_workflow_cannot_be_deleted() {
    // Datasets get ingested; workflows stay queued.
    let app = spawn_app_with(|s| s.worker.kinds = vec!["dataset_ingest".into()]).await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let dataset = app
        .ready_dataset(token, shapes_zip(8, 2, 32, 7), "shapes")
        .await;
    let workflow = app
        .create_workflow(
            token,
            &json!({"name": "w", "config": {"task_type": "classification", "model": "small_cnn",
                "dataset_id": dataset,
                "hyperparameters": {"epochs": 1, "batch_size": 8, "learning_rate": 0.01, "image_size": 32}}}),
        )
        .await;
    let delete = || {
        app.authed(
            Method::DELETE,
            &format!("/api/v1/datasets/{dataset}"),
            token,
        )
        .send()
    };
    let body = assert_error(delete().await.unwrap(), 409, "CONFLICT").await;
    assert_eq!(
        body["error"]["details"]["workflow_ids"],
        json!([workflow]),
        "{body}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/datasets/{dataset}"), token)
            .await
            .status(),
        200
    );

    // Another user cannot probe it.
    let other = app.new_user().await;
    let response = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/datasets/{dataset}"),
            &other.access_token,
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "NOT_FOUND").await;

    // Once the workflow is cancelled the dataset can go.
    let cancel = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/workflows/{workflow}"),
            token,
        )
        .send()
        .await
        .unwrap();
    assert!(cancel.status().is_success(), "{}", cancel.status());
    assert_eq!(delete().await.unwrap().status(), 204);
}

#[tokio::test]
async fn items_page_through_images_with_annotations_and_signed_links() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let token = &user.access_token;
    let detection = upload_ready(&app, token, yolo_zip(12), "yolo").await;
    let id = detection["dataset_id"].as_str().unwrap();

    let page = app
        .get_json(
            &format!("/api/v1/datasets/{id}/items?limit=5&page=2"),
            token,
        )
        .await;
    assert_eq!(page["total"], 12);
    assert_eq!(
        (page["page"].as_u64(), page["limit"].as_u64()),
        (Some(2), Some(5))
    );
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["id"], 5);
    let box_ = &items[0]["annotations"][0];
    assert!(
        box_["class_name"].is_string() && box_["bbox"].as_array().unwrap().len() == 4,
        "{box_}"
    );

    // Filters: one class, one split; totals follow.
    let class = box_["class_name"].as_str().unwrap();
    let of_class = app
        .get_json(
            &format!("/api/v1/datasets/{id}/items?class={class}&limit=200"),
            token,
        )
        .await;
    let n = of_class["total"].as_u64().unwrap();
    assert!((1..12).contains(&n), "{of_class}");
    assert!(of_class["items"].as_array().unwrap().iter().all(|item| {
        item["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["class_name"] == class)
    }));
    let train = app
        .get_json(&format!("/api/v1/datasets/{id}/items?split=train"), token)
        .await;
    assert!(
        train["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["split"] == "train")
    );
    for bad in [
        "split=holdout",
        "class=nothing",
        "limit=0",
        "limit=201",
        "page=0",
    ] {
        let response = app
            .get(&format!("/api/v1/datasets/{id}/items?{bad}"), token)
            .await;
        assert_error(response, 422, "VALIDATION_ERROR").await;
    }
    let response = app
        .get(&format!("/api/v1/datasets/{id}/items?page=x"), token)
        .await;
    assert_error(response, 400, "INVALID_REQUEST").await;

    // The signed links work without a token; the thumbnail is small; a changed link is 403.
    let thumb_url = items[0]["thumbnail_url"].as_str().unwrap();
    let thumb = app.client.get(app.url(thumb_url)).send().await.unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let small = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert!(small.width().max(small.height()) <= 256);
    let full = app
        .client
        .get(app.url(items[0]["image_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    let image = image::load_from_memory(&full.bytes().await.unwrap()).unwrap();
    assert_eq!(image.width(), items[0]["width"].as_u64().unwrap() as u32);
    let other_item = thumb_url.replacen("/items/5/", "/items/6/", 1);
    let forged = app.client.get(app.url(&other_item)).send().await.unwrap();
    assert_error(forged, 403, "FORBIDDEN").await;

    // Another user's dataset is 404.
    let other = app.new_user().await;
    let response = app
        .get(&format!("/api/v1/datasets/{id}/items"), &other.access_token)
        .await;
    assert_error(response, 404, "NOT_FOUND").await;
}
