//! The validation report: the spec's example, and every check on a dataset built to fail them.

use std::fs;

use datasets::{
    DatasetFormat, Expectations, ImageEntry, Lang, Limits, Manifest, Severity, Split, TaskType,
    ingest_dir, validate,
};
use serde_json::{Value, json};

use crate::fixtures;

fn classification(counts: &[(&str, usize)]) -> Manifest {
    let mut images = Vec::new();
    for (class, (_, count)) in counts.iter().enumerate() {
        for i in 0..*count {
            images.push(ImageEntry {
                file: format!("{class}/{i}.jpg"),
                width: 32,
                height: 32,
                split: if i % 5 == 0 { Split::Val } else { Split::Train },
                label: Some(class),
                boxes: Vec::new(),
            });
        }
    }
    Manifest {
        task: TaskType::Classification,
        classes: counts.iter().map(|(n, _)| (*n).to_owned()).collect(),
        images,
    }
}

#[test]
fn spec_example_class_imbalance_in_korean() {
    let manifest = classification(&[("치즈", 350), ("나비", 320), ("츄르", 330)]);
    let expect = Expectations {
        expected_format: Some(DatasetFormat::Coco),
        expected_classes: Some(3),
    };
    let report = validate(&manifest, DatasetFormat::Coco, &[], &expect, Lang::Ko);
    let body = serde_json::to_value(&report).unwrap();
    assert_eq!(
        body,
        json!({
            "valid": true,
            "issues": [{
                "severity": "warning",
                "message": "클래스 불균형 감지 (최대 10% 차이)",
                "details": {"치즈": 350, "나비": 320, "츄르": 330}
            }],
            "recommendations": ["데이터 증강(augmentation)을 사용하여 클래스 균형을 맞추는 것을 권장합니다."]
        })
    );
    let english = validate(&manifest, DatasetFormat::Coco, &[], &expect, Lang::En);
    assert_eq!(
        english.issues[0].message,
        "Class imbalance detected (up to 10% difference)"
    );
}

#[test]
fn balanced_dataset_has_no_issues_and_mismatches_are_errors() {
    let manifest = classification(&[("a", 50), ("b", 52)]);
    let report = validate(
        &manifest,
        DatasetFormat::ImageFolder,
        &[],
        &Expectations::default(),
        Lang::En,
    );
    assert!(
        report.valid && report.issues.is_empty() && report.recommendations.is_empty(),
        "{report:?}"
    );

    let expect = Expectations {
        expected_format: Some(DatasetFormat::Yolo),
        expected_classes: Some(3),
    };
    let report = validate(
        &manifest,
        DatasetFormat::ImageFolder,
        &[],
        &expect,
        Lang::En,
    );
    assert!(!report.valid);
    let errors: Vec<&Value> = report
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| &i.details)
        .collect();
    assert!(
        errors.contains(&&json!({"expected": "yolo", "actual": "imagefolder"})),
        "{errors:?}"
    );
    assert!(
        errors.contains(&&json!({"expected": 3, "actual": 2, "classes": ["a", "b"]})),
        "{errors:?}"
    );

    let few = classification(&[("a", 12), ("b", 3)]);
    let report = validate(
        &few,
        DatasetFormat::ImageFolder,
        &[],
        &Expectations::default(),
        Lang::En,
    );
    let too_few = report
        .issues
        .iter()
        .find(|i| i.message.contains("too few"))
        .unwrap();
    assert_eq!(too_few.details, json!({"b": 3}));
}

#[test]
fn every_detection_check_fires_on_a_broken_coco_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    fixtures::write_coco(&root, &fixtures::samples(12), [1, 2, 3]);
    let json_path = root.join("annotations/instances_train.json");
    let mut doc: Value = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
    // Missing file, unlabeled image, duplicate content.
    fs::copy(
        root.join("images/train/img_003.jpg"),
        root.join("images/train/dup.jpg"),
    )
    .unwrap();
    fixtures::write(
        &root.join("images/train/empty.jpg"),
        fixtures::jpeg(40, 30, 777),
    );
    let images = doc["images"].as_array_mut().unwrap();
    images.push(json!({"id": 5001, "file_name": "ghost.jpg", "width": 10, "height": 10}));
    images.push(json!({"id": 5002, "file_name": "dup.jpg", "width": 64, "height": 48}));
    images.push(json!({"id": 5003, "file_name": "empty.jpg", "width": 40, "height": 30}));
    let annotations = doc["annotations"].as_array_mut().unwrap();
    annotations
        .push(json!({"id": 9001, "image_id": 5002, "category_id": 77, "bbox": [1, 1, 2, 2]}));
    annotations
        .push(json!({"id": 9002, "image_id": 5002, "category_id": 1, "bbox": [50, 40, 30, 30]}));
    annotations
        .push(json!({"id": 9003, "image_id": 5002, "category_id": 2, "bbox": [5, 5, 0, 10]}));
    fs::write(&json_path, serde_json::to_vec(&doc).unwrap()).unwrap();
    // A truncated image.
    let corrupt = root.join("images/train/img_004.jpg");
    let bytes = fs::read(&corrupt).unwrap();
    fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();

    let got = ingest_dir(&root, None, &Limits::default(), 1).unwrap();
    let report = got.report(&Expectations::default(), Lang::En);
    assert!(!report.valid);
    let find = |needle: &str| {
        report
            .issues
            .iter()
            .find(|i| i.message.contains(needle))
            .unwrap_or_else(|| panic!("no issue with `{needle}` in {:#?}", report.issues))
    };
    let corrupt = find("corrupt or truncated");
    assert_eq!(corrupt.severity, Severity::Error);
    assert_eq!(
        corrupt.details["files"][0]["file"],
        "images/train/img_004.jpg"
    );
    let missing = find("missing from the archive");
    assert_eq!(missing.details["files"][0]["file"], "ghost.jpg");
    assert_eq!(
        missing.details["files"][0]["referenced_by"],
        "annotations/instances_train.json"
    );
    let unknown = find("undeclared class");
    assert_eq!(unknown.details["ids"], json!({"77": 1}));
    let unlabeled = find("without labels");
    assert_eq!(unlabeled.severity, Severity::Warning);
    assert_eq!(
        unlabeled.details["files"],
        json!(["images/train/empty.jpg"])
    );
    let outside = find("outside their image");
    assert_eq!(
        outside.details["boxes"][0]["bbox"],
        json!([50.0, 40.0, 30.0, 30.0])
    );
    let zero = find("zero area");
    assert_eq!(zero.details["count"], 1);
    let dup = find("duplicate images");
    let files = dup.details["groups"][0]["files"].as_array().unwrap();
    assert!(
        files.contains(&json!("images/train/dup.jpg"))
            && files.contains(&json!("images/train/img_003.jpg"))
    );
    assert!(!report.recommendations.is_empty());
    // Errors come first.
    let severities: Vec<Severity> = report.issues.iter().map(|i| i.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by_key(|s| *s as u8);
    assert_eq!(severities, sorted);

    let korean = got.report(&Expectations::default(), Lang::Ko);
    assert!(
        korean
            .issues
            .iter()
            .any(|i| i.message.contains("손상되었거나 잘린 이미지 1개"))
    );
    assert_eq!(korean.issues.len(), report.issues.len());
    // Problems survive a JSON round trip, so they can be stored with the dataset.
    let stored: Vec<datasets::Problem> =
        serde_json::from_value(serde_json::to_value(&got.problems).unwrap()).unwrap();
    assert_eq!(stored, got.problems);
}

#[test]
fn yolo_label_problems_are_reported_with_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    let samples = fixtures::samples(4);
    fixtures::write_yolo(&root, &samples, false);
    let label = root.join("labels/train/img_003.txt");
    fs::write(
        &label,
        "0 0.5 0.5 0.2 0.2\n9 0.5 0.5 0.1 0.1\n1 0.5 oops 0.1 0.1\n2 0.5 0.5\n",
    )
    .unwrap();
    let got = ingest_dir(&root, None, &Limits::default(), 1).unwrap();
    let image = got
        .manifest
        .images
        .iter()
        .find(|i| i.file.ends_with("img_003.jpg"))
        .unwrap();
    assert_eq!(image.boxes.len(), 1);
    let report = got.report(&Expectations::default(), Lang::En);
    let malformed = report
        .issues
        .iter()
        .find(|i| i.message.contains("malformed"))
        .unwrap();
    let lines: Vec<u64> = malformed.details["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4]);
    assert!(
        report
            .issues
            .iter()
            .any(|i| i.details["ids"] == json!({"9": 1}))
    );
}
