//! Numeric fields: number of classes, epochs, batch size, learning rate and image size.
//!
//! Each field is a row of [`RULES`]: keywords written before the number ("epochs 20",
//! "배치 16", "학습률 0.0003"), keywords or counters written after it ("20 epochs", "3종류",
//! "three classes"), and bare patterns that need no keyword ("1e-3", "224x224"). One regex per
//! rule and form is generated from the row. When a number could belong to two keywords
//! ("20 epochs 32 batch"), [`resolve`] gives each number and each keyword to one field.

use std::ops::Range;

use regex::{Captures, Regex};

use crate::numbers;
use crate::pattern::{alternation, flexible};
use crate::reply::Field;
use crate::text::{ascii_boundary_after, ascii_boundary_before};

/// How a field's number is written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A whole number in digits or words.
    Whole,
    /// A decimal number in digits ("0.001", "3e-4").
    Real,
    /// A side or `WxH` in digits.
    Size,
}

impl Kind {
    fn pattern(self) -> String {
        match self {
            Kind::Whole => format!("{}|{}", numbers::DIGITS, numbers::words_pattern()),
            Kind::Real => numbers::DIGITS.to_string(),
            Kind::Size => r"\d{1,6}(?:\s*[x×*]\s*\d{1,6})?".to_string(),
        }
    }

    fn read(self, text: &str) -> Option<Value> {
        match self {
            Kind::Whole => numbers::whole(text).map(Value::Whole),
            Kind::Real => numbers::value(text).map(Value::Real),
            Kind::Size => {
                let mut sides = text
                    .split(['x', '×', '*'])
                    .map(|s| s.trim().parse::<u64>().ok());
                let width = sides.next()??;
                let height = sides.next().map_or(Some(width), |h| h)?;
                Some(Value::Size([width, height]))
            }
        }
    }
}

/// A number read for a field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    /// Whole number.
    Whole(u64),
    /// Decimal number.
    Real(f64),
    /// `[width, height]`.
    Size([u64; 2]),
}

/// One numeric field and how it is written.
struct Rule {
    field: Field,
    kind: Kind,
    /// Keywords before the number, with confidence.
    before: &'static [(&'static str, f64)],
    /// Keywords or counters after the number, with confidence.
    after: &'static [(&'static str, f64)],
    /// Patterns with a `v` group that need no keyword, with confidence.
    bare: &'static [(&'static str, f64)],
    /// Words that cancel a match when right after it or right before the number ("이미지 500개").
    not_near: &'static [&'static str],
}

/// The numeric fields.
const RULES: &[Rule] = &[
    Rule {
        field: Field::NumClasses,
        kind: Kind::Whole,
        before: &[
            ("클래스 수", 0.95),
            ("클래스 개수", 0.95),
            ("클래스", 0.9),
            ("카테고리", 0.9),
            ("종류", 0.85),
            ("num classes", 0.95),
            ("number of classes", 0.95),
            ("class count", 0.95),
            ("classes", 0.9),
            ("categories", 0.9),
        ],
        after: &[
            ("종류", 0.95),
            ("가지", 0.9),
            ("개 클래스", 0.95),
            ("개의 클래스", 0.95),
            ("개 종류", 0.95),
            ("개의 종류", 0.95),
            ("개 카테고리", 0.95),
            ("개 범주", 0.95),
            ("클래스", 0.95),
            ("카테고리", 0.9),
            ("범주", 0.9),
            ("부류", 0.85),
            ("품종", 0.9),
            ("종", 0.8),
            ("classes", 0.95),
            ("class", 0.9),
            ("categories", 0.95),
            ("category", 0.9),
            ("kinds", 0.9),
            ("types", 0.85),
            ("labels", 0.9),
            ("species", 0.9),
            ("breeds", 0.9),
            ("개", 0.6),
            ("마리", 0.6),
        ],
        bare: &[],
        not_near: &[
            "이미지",
            "사진",
            "장",
            "파일",
            "images",
            "photos",
            "pictures",
            "에폭",
            "epoch",
        ],
    },
    Rule {
        field: Field::Epochs,
        kind: Kind::Whole,
        before: &[
            ("epochs", 0.95),
            ("epoch", 0.95),
            ("num epochs", 0.95),
            ("에폭", 0.95),
            ("에포크", 0.95),
            ("에퐄", 0.9),
            ("이폭", 0.85),
            ("학습 횟수", 0.8),
            ("반복 횟수", 0.8),
        ],
        after: &[
            ("epochs", 0.95),
            ("epoch", 0.95),
            ("에폭", 0.95),
            ("에포크", 0.95),
            ("번 반복", 0.7),
            ("회 반복", 0.7),
        ],
        bare: &[],
        not_near: &[],
    },
    Rule {
        field: Field::BatchSize,
        kind: Kind::Whole,
        before: &[
            ("batch size", 0.95),
            ("batch", 0.9),
            ("mini batch", 0.9),
            ("bs", 0.85),
            ("배치 크기", 0.95),
            ("배치 사이즈", 0.95),
            ("미니 배치", 0.9),
            ("배치", 0.9),
        ],
        after: &[("batch size", 0.9), ("batch", 0.8), ("배치", 0.8)],
        bare: &[],
        not_near: &[],
    },
    Rule {
        field: Field::LearningRate,
        kind: Kind::Real,
        before: &[
            ("learning rate", 0.95),
            ("lr", 0.95),
            ("학습률", 0.95),
            ("학습율", 0.9),
            ("러닝 레이트", 0.95),
            ("학습 속도", 0.7),
        ],
        after: &[("learning rate", 0.8), ("lr", 0.8), ("학습률", 0.8)],
        bare: &[
            (r"(?:^|[^0-9a-z._])(?P<v>\d+(?:\.\d+)?e-\d+)", 0.8),
            (
                r"(?:^|[^0-9a-z._])(?P<v>0?\.0\d*[1-9]\d*)(?:[^0-9.x×*]|$)",
                0.6,
            ),
        ],
        not_near: &[],
    },
    Rule {
        field: Field::ImageSize,
        kind: Kind::Size,
        before: &[
            ("image size", 0.95),
            ("img size", 0.95),
            ("imgsz", 0.95),
            ("input size", 0.9),
            ("resolution", 0.85),
            ("이미지 크기", 0.95),
            ("이미지 사이즈", 0.95),
            ("입력 크기", 0.9),
            ("입력 사이즈", 0.9),
            ("해상도", 0.85),
        ],
        after: &[("px", 0.8), ("픽셀", 0.8), ("pixels", 0.8)],
        bare: &[(r"(?:^|[^0-9a-z._])(?P<v>\d{2,5}\s*[x×*]\s*\d{2,5})", 0.9)],
        not_near: &[],
    },
];

/// Whether `field` is one of the numeric fields.
pub(crate) fn is_numeric(field: Field) -> bool {
    RULES.iter().any(|r| r.field == field)
}

/// A bare number ("50", "224x224", "세") read as the answer to a question about `field`.
pub(crate) fn read_answer(field: Field, text: &str) -> Option<Value> {
    RULES
        .iter()
        .find(|r| r.field == field)?
        .kind
        .read(text.trim())
}

/// Words allowed between a keyword and its number ("에폭은 50", "epochs to 20", "lr=3e-4").
const GLUE: &str = r"(?:\s*(?:[:=]|수는|수를|수|횟수|크기는|크기를|크기|사이즈|값|은|는|을|를|이|가|도|to|of|is|at|as|be|size|count)\s*){0,3}?\s*";

/// A keyword without separators, to find which row a matched keyword came from.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .collect()
}

/// Regex alternation of keywords, longest first.
fn keywords_pattern(keywords: &[(&str, f64)]) -> String {
    alternation(keywords.iter().map(|k| k.0), flexible)
}

/// The compiled regexes of one rule.
struct Compiled {
    before: Option<Regex>,
    after: Option<Regex>,
    bare: Vec<(Regex, f64)>,
}

/// All numeric rules, compiled.
pub(crate) struct NumericRules {
    compiled: Vec<Compiled>,
}

impl NumericRules {
    /// Compiles [`RULES`].
    pub fn new() -> Result<Self, regex::Error> {
        let compiled = RULES
            .iter()
            .map(|rule| {
                let number = rule.kind.pattern();
                let before = (!rule.before.is_empty())
                    .then(|| {
                        let kw = keywords_pattern(rule.before);
                        Regex::new(&format!("(?P<kw>{kw}){GLUE}(?P<v>{number})"))
                    })
                    .transpose()?;
                let after = (!rule.after.is_empty())
                    .then(|| {
                        let kw = keywords_pattern(rule.after);
                        let digits = match rule.kind {
                            Kind::Size => number.clone(),
                            _ => numbers::DIGITS.to_string(),
                        };
                        let words = match rule.kind {
                            Kind::Whole => format!(
                                "|(?:^|[^\\p{{L}}\\p{{N}}])(?P<w>{})",
                                numbers::words_pattern()
                            ),
                            _ => String::new(),
                        };
                        Regex::new(&format!(
                            r"(?:(?:^|[^0-9a-z._])(?P<v>{digits}){words})\s*-?\s*(?P<kw>{kw})"
                        ))
                    })
                    .transpose()?;
                let bare = rule
                    .bare
                    .iter()
                    .map(|(p, c)| Regex::new(p).map(|r| (r, *c)))
                    .collect::<Result<_, _>>()?;
                Ok(Compiled {
                    before,
                    after,
                    bare,
                })
            })
            .collect::<Result<_, regex::Error>>()?;
        Ok(Self { compiled })
    }

    /// Every numeric field found in `text` (lowercase, recognised model names masked).
    pub fn find(&self, text: &str) -> Vec<NumberHit> {
        let mut candidates = Vec::new();
        let mut bare = Vec::new();
        for (rule, compiled) in RULES.iter().zip(&self.compiled) {
            for (regex, before) in [(&compiled.before, true), (&compiled.after, false)] {
                let Some(regex) = regex else { continue };
                let table = if before { rule.before } else { rule.after };
                for caps in regex.captures_iter(text) {
                    if let Some(c) = candidate(rule, table, before, text, &caps) {
                        candidates.push(c);
                    }
                }
            }
            for (regex, confidence) in &compiled.bare {
                for caps in regex.captures_iter(text) {
                    let Some(v) = caps.name("v") else { continue };
                    if let Some(value) = rule.kind.read(v.as_str()) {
                        bare.push(NumberHit {
                            field: rule.field,
                            value,
                            confidence: *confidence,
                            span: v.range(),
                        });
                    }
                }
            }
        }
        let mut hits = resolve(candidates);
        for b in bare {
            let field_taken = hits.iter().any(|h| h.field == b.field);
            let overlaps = hits
                .iter()
                .any(|h| h.span.start < b.span.end && b.span.start < h.span.end);
            if !field_taken && !overlaps {
                hits.push(b);
            }
        }
        hits.sort_by_key(|h| h.span.start);
        hits
    }
}

/// A numeric field found in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumberHit {
    /// Field.
    pub field: Field,
    /// Value.
    pub value: Value,
    /// Confidence of the keyword or pattern.
    pub confidence: f64,
    /// Keyword and number together.
    pub span: Range<usize>,
}

/// A possible reading: this keyword occurrence gives this number to this field.
#[derive(Debug, Clone)]
struct Candidate {
    hit: NumberHit,
    keyword: Range<usize>,
    number: Range<usize>,
    before: bool,
}

fn candidate(
    rule: &Rule,
    table: &[(&str, f64)],
    before: bool,
    text: &str,
    caps: &Captures<'_>,
) -> Option<Candidate> {
    let kw = caps.name("kw")?;
    let number = caps.name("v").or_else(|| caps.name("w"))?;
    let kw_text = squash(kw.as_str());
    let confidence = table
        .iter()
        .find(|(k, _)| squash(k) == kw_text)
        .map(|k| k.1)?;
    // ASCII keywords and English number words must stand alone ("lr" but not "lrs").
    let ascii_edge_ok = |m: regex::Match<'_>| {
        let s = m.as_str();
        (!s.starts_with(|c: char| c.is_ascii_alphanumeric())
            || ascii_boundary_before(text, m.start()))
            && (!s.ends_with(|c: char| c.is_ascii_alphabetic())
                || ascii_boundary_after(text, m.end()))
    };
    if !ascii_edge_ok(kw) || !ascii_edge_ok(number) {
        return None;
    }
    let near_after = text
        .get(kw.end().max(number.end())..)
        .unwrap_or_default()
        .trim_start();
    let near_before = text.get(..number.start()).unwrap_or_default().trim_end();
    if rule
        .not_near
        .iter()
        .any(|w| near_after.starts_with(w) || near_before.ends_with(w))
    {
        return None;
    }
    let value = rule.kind.read(number.as_str())?;
    let span = kw.start().min(number.start())..kw.end().max(number.end());
    Some(Candidate {
        hit: NumberHit {
            field: rule.field,
            value,
            confidence,
            span,
        },
        keyword: kw.range(),
        number: number.range(),
        before,
    })
}

/// Gives each number and each keyword occurrence to at most one field. A number that only one
/// keyword can claim goes first ("20 epochs 32 batch": 20 can only be epochs, so `epochs` is
/// taken and 32 goes to batch); the rest go to the keyword before them, then after them.
fn resolve(mut open: Vec<Candidate>) -> Vec<NumberHit> {
    let mut chosen: Vec<Candidate> = Vec::new();
    let overlaps = |a: &Range<usize>, b: &Range<usize>| a.start < b.end && b.start < a.end;
    loop {
        open.retain(|c| {
            !chosen.iter().any(|k| {
                overlaps(&k.number, &c.number)
                    || overlaps(&k.keyword, &c.keyword)
                    || overlaps(&k.keyword, &c.number)
                    || overlaps(&k.number, &c.keyword)
            })
        });
        let only_reading = open.iter().position(|c| {
            open.iter()
                .filter(|o| overlaps(&o.number, &c.number))
                .count()
                == 1
        });
        let next = only_reading
            .or_else(|| (0..open.len()).min_by_key(|&i| (!open[i].before, open[i].number.start)));
        match next {
            Some(i) => chosen.push(open.swap_remove(i)),
            None => break,
        }
    }
    chosen.into_iter().map(|c| c.hit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(text: &str) -> Vec<(Field, Value)> {
        NumericRules::new()
            .unwrap()
            .find(text)
            .into_iter()
            .map(|h| (h.field, h.value))
            .collect()
    }

    #[test]
    fn keyword_before_and_after() {
        use Field::*;
        use Value::*;
        assert_eq!(find("50 에폭"), vec![(Epochs, Whole(50))]);
        assert_eq!(find("epochs 20"), vec![(Epochs, Whole(20))]);
        assert_eq!(find("20 epochs"), vec![(Epochs, Whole(20))]);
        assert_eq!(find("에폭은 50으로 바꿔줘"), vec![(Epochs, Whole(50))]);
        assert_eq!(find("배치 16"), vec![(BatchSize, Whole(16))]);
        assert_eq!(find("batch size 32"), vec![(BatchSize, Whole(32))]);
        assert_eq!(find("학습률 0.0003"), vec![(LearningRate, Real(0.0003))]);
        assert_eq!(find("lr=3e-4"), vec![(LearningRate, Real(0.0003))]);
        assert_eq!(find("1e-3"), vec![(LearningRate, Real(0.001))]);
        assert_eq!(find("0.001"), vec![(LearningRate, Real(0.001))]);
        assert_eq!(find("224x224"), vec![(ImageSize, Size([224, 224]))]);
        assert_eq!(find("이미지 크기 128"), vec![(ImageSize, Size([128, 128]))]);
        assert_eq!(find("3종류"), vec![(NumClasses, Whole(3))]);
        assert_eq!(find("세 종류"), vec![(NumClasses, Whole(3))]);
        assert_eq!(find("네 가지"), vec![(NumClasses, Whole(4))]);
        assert_eq!(find("여섯 개 클래스"), vec![(NumClasses, Whole(6))]);
        assert_eq!(find("10개 클래스"), vec![(NumClasses, Whole(10))]);
        assert_eq!(find("three classes"), vec![(NumClasses, Whole(3))]);
        assert_eq!(find("3 categories"), vec![(NumClasses, Whole(3))]);
    }

    #[test]
    fn each_number_and_keyword_once() {
        use Field::*;
        use Value::*;
        assert_eq!(
            find("20 epochs 32 batch"),
            vec![(Epochs, Whole(20)), (BatchSize, Whole(32))]
        );
        assert_eq!(
            find("batch 16 epochs 20"),
            vec![(BatchSize, Whole(16)), (Epochs, Whole(20))]
        );
        assert_eq!(
            find("3 classes, 10 epochs, lr 0.01"),
            vec![
                (NumClasses, Whole(3)),
                (Epochs, Whole(10)),
                (LearningRate, Real(0.01))
            ]
        );
    }

    #[test]
    fn counts_of_images_are_not_classes() {
        assert_eq!(find("이미지 500개"), vec![]);
        assert_eq!(
            find("고양이 3개 분류"),
            vec![(Field::NumClasses, Value::Whole(3))]
        );
    }
}
