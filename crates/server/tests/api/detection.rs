//! Detection through the API: the catalogue's detectors, a YOLO dataset trained into a
//! `yolov8n` workflow with detection metrics, and predictions that carry boxes (single and
//! batch). That YOLOv8 really learns is proven in `ml`'s detection tests; here the plumbing is.

use base64::Engine as _;
use serde_json::{Value, json};
use std::time::Duration;
use test_support::data::shapes_yolo_zip;
use test_support::{assert_error, spawn_app_with};

const SIZE: u32 = 64;

#[tokio::test]
async fn a_detection_workflow_trains_and_serves_boxes() {
    // Every candidate is reported (threshold 0), at most 5: the few epochs of this test do not
    // make confident boxes, and the shape of the answer is what is checked.
    let app = spawn_app_with(|s| {
        s.inference.detection_score_threshold = 0.0;
        s.inference.detection_max_objects = 5;
    })
    .await;
    let user = app.new_user().await;
    let token = &user.access_token;

    let catalogue: Value = app
        .get_json("/api/v1/models?task_type=detection", token)
        .await;
    let ids: Vec<&str> = catalogue["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["yolov8n", "yolov8s"], "{catalogue}");
    assert_eq!(catalogue["models"][0]["parameters"], "3.2M");
    assert_eq!(catalogue["models"][1]["parameters"], "11.2M");

    let dataset = app
        .ready_dataset(token, shapes_yolo_zip(16, 8, SIZE, 5), "shapes")
        .await;
    // A classifier cannot train on boxes, a detector needs a detection set.
    let wrong = app
        .post_authed(
            "/api/v1/workflows",
            token,
            &json!({"name": "x", "config": {"task_type": "classification",
            "model": "small_cnn", "dataset_id": dataset}}),
        )
        .await;
    assert_error(wrong, 422, "VALIDATION_ERROR").await;

    let id = app
        .create_workflow(
            token,
            &json!({"name": "shapes detector", "config": {"task_type": "detection",
                "model": "yolov8n", "dataset_id": dataset,
                "hyperparameters": {"epochs": 2, "batch_size": 8, "image_size": SIZE}}}),
        )
        .await;
    let done = app
        .wait_for_workflow(token, &id, Duration::from_secs(300), |w| {
            w["status"] != "pending" && w["status"] != "training"
        })
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["task_type"], "detection", "{done}");
    let metrics = &done["metrics"];
    for key in [
        "loss",
        "box_loss",
        "cls_loss",
        "dfl_loss",
        "val_loss",
        "val_map50",
        "val_map50_95",
    ] {
        assert!(metrics[key].is_number(), "{key} missing: {metrics}");
    }
    assert!(metrics.get("accuracy").is_none(), "{metrics}");
    let map50 = metrics["val_map50"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&map50), "{metrics}");
    let history: Value = app
        .get_json(&format!("/api/v1/workflows/{id}/metrics"), token)
        .await;
    let points = history["metrics"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{history}");
    assert!(points.iter().all(|p| p["val_map50_95"].is_number()));
    let logs: Value = app
        .get_json(&format!("/api/v1/workflows/{id}/logs"), token)
        .await;
    assert!(
        logs["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("Val mAP50:")),
        "{logs}"
    );

    // One image: objects with boxes inside the image, most confident first.
    let (image, _) = ml::data::synthetic::detection_shapes(1, SIZE, 99).remove(0);
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(png.into_inner());
    let response = app
        .post_authed(
            &format!("/api/v1/inference/{id}/predict"),
            token,
            &json!({ "image_base64": encoded }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let version = answer["model_version"].as_str().unwrap();
    assert!(version.starts_with(&format!("{id}_epoch_")), "{answer}");
    check_objects(&answer["predictions"]);

    // A durable batch answers with boxes too.
    let response = app
        .post_authed(
            &format!("/api/v1/inference/{id}/batch"),
            token,
            &json!({ "images": [{ "image_base64": encoded }, { "image_base64": encoded }] }),
        )
        .await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let status = app
        .wait_for_batch(token, &id, job["job_id"].as_str().unwrap())
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    for result in status["results"].as_array().unwrap() {
        check_objects(&result["predictions"]);
        assert_eq!(result["predictions"], answer["predictions"]);
    }
}

/// 1 to 5 objects of the dataset's classes, by decreasing confidence, each with a box
/// `[x, y, w, h]` inside the 64×64 image.
fn check_objects(predictions: &Value) {
    let objects = predictions.as_array().unwrap();
    assert!((1..=5).contains(&objects.len()), "{predictions}");
    let mut previous = f64::INFINITY;
    for object in objects {
        let class = object["class"].as_str().unwrap();
        let class_id = object["class_id"].as_u64().unwrap() as usize;
        assert_eq!(ml::data::synthetic::SHAPE_CLASSES[class_id], class);
        let confidence = object["confidence"].as_f64().unwrap();
        assert!(confidence <= previous && (0.0..=1.0).contains(&confidence));
        previous = confidence;
        let bbox: Vec<f64> = object["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let side = f64::from(SIZE) + 0.01;
        assert!(
            bbox.len() == 4
                && bbox[0] >= 0.0
                && bbox[1] >= 0.0
                && bbox[2] >= 0.0
                && bbox[3] >= 0.0
                && bbox[0] + bbox[2] <= side
                && bbox[1] + bbox[3] <= side,
            "{object}"
        );
    }
}
