//! COCO detection datasets: `instances*.json` (`images`, `annotations` with `bbox` xywh,
//! `categories` with arbitrary ids, remapped to `0..n`), one file per split when present
//! (`annotations/instances_train.json`, Roboflow's `train/_annotations.coco.json`, …).

use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;

use domain::dataset::{BoxAnnotation, Manifest, Split, TaskType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::collect::{Collector, Label, Parsed, split_from_name};
use crate::error::{DatasetError, ParseError};
use crate::images::ImageIndex;
use crate::problem::Problem;
use crate::tree::{self, Tree};
use crate::{DatasetFormat, boxes};

#[derive(Debug, Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    #[serde(default)]
    categories: Vec<CocoCategory>,
}

#[derive(Debug, Deserialize)]
struct CocoImage {
    id: Value,
    file_name: String,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct CocoAnnotation {
    image_id: Value,
    category_id: Value,
    #[serde(default)]
    bbox: Option<Vec<f64>>,
    #[serde(default)]
    segmentation: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CocoCategory {
    id: Value,
    name: String,
}

/// Canonical text of a JSON id (`1` and `"1"` are the same id).
fn id_key(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a JSON file looks like COCO instances (cheap check on its first and last 4 MiB).
pub fn looks_like_coco(tree: &Tree, rel: &str) -> bool {
    let Ok(bytes) = std::fs::read(tree.path(rel)) else {
        return false;
    };
    let head = &bytes[..bytes.len().min(4 << 20)];
    let tail = &bytes[bytes.len().saturating_sub(4 << 20)..];
    let has = |needle: &[u8]| {
        head.windows(needle.len()).any(|w| w == needle)
            || tail.windows(needle.len()).any(|w| w == needle)
    };
    has(b"\"images\"") && (has(b"\"annotations\"") || has(b"\"categories\""))
}

/// COCO annotation files of a tree; `instances*` files win over other COCO-like files.
fn annotation_files(tree: &Tree) -> Vec<String> {
    let candidates: Vec<String> = tree
        .with_extension(&["json"])
        .filter(|f| Tree::depth(f) <= 3 && looks_like_coco(tree, f))
        .map(str::to_owned)
        .collect();
    let instances: Vec<String> = candidates
        .iter()
        .filter(|f| tree::file_name(f).to_lowercase().starts_with("instances"))
        .cloned()
        .collect();
    if instances.is_empty() {
        candidates
    } else {
        instances
    }
}

fn parse_file(tree: &Tree, rel: &str) -> Result<CocoFile, DatasetError> {
    let path = tree.path(rel);
    let file = std::fs::File::open(&path).map_err(|e| DatasetError::io(&path, e))?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(file));
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        DatasetError::Parse(ParseError {
            file: rel.to_owned(),
            line: Some(inner.line()),
            column: Some(inner.column()),
            field: (field != ".").then_some(field),
            message: inner.to_string(),
        })
    })
}

/// Reads a COCO dataset.
pub fn read(tree: &Tree, index: &ImageIndex) -> Result<Parsed, DatasetError> {
    let files = annotation_files(tree);
    if files.is_empty() {
        return Err(DatasetError::NotThisFormat {
            format: DatasetFormat::Coco,
            reason: "no COCO annotation JSON (with `images` and `annotations`) found".into(),
        });
    }
    let splits: Vec<Option<Split>> = files
        .iter()
        .map(|f| {
            split_from_name(tree::stem(f))
                .or_else(|| split_from_name(tree::file_name(tree::parent(f))))
        })
        .collect();
    let has_splits = splits.iter().any(Option::is_some);

    let mut classes: Vec<String> = Vec::new();
    let mut collector = Collector::new(index, TaskType::Detection);
    for (rel, split) in files.iter().zip(splits) {
        let coco = parse_file(tree, rel)?;
        let split = split.unwrap_or(Split::Train);

        // Categories sorted by id, merged with earlier files by name.
        let mut categories: Vec<&CocoCategory> = coco.categories.iter().collect();
        categories.sort_by(|a, b| match (a.id.as_i64(), b.id.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => id_key(&a.id).cmp(&id_key(&b.id)),
        });
        let mut category_index: HashMap<String, usize> = HashMap::new();
        for category in categories {
            let class = match classes.iter().position(|c| *c == category.name) {
                Some(i) => i,
                None => {
                    classes.push(category.name.clone());
                    classes.len() - 1
                }
            };
            category_index.insert(id_key(&category.id), class);
        }

        let image_ids: HashMap<String, usize> = coco
            .images
            .iter()
            .enumerate()
            .map(|(i, image)| (id_key(&image.id), i))
            .collect();
        let mut boxes_of: BTreeMap<usize, Vec<BoxAnnotation>> = BTreeMap::new();
        for (i, annotation) in coco.annotations.iter().enumerate() {
            let Some(&image) = image_ids.get(&id_key(&annotation.image_id)) else {
                collector.problem(Problem::MalformedAnnotation {
                    file: rel.clone(),
                    line: None,
                    field: Some(format!("annotations[{i}].image_id")),
                    reason: format!("no image with id {}", id_key(&annotation.image_id)),
                });
                continue;
            };
            let Some(&class_id) = category_index.get(&id_key(&annotation.category_id)) else {
                collector.problem(Problem::UnknownClass {
                    file: rel.clone(),
                    class: id_key(&annotation.category_id),
                });
                continue;
            };
            let bbox = match (&annotation.bbox, &annotation.segmentation) {
                (Some(b), _) if b.len() == 4 => Some([b[0], b[1], b[2], b[3]]),
                (None, Some(Value::Array(polygons))) => {
                    let points: Vec<f64> = polygons
                        .iter()
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter_map(Value::as_f64)
                        .collect();
                    boxes::polygon_bounds(&points)
                }
                _ => None,
            };
            let Some(bbox) = bbox else {
                collector.problem(Problem::MalformedAnnotation {
                    file: rel.clone(),
                    line: None,
                    field: Some(format!("annotations[{i}].bbox")),
                    reason: "bbox must be [x, y, width, height]".into(),
                });
                continue;
            };
            boxes_of
                .entry(image)
                .or_default()
                .push(BoxAnnotation { class_id, bbox });
        }

        let json_dir = tree::parent(rel);
        let base = tree::parent(json_dir);
        let split_word = tree::stem(rel)
            .rsplit(['_', '.'])
            .find(|w| split_from_name(w).is_some())
            .unwrap_or("");
        let image_dirs = [
            json_dir.to_owned(),
            base.to_owned(),
            tree::join(base, "images"),
            tree::join(&tree::join(base, "images"), split_word),
            tree::join(base, split_word),
            String::new(),
            "images".to_owned(),
        ];
        let dirs: Vec<&str> = image_dirs.iter().map(String::as_str).collect();
        for (i, image) in coco.images.iter().enumerate() {
            let Some(found) = index.resolve(&image.file_name, &dirs) else {
                collector.problem(Problem::MissingImage {
                    file: image.file_name.clone(),
                    referenced_by: rel.clone(),
                });
                continue;
            };
            let declared = image.width.zip(image.height);
            let boxes = boxes_of.remove(&i).unwrap_or_default();
            collector.add(&found, split, Label::Boxes(boxes), declared);
        }
    }
    Ok(collector.finish(classes, has_splits))
}

#[derive(Debug, Serialize)]
struct OutFile<'a> {
    info: OutInfo,
    images: Vec<OutImage<'a>>,
    annotations: Vec<OutAnnotation>,
    categories: Vec<OutCategory<'a>>,
}

#[derive(Debug, Serialize)]
struct OutInfo {
    description: &'static str,
}

#[derive(Debug, Serialize)]
struct OutImage<'a> {
    id: usize,
    file_name: &'a str,
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize)]
struct OutAnnotation {
    id: usize,
    image_id: usize,
    category_id: usize,
    bbox: [f64; 4],
    area: f64,
    iscrowd: u8,
    segmentation: Vec<Vec<f64>>,
}

#[derive(Debug, Serialize)]
struct OutCategory<'a> {
    id: usize,
    name: &'a str,
    supercategory: &'a str,
}

/// COCO instances JSON of the images of one split; `names[i]` is the file name written for
/// `manifest.images[i]` (relative to the images folder). Category ids are `1..=n`.
pub fn to_json(
    manifest: &Manifest,
    split: Split,
    names: &[String],
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = OutFile {
        info: OutInfo {
            description: "exported by vision-platform",
        },
        images: Vec::new(),
        annotations: Vec::new(),
        categories: manifest
            .classes
            .iter()
            .enumerate()
            .map(|(i, name)| OutCategory {
                id: i + 1,
                name,
                supercategory: "none",
            })
            .collect(),
    };
    for (i, (image, name)) in manifest.images.iter().zip(names).enumerate() {
        if image.split != split {
            continue;
        }
        out.images.push(OutImage {
            id: i + 1,
            file_name: name,
            width: image.width,
            height: image.height,
        });
        for b in &image.boxes {
            let id = out.annotations.len() + 1;
            out.annotations.push(OutAnnotation {
                id,
                image_id: i + 1,
                category_id: b.class_id + 1,
                bbox: b.bbox,
                area: b.bbox[2] * b.bbox[3],
                iscrowd: 0,
                segmentation: Vec::new(),
            });
        }
    }
    serde_json::to_vec_pretty(&out)
}
