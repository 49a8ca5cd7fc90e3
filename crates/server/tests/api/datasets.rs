use reqwest::Method;
use serde_json::{Value, json};
use std::io::Read;
use test_support::data::{imagefolder_zip, png, yolo_zip, zip_of};
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
