//! The validation report of `POST /datasets/{id}/validate`: reading problems plus checks on the
//! manifest itself, rendered in Korean or English.

use std::collections::{BTreeMap, HashSet};

use domain::dataset::{Manifest, TaskType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::problem::Problem;
use crate::stats::class_counts;
use crate::{DatasetFormat, boxes};

/// Fewer images than this in a class is reported as too few.
pub const MIN_IMAGES_PER_CLASS: u64 = 10;
/// A difference between the largest and smallest class of at least this many percent (of the
/// smallest) is reported as class imbalance.
pub const IMBALANCE_PERCENT: u64 = 10;
/// At most this many example files are listed in one issue's details.
pub const MAX_EXAMPLES: usize = 20;

/// Language of messages and recommendations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// 한국어.
    Ko,
    /// English.
    En,
}

impl Lang {
    /// Language preferred by an `Accept-Language` header: Korean when the highest-weighted tag
    /// is `ko` (`ko`, `ko-KR`, …), English otherwise.
    pub fn from_accept_language(header: &str) -> Self {
        let mut best: Option<(f64, bool)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_lowercase();
            if tag.is_empty() {
                continue;
            }
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            let is_ko = tag == "ko" || tag.starts_with("ko-");
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, is_ko));
            }
        }
        match best {
            Some((q, true)) if q > 0.0 => Self::Ko,
            _ => Self::En,
        }
    }

    fn pick(self, ko: String, en: String) -> String {
        match self {
            Self::Ko => ko,
            Self::En => en,
        }
    }
}

/// How serious an issue is. Any `error` makes the dataset invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The dataset cannot be used as it is.
    Error,
    /// Usable, but training will likely suffer.
    Warning,
    /// For information.
    Info,
}

/// One entry of `issues`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// Severity.
    pub severity: Severity,
    /// Human-readable message in the requested language.
    pub message: String,
    /// Structured details (always a JSON object).
    pub details: Value,
}

/// Body of the validate response (the API adds `dataset_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// No issue of severity `error`.
    pub valid: bool,
    /// Issues found, errors first.
    pub issues: Vec<Issue>,
    /// What to do about them.
    pub recommendations: Vec<String>,
}

/// What the caller expects of the dataset (`expected_format`, `expected_classes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectations {
    /// Format the dataset should have been uploaded in.
    #[serde(default)]
    pub expected_format: Option<DatasetFormat>,
    /// Number of classes the dataset should have.
    #[serde(default)]
    pub expected_classes: Option<usize>,
}

struct Report {
    lang: Lang,
    issues: Vec<Issue>,
    recommendations: Vec<String>,
}

impl Report {
    fn issue(&mut self, severity: Severity, ko: String, en: String, details: Value) {
        let message = self.lang.pick(ko, en);
        self.issues.push(Issue {
            severity,
            message,
            details,
        });
    }

    fn recommend(&mut self, ko: &str, en: &str) {
        let text = self.lang.pick(ko.to_owned(), en.to_owned());
        if !self.recommendations.contains(&text) {
            self.recommendations.push(text);
        }
    }
}

fn examples<T: Serialize>(items: &[T]) -> Value {
    json!(items.iter().take(MAX_EXAMPLES).collect::<Vec<_>>())
}

/// Validates a dataset: `problems` are those collected at ingest ([`crate::Ingested::problems`]),
/// `format` the format it was read as.
pub fn validate(
    manifest: &Manifest,
    format: DatasetFormat,
    problems: &[Problem],
    expect: &Expectations,
    lang: Lang,
) -> ValidationReport {
    let mut report = Report {
        lang,
        issues: Vec::new(),
        recommendations: Vec::new(),
    };
    expectation_checks(&mut report, manifest, format, expect);
    problem_checks(&mut report, problems);
    manifest_checks(&mut report, manifest);
    report.issues.sort_by_key(|i| match i.severity {
        Severity::Error => 0,
        Severity::Warning => 1,
        Severity::Info => 2,
    });
    ValidationReport {
        valid: !report.issues.iter().any(|i| i.severity == Severity::Error),
        issues: report.issues,
        recommendations: report.recommendations,
    }
}

fn expectation_checks(
    report: &mut Report,
    manifest: &Manifest,
    format: DatasetFormat,
    expect: &Expectations,
) {
    if let Some(expected) = expect.expected_format
        && expected != format
    {
        report.issue(
            Severity::Error,
            format!("데이터셋 형식이 다릅니다 (예상: {expected}, 실제: {format})"),
            format!("Dataset format mismatch (expected {expected}, found {format})"),
            json!({ "expected": expected.as_str(), "actual": format.as_str() }),
        );
        report.recommend(
            "업로드할 때 올바른 형식을 지정하거나 데이터셋을 해당 형식으로 변환하세요.",
            "Upload with the right format, or convert the dataset to the expected format.",
        );
    }
    if let Some(expected) = expect.expected_classes
        && expected != manifest.classes.len()
    {
        let actual = manifest.classes.len();
        report.issue(
            Severity::Error,
            format!("클래스 수가 다릅니다 (예상: {expected}개, 실제: {actual}개)"),
            format!("Class count mismatch (expected {expected}, found {actual})"),
            json!({ "expected": expected, "actual": actual, "classes": manifest.classes }),
        );
        report.recommend(
            "클래스 목록을 확인하세요: 누락되었거나 불필요한 클래스가 있을 수 있습니다.",
            "Check the class list: classes may be missing or extra.",
        );
    }
}

fn problem_checks(report: &mut Report, problems: &[Problem]) {
    let mut corrupt = Vec::new();
    let mut missing = Vec::new();
    let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
    let mut unknown_files = Vec::new();
    let mut malformed = Vec::new();
    let mut mismatched = Vec::new();
    let mut duplicates = Vec::new();
    let mut unreferenced = Vec::new();
    let mut generated_seed = None;
    let mut unlabeled = Vec::new();
    for problem in problems {
        match problem {
            Problem::CorruptImage { file, reason } => {
                corrupt.push(json!({ "file": file, "reason": reason }))
            }
            Problem::MissingImage {
                file,
                referenced_by,
            } => missing.push(json!({ "file": file, "referenced_by": referenced_by })),
            Problem::UnknownClass { file, class } => {
                *unknown.entry(class.clone()).or_default() += 1;
                if !unknown_files.contains(file) {
                    unknown_files.push(file.clone());
                }
            }
            Problem::MalformedAnnotation { .. } => malformed.push(json!(problem)),
            Problem::SizeMismatch {
                file,
                declared,
                actual,
            } => mismatched.push(json!({ "file": file, "declared": declared, "actual": actual })),
            Problem::DuplicateImages { files, sha256 } => {
                duplicates.push(json!({ "sha256": sha256, "files": files }))
            }
            Problem::UnreferencedImages { files } => unreferenced.extend(files.iter().cloned()),
            Problem::UnlabeledImage { file } => unlabeled.push(file.clone()),
            Problem::SplitsGenerated { seed } => generated_seed = Some(*seed),
        }
    }
    if !corrupt.is_empty() {
        let n = corrupt.len();
        report.issue(
            Severity::Error,
            format!("손상되었거나 잘린 이미지 {n}개 (데이터셋에서 제외됨)"),
            format!("{n} corrupt or truncated image(s), left out of the dataset"),
            json!({ "count": n, "files": examples(&corrupt) }),
        );
        report.recommend(
            "손상된 이미지를 원본에서 다시 내보내거나 삭제한 뒤 다시 업로드하세요.",
            "Re-export the corrupt images from their source, or remove them, and upload again.",
        );
    }
    if !missing.is_empty() {
        let n = missing.len();
        report.issue(
            Severity::Error,
            format!("어노테이션이 가리키는 이미지 파일 {n}개가 아카이브에 없습니다"),
            format!("{n} image file(s) referenced by annotations are missing from the archive"),
            json!({ "count": n, "files": examples(&missing) }),
        );
        report.recommend(
            "아카이브에 모든 이미지 파일이 포함되었는지, 어노테이션의 파일 이름이 맞는지 확인하세요.",
            "Make sure the archive includes every image and that annotation file names match.",
        );
    }
    if !unknown.is_empty() {
        let n: u64 = unknown.values().sum();
        report.issue(
            Severity::Error,
            format!("정의되지 않은 클래스/카테고리 id를 사용하는 어노테이션 {n}개 (제외됨)"),
            format!("{n} annotation(s) use undeclared class/category ids and were dropped"),
            json!({ "count": n, "ids": unknown, "files": examples(&unknown_files) }),
        );
        report.recommend(
            "모든 클래스 id가 카테고리 목록(names/categories)에 정의되어 있는지 확인하세요.",
            "Declare every class id used by the annotations in the class list (names/categories).",
        );
    }
    if !malformed.is_empty() {
        let n = malformed.len();
        report.issue(
            Severity::Error,
            format!("형식이 잘못된 어노테이션 {n}개 (제외됨)"),
            format!("{n} malformed annotation(s), dropped"),
            json!({ "count": n, "entries": examples(&malformed) }),
        );
    }
    if !mismatched.is_empty() {
        let n = mismatched.len();
        report.issue(
            Severity::Warning,
            format!("어노테이션의 이미지 크기가 실제와 다른 이미지 {n}개"),
            format!("{n} image(s) whose annotated size differs from the real size"),
            json!({ "count": n, "files": examples(&mismatched) }),
        );
    }
    if !duplicates.is_empty() {
        let n = duplicates.len();
        report.issue(
            Severity::Warning,
            format!("내용이 같은 중복 이미지 그룹 {n}개"),
            format!("{n} group(s) of duplicate images (same content)"),
            json!({ "count": n, "groups": examples(&duplicates) }),
        );
        report.recommend(
            "중복 이미지를 제거하세요: 학습/검증 세트에 같은 이미지가 있으면 평가가 왜곡됩니다.",
            "Remove duplicate images: the same image in train and validation skews evaluation.",
        );
    }
    if !unreferenced.is_empty() {
        let n = unreferenced.len();
        report.issue(
            Severity::Info,
            format!("어노테이션이 참조하지 않는 이미지 파일 {n}개 (무시됨)"),
            format!("{n} image file(s) not referenced by any annotation (ignored)"),
            json!({ "count": n, "files": examples(&unreferenced) }),
        );
    }
    if !unlabeled.is_empty() {
        let n = unlabeled.len();
        report.issue(
            Severity::Warning,
            format!("레이블이 없는 이미지 {n}개 (클래스 폴더 밖에 있어 제외됨)"),
            format!("{n} image(s) without labels (outside any class folder, left out)"),
            json!({ "count": n, "files": examples(&unlabeled) }),
        );
        report.recommend(
            "각 이미지를 해당 클래스 이름의 폴더 안에 넣으세요.",
            "Put every image inside the folder named after its class.",
        );
    }
    if let Some(seed) = generated_seed {
        report.issue(
            Severity::Info,
            "분할 정보가 없어 클래스별 80/15/5 분할을 생성했습니다".to_owned(),
            "No split in the archive: generated a class-stratified 80/15/5 split".to_owned(),
            json!({ "seed": seed, "train": 0.8, "val": 0.15, "test": 0.05 }),
        );
    }
}

fn manifest_checks(report: &mut Report, manifest: &Manifest) {
    if manifest.images.is_empty() {
        report.issue(
            Severity::Error,
            "사용할 수 있는 이미지가 없습니다".to_owned(),
            "The dataset has no usable image".to_owned(),
            json!({ "total_images": 0 }),
        );
        return;
    }
    let classification = manifest.task == TaskType::Classification;
    let n_classes = manifest.classes.len();
    let mut unlabeled = Vec::new();
    let mut outside = Vec::new();
    let mut zero_area = Vec::new();
    let mut out_of_range = Vec::new();
    let mut images_per_class = vec![0u64; n_classes];
    for image in &manifest.images {
        let mut classes_here = HashSet::new();
        if classification {
            match image.label {
                Some(l) if l < n_classes => {
                    classes_here.insert(l);
                }
                Some(l) => out_of_range.push(json!({ "file": image.file, "class_id": l })),
                None => unlabeled.push(image.file.clone()),
            }
        } else if image.boxes.is_empty() {
            unlabeled.push(image.file.clone());
        }
        for b in &image.boxes {
            if b.class_id >= n_classes {
                out_of_range.push(json!({ "file": image.file, "class_id": b.class_id }));
            } else {
                classes_here.insert(b.class_id);
            }
            if !boxes::has_area(b.bbox) {
                zero_area.push(json!({ "file": image.file, "bbox": b.bbox }));
            } else if !boxes::inside_image(b.bbox, image.width, image.height) {
                outside.push(json!({ "file": image.file, "bbox": b.bbox, "width": image.width, "height": image.height }));
            }
        }
        for c in classes_here {
            images_per_class[c] += 1;
        }
    }
    if !out_of_range.is_empty() {
        let n = out_of_range.len();
        report.issue(
            Severity::Error,
            format!("존재하지 않는 클래스 id를 사용하는 레이블 {n}개"),
            format!("{n} label(s) use a class id outside the class list"),
            json!({ "count": n, "labels": examples(&out_of_range) }),
        );
    }
    if !unlabeled.is_empty() {
        let n = unlabeled.len();
        report.issue(
            Severity::Warning,
            format!("레이블이 없는 이미지 {n}개"),
            format!("{n} image(s) without labels"),
            json!({ "count": n, "files": examples(&unlabeled) }),
        );
        report.recommend(
            "레이블이 없는 이미지에 어노테이션을 추가하거나, 배경 이미지로 의도한 것인지 확인하세요.",
            "Annotate the unlabelled images, or make sure they are intended as background images.",
        );
    }
    if !zero_area.is_empty() {
        let n = zero_area.len();
        report.issue(
            Severity::Warning,
            format!("넓이가 0인 박스 {n}개"),
            format!("{n} box(es) with zero area"),
            json!({ "count": n, "boxes": examples(&zero_area) }),
        );
        report.recommend(
            "넓이가 0인 박스를 삭제하거나 수정하세요.",
            "Remove or fix the zero-area boxes.",
        );
    }
    if !outside.is_empty() {
        let n = outside.len();
        report.issue(
            Severity::Warning,
            format!("이미지 범위를 벗어난 박스 {n}개"),
            format!("{n} box(es) extend outside their image"),
            json!({ "count": n, "boxes": examples(&outside) }),
        );
        report.recommend(
            "이미지 밖으로 나간 박스를 이미지 경계에 맞게 잘라내세요.",
            "Clip the boxes that extend outside the image to its borders.",
        );
    }
    class_balance_checks(report, manifest, &images_per_class);
}

fn class_balance_checks(report: &mut Report, manifest: &Manifest, images_per_class: &[u64]) {
    let counts = class_counts(manifest);
    let by_name = |values: &[u64], only: &dyn Fn(u64) -> bool| {
        let mut map = Map::new();
        for (name, &count) in manifest.classes.iter().zip(values) {
            if only(count) {
                map.insert(name.clone(), json!(count));
            }
        }
        Value::Object(map)
    };
    if counts.len() >= 2 {
        let max = counts.iter().copied().max().unwrap_or(0);
        let min = counts.iter().copied().min().unwrap_or(0);
        let percent = (100 * (max - min)).div_ceil(min.max(1));
        if max > 0 && percent >= IMBALANCE_PERCENT {
            report.issue(
                Severity::Warning,
                format!("클래스 불균형 감지 (최대 {percent}% 차이)"),
                format!("Class imbalance detected (up to {percent}% difference)"),
                by_name(&counts, &|_| true),
            );
            report.recommend(
                "데이터 증강(augmentation)을 사용하여 클래스 균형을 맞추는 것을 권장합니다.",
                "Consider data augmentation to balance the classes.",
            );
        }
    }
    let few = by_name(images_per_class, &|c| c < MIN_IMAGES_PER_CLASS);
    if few.as_object().is_some_and(|m| !m.is_empty()) {
        report.issue(
            Severity::Warning,
            format!("이미지가 너무 적은 클래스가 있습니다 (클래스당 최소 {MIN_IMAGES_PER_CLASS}개 권장)"),
            format!("Some classes have too few images (at least {MIN_IMAGES_PER_CLASS} per class recommended)"),
            few,
        );
        report.recommend(
            "이미지가 적은 클래스에 데이터를 더 수집하세요.",
            "Collect more images for the classes with few examples.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language() {
        assert_eq!(
            Lang::from_accept_language("ko-KR,ko;q=0.9,en;q=0.8"),
            Lang::Ko
        );
        assert_eq!(Lang::from_accept_language("en-US,ko;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("en;q=0.4, ko;q=0.9"), Lang::Ko);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(Lang::from_accept_language("*"), Lang::En);
    }
}
