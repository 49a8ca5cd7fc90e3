//! Small real dataset archives made on the fly, and the upload/poll steps a user would take.

use crate::TestApp;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::io::{Cursor, Write};
use std::time::Duration;

/// A YOLO zip of `n` 64×64 JPEGs in 4 classes with one box each and no splits.
pub fn yolo_zip(n: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("yolo.zip");
    datasets::bench::write_bench_archive(&path, n).expect("archive");
    std::fs::read(path).expect("read archive")
}

/// A PNG of one flat colour.
pub fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// A zip with the given `(name, bytes)` entries, stored as given (names are not sanitised, so
/// hostile archives can be built too).
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in entries {
        zip.start_file(*name, options).expect("entry");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish").into_inner()
}

/// An ImageFolder zip: `per_class` distinctly coloured PNGs in a folder per class.
pub fn imagefolder_zip(classes: &[&str], per_class: usize) -> Vec<u8> {
    let mut entries = Vec::new();
    for (c, class) in classes.iter().enumerate() {
        for i in 0..per_class {
            let shade = u8::try_from((i * 7 + c * 40) % 256).unwrap_or(0);
            let rgb = [shade, u8::try_from(c * 60 % 256).unwrap_or(0), 255 - shade];
            entries.push((format!("{class}/{i:03}.png"), png(16 + c as u32, 16, rgb)));
        }
    }
    let borrowed: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    zip_of(&borrowed)
}

impl TestApp {
    /// `POST /datasets/upload` with `bytes` as the file.
    pub async fn upload_dataset(
        &self,
        token: &str,
        bytes: Vec<u8>,
        name: &str,
        format: &str,
    ) -> reqwest::Response {
        let form = Form::new()
            .part(
                "file",
                Part::bytes(bytes)
                    .file_name("data.zip")
                    .mime_str("application/zip")
                    .expect("mime"),
            )
            .text("name", name.to_owned())
            .text("format", format.to_owned());
        self.authed(reqwest::Method::POST, "/api/v1/datasets/upload", token)
            .multipart(form)
            .send()
            .await
            .expect("upload sent")
    }

    /// Polls `GET /datasets/{id}` until it is no longer `processing` (at most 60 s).
    pub async fn wait_for_dataset(&self, token: &str, id: &str) -> Value {
        for _ in 0..600 {
            let body: Value = self
                .get(&format!("/api/v1/datasets/{id}"), token)
                .await
                .json()
                .await
                .expect("json");
            if body["status"] != "processing" {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("dataset {id} still processing after 60 s");
    }
}

/// An ImageFolder zip (`train/<class>/…`, `val/<class>/…`) of the generated shapes set (circle,
/// square, triangle, cross on noise): learnable, but not by colour alone.
pub fn shapes_zip(train_per_class: usize, val_per_class: usize, size: u32, seed: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    ml::data::synthetic::write_shapes_dataset(
        dir.path(),
        train_per_class,
        val_per_class,
        size,
        seed,
    )
    .expect("shapes written");
    let mut entries = Vec::new();
    for split in ["train", "val"] {
        for class in ml::data::synthetic::SHAPE_CLASSES {
            let folder = dir.path().join(split).join(class);
            let mut names: Vec<_> = std::fs::read_dir(&folder)
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            names.sort();
            for name in names {
                let bytes = std::fs::read(folder.join(&name)).expect("image");
                entries.push((format!("{split}/{class}/{}", name.to_string_lossy()), bytes));
            }
        }
    }
    let borrowed: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    zip_of(&borrowed)
}

/// A YOLO zip (`data.yaml`, `images/{train,val}/…png`, `labels/{train,val}/…txt`) of the
/// generated detection set: one to three shapes (circle, square, triangle, cross) per image on
/// noise, each with its true box.
pub fn shapes_yolo_zip(train: usize, val: usize, size: u32, seed: u64) -> Vec<u8> {
    use ml::data::synthetic::{SHAPE_CLASSES, detection_shapes};
    let mut entries = vec![(
        "shapes/data.yaml".to_owned(),
        format!(
            "path: .\ntrain: images/train\nval: images/val\nnames: [{}]\n",
            SHAPE_CLASSES.join(", ")
        )
        .into_bytes(),
    )];
    for (split, count, split_seed) in [("train", train, seed), ("val", val, seed + 1)] {
        for (n, (image, boxes)) in detection_shapes(count, size, split_seed)
            .into_iter()
            .enumerate()
        {
            let mut bytes = Cursor::new(Vec::new());
            image
                .write_to(&mut bytes, image::ImageFormat::Png)
                .expect("png");
            entries.push((
                format!("shapes/images/{split}/{n:05}.png"),
                bytes.into_inner(),
            ));
            let side = f64::from(size);
            let labels: String = boxes
                .iter()
                .map(|b| {
                    let [x, y, w, h] = b.bbox;
                    format!(
                        "{} {:.6} {:.6} {:.6} {:.6}\n",
                        b.class_id,
                        (x + w / 2.0) / side,
                        (y + h / 2.0) / side,
                        w / side,
                        h / side
                    )
                })
                .collect();
            entries.push((
                format!("shapes/labels/{split}/{n:05}.txt"),
                labels.into_bytes(),
            ));
        }
    }
    let borrowed: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    zip_of(&borrowed)
}

impl TestApp {
    /// Uploads `bytes` as an auto-detected dataset and waits until it is ready; its id.
    pub async fn ready_dataset(&self, token: &str, bytes: Vec<u8>, name: &str) -> String {
        let response = self.upload_dataset(token, bytes, name, "auto").await;
        assert_eq!(response.status(), 201, "upload refused");
        let created: Value = response.json().await.expect("json");
        let id = created["dataset_id"]
            .as_str()
            .expect("dataset id")
            .to_owned();
        let done = self.wait_for_dataset(token, &id).await;
        assert_eq!(done["status"], "ready", "{done}");
        id
    }

    /// `POST /workflows` with `body`, expecting 201; the new workflow's id.
    pub async fn create_workflow(&self, token: &str, body: &Value) -> String {
        let response = self
            .authed(reqwest::Method::POST, "/api/v1/workflows", token)
            .json(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201, "workflow refused");
        let created: Value = response.json().await.expect("json");
        created["workflow_id"]
            .as_str()
            .expect("workflow id")
            .to_owned()
    }

    /// Waits until `done` holds for the workflow's `GET /workflows/{id}` body (at most
    /// `limit`). The row is polled in the database, so the caller's rate limit is not spent;
    /// the returned body comes from the API.
    pub async fn wait_for_workflow(
        &self,
        token: &str,
        id: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        let mut last_seen = None;
        let mut last_call: Option<tokio::time::Instant> = None;
        loop {
            let row = self.app.store.workflow_by_id(id).await.expect("store");
            let changed = row.as_ref().map(|w| w.updated_at) != last_seen;
            let finished = row.as_ref().is_some_and(|w| w.status.is_terminal());
            let rested = last_call.is_none_or(|at| at.elapsed() >= Duration::from_millis(700));
            if changed && (rested || finished) {
                last_call = Some(tokio::time::Instant::now());
                last_seen = row.as_ref().map(|w| w.updated_at);
                let body: Value = self
                    .get(&format!("/api/v1/workflows/{id}"), token)
                    .await
                    .json()
                    .await
                    .expect("json");
                if done(&body) {
                    return body;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "workflow {id} not there after {limit:?}: {body}"
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "workflow {id} unchanged for {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
