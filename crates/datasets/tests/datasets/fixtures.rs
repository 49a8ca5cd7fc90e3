//! Builders of small real datasets (generated images with known boxes) and of archives.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use datasets::{Manifest, Split, TaskType, boxes};
use serde_json::json;

/// Class names of the generated detection datasets (Korean on purpose).
pub const CLASSES: [&str; 3] = ["고양이", "dog", "새"];

/// One generated image with its boxes (class index into [`CLASSES`], COCO xywh pixels).
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub split: Split,
    pub boxes: Vec<(usize, [f64; 4])>,
}

/// `n` samples with varied sizes, fractional boxes and a train/val/test assignment.
pub fn samples(n: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let width = 64 + (i as u32 % 3) * 16;
            let height = 48 + (i as u32 % 2) * 16;
            let split = match i % 10 {
                0 | 1 => Split::Val,
                2 => Split::Test,
                _ => Split::Train,
            };
            let mut boxes = vec![(i % 3, [2.5 + (i % 5) as f64, 3.25, 20.5, 15.75])];
            if i % 2 == 0 {
                boxes.push(((i + 1) % 3, [30.125, 20.0, 12.0, 9.5]));
            }
            Sample {
                name: format!("img_{i:03}.jpg"),
                width,
                height,
                split,
                boxes,
            }
        })
        .collect()
}

/// A JPEG whose pixels depend on `seed` (distinct seeds → distinct content).
pub fn jpeg(width: u32, height: u32, seed: usize) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let v = (seed as u32).wrapping_mul(2_654_435_761);
        image::Rgb([
            ((x * 3 + v) % 256) as u8,
            ((y * 5 + (v >> 8)) % 256) as u8,
            ((x ^ y) + (v >> 16) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// A PNG of the given size.
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([seed, 100, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Val => "val",
        Split::Test => "test",
    }
}

/// COCO: `annotations/instances_{split}.json` + `images/{split}/…`, categories with the given ids.
pub fn write_coco(dir: &Path, samples: &[Sample], category_ids: [u64; 3]) {
    for split in [Split::Train, Split::Val, Split::Test] {
        let mut images = Vec::new();
        let mut annotations = Vec::new();
        for (i, s) in samples.iter().enumerate().filter(|(_, s)| s.split == split) {
            write(
                &dir.join(format!("images/{}/{}", split_name(split), s.name)),
                jpeg(s.width, s.height, i),
            );
            images.push(json!({"id": i * 10 + 1, "file_name": s.name, "width": s.width, "height": s.height}));
            for (k, (class, bbox)) in s.boxes.iter().enumerate() {
                annotations.push(json!({
                    "id": i * 100 + k, "image_id": i * 10 + 1, "category_id": category_ids[*class],
                    "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0
                }));
            }
        }
        // Categories deliberately out of id order.
        let categories: Vec<_> = [2usize, 0, 1]
            .iter()
            .map(|&c| json!({"id": category_ids[c], "name": CLASSES[c], "supercategory": "animal"}))
            .collect();
        let doc = json!({"images": images, "annotations": annotations, "categories": categories});
        write(
            &dir.join(format!("annotations/instances_{}.json", split_name(split))),
            serde_json::to_vec(&doc).unwrap(),
        );
    }
}

/// YOLO: `images/{split}` + `labels/{split}` + `data.yaml` (names as a map or a list).
pub fn write_yolo(dir: &Path, samples: &[Sample], names_as_map: bool) {
    for (i, s) in samples.iter().enumerate() {
        let split = split_name(s.split);
        write(
            &dir.join(format!("images/{split}/{}", s.name)),
            jpeg(s.width, s.height, i),
        );
        let mut label = String::new();
        for (class, bbox) in &s.boxes {
            let [cx, cy, w, h] = boxes::coco_to_yolo(*bbox, s.width, s.height);
            label.push_str(&format!("{class} {cx} {cy} {w} {h}\n"));
        }
        write(
            &dir.join(format!(
                "labels/{split}/{}.txt",
                s.name.trim_end_matches(".jpg")
            )),
            label,
        );
    }
    let names = if names_as_map {
        format!(
            "names:\n  0: {}\n  1: {}\n  2: {}\n",
            CLASSES[0], CLASSES[1], CLASSES[2]
        )
    } else {
        format!(
            "names: ['{}', '{}', '{}']\nnc: 3\n",
            CLASSES[0], CLASSES[1], CLASSES[2]
        )
    };
    write(
        &dir.join("data.yaml"),
        format!("path: .\ntrain: images/train\nval: images/val\ntest: images/test\n{names}"),
    );
}

/// Pascal VOC: `JPEGImages` + `Annotations` + `ImageSets/Main/{split}.txt`.
pub fn write_voc(dir: &Path, samples: &[Sample]) {
    let mut lists: BTreeMap<&str, String> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        write(
            &dir.join(format!("JPEGImages/{}", s.name)),
            jpeg(s.width, s.height, i),
        );
        let stem = s.name.trim_end_matches(".jpg");
        let mut xml = format!(
            "<?xml version=\"1.0\"?>\n<annotation>\n<folder>JPEGImages</folder>\n<filename>{}</filename>\n<size><width>{}</width><height>{}</height><depth>3</depth></size>\n",
            s.name, s.width, s.height
        );
        for (class, bbox) in &s.boxes {
            let [x0, y0, x1, y1] = boxes::coco_to_voc(*bbox);
            xml.push_str(&format!(
                "<object><name>{}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>\n",
                CLASSES[*class]
            ));
        }
        xml.push_str("</annotation>\n");
        write(&dir.join(format!("Annotations/{stem}.xml")), xml);
        let list = lists.entry(split_name(s.split)).or_default();
        list.push_str(stem);
        list.push('\n');
    }
    for (split, list) in lists {
        write(&dir.join(format!("ImageSets/Main/{split}.txt")), list);
    }
}

/// ImageFolder: `counts[c]` images of class `names[c]`, under `train/`/`val/` when `with_splits`.
pub fn write_imagefolder(dir: &Path, names: &[&str], counts: &[usize], with_splits: bool) {
    let mut seed = 1000;
    for (class, (&name, &count)) in names.iter().zip(counts).enumerate() {
        for i in 0..count {
            seed += 1;
            let prefix = match (with_splits, i % 5) {
                (false, _) => String::new(),
                (true, 0) => "val/".to_owned(),
                (true, _) => "train/".to_owned(),
            };
            write(
                &dir.join(format!("{prefix}{name}/c{class}_{i:03}.png")),
                png(16 + (i as u32 % 4), 12, (seed % 256) as u8),
            );
            if seed % 256 == 0 {
                seed += 1;
            }
        }
    }
}

/// Zips `src` under `prefix/` (empty: at the root).
pub fn zip_dir(src: &Path, dst: &Path, prefix: &str) {
    let mut zip = zip::ZipWriter::new(fs::File::create(dst).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let name = if prefix.is_empty() {
            rel
        } else {
            format!("{prefix}/{rel}")
        };
        zip.start_file(name, options).unwrap();
        zip.write_all(&fs::read(entry.path()).unwrap()).unwrap();
    }
    zip.finish().unwrap();
}

/// Tars `src` (gzip-compressed when `gz`).
pub fn tar_dir(src: &Path, dst: &Path, gz: bool) {
    let file = fs::File::create(dst).unwrap();
    let writer: Box<dyn Write> = if gz {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(file)
    };
    let mut builder = tar::Builder::new(writer);
    builder.append_dir_all("dataset", src).unwrap();
    builder.into_inner().unwrap().flush().unwrap();
}

/// Boxes per image file name: `(class name, bbox)` sorted, for comparisons across formats.
pub fn boxes_by_name(manifest: &Manifest) -> BTreeMap<String, Vec<(String, [f64; 4])>> {
    manifest
        .images
        .iter()
        .map(|image| {
            let name = image.file.rsplit('/').next().unwrap().to_owned();
            let mut boxes: Vec<(String, [f64; 4])> = image
                .boxes
                .iter()
                .map(|b| (manifest.classes[b.class_id].clone(), b.bbox))
                .collect();
            boxes.sort_by(|a, b| a.0.cmp(&b.0).then(a.1[0].total_cmp(&b.1[0])));
            (name, boxes)
        })
        .collect()
}

/// Expected boxes of generated samples, in the shape of [`boxes_by_name`].
pub fn expected_boxes(samples: &[Sample]) -> BTreeMap<String, Vec<(String, [f64; 4])>> {
    samples
        .iter()
        .map(|s| {
            let mut boxes: Vec<(String, [f64; 4])> = s
                .boxes
                .iter()
                .map(|(c, b)| (CLASSES[*c].to_owned(), *b))
                .collect();
            boxes.sort_by(|a, b| a.0.cmp(&b.0).then(a.1[0].total_cmp(&b.1[0])));
            (s.name.clone(), boxes)
        })
        .collect()
}

/// Asserts two box maps agree: same files, same classes, boxes within 1e-6 relative.
pub fn assert_same_boxes(
    actual: &BTreeMap<String, Vec<(String, [f64; 4])>>,
    expected: &BTreeMap<String, Vec<(String, [f64; 4])>>,
) {
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, want) in expected {
        let got = &actual[name];
        assert_eq!(got.len(), want.len(), "{name}: {got:?} vs {want:?}");
        for ((gc, gb), (wc, wb)) in got.iter().zip(want) {
            assert_eq!(gc, wc, "{name}");
            assert!(boxes::approx_eq(*gb, *wb, 1e-6), "{name}: {gb:?} vs {wb:?}");
        }
    }
}

/// Detection manifest task check.
pub fn assert_detection(manifest: &Manifest) {
    assert_eq!(manifest.task, TaskType::Detection);
}
