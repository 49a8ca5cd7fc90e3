//! COCO → manifest → COCO / YOLO / VOC → manifest keeps every box and class; ImageFolder too.

use std::collections::BTreeMap;
use std::fs;

use datasets::export::export_names;
use datasets::{
    DatasetError, DatasetFormat, Limits, Manifest, Split, export_dir, export_zip, ingest,
    ingest_dir,
};

use crate::fixtures::{self, assert_same_boxes, boxes_by_name, expected_boxes, samples};

fn splits_by_name(manifest: &Manifest) -> BTreeMap<String, Split> {
    manifest
        .images
        .iter()
        .map(|i| (i.file.rsplit('/').next().unwrap().to_owned(), i.split))
        .collect()
}

#[test]
fn coco_to_every_detection_format_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let samples = samples(20);
    fixtures::write_coco(&src, &samples, [10, 20, 30]);
    let original = ingest_dir(&src, None, &Limits::default(), 1).unwrap();
    let expected = expected_boxes(&samples);
    assert_same_boxes(&boxes_by_name(&original.manifest), &expected);

    for format in [DatasetFormat::Coco, DatasetFormat::Yolo, DatasetFormat::Voc] {
        let zip_path = tmp.path().join(format!("export-{format}.zip"));
        let file = fs::File::create(&zip_path).unwrap();
        export_zip(&original.manifest, &original.root, format, file).unwrap();
        let back = ingest(
            &zip_path,
            None,
            &tmp.path().join(format!("work-{format}")),
            &Limits::default(),
            1,
        )
        .unwrap();
        assert_eq!(
            back.format, format,
            "detected format of the {format} export"
        );
        assert_same_boxes(&boxes_by_name(&back.manifest), &expected);
        let mut classes = back.manifest.classes.clone();
        classes.sort();
        let mut want = original.manifest.classes.clone();
        want.sort();
        assert_eq!(classes, want, "{format}");
        assert_eq!(
            splits_by_name(&back.manifest),
            splits_by_name(&original.manifest),
            "{format}"
        );
        assert!(back.problems.is_empty(), "{format}: {:?}", back.problems);
        assert_eq!(back.stats.total_images, 20);
    }
}

#[test]
fn imagefolder_round_trip_and_unsupported_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fixtures::write_imagefolder(&src, &["고양이", "강아지"], &[6, 4], true);
    let original = ingest_dir(&src, None, &Limits::default(), 1).unwrap();
    let out = tmp.path().join("out");
    export_dir(
        &original.manifest,
        &original.root,
        DatasetFormat::ImageFolder,
        &out,
    )
    .unwrap();
    let back = ingest_dir(&out, None, &Limits::default(), 1).unwrap();
    assert_eq!(back.format, DatasetFormat::ImageFolder);
    assert_eq!(back.manifest.classes, original.manifest.classes);
    let labels = |m: &Manifest| {
        m.images
            .iter()
            .map(|i| {
                (
                    i.file.rsplit('/').next().unwrap().to_owned(),
                    (m.classes[i.label.unwrap()].clone(), i.split),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(labels(&back.manifest), labels(&original.manifest));

    let err = export_dir(
        &original.manifest,
        &original.root,
        DatasetFormat::Coco,
        &tmp.path().join("x"),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::ExportUnsupported {
                format: DatasetFormat::Coco,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn export_names_are_unique_by_stem() {
    let mut manifest = Manifest {
        task: datasets::TaskType::Detection,
        classes: vec!["a".into()],
        images: Vec::new(),
    };
    for file in ["a/x.jpg", "b/x.jpg", "c/x.png", "y.jpg", "Y.png"] {
        manifest.images.push(datasets::ImageEntry {
            file: file.into(),
            width: 1,
            height: 1,
            split: Split::Train,
            label: None,
            boxes: Vec::new(),
        });
    }
    let names = export_names(&manifest);
    let stems: std::collections::HashSet<String> = names
        .iter()
        .map(|n| n.rsplit_once('.').unwrap().0.to_lowercase())
        .collect();
    assert_eq!(stems.len(), names.len(), "{names:?}");
    assert_eq!(names[0], "a__x.jpg");
}
