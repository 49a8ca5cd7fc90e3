//! Models: the trainable catalogue (input), the well-known models the platform recognises but
//! cannot train, and the name patterns that find either in a message.

use std::ops::Range;

use domain::dataset::TaskType;
use regex::Regex;

use crate::hyper::Hyperparameters;
use crate::pattern::{SEP, alternation, flexible};
use crate::text::{ascii_boundary_before, edit_distance, non_overlapping};

/// A model the platform can train.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRef {
    /// Catalogue id (`resnet50`, `yolov8n`).
    pub id: String,
    /// Task it is trained for.
    pub task_type: TaskType,
    /// Framework it comes from (`model_source` of the training config).
    pub framework: String,
    /// Whether it is suggested first for its task when the user names no model.
    pub recommended: bool,
    /// Hyper-parameters used when the user gives none.
    pub defaults: Hyperparameters,
}

impl ModelRef {
    /// A catalogue entry; framework and recommendation come from the built-in table of known
    /// models (`builtin` and not recommended for ids it does not know), defaults are the platform's.
    pub fn new(id: impl Into<String>, task_type: TaskType) -> Self {
        let id = id.into();
        let known = known(&id);
        Self {
            framework: known.map_or("builtin", |k| k.framework).to_string(),
            recommended: known.is_some_and(|k| k.recommended),
            defaults: Hyperparameters::default(),
            id,
            task_type,
        }
    }
}

/// The models the platform trains today: `small_cnn`, `resnet18`, `resnet34`, `resnet50`
/// (classification) and `yolov8n`, `yolov8s` (detection).
pub fn default_catalogue() -> Vec<ModelRef> {
    [
        ("small_cnn", TaskType::Classification),
        ("resnet18", TaskType::Classification),
        ("resnet34", TaskType::Classification),
        ("resnet50", TaskType::Classification),
        ("yolov8n", TaskType::Detection),
        ("yolov8s", TaskType::Detection),
    ]
    .into_iter()
    .map(|(id, task)| ModelRef::new(id, task))
    .collect()
}

/// A model the parser knows by name, trainable or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KnownModel {
    /// Canonical id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Task.
    pub task: TaskType,
    /// Framework or model hub it comes from.
    pub framework: &'static str,
    /// Parameters in millions, to rank substitutes by size.
    pub params_m: f64,
    /// Suggested first for its task.
    pub recommended: bool,
}

const fn m(
    id: &'static str,
    name: &'static str,
    task: TaskType,
    framework: &'static str,
    params_m: f64,
) -> KnownModel {
    KnownModel {
        id,
        name,
        task,
        framework,
        params_m,
        recommended: false,
    }
}

use TaskType::{Classification as C, Detection as D, Segmentation as S};

/// Every model known by name.
pub(crate) const KNOWN: &[KnownModel] = &[
    m("small_cnn", "Small CNN", C, "builtin", 0.5),
    KnownModel {
        recommended: true,
        ..m("resnet18", "ResNet18", C, "timm", 11.7)
    },
    m("resnet34", "ResNet34", C, "timm", 21.8),
    m("resnet50", "ResNet50", C, "timm", 25.6),
    m("resnet101", "ResNet101", C, "timm", 44.5),
    m("resnet152", "ResNet152", C, "timm", 60.2),
    m("efficientnet_b0", "EfficientNet-B0", C, "timm", 5.3),
    m("efficientnet_b1", "EfficientNet-B1", C, "timm", 7.8),
    m("efficientnet_b2", "EfficientNet-B2", C, "timm", 9.1),
    m("efficientnet_b3", "EfficientNet-B3", C, "timm", 12.2),
    m("efficientnet_b4", "EfficientNet-B4", C, "timm", 19.3),
    m("efficientnet_b5", "EfficientNet-B5", C, "timm", 30.4),
    m("efficientnet_b6", "EfficientNet-B6", C, "timm", 43.0),
    m("efficientnet_b7", "EfficientNet-B7", C, "timm", 66.3),
    m(
        "efficientnet_v2_s",
        "EfficientNetV2-S",
        C,
        "torchvision",
        21.5,
    ),
    m(
        "efficientnet_v2_m",
        "EfficientNetV2-M",
        C,
        "torchvision",
        54.1,
    ),
    m(
        "efficientnet_v2_l",
        "EfficientNetV2-L",
        C,
        "torchvision",
        118.5,
    ),
    m("vit_b_16", "ViT-B/16", C, "torchvision", 86.6),
    m("vit_b_32", "ViT-B/32", C, "torchvision", 88.2),
    m("vit_l_16", "ViT-L/16", C, "torchvision", 304.3),
    m("vit_l_32", "ViT-L/32", C, "torchvision", 306.5),
    m("vit_h_14", "ViT-H/14", C, "torchvision", 632.0),
    m("convnext_tiny", "ConvNeXt-Tiny", C, "torchvision", 28.6),
    m("convnext_small", "ConvNeXt-Small", C, "torchvision", 50.2),
    m("convnext_base", "ConvNeXt-Base", C, "torchvision", 88.6),
    m("convnext_large", "ConvNeXt-Large", C, "torchvision", 197.8),
    m("regnety_016", "RegNetY-016", C, "timm", 11.2),
    m("regnety_032", "RegNetY-032", C, "timm", 19.4),
    m("regnety_040", "RegNetY-040", C, "timm", 20.6),
    m("regnety_080", "RegNetY-080", C, "timm", 39.2),
    m("mobilenet_v2", "MobileNetV2", C, "torchvision", 3.5),
    m(
        "mobilenet_v3_small",
        "MobileNetV3-Small",
        C,
        "torchvision",
        2.5,
    ),
    m(
        "mobilenet_v3_large",
        "MobileNetV3-Large",
        C,
        "torchvision",
        5.5,
    ),
    m("densenet121", "DenseNet121", C, "torchvision", 8.0),
    m("densenet161", "DenseNet161", C, "torchvision", 28.7),
    m("densenet169", "DenseNet169", C, "torchvision", 14.1),
    m("densenet201", "DenseNet201", C, "torchvision", 20.0),
    m("vgg11", "VGG11", C, "torchvision", 132.9),
    m("vgg13", "VGG13", C, "torchvision", 133.0),
    m("vgg16", "VGG16", C, "torchvision", 138.4),
    m("vgg19", "VGG19", C, "torchvision", 143.7),
    m("inception_v3", "Inception-v3", C, "torchvision", 27.2),
    m("swin_t", "Swin-T", C, "torchvision", 28.3),
    m("swin_s", "Swin-S", C, "torchvision", 49.6),
    m("swin_b", "Swin-B", C, "torchvision", 87.8),
    KnownModel {
        recommended: true,
        ..m("yolov8n", "YOLOv8 Nano", D, "ultralytics", 3.2)
    },
    m("yolov8s", "YOLOv8 Small", D, "ultralytics", 11.2),
    m("yolov8m", "YOLOv8 Medium", D, "ultralytics", 25.9),
    m("yolov8l", "YOLOv8 Large", D, "ultralytics", 43.7),
    m("yolov8x", "YOLOv8 XLarge", D, "ultralytics", 68.2),
    m("yolo11n", "YOLO11 Nano", D, "ultralytics", 2.6),
    m("yolo11s", "YOLO11 Small", D, "ultralytics", 9.4),
    m("yolo11m", "YOLO11 Medium", D, "ultralytics", 20.1),
    m("yolo11l", "YOLO11 Large", D, "ultralytics", 25.3),
    m("yolo11x", "YOLO11 XLarge", D, "ultralytics", 56.9),
    m("yolov5n", "YOLOv5 Nano", D, "ultralytics", 1.9),
    m("yolov5s", "YOLOv5 Small", D, "ultralytics", 7.2),
    m("yolov5m", "YOLOv5 Medium", D, "ultralytics", 21.2),
    m("yolov5l", "YOLOv5 Large", D, "ultralytics", 46.5),
    m("yolov5x", "YOLOv5 XLarge", D, "ultralytics", 86.7),
    m("detr", "DETR", D, "huggingface", 41.3),
    m("faster_rcnn", "Faster R-CNN", D, "torchvision", 41.8),
    m("retinanet", "RetinaNet", D, "torchvision", 34.0),
    m("ssd", "SSD300", D, "torchvision", 35.6),
    m("mask_rcnn", "Mask R-CNN", S, "torchvision", 44.4),
    m("deeplabv3", "DeepLabV3", S, "torchvision", 42.0),
    m("fcn", "FCN", S, "torchvision", 35.3),
    m("unet", "U-Net", S, "smp", 31.0),
    m("segformer", "SegFormer", S, "huggingface", 3.8),
];

/// Ids of every model known by name, trainable or not (for prompts and validation).
pub fn known_model_ids() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().map(|k| k.id)
}

/// The known model with this id.
pub(crate) fn known(id: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|k| k.id == id)
}

/// Display name of a model id (the id itself when unknown).
pub(crate) fn display_name(id: &str) -> &str {
    known(id).map_or(id, |k| k.name)
}

/// Size words and the two ways ids write them (letter: `yolov8n`; word: `convnext_tiny`).
const SIZES: &[(&[&str], &str, &str)] = &[
    (&["nano", "n", "나노"], "n", "nano"),
    (&["tiny", "t", "타이니"], "t", "tiny"),
    (&["small", "s", "스몰"], "s", "small"),
    (&["medium", "mid", "m", "미디엄", "미디움"], "m", "medium"),
    (&["base", "b", "베이스"], "b", "base"),
    (&["large", "l", "라지"], "l", "large"),
    (
        &["xlarge", "extra large", "x", "xl", "엑스라지"],
        "x",
        "xlarge",
    ),
    (&["huge", "h"], "h", "huge"),
];

/// A model family: its names, and variant patterns (with `n` or `size` groups) that turn a
/// mention into an id through a template. The last variant of a family with pattern `""` is the
/// member meant when only the family is named, at lower confidence.
struct Family {
    names: &'static [&'static str],
    variants: &'static [(&'static str, &'static str)],
    confidence: f64,
}

/// Every family the parser recognises. `{size}` in a pattern stands for any size word.
const FAMILIES: &[Family] = &[
    Family {
        names: &["resnet", "res net", "레즈넷", "레스넷", "리스넷", "레즈 넷"],
        variants: &[(r"(?P<n>18|34|50|101|152)", "resnet{n}"), ("", "resnet50")],
        confidence: 0.95,
    },
    Family {
        names: &[
            "small cnn",
            "smallcnn",
            "simple cnn",
            "basic cnn",
            "tiny cnn",
            "작은 cnn",
            "간단한 cnn",
            "기본 cnn",
            "심플 cnn",
            "스몰 cnn",
            "small 씨엔엔",
            "작은 씨엔엔",
        ],
        variants: &[("", "small_cnn")],
        confidence: 0.95,
    },
    Family {
        names: &["cnn", "씨엔엔"],
        variants: &[("", "small_cnn")],
        confidence: 0.75,
    },
    Family {
        names: &["yolov8", "yolo v8", "yolo8", "욜로v8", "욜로8", "v8"],
        variants: &[(r"(?P<size>{size})", "yolov8{letter}"), ("", "yolov8n")],
        confidence: 0.95,
    },
    Family {
        names: &["yolo11", "yolov11", "yolo v11", "욜로11", "욜로v11", "v11"],
        variants: &[(r"(?P<size>{size})", "yolo11{letter}"), ("", "yolo11n")],
        confidence: 0.95,
    },
    Family {
        names: &["yolov5", "yolo v5", "yolo5", "욜로v5", "v5"],
        variants: &[(r"(?P<size>{size})", "yolov5{letter}"), ("", "yolov5s")],
        confidence: 0.95,
    },
    Family {
        names: &["yolo", "욜로"],
        variants: &[("", "yolov8n")],
        confidence: 0.8,
    },
    Family {
        names: &[
            "efficientnet",
            "efficient net",
            "이피션트넷",
            "에피션트넷",
            "이피션트 넷",
        ],
        variants: &[
            (r"v2[\s_\-]*(?P<size>{size})", "efficientnet_v2_{letter}"),
            (r"b(?P<n>[0-7])", "efficientnet_b{n}"),
            ("", "efficientnet_b0"),
        ],
        confidence: 0.95,
    },
    Family {
        names: &["vit", "vision transformer", "비전 트랜스포머", "비트"],
        variants: &[
            (
                r"(?P<size>{size})[\s_\-/]*(?:patch)?[\s_\-/]*(?P<n>14|16|32)",
                "vit_{letter}_{n}",
            ),
            (r"(?P<size>{size})", "vit_{letter}_16"),
            ("", "vit_b_16"),
        ],
        confidence: 0.9,
    },
    Family {
        names: &["convnext", "컨브넥스트", "콘브넥스트"],
        variants: &[
            (r"(?P<size>{size})", "convnext_{word}"),
            ("", "convnext_tiny"),
        ],
        confidence: 0.95,
    },
    Family {
        names: &["regnety", "regnet y"],
        variants: &[(r"(?P<n>\d{3})", "regnety_{n}"), ("", "regnety_040")],
        confidence: 0.95,
    },
    Family {
        names: &["mobilenet", "모바일넷"],
        variants: &[
            (r"v3[\s_\-]*(?P<size>{size})", "mobilenet_v3_{word}"),
            ("v3", "mobilenet_v3_large"),
            ("v2", "mobilenet_v2"),
            ("", "mobilenet_v3_large"),
        ],
        confidence: 0.95,
    },
    Family {
        names: &["densenet", "덴스넷"],
        variants: &[
            (r"(?P<n>121|161|169|201)", "densenet{n}"),
            ("", "densenet121"),
        ],
        confidence: 0.95,
    },
    Family {
        names: &["vgg"],
        variants: &[(r"(?P<n>11|13|16|19)", "vgg{n}"), ("", "vgg16")],
        confidence: 0.95,
    },
    Family {
        names: &["inception", "인셉션"],
        variants: &[("v3", "inception_v3"), ("", "inception_v3")],
        confidence: 0.9,
    },
    Family {
        names: &["swin", "swin transformer", "스윈"],
        variants: &[(r"(?P<size>{size})", "swin_{letter}"), ("", "swin_t")],
        confidence: 0.9,
    },
    Family {
        names: &["detr", "디터"],
        variants: &[("", "detr")],
        confidence: 0.95,
    },
    Family {
        names: &["faster rcnn", "faster r cnn", "패스터 rcnn"],
        variants: &[("", "faster_rcnn")],
        confidence: 0.95,
    },
    Family {
        names: &["mask rcnn", "mask r cnn", "마스크 rcnn"],
        variants: &[("", "mask_rcnn")],
        confidence: 0.95,
    },
    Family {
        names: &["retinanet", "레티나넷"],
        variants: &[("", "retinanet")],
        confidence: 0.95,
    },
    Family {
        names: &["deeplab", "딥랩"],
        variants: &[("v3", "deeplabv3"), ("", "deeplabv3")],
        confidence: 0.95,
    },
    Family {
        names: &["ssd", "ssd300"],
        variants: &[("", "ssd")],
        confidence: 0.9,
    },
    Family {
        names: &["fcn"],
        variants: &[("", "fcn")],
        confidence: 0.9,
    },
    Family {
        names: &["unet", "u net", "유넷"],
        variants: &[("", "unet")],
        confidence: 0.9,
    },
    Family {
        names: &["segformer", "세그포머"],
        variants: &[("", "segformer")],
        confidence: 0.95,
    },
];

/// Regex alternation of every size word, longest first.
fn sizes_pattern() -> String {
    alternation(SIZES.iter().flat_map(|s| s.0.iter().copied()), flexible)
}

/// A model named in a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelHit {
    /// Model id.
    pub id: String,
    /// Confidence.
    pub confidence: f64,
    /// Where it was named (lowercase text).
    pub span: Range<usize>,
}

/// One compiled variant of a family.
struct Variant {
    regex: Regex,
    template: &'static str,
    confidence: f64,
    /// Index of its family in [`FAMILIES`].
    family: usize,
}

/// Confidence factor for a name read through a one-letter typo ("resent50").
const TYPO_FACTOR: f64 = 0.85;

/// Shortest family name tried against typos (shorter names collide with ordinary words).
const TYPO_MIN_LEN: usize = 5;

/// The compiled name patterns.
pub(crate) struct ModelRules {
    variants: Vec<Variant>,
}

impl ModelRules {
    /// Compiles [`FAMILIES`].
    pub fn new() -> Result<Self, regex::Error> {
        let sizes = sizes_pattern();
        let mut variants = Vec::new();
        for (index, family) in FAMILIES.iter().enumerate() {
            let names: Vec<String> = family.names.iter().map(|n| flexible(n)).collect();
            let names = names.join("|");
            for (pattern, template) in family.variants {
                let pattern = pattern.replace("{size}", &sizes);
                let body = if pattern.is_empty() {
                    format!("(?:{names})")
                } else {
                    format!("(?:{names}){SEP}(?:{pattern})")
                };
                let regex = Regex::new(&format!(r"(?:^|[^a-z0-9])(?P<m>{body})(?:[^a-z0-9]|$)"))?;
                let confidence = if pattern.is_empty() && family.variants.len() > 1 {
                    0.6
                } else {
                    family.confidence
                };
                variants.push(Variant {
                    regex,
                    template,
                    confidence,
                    family: index,
                });
            }
        }
        Ok(Self { variants })
    }

    /// Every model named in `text` (lowercase); `extra_ids` are catalogue ids that are not in the
    /// built-in tables, matched as written.
    pub fn find(&self, text: &str, extra_ids: &[&str]) -> Vec<ModelHit> {
        let mut found = Vec::new();
        for variant in &self.variants {
            let mut at = 0;
            while let Some(caps) = text.get(at..).and_then(|rest| variant.regex.captures(rest)) {
                let Some(whole) = caps.name("m") else { break };
                let id = fill(variant.template, &caps);
                let span = at + whole.start()..at + whole.end();
                if known(&id).is_some() || extra_ids.contains(&id.as_str()) {
                    found.push((span.clone(), (id, variant.confidence)));
                }
                // Continue right after the name so the next may reuse the boundary character.
                at = span.end.max(at + 1);
                while !text.is_char_boundary(at) {
                    at += 1;
                }
            }
        }
        let typos = self.typos(text, &found);
        found.extend(typos);
        for id in extra_ids.iter().filter(|id| known(id).is_none()) {
            for (start, _) in text.match_indices(id) {
                found.push((start..start + id.len(), (id.to_string(), 0.9)));
            }
        }
        non_overlapping(found)
            .into_iter()
            .map(|(span, (id, confidence))| ModelHit {
                id,
                confidence,
                span,
            })
            .collect()
    }
}

impl ModelRules {
    /// Family names written with one typo ("resent50", "efficentnet-b0") among the ASCII words
    /// no name matched: the word is replaced by the family's name and the family's patterns are
    /// tried on the result.
    fn typos(
        &self,
        text: &str,
        found: &[(Range<usize>, (String, f64))],
    ) -> Vec<(Range<usize>, (String, f64))> {
        let mut hits = Vec::new();
        for word in ascii_words(text) {
            let covered = found
                .iter()
                .any(|(s, _)| s.start < word.end && word.start < s.end);
            let written = text.get(word.clone()).unwrap_or_default();
            if covered || written.len() < TYPO_MIN_LEN {
                continue;
            }
            let tail = text.get(word.end..).unwrap_or_default();
            for (index, family) in FAMILIES.iter().enumerate() {
                let close = family.names.iter().find(|n| {
                    n.len() >= TYPO_MIN_LEN
                        && n.bytes().all(|b| b.is_ascii_lowercase())
                        && edit_distance(written, n) == 1
                });
                let Some(name) = close else { continue };
                let fixed = format!("{name}{tail}");
                let hit = self
                    .variants
                    .iter()
                    .filter(|v| v.family == index)
                    .find_map(|v| {
                        let caps = v.regex.captures(&fixed)?;
                        let m = caps.name("m").filter(|m| m.start() == 0)?;
                        let id = fill(v.template, &caps);
                        known(&id)?;
                        let end = word.end + m.end().saturating_sub(name.len());
                        Some((word.start..end, (id, v.confidence * TYPO_FACTOR)))
                    });
                hits.extend(hit);
            }
        }
        hits
    }
}

/// Ranges of the runs of ASCII letters in `text` that start a word.
fn ascii_words(text: &str) -> Vec<Range<usize>> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_ascii_lowercase(), start) {
            (true, None) if ascii_boundary_before(text, i) => start = Some(i),
            (false, Some(s)) => {
                words.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    words
}

/// A template with `{n}`, `{letter}` and `{word}` filled from the captured groups.
fn fill(template: &str, caps: &regex::Captures<'_>) -> String {
    let size = caps
        .name("size")
        .map(|s| s.as_str().replace([' ', '-', '_'], ""));
    let size = size.and_then(|s| {
        SIZES
            .iter()
            .find(|(words, ..)| words.iter().any(|w| w.replace(' ', "") == s))
    });
    template
        .replace("{n}", caps.name("n").map_or("", |n| n.as_str()))
        .replace("{letter}", size.map_or("", |s| s.1))
        .replace("{word}", size.map_or("", |s| s.2))
}

/// Up to `n` catalogue models to offer instead of `wanted`: same task first, then closest in size
/// (parameters), recommended ones first when nothing is known about `wanted`.
pub(crate) fn closest<'a>(
    wanted: Option<&str>,
    task: Option<TaskType>,
    catalogue: &'a [ModelRef],
    n: usize,
) -> Vec<&'a ModelRef> {
    let target = wanted.and_then(known);
    let task = task.or(target.map(|t| t.task));
    let mut ranked: Vec<(usize, &ModelRef)> = catalogue.iter().enumerate().collect();
    let distance = |m: &ModelRef| match (target, known(&m.id)) {
        (Some(t), Some(k)) => (t.params_m.ln() - k.params_m.ln()).abs(),
        _ => 0.0,
    };
    ranked.sort_by(|(ia, a), (ib, b)| {
        let key = |m: &ModelRef| (task.is_some_and(|t| t != m.task_type), !m.recommended);
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then_with(|| {
                if target.is_some() {
                    distance(a).total_cmp(&distance(b))
                } else {
                    ka.1.cmp(&kb.1)
                }
            })
            .then(ia.cmp(ib))
    });
    ranked
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| Some(m.id.as_str()) != wanted)
        .take(n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<String> {
        ModelRules::new()
            .unwrap()
            .find(text, &[])
            .into_iter()
            .map(|h| h.id)
            .collect()
    }

    #[test]
    fn names_and_variants() {
        for (text, id) in [
            ("resnet50", "resnet50"),
            ("ResNet50으로", "resnet50"),
            ("resnet-50", "resnet50"),
            ("resnet 50", "resnet50"),
            ("레즈넷50", "resnet50"),
            ("레스넷50", "resnet50"),
            ("small cnn", "small_cnn"),
            ("yolov8 nano", "yolov8n"),
            ("YOLO v8 small", "yolov8s"),
            ("yolo-v8-n", "yolov8n"),
            ("yolov8n", "yolov8n"),
            ("v8n", "yolov8n"),
            ("yolov8s", "yolov8s"),
            ("v8 small", "yolov8s"),
            ("efficientnet_v2_s", "efficientnet_v2_s"),
            ("EfficientNetV2-S", "efficientnet_v2_s"),
            ("efficientnet-b3", "efficientnet_b3"),
            ("vit_l_16", "vit_l_16"),
            ("ViT-B/16", "vit_b_16"),
            ("convnext_tiny", "convnext_tiny"),
            ("convnext small", "convnext_small"),
            ("regnety_040", "regnety_040"),
            ("mobilenet_v3_large", "mobilenet_v3_large"),
            ("densenet121", "densenet121"),
            ("yolo11n", "yolo11n"),
            ("yolov5s", "yolov5s"),
            ("DETR", "detr"),
            ("Mask R-CNN", "mask_rcnn"),
            ("mask_rcnn", "mask_rcnn"),
            ("deeplabv3", "deeplabv3"),
        ] {
            let lower = text.to_lowercase();
            assert_eq!(ids(&lower), vec![id.to_string()], "{text}");
        }
    }

    #[test]
    fn every_known_id_as_written() {
        for k in KNOWN {
            assert_eq!(
                ids(&format!("{} 써줘", k.id)),
                vec![k.id.to_string()],
                "{}",
                k.id
            );
            let name = k.name.to_lowercase();
            assert_eq!(
                ids(&format!("use {name} please")),
                vec![k.id.to_string()],
                "{name}"
            );
        }
    }

    #[test]
    fn one_typo() {
        assert_eq!(ids("resent50으로"), vec!["resnet50".to_string()]);
        assert_eq!(ids("efficentnet-b0"), vec!["efficientnet_b0".to_string()]);
        assert_eq!(ids("mobilnet v3"), vec!["mobilenet_v3_large".to_string()]);
        assert!(ids("present").is_empty());
    }

    #[test]
    fn not_inside_words() {
        assert!(ids("vitamin and yolovo").is_empty());
        assert_eq!(ids("yolov8 now"), vec!["yolov8n".to_string()]);
    }

    #[test]
    fn substitutes_same_task_then_size() {
        let cat = default_catalogue();
        let ids = |w, t| {
            closest(w, t, &cat, 3)
                .into_iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(Some("efficientnet_v2_s"), None),
            vec!["resnet34", "resnet50", "resnet18"]
        );
        assert_eq!(
            ids(Some("yolo11n"), None),
            vec!["yolov8n", "yolov8s", "resnet18"]
        );
        assert_eq!(
            ids(None, Some(TaskType::Classification)),
            vec!["resnet18", "small_cnn", "resnet34"]
        );
    }
}
