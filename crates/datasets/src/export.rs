//! Writers: a [`Manifest`] and its image files as COCO, YOLO, Pascal VOC or ImageFolder, into a
//! zip stream or a directory.
//!
//! Layouts written:
//! * COCO: `images/{split}/…` + `annotations/instances_{split}.json` (category ids `1..=n`)
//! * YOLO: `images/{split}/…` + `labels/{split}/….txt` + `data.yaml`
//! * VOC: `JPEGImages/…` + `Annotations/….xml` + `ImageSets/Main/{split}.txt` + `labels.txt`
//! * ImageFolder: `{split}/{class}/…` (classification only)

use std::collections::HashSet;
use std::fs;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use domain::dataset::{Manifest, Split, TaskType};

use crate::error::DatasetError;
use crate::tree;
use crate::{DatasetFormat, coco, voc, yolo};

const SPLITS: [(Split, &str); 3] = [
    (Split::Train, "train"),
    (Split::Val, "val"),
    (Split::Test, "test"),
];

/// Where exported files go.
trait Sink {
    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<(), DatasetError>;
    fn file(&mut self, path: &str, source: &Path) -> Result<(), DatasetError>;
}

struct DirSink {
    root: PathBuf,
}

impl DirSink {
    fn target(&self, path: &str) -> Result<PathBuf, DatasetError> {
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| DatasetError::io(parent, e))?;
        }
        Ok(target)
    }
}

impl Sink for DirSink {
    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<(), DatasetError> {
        let target = self.target(path)?;
        fs::write(&target, data).map_err(|e| DatasetError::io(&target, e))
    }

    fn file(&mut self, path: &str, source: &Path) -> Result<(), DatasetError> {
        let target = self.target(path)?;
        fs::copy(source, &target)
            .map(|_| ())
            .map_err(|e| DatasetError::io(source, e))
    }
}

struct ZipSink<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    name: PathBuf,
}

impl<W: Write + Seek> ZipSink<W> {
    fn start(&mut self, path: &str, compress: bool) -> Result<(), DatasetError> {
        let method = if compress {
            zip::CompressionMethod::Deflated
        } else {
            // Images are already compressed: storing them is faster and no larger.
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(false);
        self.zip
            .start_file(path, options)
            .map_err(|e| DatasetError::io(&self.name, std::io::Error::other(e)))
    }
}

impl<W: Write + Seek> Sink for ZipSink<W> {
    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<(), DatasetError> {
        self.start(path, true)?;
        self.zip
            .write_all(data)
            .map_err(|e| DatasetError::io(&self.name, e))
    }

    fn file(&mut self, path: &str, source: &Path) -> Result<(), DatasetError> {
        self.start(path, false)?;
        let mut input = fs::File::open(source).map_err(|e| DatasetError::io(source, e))?;
        std::io::copy(&mut input, &mut self.zip)
            .map(|_| ())
            .map_err(|e| DatasetError::io(source, e))
    }
}

/// File names for the exported images: the bare file name when its stem is unique in the
/// dataset (YOLO and VOC pair images and labels by stem), else the path flattened with `__`,
/// else a numbered variant.
pub fn export_names(manifest: &Manifest) -> Vec<String> {
    let mut used: HashSet<String> = HashSet::new();
    let mut stem_count: std::collections::HashMap<String, usize> = Default::default();
    for image in &manifest.images {
        *stem_count
            .entry(tree::stem(&image.file).to_lowercase())
            .or_default() += 1;
    }
    manifest
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let bare = tree::file_name(&image.file).to_owned();
            let flat = image.file.replace('/', "__");
            let ext = tree::extension(&image.file);
            let numbered = format!("{}_{i}.{ext}", tree::stem(&flat));
            let unique_stem = stem_count.get(&tree::stem(&image.file).to_lowercase()) == Some(&1);
            let candidates = if unique_stem {
                vec![bare, flat, numbered]
            } else {
                vec![flat, numbered]
            };
            for candidate in candidates {
                if used.insert(tree::stem(&candidate).to_lowercase()) {
                    return candidate;
                }
            }
            let fallback = format!("image_{i}.{ext}");
            used.insert(tree::stem(&fallback).to_lowercase());
            fallback
        })
        .collect()
}

fn split_dir(split: Split) -> &'static str {
    SPLITS
        .iter()
        .find(|(s, _)| *s == split)
        .map_or("train", |(_, n)| n)
}

fn write(
    manifest: &Manifest,
    images_dir: &Path,
    format: DatasetFormat,
    sink: &mut dyn Sink,
) -> Result<(), DatasetError> {
    let classification = manifest.task == TaskType::Classification;
    if classification != (format == DatasetFormat::ImageFolder) {
        let task = match manifest.task {
            TaskType::Classification => "classification",
            TaskType::Detection => "detection",
            TaskType::Segmentation => "segmentation",
        };
        return Err(DatasetError::ExportUnsupported {
            format,
            task: task.into(),
        });
    }
    let names = export_names(manifest);
    let source = |file: &str| images_dir.join(file);
    match format {
        DatasetFormat::Coco => {
            for (image, name) in manifest.images.iter().zip(&names) {
                sink.file(
                    &format!("images/{}/{name}", split_dir(image.split)),
                    &source(&image.file),
                )?;
            }
            for (split, dir) in SPLITS {
                if manifest.split(split).next().is_none() {
                    continue;
                }
                let json = coco::to_json(manifest, split, &names).map_err(|e| {
                    DatasetError::io(format!("instances_{dir}.json"), std::io::Error::other(e))
                })?;
                sink.bytes(&format!("annotations/instances_{dir}.json"), &json)?;
            }
        }
        DatasetFormat::Yolo => {
            for (image, name) in manifest.images.iter().zip(&names) {
                let dir = split_dir(image.split);
                sink.file(&format!("images/{dir}/{name}"), &source(&image.file))?;
                let label = yolo::label_text(image);
                sink.bytes(
                    &format!("labels/{dir}/{}.txt", tree::stem(name)),
                    label.as_bytes(),
                )?;
            }
            sink.bytes("data.yaml", yolo::data_yaml(manifest).as_bytes())?;
        }
        DatasetFormat::Voc => {
            let mut lists = [String::new(), String::new(), String::new()];
            for (image, name) in manifest.images.iter().zip(&names) {
                sink.file(&format!("JPEGImages/{name}"), &source(&image.file))?;
                let xml = voc::annotation_xml(image, name, &manifest.classes);
                sink.bytes(
                    &format!("Annotations/{}.xml", tree::stem(name)),
                    xml.as_bytes(),
                )?;
                let slot = SPLITS
                    .iter()
                    .position(|(s, _)| *s == image.split)
                    .unwrap_or(0);
                lists[slot].push_str(tree::stem(name));
                lists[slot].push('\n');
            }
            for ((_, dir), list) in SPLITS.iter().zip(&lists) {
                sink.bytes(&format!("ImageSets/Main/{dir}.txt"), list.as_bytes())?;
            }
            let mut labels = manifest.classes.join("\n");
            labels.push('\n');
            sink.bytes("labels.txt", labels.as_bytes())?;
        }
        DatasetFormat::ImageFolder => {
            for (image, name) in manifest.images.iter().zip(&names) {
                let Some(class) = image.label.and_then(|l| manifest.classes.get(l)) else {
                    continue;
                };
                // Class names become folder names: keep them to one safe path component.
                let folder: String = class
                    .chars()
                    .map(|c| {
                        if matches!(c, '/' | '\\' | '\0') {
                            '_'
                        } else {
                            c
                        }
                    })
                    .collect();
                let folder = if folder == "." || folder == ".." || folder.is_empty() {
                    format!("_{folder}")
                } else {
                    folder
                };
                sink.file(
                    &format!("{}/{folder}/{name}", split_dir(image.split)),
                    &source(&image.file),
                )?;
            }
        }
    }
    Ok(())
}

/// Writes the dataset as a zip archive to `out` and returns it. Image `i` is read from
/// `images_dir.join(&manifest.images[i].file)`.
pub fn export_zip<W: Write + Seek>(
    manifest: &Manifest,
    images_dir: &Path,
    format: DatasetFormat,
    out: W,
) -> Result<W, DatasetError> {
    let name = PathBuf::from(format!("export.{}.zip", format.as_str()));
    let mut sink = ZipSink {
        zip: zip::ZipWriter::new(out),
        name,
    };
    write(manifest, images_dir, format, &mut sink)?;
    let name = sink.name.clone();
    sink.zip
        .finish()
        .map_err(|e| DatasetError::io(name, std::io::Error::other(e)))
}

/// Writes the dataset unpacked into `out_dir` (created if missing).
pub fn export_dir(
    manifest: &Manifest,
    images_dir: &Path,
    format: DatasetFormat,
    out_dir: &Path,
) -> Result<(), DatasetError> {
    fs::create_dir_all(out_dir).map_err(|e| DatasetError::io(out_dir, e))?;
    write(
        manifest,
        images_dir,
        format,
        &mut DirSink {
            root: out_dir.to_owned(),
        },
    )
}
