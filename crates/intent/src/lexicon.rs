//! Phrase tables (synonym → value) and the matcher that finds them in a message.
//!
//! Everything here is data: adding a synonym is adding a row.

use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};
use domain::dataset::TaskType;

use crate::hyper::Optimizer;
use crate::intent::Command;
use crate::text::{ascii_boundary_after, ascii_boundary_before};

/// A phrase found in a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hit<T> {
    /// Byte range in the lowercase text.
    pub span: Range<usize>,
    /// What the phrase means.
    pub value: T,
    /// How sure the phrase makes us.
    pub confidence: f64,
}

/// A table of lowercase phrases compiled into one Aho-Corasick automaton (leftmost-longest).
/// A phrase edge that is an ASCII letter or digit must sit at a word boundary ("sgd" but not
/// "sgdx"); Hangul edges need none, since particles attach to Korean words ("분류하는").
pub(crate) struct Lexicon<T> {
    matcher: AhoCorasick,
    rows: Vec<(String, T, f64)>,
}

impl<T: Clone> Lexicon<T> {
    /// Compiles `rows` of (phrase, value, confidence).
    pub fn new(rows: &[(&str, T, f64)]) -> Result<Self, aho_corasick::BuildError> {
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(rows.iter().map(|r| r.0))?;
        let rows = rows
            .iter()
            .map(|(p, v, c)| (p.to_string(), v.clone(), *c))
            .collect();
        Ok(Self { matcher, rows })
    }

    /// Every phrase of the table in `text`, left to right.
    pub fn find(&self, text: &str) -> Vec<Hit<T>> {
        self.matcher
            .find_iter(text)
            .filter_map(|m| {
                let (phrase, value, confidence) = self.rows.get(m.pattern().as_usize())?;
                let starts_ascii = phrase.starts_with(|c: char| c.is_ascii_alphanumeric());
                let ends_ascii = phrase.ends_with(|c: char| c.is_ascii_alphanumeric());
                let bounded = (!starts_ascii || ascii_boundary_before(text, m.start()))
                    && (!ends_ascii || ascii_boundary_after(text, m.end()));
                bounded.then(|| Hit {
                    span: m.range(),
                    value: value.clone(),
                    confidence: *confidence,
                })
            })
            .collect()
    }
}

/// Words naming a task.
pub(crate) const TASKS: &[(&str, TaskType, f64)] = &[
    ("분류", TaskType::Classification, 0.95),
    ("구분", TaskType::Classification, 0.75),
    ("구별", TaskType::Classification, 0.75),
    ("판별", TaskType::Classification, 0.7),
    ("classification", TaskType::Classification, 0.95),
    ("classify", TaskType::Classification, 0.95),
    ("classifies", TaskType::Classification, 0.95),
    ("classifier", TaskType::Classification, 0.95),
    ("classifying", TaskType::Classification, 0.95),
    ("categorize", TaskType::Classification, 0.8),
    ("categorise", TaskType::Classification, 0.8),
    ("distinguish", TaskType::Classification, 0.75),
    ("tell apart", TaskType::Classification, 0.75),
    ("탐지", TaskType::Detection, 0.95),
    ("검출", TaskType::Detection, 0.95),
    ("디텍션", TaskType::Detection, 0.95),
    ("감지", TaskType::Detection, 0.8),
    ("위치를 찾", TaskType::Detection, 0.7),
    ("바운딩 박스", TaskType::Detection, 0.8),
    ("바운딩박스", TaskType::Detection, 0.8),
    ("detection", TaskType::Detection, 0.95),
    ("detect", TaskType::Detection, 0.95),
    ("detects", TaskType::Detection, 0.95),
    ("detector", TaskType::Detection, 0.95),
    ("detecting", TaskType::Detection, 0.95),
    ("bounding box", TaskType::Detection, 0.8),
    ("bounding boxes", TaskType::Detection, 0.8),
    ("localize", TaskType::Detection, 0.7),
    ("세그멘테이션", TaskType::Segmentation, 0.95),
    ("세그먼테이션", TaskType::Segmentation, 0.95),
    ("세그맨테이션", TaskType::Segmentation, 0.9),
    ("분할", TaskType::Segmentation, 0.9),
    ("segmentation", TaskType::Segmentation, 0.95),
    ("segment", TaskType::Segmentation, 0.9),
    ("segmenter", TaskType::Segmentation, 0.9),
    ("segmenting", TaskType::Segmentation, 0.9),
];

/// Words naming an optimizer.
pub(crate) const OPTIMIZERS: &[(&str, Optimizer, f64)] = &[
    ("adamw", Optimizer::AdamW, 0.95),
    ("adam w", Optimizer::AdamW, 0.9),
    ("adam_w", Optimizer::AdamW, 0.9),
    ("아담w", Optimizer::AdamW, 0.9),
    ("아담 w", Optimizer::AdamW, 0.9),
    ("아담더블유", Optimizer::AdamW, 0.9),
    ("adam", Optimizer::Adam, 0.95),
    ("아담", Optimizer::Adam, 0.9),
    ("sgd", Optimizer::Sgd, 0.95),
    ("에스지디", Optimizer::Sgd, 0.9),
    ("확률적 경사 하강법", Optimizer::Sgd, 0.9),
    ("확률적 경사하강법", Optimizer::Sgd, 0.9),
    ("stochastic gradient descent", Optimizer::Sgd, 0.95),
];

/// Requests anywhere in a message: start training, edit the configuration, take the suggestion.
pub(crate) const COMMANDS: &[(&str, Command, f64)] = &[
    ("start_training", Command::Start, 1.0),
    ("시작해", Command::Start, 0.9),
    ("시작 해", Command::Start, 0.9),
    ("시작하자", Command::Start, 0.9),
    ("시작할게", Command::Start, 0.9),
    ("시작할래", Command::Start, 0.9),
    ("시작하세요", Command::Start, 0.9),
    ("시작합시다", Command::Start, 0.9),
    ("학습 시작", Command::Start, 0.9),
    ("훈련 시작", Command::Start, 0.9),
    ("진행해", Command::Start, 0.8),
    ("진행 해", Command::Start, 0.8),
    ("start training", Command::Start, 0.9),
    ("start the training", Command::Start, 0.9),
    ("start it", Command::Start, 0.9),
    ("start now", Command::Start, 0.9),
    ("let's start", Command::Start, 0.9),
    ("lets start", Command::Start, 0.9),
    ("go ahead", Command::Start, 0.9),
    ("kick off", Command::Start, 0.8),
    ("launch", Command::Start, 0.8),
    ("begin training", Command::Start, 0.9),
    ("edit_config", Command::Edit, 1.0),
    ("설정 수정", Command::Edit, 0.9),
    ("edit config", Command::Edit, 0.9),
    ("edit the config", Command::Edit, 0.9),
    ("기본값", Command::UseDefault, 0.9),
    ("기본으로", Command::UseDefault, 0.9),
    ("추천", Command::UseDefault, 0.8),
    ("아무거나", Command::UseDefault, 0.9),
    ("알아서", Command::UseDefault, 0.9),
    ("상관없", Command::UseDefault, 0.8),
    ("default", Command::UseDefault, 0.9),
    ("recommended", Command::UseDefault, 0.8),
    ("recommend", Command::UseDefault, 0.8),
    ("whatever", Command::UseDefault, 0.8),
    ("you choose", Command::UseDefault, 0.9),
    ("up to you", Command::UseDefault, 0.9),
    ("doesn't matter", Command::UseDefault, 0.8),
    ("don't care", Command::UseDefault, 0.8),
];

/// Whole messages that confirm ("네", "ok"): a start request once the configuration is complete.
pub(crate) const CONFIRMATIONS: &[&str] = &[
    "시작",
    "start",
    "네",
    "예",
    "응",
    "어",
    "좋아",
    "좋아요",
    "그래",
    "그래요",
    "오케이",
    "콜",
    "ㅇㅇ",
    "고고",
    "ok",
    "okay",
    "yes",
    "yep",
    "yeah",
    "sure",
    "go",
    "let's go",
    "lets go",
    "do it",
    "sounds good",
];

/// Words saying a dataset is meant ("데이터셋", "dataset").
pub(crate) const DATASET_WORDS: &[(&str, (), f64)] = &[
    ("데이터셋", (), 0.9),
    ("데이터 셋", (), 0.9),
    ("데이타셋", (), 0.9),
    ("데이터", (), 0.7),
    ("데이타", (), 0.7),
    ("폴더", (), 0.6),
    ("dataset", (), 0.9),
    ("datasets", (), 0.9),
    ("data set", (), 0.9),
    ("data", (), 0.7),
    ("folder", (), 0.6),
];

/// Words before a dataset's whole name that make it the data to train on without the word
/// "dataset" ("resnet18 on cats").
pub(crate) const DATASET_PREPOSITIONS: &[&str] = &["on", "from", "using", "in", "over"];

/// Particles right after a dataset's whole name that make it the data to train on ("cats로",
/// "cats에서").
pub(crate) const DATASET_PARTICLES: &[&str] = &["로", "으로", "에서", "에", "로요", "으로요"];

/// Phrases that fix the number of classes without a numeral ("binary", "이진 분류").
pub(crate) const CLASS_COUNT_WORDS: &[(&str, u64, f64)] =
    &[("binary", 2, 0.8), ("이진", 2, 0.8), ("두 클래스", 2, 0.9)];

/// Words that join list items ("apples and pears", "사자 및 호랑이").
pub(crate) const LIST_WORDS: &[&str] = &[
    "and",
    "or",
    "vs",
    "versus",
    "&",
    "및",
    "그리고",
    "또는",
    "혹은",
    "아니면",
    "랑",
    "하고",
];

/// Punctuation that joins list items.
pub(crate) const LIST_PUNCTUATION: &[char] = &[',', '、', '/', '·', '+', '&', ';'];

/// English words that end a list item: they are part of the request, not a class name.
pub(crate) const EN_BOUNDARY_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "i",
    "we",
    "you",
    "me",
    "us",
    "my",
    "our",
    "your",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "them",
    "to",
    "of",
    "for",
    "in",
    "on",
    "at",
    "by",
    "with",
    "using",
    "use",
    "used",
    "into",
    "from",
    "between",
    "among",
    "please",
    "pls",
    "can",
    "could",
    "would",
    "will",
    "should",
    "want",
    "wanna",
    "need",
    "like",
    "make",
    "build",
    "create",
    "train",
    "training",
    "trained",
    "classify",
    "classification",
    "classifier",
    "classes",
    "class",
    "categories",
    "category",
    "kinds",
    "kind",
    "types",
    "type",
    "labels",
    "label",
    "species",
    "breeds",
    "model",
    "models",
    "network",
    "detect",
    "detection",
    "detector",
    "segment",
    "segmentation",
    "dataset",
    "datasets",
    "data",
    "set",
    "images",
    "image",
    "photos",
    "photo",
    "pictures",
    "picture",
    "epochs",
    "epoch",
    "batch",
    "size",
    "learning",
    "rate",
    "lr",
    "optimizer",
    "start",
    "go",
    "let",
    "lets",
    "let's",
    "be",
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "help",
    "hi",
    "hello",
    "hey",
    "new",
    "recognize",
    "recognise",
    "identify",
    "distinguish",
    "tell",
    "apart",
    "sort",
    "separate",
    "only",
    "just",
    "also",
    "then",
    "now",
    "thanks",
    "thank",
    "change",
    "set",
    "named",
    "called",
    "which",
    "where",
    "what",
    "they",
    "there",
    "here",
    "some",
    "different",
    "objects",
    "object",
    "things",
    "yes",
    "no",
    "called",
    "names",
    "name",
    "are:",
    "uploaded",
    "upload",
    "folder",
    "boxes",
    "box",
];

/// Korean words that end a list item, compared after particles are stripped.
pub(crate) const KO_BOUNDARY_WORDS: &[&str] = &[
    "좀",
    "그냥",
    "내",
    "제",
    "나의",
    "저의",
    "우리",
    "이거",
    "저거",
    "그거",
    "이것",
    "등",
    "등등",
    "줘",
    "주세요",
    "해",
    "한",
    "할",
    "된",
    "되는",
    "있는",
    "같은",
    "하는",
    "이름",
    "이름은",
    "총",
    "각각",
    "모두",
    "전부",
    "다",
    "것",
    "거",
    "수",
    "새로운",
    "기존",
    "안녕",
    "안녕하세요",
    "먼저",
    "그럼",
    "근데",
    "아니",
    "아니요",
    "혹시",
    "이번엔",
    "이번에는",
];

/// Prefixes of Korean words that end a list item (request verbs, field names).
pub(crate) const KO_BOUNDARY_PREFIXES: &[&str] = &[
    "분류",
    "구분",
    "구별",
    "탐지",
    "검출",
    "감지",
    "세그",
    "분할",
    "학습",
    "훈련",
    "모델",
    "만들",
    "만드",
    "해주",
    "해줘",
    "하고싶",
    "싶",
    "데이터",
    "데이타",
    "사용",
    "써줘",
    "써주",
    "써서",
    "이용",
    "클래스",
    "종류",
    "카테고리",
    "범주",
    "이미지",
    "사진",
    "에폭",
    "에포크",
    "배치",
    "옵티마이저",
    "인식",
    "판별",
    "나누",
    "나눠",
    "찾아",
    "찾는",
    "알려",
    "부탁",
    "시작",
    "바꿔",
    "바꾸",
    "변경",
    "설정",
    "라벨",
    "레이블",
    "구성",
    "진행",
    "돌려",
    "가능",
    "필요",
    "원해",
    "원합",
    "싶습",
    "폴더",
    "업로드",
    "올린",
    "올려",
];

/// Endings of Korean words that end a list item (verb forms).
pub(crate) const KO_BOUNDARY_SUFFIXES: &[&str] = &[
    "줘",
    "주세요",
    "해요",
    "하는",
    "할래",
    "합니다",
    "싶어",
    "하자",
    "해봐",
    "할게",
    "된",
    "되는",
];

/// Words ignored when comparing a message with a dataset's name.
pub(crate) const NAME_STOPWORDS: &[&str] = &[
    "my",
    "the",
    "a",
    "our",
    "your",
    "dataset",
    "datasets",
    "data",
    "set",
    "images",
    "photos",
    "use",
    "with",
    "please",
    "내",
    "제",
    "나의",
    "저의",
    "우리",
    "데이터셋",
    "데이터",
    "데이타셋",
    "사진",
    "이미지",
    "폴더",
    "folder",
    "써줘",
    "사용",
    "사용해줘",
    "써",
    "으로",
    "로",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_phrase_and_ascii_boundaries() {
        let lex = Lexicon::new(OPTIMIZERS).unwrap();
        let hits = lex.find("use adamw, not adam or sgdx; 아담으로");
        let values: Vec<_> = hits.iter().map(|h| h.value).collect();
        assert_eq!(
            values,
            vec![Optimizer::AdamW, Optimizer::Adam, Optimizer::Adam]
        );
    }

    #[test]
    fn korean_words_take_particles() {
        let lex = Lexicon::new(TASKS).unwrap();
        let hits = lex.find("고양이를 분류하는 모델");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].value, TaskType::Classification);
    }
}
