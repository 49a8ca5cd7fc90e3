//! COCO detection datasets: `instances*.json` (`images`, `annotations` with `bbox` xywh,
//! `categories` with arbitrary ids, remapped to `0..n`), one file per split when present
//! (`annotations/instances_train.json`, Roboflow's `train/_annotations.coco.json`, …).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::BufReader;
use std::marker::PhantomData;

use domain::dataset::{BoxAnnotation, Manifest, Split, TaskType};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::DatasetFormat;
use crate::archive::Limits;
use crate::bounded;
use crate::collect::{Collector, Label, Parsed, split_from_name};
use crate::error::{DatasetError, ParseError};
use crate::images::ImageIndex;
use crate::problem::Problem;
use crate::tree::{self, Tree};

/// What the reader keeps of an annotation file. Everything is typed: nothing is held as a
/// generic JSON value, polygons are reduced to their bounds while they are read, and the
/// `images` and `annotations` arrays are capped by [`Limits::max_annotations`].
#[derive(Debug)]
pub(crate) struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Debug, Deserialize)]
struct CocoImage {
    id: Id,
    file_name: String,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct CocoAnnotation {
    image_id: Id,
    category_id: Id,
    #[serde(default)]
    bbox: Option<Bbox>,
    #[serde(default)]
    segmentation: Option<Polygons>,
}

#[derive(Debug, Deserialize)]
struct CocoCategory {
    id: Id,
    name: String,
}

/// A JSON id: a number or a string (`1` and `"1"` are the same id).
#[derive(Debug, Clone, PartialEq)]
enum Id {
    Int(i64),
    Text(Box<str>),
}

impl Id {
    /// Canonical text of the id.
    fn key(&self) -> String {
        match self {
            Id::Int(n) => n.to_string(),
            Id::Text(s) => s.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string id")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(i64::try_from(v).map_or_else(|_| Id::Text(v.to_string().into()), Id::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
                Ok(Id::Text(
                    serde_json::Number::from_f64(v)
                        .map_or_else(|| v.to_string(), |n| n.to_string())
                        .into(),
                ))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id::Text(v.into()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// A `bbox` array: its first four numbers and how many it had.
#[derive(Debug, Clone, Copy)]
struct Bbox {
    values: [f64; 4],
    len: u64,
}

impl<'de> Deserialize<'de> for Bbox {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BboxVisitor;
        impl<'de> Visitor<'de> for BboxVisitor {
            type Value = Bbox;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bbox, A::Error> {
                let mut out = Bbox {
                    values: [0.0; 4],
                    len: 0,
                };
                while let Some(v) = seq.next_element::<f64>()? {
                    if let Some(slot) = out.values.get_mut(out.len as usize) {
                        *slot = v;
                    }
                    out.len += 1;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(BboxVisitor)
    }
}

/// A `segmentation`, reduced while it is read to the bounds of its polygons' points (pairs of
/// the numbers of every polygon in order, as `x0 y0 x1 y1 …`) and their count. RLE masks and
/// anything else count as no polygon. Memory is constant whatever the polygon's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Polygons {
    /// `[x0, y0, x1, y1]` of the points seen, `None` without a point.
    bounds: Option<[f64; 4]>,
    /// Points (number pairs) seen.
    points: u64,
}

/// Folds numbers into [`Polygons`].
struct PolygonFold {
    out: Polygons,
    pending_x: Option<f64>,
}

impl PolygonFold {
    fn push(&mut self, v: f64) {
        let Some(x) = self.pending_x.take() else {
            self.pending_x = Some(v);
            return;
        };
        let y = v;
        self.out.points += 1;
        self.out.bounds = Some(match self.out.bounds {
            None => [x, y, x, y],
            Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(y), x1.max(x), y1.max(y)],
        });
    }
}

/// One polygon's numbers, folded; non-numbers are skipped.
struct PolygonSeed<'a>(&'a mut PolygonFold);

impl<'de> DeserializeSeed<'de> for PolygonSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PolygonSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a polygon")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<NumberOrSkip>()? {
            if let NumberOrSkip(Some(v)) = v {
                self.0.push(v);
            }
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A number, or `None` for any other JSON value (consumed without being kept).
struct NumberOrSkip(Option<f64>);

impl<'de> Deserialize<'de> for NumberOrSkip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = NumberOrSkip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumberOrSkip, E> {
                Ok(NumberOrSkip(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumberOrSkip, E> {
                Ok(NumberOrSkip(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumberOrSkip, E> {
                Ok(NumberOrSkip(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NumberOrSkip, E> {
                Ok(NumberOrSkip(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<NumberOrSkip, E> {
                Ok(NumberOrSkip(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<NumberOrSkip, E> {
                Ok(NumberOrSkip(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NumberOrSkip, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NumberOrSkip(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NumberOrSkip, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NumberOrSkip(None))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

impl<'de> Deserialize<'de> for Polygons {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PolygonsVisitor;
        impl<'de> Visitor<'de> for PolygonsVisitor {
            type Value = Polygons;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of polygons or an RLE mask")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Polygons, A::Error> {
                let mut fold = PolygonFold {
                    out: Polygons {
                        bounds: None,
                        points: 0,
                    },
                    pending_x: None,
                };
                while seq.next_element_seed(PolygonSeed(&mut fold))?.is_some() {}
                Ok(fold.out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Polygons, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Polygons::NONE)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Polygons, E> {
                Ok(Polygons::NONE)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Polygons, E> {
                Ok(Polygons::NONE)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Polygons, E> {
                Ok(Polygons::NONE)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Polygons, E> {
                Ok(Polygons::NONE)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Polygons, E> {
                Ok(Polygons::NONE)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Polygons, E> {
                Ok(Polygons::NONE)
            }
        }
        deserializer.deserialize_any(PolygonsVisitor)
    }
}

impl Polygons {
    const NONE: Polygons = Polygons {
        bounds: None,
        points: 0,
    };

    /// COCO `xywh` box around the points.
    fn bbox(&self) -> Option<[f64; 4]> {
        self.bounds
            .map(|[x0, y0, x1, y1]| [x0, y0, x1 - x0, y1 - y0])
    }
}

/// Set by a [`CappedSeq`] that met more than its cap: what it was counting.
type Overflow = Cell<Option<&'static str>>;

/// An array of `T` that refuses more than `cap` elements while it is read.
struct CappedSeq<'a, T> {
    cap: u64,
    what: &'static str,
    overflow: &'a Overflow,
    marker: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for CappedSeq<'_, T> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for CappedSeq<'_, T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {}", self.what)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<T>()? {
            if out.len() as u64 >= self.cap {
                self.overflow.set(Some(self.what));
                return Err(de::Error::custom(format!(
                    "more than {} {}",
                    self.cap, self.what
                )));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// The top-level object of an annotation file, with its arrays capped.
struct FileSeed<'a> {
    cap: u64,
    overflow: &'a Overflow,
}

impl<'a> FileSeed<'a> {
    fn seq<T>(&self, what: &'static str) -> CappedSeq<'a, T> {
        CappedSeq {
            cap: self.cap,
            what,
            overflow: self.overflow,
            marker: PhantomData,
        }
    }
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = CocoFile;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<CocoFile, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = CocoFile;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a COCO annotation object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CocoFile, A::Error> {
        let mut images = None;
        let mut annotations = None;
        let mut categories = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "images" => images = Some(map.next_value_seed(self.seq("images"))?),
                "annotations" => annotations = Some(map.next_value_seed(self.seq("annotations"))?),
                "categories" => categories = Some(map.next_value_seed(self.seq("categories"))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(CocoFile {
            images: images.ok_or_else(|| <A::Error as de::Error>::missing_field("images"))?,
            annotations: annotations.unwrap_or_default(),
            categories: categories.unwrap_or_default(),
        })
    }
}

/// Whether a JSON file looks like COCO instances (cheap check on its first and last 4 MiB,
/// read through a small buffer).
pub fn looks_like_coco(tree: &Tree, rel: &str) -> bool {
    bounded::sniff(
        &tree.path(rel),
        4 << 20,
        &[&[b"\"images\""], &[b"\"annotations\"", b"\"categories\""]],
    )
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

/// Parses one annotation file with bounded memory (see [`CocoFile`]).
pub(crate) fn parse_file(
    tree: &Tree,
    rel: &str,
    limits: &Limits,
) -> Result<CocoFile, DatasetError> {
    let file = bounded::open_annotation(tree, rel, limits)?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(file));
    let mut track = serde_path_to_error::Track::new();
    let overflow = Overflow::new(None);
    let seed = FileSeed {
        cap: limits.max_annotations,
        overflow: &overflow,
    };
    seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track))
        .map_err(|inner| {
            if let Some(what) = overflow.get() {
                return DatasetError::TooManyAnnotations {
                    file: rel.to_owned(),
                    what: what.to_owned(),
                    limit: limits.max_annotations,
                };
            }
            let field = track.path().to_string();
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
pub fn read(tree: &Tree, index: &ImageIndex, limits: &Limits) -> Result<Parsed, DatasetError> {
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
        let coco = parse_file(tree, rel, limits)?;
        let split = split.unwrap_or(Split::Train);

        // Categories sorted by id, merged with earlier files by name.
        let mut categories: Vec<&CocoCategory> = coco.categories.iter().collect();
        categories.sort_by(|a, b| match (&a.id, &b.id) {
            (Id::Int(x), Id::Int(y)) => x.cmp(y),
            _ => a.id.key().cmp(&b.id.key()),
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
            category_index.insert(category.id.key(), class);
        }

        let image_ids: HashMap<String, usize> = coco
            .images
            .iter()
            .enumerate()
            .map(|(i, image)| (image.id.key(), i))
            .collect();
        let mut boxes_of: BTreeMap<usize, Vec<BoxAnnotation>> = BTreeMap::new();
        for (i, annotation) in coco.annotations.iter().enumerate() {
            let Some(&image) = image_ids.get(&annotation.image_id.key()) else {
                collector.problem(Problem::MalformedAnnotation {
                    file: rel.clone(),
                    line: None,
                    field: Some(format!("annotations[{i}].image_id")),
                    reason: format!("no image with id {}", annotation.image_id.key()),
                });
                continue;
            };
            let Some(&class_id) = category_index.get(&annotation.category_id.key()) else {
                collector.problem(Problem::UnknownClass {
                    file: rel.clone(),
                    class: annotation.category_id.key(),
                });
                continue;
            };
            let bbox = match (&annotation.bbox, &annotation.segmentation) {
                (Some(b), _) if b.len == 4 => Some(b.values),
                (None, Some(polygons)) if polygons.points > limits.max_polygon_points => {
                    collector.problem(Problem::MalformedAnnotation {
                        file: rel.clone(),
                        line: None,
                        field: Some(format!("annotations[{i}].segmentation")),
                        reason: format!(
                            "polygon has {} points, more than the limit of {}",
                            polygons.points, limits.max_polygon_points
                        ),
                    });
                    continue;
                }
                (None, Some(polygons)) => polygons.bbox(),
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
