//! The caller's datasets and how a message names one: by id ("ds_123 써줘") or by name
//! ("use my cats dataset", "고양이 데이터셋으로").

use std::ops::Range;

use domain::DatasetStatus;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::hangul::strip_endings;
use crate::lexicon::{DATASET_PARTICLES, DATASET_PREPOSITIONS, NAME_STOPWORDS};
use crate::text::Text;

/// One of the caller's datasets.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRef {
    /// `ds_…` id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Processing state; only `ready` datasets can be trained on.
    pub status: DatasetStatus,
    /// Class names, when known (after ingest).
    pub classes: Vec<String>,
}

impl DatasetRef {
    /// A dataset without known classes.
    pub fn new(id: impl Into<String>, name: impl Into<String>, status: DatasetStatus) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            status,
            classes: Vec::new(),
        }
    }

    /// The same dataset with its class names.
    pub fn with_classes<S: Into<String>>(mut self, classes: impl IntoIterator<Item = S>) -> Self {
        self.classes = classes.into_iter().map(Into::into).collect();
        self
    }
}

/// Which dataset a message named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatasetMention {
    /// One of the caller's datasets.
    Matched {
        /// Its id.
        id: String,
    },
    /// An id or name that matches none of the caller's datasets.
    NotFound {
        /// What the user wrote.
        text: String,
    },
    /// A name that fits several datasets equally.
    Ambiguous {
        /// The datasets it fits.
        ids: Vec<String>,
    },
}

/// A dataset named in a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DatasetHit {
    pub mention: DatasetMention,
    pub confidence: f64,
    /// Spans to hide from the other rules (lowercase text).
    pub spans: Vec<Range<usize>>,
}

/// Words of a name or message, lowercase, particles and plural `s` removed, stop words dropped.
fn content_words(text: &str) -> Vec<(String, Range<usize>)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let inside = c.is_alphanumeric();
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let raw = text.get(s..i).unwrap_or_default();
                let word = stem(strip_endings(raw));
                if !word.is_empty() && !NAME_STOPWORDS.contains(&word.as_str()) {
                    words.push((word, s..i));
                }
                start = None;
            }
            _ => {}
        }
    }
    words
}

/// English plural `s` removed from words longer than three letters.
fn stem(word: &str) -> String {
    let lower = word.to_lowercase();
    match lower.strip_suffix('s') {
        Some(s) if s.len() >= 3 && s.is_ascii() && !s.ends_with('s') => s.to_string(),
        _ => lower,
    }
}

/// Finds the dataset a message names among `datasets`.
///
/// An id (`ds_…`) always counts. A name, or the words of a name ("use my cats dataset" for "My
/// Cat Dataset"), counts next to a word such as "dataset"/"데이터셋" (`keywords`, their spans),
/// anywhere when the user is answering the dataset question (`answering`), and a whole name that
/// is distinctive (not only letters and spaces) counts anywhere.
pub(crate) fn find(
    text: &Text,
    ids: &Regex,
    datasets: &[DatasetRef],
    keywords: &[Range<usize>],
    answering: bool,
) -> Option<DatasetHit> {
    if let Some(m) = ids.find(&text.lower) {
        let written = text.original_of(&m.range()).to_string();
        let found = datasets
            .iter()
            .find(|d| d.id.eq_ignore_ascii_case(&written));
        let mention = match found {
            Some(d) => DatasetMention::Matched { id: d.id.clone() },
            None => DatasetMention::NotFound { text: written },
        };
        return Some(DatasetHit {
            mention,
            confidence: 1.0,
            spans: vec![m.range()],
        });
    }
    let message_words = content_words(&text.lower);
    let near = |span: &Range<usize>| {
        answering
            || keywords
                .iter()
                .any(|k| words_between(&text.lower, span, k) <= 2)
    };
    let mut best: Vec<(&DatasetRef, f64, Vec<Range<usize>>)> = Vec::new();
    for d in datasets {
        let Some((score, spans)) = name_score(&d.name, &text.lower, &message_words, &near) else {
            continue;
        };
        match best.first() {
            Some((_, s, _)) if *s > score => {}
            Some((_, s, _)) if *s == score => best.push((d, score, spans)),
            _ => best = vec![(d, score, spans)],
        }
    }
    let spans: Vec<Range<usize>> = best.iter().flat_map(|b| b.2.clone()).collect();
    match best.as_slice() {
        [] => None,
        [(d, score, _)] => Some(DatasetHit {
            mention: DatasetMention::Matched { id: d.id.clone() },
            confidence: (0.6 + 0.35 * score).min(0.95),
            spans,
        }),
        many => Some(DatasetHit {
            mention: DatasetMention::Ambiguous {
                ids: many.iter().map(|b| b.0.id.clone()).collect(),
            },
            confidence: 0.5,
            spans,
        }),
    }
}

/// How well `name` fits the message, in (0, 1], with the spans of the words that fit.
fn name_score(
    name: &str,
    lower: &str,
    message_words: &[(String, Range<usize>)],
    near: &dyn Fn(&Range<usize>) -> bool,
) -> Option<(f64, Vec<Range<usize>>)> {
    let name_lower = name.to_lowercase();
    let name_lower = name_lower.trim();
    if name_lower.chars().count() >= 2
        && let Some(at) = find_bounded(lower, name_lower)
    {
        // "my-drive/cats" or "cats_v2" cannot be an ordinary phrase; "고양이 사진" can.
        let distinctive = name_lower.contains(|c: char| !c.is_alphabetic() && !c.is_whitespace());
        let span = at..at + name_lower.len();
        if distinctive || near(&span) || introduced(lower, &span) {
            return Some((1.0, vec![span]));
        }
    }
    let name_words = content_words(name_lower);
    if name_words.is_empty() {
        return None;
    }
    let spans: Vec<Range<usize>> = name_words
        .iter()
        .filter_map(|(w, _)| {
            message_words
                .iter()
                .find(|(m, s)| m == w && near(s))
                .map(|(_, s)| s.clone())
        })
        .collect();
    let score = spans.len() as f64 / name_words.len() as f64;
    (score >= 0.5).then_some((score * 0.9, spans))
}

/// Whether a name at `span` is introduced as the data: a preposition before it ("on cats") or a
/// particle right after it ("cats로").
fn introduced(lower: &str, span: &Range<usize>) -> bool {
    let before = lower.get(..span.start).unwrap_or_default().trim_end();
    let preposition = before
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .is_some_and(|w| DATASET_PREPOSITIONS.contains(&w))
        && before.len() < span.start;
    let after = lower.get(span.end..).unwrap_or_default();
    let word_end = after
        .find(|c: char| !c.is_alphanumeric())
        .unwrap_or(after.len());
    let particle = DATASET_PARTICLES.contains(&after.get(..word_end).unwrap_or_default());
    preposition || particle
}

/// Number of words between two spans of `text`; `usize::MAX` when punctuation separates them
/// ("my data, classes cat and dog": "cat" is not about the data).
fn words_between(text: &str, a: &Range<usize>, b: &Range<usize>) -> usize {
    let gap = if a.end <= b.start {
        a.end..b.start
    } else {
        b.end..a.start.max(b.end)
    };
    let between = text.get(gap).unwrap_or_default();
    if between.contains(|c: char| !c.is_alphanumeric() && !c.is_whitespace() && c != '\'') {
        return usize::MAX;
    }
    between
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .count()
}

/// Position of `needle` in `hay` where it is not part of a longer ASCII word.
fn find_bounded(hay: &str, needle: &str) -> Option<usize> {
    hay.match_indices(needle).map(|(i, _)| i).find(|&i| {
        crate::text::ascii_boundary_before(hay, i)
            && crate::text::ascii_boundary_after(hay, i + needle.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets() -> Vec<DatasetRef> {
        vec![
            DatasetRef::new("ds_123", "My Cat Dataset", DatasetStatus::Ready),
            DatasetRef::new("ds_456", "고양이 사진", DatasetStatus::Ready),
            DatasetRef::new("ds_789", "my-drive/flowers", DatasetStatus::Processing),
        ]
    }

    fn mention(message: &str, answering: bool) -> Option<DatasetMention> {
        let ids = Regex::new(r"\bds_[0-9a-z_\-]+").unwrap();
        let text = Text::new(message);
        let keywords: Vec<Range<usize>> = ["dataset", "데이터셋", "data"]
            .iter()
            .filter_map(|k| text.lower.find(k).map(|at| at..at + k.len()))
            .collect();
        find(&text, &ids, &sets(), &keywords, answering).map(|h| h.mention)
    }

    fn matched(id: &str) -> Option<DatasetMention> {
        Some(DatasetMention::Matched { id: id.into() })
    }

    #[test]
    fn by_id_and_name() {
        assert_eq!(mention("ds_123 써줘", false), matched("ds_123"));
        assert_eq!(
            mention("ds_999", false),
            Some(DatasetMention::NotFound {
                text: "ds_999".into()
            })
        );
        assert_eq!(mention("use my cats dataset", false), matched("ds_123"));
        assert_eq!(mention("고양이 데이터셋으로", false), matched("ds_456"));
        assert_eq!(mention("my-drive/flowers please", false), matched("ds_789"));
        assert_eq!(mention("고양이 3종류 분류", false), None);
        assert_eq!(
            mention("make a model for my data, classes cat and dog", false),
            None
        );
        assert_eq!(mention("cat", true), matched("ds_123"));
        assert_eq!(
            mention("train on my-drive/flowers", false),
            matched("ds_789")
        );
        assert_eq!(mention("고양이 사진으로 분류", false), matched("ds_456"));
        assert_eq!(mention("resnet18 on 고양이 사진", false), matched("ds_456"));
        assert_eq!(mention("고양이 사진 분류", false), None);
    }
}
