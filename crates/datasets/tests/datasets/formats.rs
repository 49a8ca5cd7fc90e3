//! Every format is detected and read into the manifest with its boxes, classes and splits.

use std::fs;

use datasets::{DatasetError, DatasetFormat, Limits, Problem, Split, TaskType, ingest, ingest_dir};

use crate::fixtures::{self, CLASSES, assert_same_boxes, boxes_by_name, expected_boxes, samples};

fn split_of(manifest: &datasets::Manifest, name: &str) -> Split {
    manifest
        .images
        .iter()
        .find(|i| i.file.ends_with(name))
        .unwrap()
        .split
}

#[test]
fn coco_zip_with_split_files_and_arbitrary_category_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let samples = samples(30);
    fixtures::write_coco(&src, &samples, [7, 3, 12]);
    let zip = tmp.path().join("coco.zip");
    fixtures::zip_dir(&src, &zip, "my_coco");
    let got = ingest(&zip, None, &tmp.path().join("work"), &Limits::default(), 1).unwrap();
    assert_eq!(got.format, DatasetFormat::Coco);
    fixtures::assert_detection(&got.manifest);
    // Category ids 3, 7, 12 remapped to 0, 1, 2 in id order.
    assert_eq!(got.manifest.classes, vec!["dog", "고양이", "새"]);
    assert_same_boxes(&boxes_by_name(&got.manifest), &expected_boxes(&samples));
    for s in &samples {
        assert_eq!(split_of(&got.manifest, &s.name), s.split, "{}", s.name);
        let image = got
            .manifest
            .images
            .iter()
            .find(|i| i.file.ends_with(&s.name))
            .unwrap();
        assert_eq!((image.width, image.height), (s.width, s.height));
    }
    assert_eq!(got.files.len(), 30);
    assert!(got.files.iter().all(|f| f.is_file()));
    assert!(got.hashes.iter().all(|h| h.len() == 64));
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    assert_eq!(
        (
            got.stats.train_images,
            got.stats.val_images,
            got.stats.test_images
        ),
        (21, 6, 3)
    );
}

#[test]
fn yolo_tar_gz_with_names_map_and_list() {
    for as_map in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let samples = samples(20);
        fixtures::write_yolo(&src, &samples, as_map);
        let tgz = tmp.path().join("yolo.tar.gz");
        fixtures::tar_dir(&src, &tgz, true);
        let got = ingest(&tgz, None, &tmp.path().join("work"), &Limits::default(), 1).unwrap();
        assert_eq!(got.format, DatasetFormat::Yolo);
        assert_eq!(got.manifest.classes, CLASSES.to_vec());
        assert_same_boxes(&boxes_by_name(&got.manifest), &expected_boxes(&samples));
        for s in &samples {
            assert_eq!(split_of(&got.manifest, &s.name), s.split);
        }
        assert!(got.problems.is_empty(), "{:?}", got.problems);
    }
}

#[test]
fn yolo_roboflow_layout_with_parent_relative_paths_and_polygons() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    for (split, i) in [("train", 0), ("valid", 1)] {
        fixtures::write(
            &root.join(format!("{split}/images/p{i}.jpg")),
            fixtures::jpeg(100, 50, i),
        );
        // A polygon label: its bounding box is x 10..30, y 5..25 (pixels).
        fixtures::write(
            &root.join(format!("{split}/labels/p{i}.txt")),
            "1 0.1 0.1 0.3 0.1 0.3 0.5 0.1 0.5\n",
        );
    }
    fixtures::write(
        &root.join("data.yaml"),
        "train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['a', 'b']\n",
    );
    let got = ingest_dir(&root, None, &Limits::default(), 1).unwrap();
    assert_eq!(got.format, DatasetFormat::Yolo);
    assert_eq!(got.manifest.images.len(), 2);
    assert_eq!(split_of(&got.manifest, "p1.jpg"), Split::Val);
    let b = got.manifest.images[0].boxes[0];
    assert_eq!(b.class_id, 1);
    assert!(
        datasets::boxes::approx_eq(b.bbox, [10.0, 5.0, 20.0, 20.0], 1e-9),
        "{:?}",
        b.bbox
    );
}

#[test]
fn voc_plain_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let samples = samples(12);
    fixtures::write_voc(&src, &samples);
    let tar = tmp.path().join("voc.tar");
    fixtures::tar_dir(&src, &tar, false);
    let got = ingest(&tar, None, &tmp.path().join("work"), &Limits::default(), 1).unwrap();
    assert_eq!(got.format, DatasetFormat::Voc);
    let mut sorted = CLASSES.to_vec();
    sorted.sort();
    assert_eq!(got.manifest.classes, sorted);
    assert_same_boxes(&boxes_by_name(&got.manifest), &expected_boxes(&samples));
    for s in &samples {
        assert_eq!(split_of(&got.manifest, &s.name), s.split);
    }
}

#[test]
fn imagefolder_with_korean_classes_and_generated_stratified_split() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fixtures::write_imagefolder(&src, &["치즈", "나비", "츄르"], &[40, 20, 40], false);
    let zip = tmp.path().join("cats.zip");
    fixtures::zip_dir(&src, &zip, "");
    let got = ingest(&zip, None, &tmp.path().join("work"), &Limits::default(), 42).unwrap();
    assert_eq!(got.format, DatasetFormat::ImageFolder);
    assert_eq!(got.manifest.task, TaskType::Classification);
    let mut names = vec!["나비", "츄르", "치즈"];
    names.sort();
    assert_eq!(got.manifest.classes, names);
    assert_eq!(
        (
            got.stats.train_images,
            got.stats.val_images,
            got.stats.test_images
        ),
        (80, 15, 5)
    );
    assert!(
        got.problems
            .contains(&Problem::SplitsGenerated { seed: 42 })
    );
    // Stratified: each class keeps about 15 % in val.
    for (class, name) in got.manifest.classes.iter().enumerate() {
        let total = got
            .manifest
            .images
            .iter()
            .filter(|i| i.label == Some(class))
            .count();
        let val = got
            .manifest
            .split(Split::Val)
            .filter(|i| i.label == Some(class))
            .count();
        let expected = total as f64 * 0.15;
        assert!(
            (val as f64 - expected).abs() <= 1.0,
            "{name}: {val} of {total}"
        );
    }
    let stats = serde_json::to_value(&got.stats).unwrap();
    assert_eq!(stats["classes"][0]["name"], got.manifest.classes[0]);
    assert_eq!(stats["total_images"], 100);

    // Same seed → same split; other seed → another.
    let again = ingest(
        &zip,
        None,
        &tmp.path().join("work2"),
        &Limits::default(),
        42,
    )
    .unwrap();
    let splits = |i: &datasets::Ingested| {
        i.manifest
            .images
            .iter()
            .map(|e| (e.file.clone(), e.split))
            .collect::<Vec<_>>()
    };
    assert_eq!(splits(&got), splits(&again));
    let other = ingest(&zip, None, &tmp.path().join("work3"), &Limits::default(), 7).unwrap();
    assert_ne!(splits(&got), splits(&other));
}

#[test]
fn imagefolder_keeps_archive_splits() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fixtures::write_imagefolder(&src, &["a", "b"], &[10, 10], true);
    fixtures::write(&src.join("train/loose.png"), fixtures::png(9, 9, 9));
    let got = ingest_dir(
        &src,
        Some(DatasetFormat::ImageFolder),
        &Limits::default(),
        1,
    )
    .unwrap();
    assert!(got.manifest.images.iter().all(|i| i.label.is_some()));
    assert!(got.problems.contains(&Problem::UnlabeledImage {
        file: "train/loose.png".into()
    }));
    let report = got.report(&datasets::Expectations::default(), datasets::Lang::En);
    let unlabeled = report
        .issues
        .iter()
        .find(|i| i.message.contains("without labels"))
        .unwrap();
    assert_eq!(
        unlabeled.details["files"],
        serde_json::json!(["train/loose.png"])
    );
    assert_eq!(
        (
            got.stats.train_images,
            got.stats.val_images,
            got.stats.test_images
        ),
        (16, 4, 0)
    );
    assert!(
        !got.problems
            .iter()
            .any(|p| matches!(p, Problem::SplitsGenerated { .. }))
    );
    assert_eq!(
        got.stats
            .classes
            .iter()
            .map(|c| c.count)
            .collect::<Vec<_>>(),
        vec![10, 10]
    );
}

#[test]
fn wrong_requested_format_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fixtures::write_imagefolder(&src, &["a", "b"], &[3, 3], false);
    let err = ingest_dir(&src, Some(DatasetFormat::Coco), &Limits::default(), 1).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::NotThisFormat {
                format: DatasetFormat::Coco,
                ..
            }
        ),
        "{err}"
    );
    let err = ingest_dir(&src, Some(DatasetFormat::Voc), &Limits::default(), 1).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::NotThisFormat {
                format: DatasetFormat::Voc,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(DatasetFormat::parse_choice("auto").unwrap(), None);
    assert_eq!(
        DatasetFormat::parse_choice("YOLO").unwrap(),
        Some(DatasetFormat::Yolo)
    );
    assert!(DatasetFormat::parse_choice("csv").is_err());
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    fixtures::write(&root.join("images/a.jpg"), fixtures::jpeg(10, 10, 1));
    fixtures::write(
        &root.join("annotations/instances_default.json"),
        "{\n  \"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}],\n  \"annotations\": [,],\n  \"categories\": []\n}",
    );
    let err = ingest_dir(&root, None, &Limits::default(), 1).unwrap_err();
    let DatasetError::Parse(parse) = &err else {
        panic!("{err}")
    };
    assert_eq!(parse.file, "annotations/instances_default.json");
    assert_eq!(parse.line, Some(3));
    assert!(parse.column.is_some());
    assert_eq!(err.details()["line"], 3);

    // A type error names the field path.
    fixtures::write(
        &root.join("annotations/instances_default.json"),
        "{\"images\": [{\"id\": 1, \"file_name\": 5}], \"annotations\": [], \"categories\": []}",
    );
    let err = ingest_dir(&root, None, &Limits::default(), 1).unwrap_err();
    let DatasetError::Parse(parse) = &err else {
        panic!("{err}")
    };
    assert_eq!(parse.field.as_deref(), Some("images[0].file_name"), "{err}");
}

#[test]
fn malformed_xml_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    fixtures::write_voc(&root, &samples(3));
    fixtures::write(
        &root.join("Annotations/img_001.xml"),
        "<annotation>\n<filename>img_001.jpg</filename>\n<object><name>dog</nam></object>\n</annotation>",
    );
    let err = ingest_dir(&root, None, &Limits::default(), 1).unwrap_err();
    let DatasetError::Parse(parse) = &err else {
        panic!("{err}")
    };
    assert_eq!(parse.file, "Annotations/img_001.xml");
    assert_eq!(parse.line, Some(3), "{err}");
    assert_eq!(err.code(), "MALFORMED_ANNOTATIONS");
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    fixtures::write_yolo(&root, &samples(3), false);
    fixtures::write(
        &root.join("data.yaml"),
        "train: images/train\nnames: [a, b\nval: images/val\n",
    );
    let err = ingest_dir(&root, Some(DatasetFormat::Yolo), &Limits::default(), 1).unwrap_err();
    let DatasetError::Parse(parse) = &err else {
        panic!("{err}")
    };
    assert_eq!(parse.file, "data.yaml");
    assert!(parse.line.is_some_and(|l| l >= 2), "{err}");

    fixtures::write(&root.join("data.yaml"), "names:\n  0: a\n  2: c\n");
    let err = ingest_dir(&root, Some(DatasetFormat::Yolo), &Limits::default(), 1).unwrap_err();
    let DatasetError::Parse(parse) = &err else {
        panic!("{err}")
    };
    assert_eq!(parse.field.as_deref(), Some("names.2"), "{err}");
}

#[test]
fn no_images_at_all_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    fixtures::write(&root.join("readme.txt"), "hello");
    let err = ingest_dir(&root, None, &Limits::default(), 1).unwrap_err();
    assert!(matches!(err, DatasetError::UnknownFormat { .. }), "{err}");
    fs::remove_dir_all(&root).unwrap();
}

/// A COCO dataset of one 40×30 image whose single annotation is `annotation`.
fn one_annotation_coco(root: &std::path::Path, annotations: serde_json::Value) {
    fixtures::write(&root.join("images/a.png"), fixtures::png(40, 30, 7));
    let doc = serde_json::json!({
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": annotations,
    });
    fixtures::write(
        &root.join("annotations/instances_train.json"),
        serde_json::to_vec(&doc).unwrap(),
    );
}

#[test]
fn coco_polygons_become_boxes_within_the_point_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    // Two polygons of one object (plus junk the reader skips), and an RLE mask without a box.
    one_annotation_coco(
        &root,
        serde_json::json!([
            {"id": 1, "image_id": 1, "category_id": 1,
             "segmentation": [[2, 3, 10, 3, 10, 8], [4, 5, 12.5, 20, "x", null]]},
            {"id": 2, "image_id": 1, "category_id": 1,
             "segmentation": {"counts": [1, 2, 3], "size": [30, 40]}},
        ]),
    );
    let limits = Limits {
        max_polygon_points: 5,
        ..Limits::default()
    };
    let got = ingest_dir(&root, None, &limits, 1).unwrap();
    let boxes: Vec<[f64; 4]> = got.manifest.images[0]
        .boxes
        .iter()
        .map(|b| b.bbox)
        .collect();
    assert_eq!(boxes, [[2.0, 3.0, 10.5, 17.0]]);
    assert!(
        got.problems.iter().any(|p| matches!(p,
            Problem::MalformedAnnotation { field: Some(f), .. } if f == "annotations[1].bbox")),
        "{:?}",
        got.problems
    );

    // Five points are one more than allowed: the annotation is dropped with a reason.
    let limits = Limits {
        max_polygon_points: 4,
        ..Limits::default()
    };
    let got = ingest_dir(&root, None, &limits, 1).unwrap();
    assert!(got.manifest.images[0].boxes.is_empty());
    assert!(
        got.problems.iter().any(|p| matches!(p,
            Problem::MalformedAnnotation { field: Some(f), reason, .. }
                if f == "annotations[0].segmentation"
                    && reason == "polygon has 5 points, more than the limit of 4")),
        "{:?}",
        got.problems
    );
}

#[test]
fn annotation_files_beyond_the_limits_refuse_the_dataset_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    let annotation = |id: u64| serde_json::json!({"id": id, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]});
    one_annotation_coco(
        &root,
        serde_json::json!([annotation(1), annotation(2), annotation(3)]),
    );
    let limits = Limits {
        max_annotations: 2,
        ..Limits::default()
    };
    let err = ingest_dir(&root, None, &limits, 1).unwrap_err();
    assert!(
        matches!(&err, DatasetError::TooManyAnnotations { file, what, limit: 2 }
            if file == "annotations/instances_train.json" && what == "annotations"),
        "{err}"
    );
    assert_eq!(err.code(), "ANNOTATION_LIMIT_EXCEEDED");
    assert_eq!(
        err.to_string(),
        "annotation file `annotations/instances_train.json` has more than 2 annotations"
    );

    let size = fs::metadata(root.join("annotations/instances_train.json"))
        .unwrap()
        .len();
    let limits = Limits {
        max_annotation_bytes: size - 1,
        ..Limits::default()
    };
    let err = ingest_dir(&root, None, &limits, 1).unwrap_err();
    assert!(
        matches!(&err, DatasetError::AnnotationFileTooLarge { bytes, .. } if *bytes == size),
        "{err}"
    );
    assert_eq!(err.details()["max_bytes"], size - 1);

    // A bbox of a million numbers is not a box (and is never held as a million values).
    let root = tmp.path().join("long-bbox");
    let long: Vec<u32> = (0..1_000_000).map(|i| i % 7).collect();
    one_annotation_coco(
        &root,
        serde_json::json!([{"id": 1, "image_id": 1, "category_id": 1, "bbox": long}]),
    );
    let got = ingest_dir(&root, None, &Limits::default(), 1).unwrap();
    assert!(got.manifest.images[0].boxes.is_empty());
}

#[test]
fn yolo_class_ids_without_names_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    fixtures::write(&root.join("images/a.png"), fixtures::png(40, 30, 7));
    fixtures::write(&root.join("labels/a.txt"), "4000000000 0.5 0.5 0.2 0.2\n");
    let err = ingest_dir(&root, Some(DatasetFormat::Yolo), &Limits::default(), 1).unwrap_err();
    assert!(matches!(err, DatasetError::Parse(_)), "{err}");
    assert!(err.to_string().contains("class id 4000000000"), "{err}");
}
