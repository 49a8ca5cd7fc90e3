//! YOLO (Ultralytics / Darknet) detection datasets: `data.yaml` with `names` (list or map) and
//! `train`/`val`/`test` (folders, lists of folders or `.txt` image lists), labels in
//! `labels/**.txt` beside `images/**`, one `class cx cy w h` line per box (normalised), or
//! `class x1 y1 x2 y2 …` polygons (segmentation labels, read as their bounding box).

use std::collections::BTreeMap;

use domain::dataset::{Manifest, Split, TaskType};
use serde_norway::Value;

use crate::archive::Limits;
use crate::bounded::{self, Line, Lines};
use crate::collect::{Collector, Label, Parsed, split_from_name};
use crate::error::{DatasetError, ParseError};
use crate::images::ImageIndex;
use crate::problem::Problem;
use crate::tree::{self, Tree};
use crate::{DatasetFormat, boxes};

/// The parts of `data.yaml` the reader uses.
#[derive(Debug, Clone, Default)]
struct DataYaml {
    file: String,
    names: Vec<String>,
    base: String,
    splits: Vec<(Split, Vec<String>)>,
}

fn yaml_error(file: &str, field: &str, message: &str) -> DatasetError {
    DatasetError::Parse(ParseError {
        file: file.to_owned(),
        line: None,
        column: None,
        field: Some(field.to_owned()),
        message: message.to_owned(),
    })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_yaml(tree: &Tree, rel: &str, limits: &Limits) -> Result<Option<DataYaml>, DatasetError> {
    let text = bounded::read_text(tree, rel, limits)?;
    let value: Value = serde_norway::from_str(&text).map_err(|e| {
        let location = e.location();
        DatasetError::Parse(ParseError {
            file: rel.to_owned(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            field: None,
            message: e.to_string(),
        })
    })?;
    let Some(map) = value.as_mapping() else {
        return Ok(None);
    };
    let Some(names_value) = map.get("names") else {
        return Ok(None);
    };
    let names = match names_value {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                scalar_text(v).ok_or_else(|| {
                    yaml_error(rel, &format!("names[{i}]"), "class name must be a string")
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Mapping(entries) => {
            let mut by_id = BTreeMap::new();
            for (k, v) in entries {
                let id = match k {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    yaml_error(rel, "names", "class ids must be non-negative integers")
                })?;
                let name = scalar_text(v).ok_or_else(|| {
                    yaml_error(rel, &format!("names.{id}"), "class name must be a string")
                })?;
                by_id.insert(id, name);
            }
            let mut names = Vec::new();
            for (expected, (id, name)) in by_id.into_iter().enumerate() {
                if id != expected as u64 {
                    return Err(yaml_error(
                        rel,
                        &format!("names.{id}"),
                        "class ids must be 0..n without gaps",
                    ));
                }
                names.push(name);
            }
            names
        }
        _ => {
            return Err(yaml_error(
                rel,
                "names",
                "`names` must be a list or a map of id: name",
            ));
        }
    };
    if let Some(nc) = map.get("nc").and_then(Value::as_u64)
        && nc as usize != names.len()
    {
        return Err(yaml_error(
            rel,
            "nc",
            &format!("nc is {nc} but `names` has {} entries", names.len()),
        ));
    }
    let yaml_dir = tree::parent(rel).to_owned();
    let base = match map.get("path").and_then(Value::as_str) {
        Some(p) if !p.starts_with('/') && !p.contains(':') => {
            normalise(&yaml_dir, p).unwrap_or(yaml_dir.clone())
        }
        _ => yaml_dir.clone(),
    };
    let mut splits = Vec::new();
    for (key, split) in [
        ("train", Split::Train),
        ("val", Split::Val),
        ("test", Split::Test),
    ] {
        let paths = match map.get(key) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Sequence(items)) => items.iter().filter_map(scalar_text).collect(),
            Some(Value::Null) | None => continue,
            Some(_) => return Err(yaml_error(rel, key, "must be a path or a list of paths")),
        };
        splits.push((split, paths));
    }
    Ok(Some(DataYaml {
        file: rel.to_owned(),
        names,
        base,
        splits,
    }))
}

/// Joins `rel` onto `base` (both relative to the root), resolving `.` and `..`; `None` if the result
/// would leave the root.
fn normalise(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Where a `data.yaml` split path points inside the tree: a folder or a `.txt` list.
enum SplitSource {
    Dir(String),
    List(String),
}

fn locate(tree: &Tree, config: &DataYaml, path: &str) -> Option<SplitSource> {
    let yaml_dir = tree::parent(&config.file);
    let stripped: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    let mut candidates: Vec<String> = [normalise(&config.base, path), normalise(yaml_dir, path)]
        .into_iter()
        .flatten()
        .collect();
    // Absolute or `../`-prefixed paths from another machine: try ever shorter tails of them.
    for start in 0..stripped.len() {
        candidates.push(tree::join(yaml_dir, &stripped[start..].join("/")));
        candidates.push(stripped[start..].join("/"));
    }
    for candidate in candidates {
        if candidate.to_lowercase().ends_with(".txt")
            && tree.files.binary_search(&candidate).is_ok()
        {
            return Some(SplitSource::List(candidate));
        }
        let prefix = format!("{candidate}/");
        if !candidate.is_empty() && tree.files.iter().any(|f| f.starts_with(&prefix)) {
            return Some(SplitSource::Dir(candidate));
        }
    }
    None
}

fn find_config(tree: &Tree, limits: &Limits) -> Result<Option<DataYaml>, DatasetError> {
    let mut yamls: Vec<&str> = tree
        .with_extension(&["yaml", "yml"])
        .filter(|f| Tree::depth(f) <= 1)
        .collect();
    yamls.sort_by_key(|f| {
        let name = tree::file_name(f).to_lowercase();
        (
            !(name == "data.yaml" || name == "dataset.yaml" || name == "data.yml"),
            Tree::depth(f),
        )
    });
    let single = yamls.len() == 1;
    for (i, rel) in yamls.iter().enumerate() {
        match parse_yaml(tree, rel, limits) {
            Ok(Some(config)) => return Ok(Some(config)),
            Ok(None) => {}
            // The main configuration must parse; stray YAML files elsewhere may be anything.
            Err(err) if single || i == 0 => return Err(err),
            Err(_) => {}
        }
    }
    Ok(None)
}

/// Whether the tree has a YOLO configuration or a `labels/` folder of text files.
pub fn looks_like_yolo(tree: &Tree) -> bool {
    let has_config = tree
        .with_extension(&["yaml", "yml"])
        .any(|f| Tree::depth(f) <= 1 && bounded::sniff(&tree.path(f), 1 << 20, &[&[b"names"]]));
    has_config
        || tree
            .with_extension(&["txt"])
            .any(|f| f.split('/').any(|p| p == "labels"))
}

/// Label file of an image: `…/images/…/x.jpg` → `…/labels/…/x.txt`, else `x.txt` beside it.
fn label_candidates(image: &str) -> Vec<String> {
    let parts: Vec<&str> = image.split('/').collect();
    let mut out = Vec::new();
    let stem_txt = format!("{}.txt", tree::stem(image));
    if let Some(pos) = parts.iter().rposition(|p| *p == "images") {
        let mut swapped: Vec<&str> = parts.clone();
        swapped[pos] = "labels";
        swapped.pop();
        out.push(tree::join(&swapped.join("/"), &stem_txt));
    }
    out.push(tree::join(tree::parent(image), &stem_txt));
    out
}

/// At most this many characters of a bad line are quoted in a problem.
const QUOTE_CHARS: usize = 80;

fn quote(line: &str) -> String {
    let mut out: String = line.chars().take(QUOTE_CHARS).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// Reads one label file line by line; memory is bounded by the longest line allowed, never by the
/// file. Polygon lines are folded into their box while they are read.
fn read_labels(
    tree: &Tree,
    rel: &str,
    classes: usize,
    limits: &Limits,
    collector: &mut Collector<'_>,
) -> Result<Vec<(usize, [f64; 4])>, DatasetError> {
    let path = tree.path(rel);
    let mut lines = Lines::open(tree, rel, bounded::max_label_line(limits))?;
    let mut out = Vec::new();
    let mut line_no = 0usize;
    let mut counted = 0u64;
    while let Some(line) = lines.next_line().map_err(|e| DatasetError::io(&path, e))? {
        line_no += 1;
        let malformed = |reason: String| Problem::MalformedAnnotation {
            file: rel.to_owned(),
            line: Some(line_no),
            field: None,
            reason,
        };
        let line = match line {
            Line::Text(text) => text,
            Line::TooLong => {
                collector.problem(malformed(format!(
                    "line longer than {} bytes (more than {} polygon points)",
                    bounded::max_label_line(limits),
                    limits.max_polygon_points
                )));
                continue;
            }
        };
        let mut tokens = line.split_whitespace();
        let Some(first) = tokens.next() else {
            continue;
        };
        counted += 1;
        if counted > limits.max_annotations {
            return Err(DatasetError::TooManyAnnotations {
                file: rel.to_owned(),
                what: "label lines".into(),
                limit: limits.max_annotations,
            });
        }
        let Ok(class) = first.parse::<f64>() else {
            collector.problem(malformed(format!("not a number in `{}`", quote(&line))));
            continue;
        };
        // The other numbers: the first four kept, all folded into polygon bounds.
        let mut count = 1usize;
        let mut head = [0.0f64; 4];
        let mut bounds: Option<[f64; 4]> = None;
        let mut pending_x: Option<f64> = None;
        let mut not_a_number = false;
        for token in tokens {
            let Ok(v) = token.parse::<f64>() else {
                not_a_number = true;
                break;
            };
            if let Some(slot) = head.get_mut(count - 1) {
                *slot = v;
            }
            count += 1;
            match pending_x.take() {
                None => pending_x = Some(v),
                Some(x) => {
                    bounds = Some(match bounds {
                        None => [x, v, x, v],
                        Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(v), x1.max(x), y1.max(v)],
                    });
                }
            }
        }
        if not_a_number {
            collector.problem(malformed(format!("not a number in `{}`", quote(&line))));
            continue;
        }
        if class < 0.0 || class.fract() != 0.0 {
            collector.problem(malformed(format!(
                "class id `{first}` is not a non-negative integer"
            )));
            continue;
        }
        let points = (count as u64 - 1) / 2;
        if count >= 7 && points > limits.max_polygon_points {
            collector.problem(malformed(format!(
                "polygon has {points} points, more than the limit of {}",
                limits.max_polygon_points
            )));
            continue;
        }
        let bbox = match count {
            5 => Some(head),
            n if n >= 7 && n % 2 == 1 => bounds.map(|[x0, y0, x1, y1]| {
                let (w, h) = (x1 - x0, y1 - y0);
                [x0 + w / 2.0, y0 + h / 2.0, w, h]
            }),
            _ => None,
        };
        let Some(bbox) = bbox.filter(|b| b.iter().all(|v| v.is_finite())) else {
            collector.problem(malformed(format!(
                "expected `class cx cy w h` or a polygon, got {count} values"
            )));
            continue;
        };
        let class = class as usize;
        if class >= classes {
            collector.problem(Problem::UnknownClass {
                file: rel.to_owned(),
                class: class.to_string(),
            });
            continue;
        }
        out.push((class, bbox));
    }
    Ok(out)
}

/// Class names from Darknet-style `classes.txt` / `obj.names`.
fn names_file(tree: &Tree, limits: &Limits) -> Result<Option<Vec<String>>, DatasetError> {
    for name in [
        "classes.txt",
        "obj.names",
        "classes.names",
        "labels/classes.txt",
    ] {
        if tree.files.binary_search(&name.to_owned()).is_ok() {
            let text = bounded::read_text(tree, name, limits)?;
            return Ok(Some(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ));
        }
    }
    Ok(None)
}

/// Split named by a folder on an image's path (`images/train/…`, `valid/images/…`).
fn split_of_path(rel: &str) -> Option<Split> {
    tree::parent(rel).split('/').find_map(|p| {
        matches!(
            p.to_lowercase().as_str(),
            "train" | "val" | "valid" | "validation" | "test"
        )
        .then(|| split_from_name(p))
        .flatten()
    })
}

/// Reads a YOLO dataset.
pub fn read(tree: &Tree, index: &ImageIndex, limits: &Limits) -> Result<Parsed, DatasetError> {
    let config = find_config(tree, limits)?;
    if config.is_none() && !looks_like_yolo(tree) {
        return Err(DatasetError::NotThisFormat {
            format: DatasetFormat::Yolo,
            reason: "no data.yaml with `names` and no labels/ folder found".into(),
        });
    }
    // Images per split, in a deterministic order.
    let mut assigned: Vec<(String, Split)> = Vec::new();
    let mut has_splits = false;
    let mut problems = Vec::new();
    if let Some(config) = config.as_ref().filter(|c| !c.splits.is_empty()) {
        has_splits =
            config.splits.iter().any(|(s, _)| *s != Split::Train) || config.splits.len() > 1;
        for (split, paths) in &config.splits {
            for path in paths {
                match locate(tree, config, path) {
                    Some(SplitSource::Dir(dir)) => {
                        let prefix = format!("{dir}/");
                        assigned.extend(
                            index
                                .iter()
                                .filter(|(f, _)| f.starts_with(&prefix))
                                .map(|(f, _)| (f.to_owned(), *split)),
                        );
                    }
                    Some(SplitSource::List(list)) => {
                        let text = bounded::read_text(tree, &list, limits)?;
                        let list_dir = tree::parent(&list);
                        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                            match index.resolve(line, &[list_dir, "", &config.base]) {
                                Some(found) => assigned.push((found, *split)),
                                None => problems.push(Problem::MissingImage {
                                    file: line.to_owned(),
                                    referenced_by: list.clone(),
                                }),
                            }
                        }
                    }
                    None => problems.push(Problem::MissingImage {
                        file: path.clone(),
                        referenced_by: config.file.clone(),
                    }),
                }
            }
        }
    } else {
        for (rel, _) in index.iter() {
            let split = split_of_path(rel);
            has_splits |= split.is_some();
            assigned.push((rel.to_owned(), split.unwrap_or(Split::Train)));
        }
    }

    let mut images = Vec::new();
    for (rel, split) in assigned {
        let label = label_candidates(&rel)
            .into_iter()
            .find(|c| tree.files.binary_search(c).is_ok());
        images.push((rel, split, label));
    }
    let names = match config {
        Some(c) => c.names,
        None => match names_file(tree, limits)? {
            Some(names) => names,
            None => {
                // No class names anywhere: name classes by id, as many as the labels use.
                let mut max = None::<usize>;
                for (_, _, label) in &images {
                    if let Some(label) = label {
                        let path = tree.path(label);
                        let mut lines = Lines::open(tree, label, bounded::max_label_line(limits))?;
                        while let Some(line) =
                            lines.next_line().map_err(|e| DatasetError::io(&path, e))?
                        {
                            if let Line::Text(line) = line
                                && let Some(Ok(id)) =
                                    line.split_whitespace().next().map(str::parse::<usize>)
                            {
                                max = Some(max.map_or(id, |m: usize| m.max(id)));
                            }
                        }
                    }
                }
                // Each id up to the largest becomes a class: a huge id must not become
                // billions of names.
                if let Some(max) = max.filter(|&m| m as u64 >= limits.max_annotations) {
                    return Err(DatasetError::Parse(ParseError {
                        file: "labels".into(),
                        line: None,
                        column: None,
                        field: None,
                        message: format!(
                            "class id {max} used without class names (data.yaml or classes.txt); \
                             ids of {} and more need names",
                            limits.max_annotations
                        ),
                    }));
                }
                (0..max.map_or(0, |m| m + 1))
                    .map(|i| i.to_string())
                    .collect()
            }
        },
    };
    let mut collector = Collector::new(index, TaskType::Detection);
    for problem in problems {
        collector.problem(problem);
    }
    for (rel, split, label) in images {
        let boxes = match label {
            Some(label) => read_labels(tree, &label, names.len(), limits, &mut collector)?,
            None => Vec::new(),
        };
        collector.add(&rel, split, Label::Normalised(boxes), None);
    }
    Ok(collector.finish(names, has_splits))
}

/// `data.yaml` for an export laid out as `images/{train,val,test}` + `labels/…`.
pub fn data_yaml(manifest: &Manifest) -> String {
    let mut out = String::from("# exported by vision-platform\npath: .\n");
    for (key, split) in [
        ("train", Split::Train),
        ("val", Split::Val),
        ("test", Split::Test),
    ] {
        if manifest.split(split).next().is_some() {
            out.push_str(&format!("{key}: images/{key}\n"));
        }
    }
    out.push_str(&format!("nc: {}\nnames:\n", manifest.classes.len()));
    for (i, name) in manifest.classes.iter().enumerate() {
        // JSON strings are valid YAML scalars and escape everything that needs it.
        let quoted = serde_json::to_string(name).unwrap_or_else(|_| format!("\"{i}\""));
        out.push_str(&format!("  {i}: {quoted}\n"));
    }
    out
}

/// YOLO label text of one image.
pub fn label_text(image: &domain::dataset::ImageEntry) -> String {
    let mut out = String::new();
    for b in &image.boxes {
        let [cx, cy, w, h] = boxes::coco_to_yolo(b.bbox, image.width, image.height);
        out.push_str(&format!("{} {cx} {cy} {w} {h}\n", b.class_id));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_stays_inside() {
        assert_eq!(normalise("a", "../b").as_deref(), Some("b"));
        assert_eq!(normalise("", "../b"), None);
        assert_eq!(
            normalise("", "./images/train").as_deref(),
            Some("images/train")
        );
    }

    #[test]
    fn label_paths() {
        assert_eq!(
            label_candidates("images/train/a.jpg"),
            vec![
                "labels/train/a.txt".to_owned(),
                "images/train/a.txt".to_owned()
            ]
        );
        assert_eq!(label_candidates("a.png"), vec!["a.txt".to_owned()]);
    }
}
