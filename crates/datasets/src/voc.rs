//! Pascal VOC detection datasets: `Annotations/*.xml` (one per image, `object/name` +
//! `object/bndbox` xyxy in pixels), images in `JPEGImages/`, splits in
//! `ImageSets/Main/{train,val,test}.txt`. An optional `labels.txt` fixes the class order.

use std::collections::{BTreeSet, HashMap};

use domain::dataset::{BoxAnnotation, ImageEntry, Split, TaskType};
use quick_xml::events::Event;

use crate::archive::Limits;
use crate::bounded;
use crate::collect::{Collector, Label, Parsed};
use crate::error::{DatasetError, ParseError};
use crate::images::ImageIndex;
use crate::problem::Problem;
use crate::tree::{self, Tree};
use crate::{DatasetFormat, boxes};

/// One object of an annotation file.
#[derive(Debug, Clone, Default)]
struct Object {
    name: Option<String>,
    coords: [Option<f64>; 4],
    line: usize,
}

/// What one annotation XML holds.
#[derive(Debug, Clone, Default)]
struct VocAnnotation {
    filename: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    objects: Vec<Object>,
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Line numbers of increasing offsets, counted incrementally (a rescan from the start for every
/// element would be quadratic in the file's size).
struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            return line_col(self.text, offset).0;
        }
        let newlines = self.text.as_bytes()[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines;
        self.offset = offset;
        self.line
    }
}

fn parse_xml(
    rel: &str,
    text: &str,
    max_objects: u64,
    problems: &mut Vec<Problem>,
) -> Result<VocAnnotation, DatasetError> {
    let mut lines = LineCounter {
        text,
        offset: 0,
        line: 1,
    };
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut buffer = String::new();
    let mut out = VocAnnotation::default();
    let mut current: Option<Object> = None;
    let error_at = |offset: u64, message: String| {
        let (line, column) = line_col(text, offset as usize);
        ParseError {
            file: rel.to_owned(),
            line: Some(line),
            column: Some(column),
            field: None,
            message,
        }
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| error_at(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).to_lowercase();
                stack.push(name);
                buffer.clear();
                if stack == ["annotation", "object"] {
                    let line = lines.line_at(reader.buffer_position() as usize);
                    current = Some(Object {
                        line,
                        ..Object::default()
                    });
                }
            }
            Event::Text(t) => {
                let decoded = t
                    .decode()
                    .map_err(|e| error_at(reader.buffer_position(), e.to_string()))?;
                buffer.push_str(&decoded);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r
                            .decode()
                            .map_err(|e| error_at(reader.buffer_position(), e.to_string()))?;
                        quick_xml::escape::unescape(&format!("&{name};"))
                            .map_err(|e| error_at(reader.buffer_position(), e.to_string()))?
                            .into_owned()
                    }
                    Err(e) => return Err(error_at(reader.buffer_position(), e.to_string()).into()),
                };
                buffer.push_str(&resolved);
            }
            Event::CData(c) => buffer.push_str(&String::from_utf8_lossy(&c)),
            Event::End(_) => {
                let path: Vec<&str> = stack.iter().map(String::as_str).collect();
                let value = buffer.trim().to_owned();
                let line = lines.line_at(reader.buffer_position() as usize);
                let number = |field: &str, problems: &mut Vec<Problem>| match value.parse::<f64>() {
                    Ok(v) if v.is_finite() => Some(v),
                    _ => {
                        problems.push(Problem::MalformedAnnotation {
                            file: rel.to_owned(),
                            line: Some(line),
                            field: Some(field.to_owned()),
                            reason: format!("`{value}` is not a number"),
                        });
                        None
                    }
                };
                match path.as_slice() {
                    ["annotation", "filename"] => out.filename = Some(value.clone()),
                    ["annotation", "size", dim @ ("width" | "height")] => {
                        let v = number(&format!("size.{dim}"), problems).map(|v| v as u32);
                        if *dim == "width" {
                            out.width = v;
                        } else {
                            out.height = v;
                        }
                    }
                    ["annotation", "object", "name"] => {
                        if let Some(object) = current.as_mut() {
                            object.name = Some(value.clone());
                        }
                    }
                    [
                        "annotation",
                        "object",
                        "bndbox",
                        coord @ ("xmin" | "ymin" | "xmax" | "ymax"),
                    ] => {
                        let slot = match *coord {
                            "xmin" => 0,
                            "ymin" => 1,
                            "xmax" => 2,
                            _ => 3,
                        };
                        let v = number(&format!("object.bndbox.{coord}"), problems);
                        if let Some(object) = current.as_mut() {
                            object.coords[slot] = v;
                        }
                    }
                    ["annotation", "object"] => {
                        if let Some(object) = current.take() {
                            if out.objects.len() as u64 >= max_objects {
                                return Err(DatasetError::TooManyAnnotations {
                                    file: rel.to_owned(),
                                    what: "objects".into(),
                                    limit: max_objects,
                                });
                            }
                            out.objects.push(object);
                        }
                    }
                    _ => {}
                }
                stack.pop();
                buffer.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(error_at(
            text.len() as u64,
            format!("unclosed element <{open}> at end of file"),
        )
        .into());
    }
    if text.trim().is_empty() {
        return Err(error_at(0, "empty annotation file".into()).into());
    }
    Ok(out)
}

/// `Annotations` folders of a tree (relative paths).
fn annotation_dirs(tree: &Tree) -> Vec<String> {
    let dirs: BTreeSet<String> = tree
        .with_extension(&["xml"])
        .map(tree::parent)
        .filter(|d| tree::file_name(d).eq_ignore_ascii_case("annotations"))
        .map(str::to_owned)
        .collect();
    dirs.into_iter().collect()
}

/// Whether the tree has an `Annotations/` folder of XML files.
pub fn looks_like_voc(tree: &Tree) -> bool {
    !annotation_dirs(tree).is_empty()
}

fn read_lines(
    tree: &Tree,
    rel: &str,
    limits: &Limits,
) -> Result<Option<Vec<String>>, DatasetError> {
    if tree.files.binary_search(&rel.to_owned()).is_err() {
        return Ok(None);
    }
    let text = bounded::read_text(tree, rel, limits)?;
    Ok(Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect(),
    ))
}

/// Reads a Pascal VOC dataset.
pub fn read(tree: &Tree, index: &ImageIndex, limits: &Limits) -> Result<Parsed, DatasetError> {
    let dirs = annotation_dirs(tree);
    if dirs.is_empty() {
        return Err(DatasetError::NotThisFormat {
            format: DatasetFormat::Voc,
            reason: "no Annotations/ folder with XML files found".into(),
        });
    }
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    let mut declared_classes: Option<Vec<String>> = None;
    let mut split_of: HashMap<(String, String), Split> = HashMap::new();
    let mut has_splits = false;
    for dir in &dirs {
        let voc_root = tree::parent(dir).to_owned();
        for name in ["labels.txt", "classes.txt"] {
            if declared_classes.is_none() {
                declared_classes = read_lines(tree, &tree::join(&voc_root, name), limits)?;
            }
        }
        for (file, split) in [
            ("train.txt", Split::Train),
            ("val.txt", Split::Val),
            ("test.txt", Split::Test),
        ] {
            if let Some(stems) = read_lines(
                tree,
                &tree::join(&voc_root, &format!("ImageSets/Main/{file}")),
                limits,
            )? {
                has_splits = true;
                for stem in stems {
                    split_of.entry((voc_root.clone(), stem)).or_insert(split);
                }
            }
        }
        let prefix = format!("{dir}/");
        for rel in tree
            .with_extension(&["xml"])
            .filter(|f| f.starts_with(&prefix) && !f[prefix.len()..].contains('/'))
        {
            let bytes = bounded::read_bytes(tree, rel, limits)?;
            let text = String::from_utf8(bytes).map_err(|e| ParseError {
                file: rel.to_owned(),
                line: None,
                column: None,
                field: None,
                message: format!("not UTF-8: {e}"),
            })?;
            let annotation = parse_xml(rel, &text, limits.max_annotations, &mut problems)?;
            parsed.push((voc_root.clone(), rel.to_owned(), annotation));
        }
    }
    let classes: Vec<String> = match declared_classes {
        Some(classes) => classes,
        None => parsed
            .iter()
            .flat_map(|(_, _, a)| a.objects.iter().filter_map(|o| o.name.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let class_index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();

    let mut collector = Collector::new(index, TaskType::Detection);
    for problem in problems {
        collector.problem(problem);
    }
    for (voc_root, rel, annotation) in parsed {
        let xml_stem = tree::stem(&rel).to_owned();
        let jpeg_dir = tree::join(&voc_root, "JPEGImages");
        let images_dir = tree::join(&voc_root, "images");
        let found = match &annotation.filename {
            Some(name) => index.resolve(name, &[&jpeg_dir, &images_dir, &voc_root]),
            None => None,
        }
        .or_else(|| {
            let mut by_stem = index
                .by_stem(&xml_stem)
                .iter()
                .filter(|f| f.starts_with(&format!("{jpeg_dir}/")) || voc_root.is_empty());
            match (by_stem.next(), by_stem.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => None,
            }
        });
        let Some(found) = found else {
            collector.problem(Problem::MissingImage {
                file: annotation
                    .filename
                    .clone()
                    .unwrap_or_else(|| format!("{xml_stem}.jpg")),
                referenced_by: rel.clone(),
            });
            continue;
        };
        let mut boxes = Vec::new();
        for object in &annotation.objects {
            let Some(name) = &object.name else {
                collector.problem(Problem::MalformedAnnotation {
                    file: rel.clone(),
                    line: Some(object.line),
                    field: Some("object.name".into()),
                    reason: "object without a name".into(),
                });
                continue;
            };
            let Some(&class_id) = class_index.get(name.as_str()) else {
                collector.problem(Problem::UnknownClass {
                    file: rel.clone(),
                    class: name.clone(),
                });
                continue;
            };
            let [Some(x0), Some(y0), Some(x1), Some(y1)] = object.coords else {
                collector.problem(Problem::MalformedAnnotation {
                    file: rel.clone(),
                    line: Some(object.line),
                    field: Some("object.bndbox".into()),
                    reason: "object without a complete bndbox".into(),
                });
                continue;
            };
            boxes.push(BoxAnnotation {
                class_id,
                bbox: boxes::voc_to_coco([x0, y0, x1, y1]),
            });
        }
        let split = split_of
            .get(&(voc_root.clone(), xml_stem.clone()))
            .copied()
            .unwrap_or(Split::Train);
        collector.add(
            &found,
            split,
            Label::Boxes(boxes),
            annotation.width.zip(annotation.height),
        );
    }
    Ok(collector.finish(classes, has_splits))
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// VOC annotation XML of one image, written as `name` in `JPEGImages/`.
pub fn annotation_xml(image: &ImageEntry, name: &str, classes: &[String]) -> String {
    let mut out = format!(
        "<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{}</filename>\n  <size>\n    <width>{}</width>\n    <height>{}</height>\n    <depth>3</depth>\n  </size>\n  <segmented>0</segmented>\n",
        escape(name),
        image.width,
        image.height
    );
    for b in &image.boxes {
        let [x0, y0, x1, y1] = boxes::coco_to_voc(b.bbox);
        let class = classes
            .get(b.class_id)
            .map(String::as_str)
            .unwrap_or("unknown");
        out.push_str(&format!(
            "  <object>\n    <name>{}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n    <difficult>0</difficult>\n    <bndbox>\n      <xmin>{x0}</xmin>\n      <ymin>{y0}</ymin>\n      <xmax>{x1}</xmax>\n      <ymax>{y1}</ymax>\n    </bndbox>\n  </object>\n",
            escape(class)
        ));
    }
    out.push_str("</annotation>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_and_reports_positions() {
        let xml = "<annotation><filename>a&amp;b.jpg</filename><size><width>10</width><height>20</height></size>\n<object><name>고양이</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3.5</xmax><ymax>4</ymax></bndbox></object></annotation>";
        let mut problems = Vec::new();
        let a = parse_xml("x.xml", xml, 10, &mut problems).unwrap();
        assert_eq!(a.filename.as_deref(), Some("a&b.jpg"));
        assert_eq!((a.width, a.height), (Some(10), Some(20)));
        assert_eq!(a.objects.len(), 1);
        assert_eq!(a.objects[0].name.as_deref(), Some("고양이"));
        assert_eq!(
            a.objects[0].coords,
            [Some(1.0), Some(2.0), Some(3.5), Some(4.0)]
        );
        assert!(problems.is_empty());

        let broken = "<annotation>\n<object><name>a</name></objec>\n</annotation>";
        let err = parse_xml("y.xml", broken, 10, &mut problems).unwrap_err();
        let DatasetError::Parse(err) = err else {
            panic!("{err}");
        };
        assert_eq!(err.file, "y.xml");
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn objects_beyond_the_limit_refuse_the_file() {
        let object = "<object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>\n";
        let xml = format!("<annotation>{}</annotation>", object.repeat(4));
        let mut problems = Vec::new();
        assert_eq!(
            parse_xml("x.xml", &xml, 4, &mut problems)
                .unwrap()
                .objects
                .len(),
            4
        );
        let err = parse_xml("x.xml", &xml, 3, &mut problems).unwrap_err();
        assert!(
            matches!(&err, DatasetError::TooManyAnnotations { limit: 3, .. }),
            "{err}"
        );
        // Line numbers are still right with the incremental counter.
        let a = parse_xml("x.xml", &xml, 4, &mut problems).unwrap();
        assert_eq!(
            a.objects.iter().map(|o| o.line).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }
}
