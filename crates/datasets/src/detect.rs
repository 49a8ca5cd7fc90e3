//! Format detection for `format = auto`.

use crate::error::DatasetError;
use crate::tree::Tree;
use crate::{DatasetFormat, coco, imagefolder, voc, yolo};

/// Detects the layout of an extracted dataset. Checked in order: COCO (an instances JSON),
/// Pascal VOC (`Annotations/*.xml`), YOLO (`data.yaml` with `names`, or `labels/*.txt`),
/// ImageFolder (images inside class folders).
pub fn detect_format(tree: &Tree) -> Result<DatasetFormat, DatasetError> {
    if tree.images().next().is_none() {
        return Err(DatasetError::UnknownFormat {
            reason: "the archive contains no image files (.jpg, .jpeg, .png, .webp, .bmp)".into(),
        });
    }
    if tree
        .with_extension(&["json"])
        .any(|f| Tree::depth(f) <= 3 && coco::looks_like_coco(tree, f))
    {
        return Ok(DatasetFormat::Coco);
    }
    if voc::looks_like_voc(tree) {
        return Ok(DatasetFormat::Voc);
    }
    if yolo::looks_like_yolo(tree) {
        return Ok(DatasetFormat::Yolo);
    }
    if imagefolder::looks_like_imagefolder(tree) {
        return Ok(DatasetFormat::ImageFolder);
    }
    Err(DatasetError::UnknownFormat {
        reason: "no COCO JSON, VOC Annotations/, YOLO data.yaml or labels/, or class folders found"
            .into(),
    })
}
