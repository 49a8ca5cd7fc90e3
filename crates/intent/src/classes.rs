//! Class names from lists: "치즈, 나비, 츄르", "apples and pears", "사자랑 호랑이",
//! "cats, dogs, and birds", "치즈, 나비, 츄르야" (particles and endings stripped).
//!
//! The text arrives with every recognised span (models, numbers, datasets, task words) masked.
//! It is cut into runs at boundaries (masks, sentence punctuation, request words from the
//! lexicon); a run whose words are joined by list separators is a list of class names.

use std::ops::Range;

use crate::hangul::{has_hangul, is_ending, strip_conjunction, strip_endings};
use crate::lexicon::{
    EN_BOUNDARY_WORDS, KO_BOUNDARY_PREFIXES, KO_BOUNDARY_SUFFIXES, KO_BOUNDARY_WORDS,
    LIST_PUNCTUATION, LIST_WORDS,
};
use crate::text::{MASK, Text};

/// Quotation marks around names ("\"cat\", \"dog\"") are ignored.
const QUOTES: &[char] = &[
    '"', '“', '”', '‘', '’', '`', '«', '»', '「', '」', '『', '』',
];

/// Most words a class name may have.
const MAX_WORDS: usize = 3;

/// A piece of the masked text.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A word that may be (part of) a class name.
    Word(Range<usize>),
    /// A word ending in a list particle ("사자랑"): the stem, then a separator, when another word
    /// follows; the whole word when it ends the run ("파랑" is blue, not 파 + 랑).
    Joined {
        /// The word without the particle.
        stem: Range<usize>,
        /// The whole word.
        word: Range<usize>,
    },
    /// A list separator.
    Sep,
    /// Anything that ends a list.
    Boundary,
}

/// Class names found in a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClassList {
    /// Names in the user's spelling, without particles, duplicates removed.
    pub names: Vec<String>,
    /// Confidence.
    pub confidence: f64,
}

/// Whether a lowercase word ends a list.
fn is_boundary(word: &str) -> bool {
    if has_hangul(word) {
        let stem = strip_endings(word);
        KO_BOUNDARY_WORDS.contains(&word)
            || KO_BOUNDARY_WORDS.contains(&stem)
            || EN_BOUNDARY_WORDS.contains(&stem)
            || KO_BOUNDARY_PREFIXES.iter().any(|p| word.starts_with(p))
            || KO_BOUNDARY_SUFFIXES
                .iter()
                .any(|s| word.len() > s.len() && word.ends_with(s))
    } else {
        EN_BOUNDARY_WORDS.contains(&word)
    }
}

/// Splits the masked lowercase text into tokens.
fn tokenize(masked: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut start: Option<usize> = None;
    let word_char = |c: char| c.is_alphanumeric() || matches!(c, '\'' | '-' | '_');
    for (i, c) in masked
        .char_indices()
        .chain(std::iter::once((masked.len(), ' ')))
    {
        if word_char(c) && c != MASK {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            push_word(&mut tokens, masked, s..i);
        }
        if c == MASK || !(c.is_whitespace() || QUOTES.contains(&c) || LIST_PUNCTUATION.contains(&c))
        {
            tokens.push(Token::Boundary);
        } else if LIST_PUNCTUATION.contains(&c) {
            tokens.push(Token::Sep);
        }
    }
    tokens
}

fn push_word(tokens: &mut Vec<Token>, masked: &str, span: Range<usize>) {
    let raw = masked.get(span.clone()).unwrap_or_default();
    let word = raw.trim_matches(['\'', '-', '_']);
    if word.is_empty() {
        return;
    }
    let start = span.start + (raw.len() - raw.trim_start_matches(['\'', '-', '_']).len());
    let span = start..start + word.len();
    let after_mask = masked.get(..start).is_some_and(|s| s.ends_with(MASK));
    if after_mask && is_ending(word) {
        // The particle of a recognised value ("0.001로"), not a word.
        tokens.push(Token::Boundary);
    } else if LIST_WORDS.contains(&word) {
        tokens.push(Token::Sep);
    } else if is_boundary(word) {
        tokens.push(Token::Boundary);
    } else if let Some(stem) = strip_conjunction(word).filter(|s| !is_boundary(s)) {
        tokens.push(Token::Joined {
            stem: span.start..span.start + stem.len(),
            word: span,
        });
    } else {
        tokens.push(Token::Word(span));
    }
}

/// Items of one run: word spans grouped by separators.
fn items(run: &[Token]) -> Vec<Vec<Range<usize>>> {
    let mut items = vec![Vec::new()];
    for (i, token) in run.iter().enumerate() {
        let word_follows = || {
            run[i + 1..]
                .iter()
                .any(|t| matches!(t, Token::Word(_) | Token::Joined { .. }))
        };
        match token {
            Token::Word(span) => {
                if let Some(last) = items.last_mut() {
                    last.push(span.clone());
                }
            }
            Token::Joined { stem, word } => {
                let follows = word_follows();
                if let Some(last) = items.last_mut() {
                    last.push(if follows { stem.clone() } else { word.clone() });
                }
                if follows {
                    items.push(Vec::new());
                }
            }
            Token::Sep => items.push(Vec::new()),
            Token::Boundary => {}
        }
    }
    items.retain(|i| !i.is_empty());
    items
}

/// Trims the first item to its last words and the last item to its first words: words beside a
/// list are more often context ("고양이 치즈, 나비") than part of a name. Korean names get as many
/// words as the longest other item, English ones one more ("golden retriever, labrador").
fn trim_edges(items: &mut [Vec<Range<usize>>], text: &Text) {
    let n = items.len();
    if n < 2 {
        return;
    }
    for edge in [0, n - 1] {
        let others = items
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != edge)
            .map(|(_, it)| it.len())
            .max()
            .unwrap_or(1);
        let item = &mut items[edge];
        let hangul = item.iter().any(|s| has_hangul(text.original_of(s)));
        let limit = (if hangul { others } else { others + 1 }).min(MAX_WORDS);
        if item.len() > limit {
            let cut = item.len() - limit;
            if edge == 0 {
                item.drain(..cut);
            } else {
                item.truncate(limit);
            }
        }
    }
}

/// The name an item stands for, in the user's spelling, endings stripped.
fn name_of(item: &[Range<usize>], text: &Text) -> Option<String> {
    let (first, last) = (item.first()?, item.last()?);
    let raw = text.original_of(&(first.start..last.end));
    let name = strip_endings(raw)
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_string();
    name.chars().any(char::is_alphabetic).then_some(name)
}

fn dedupe(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o.to_lowercase() == n.to_lowercase()) {
            out.push(n);
        }
    }
    out
}

/// The list of class names in `masked` (the lowercase text with recognised spans masked).
/// `answering`: the user is answering the class-names question, so words separated only by
/// spaces ("사자 호랑이 곰") count as a list too.
pub(crate) fn find_list(masked: &str, text: &Text, answering: bool) -> Option<ClassList> {
    let tokens = tokenize(masked);
    let runs = tokens.split(|t| *t == Token::Boundary);
    let mut best: Option<ClassList> = None;
    for run in runs {
        let mut items = items(run);
        let middle_too_long = items.len() > 2
            && items[1..items.len() - 1]
                .iter()
                .any(|i| i.len() > MAX_WORDS);
        if items.len() < 2 || middle_too_long {
            continue;
        }
        trim_edges(&mut items, text);
        let names = dedupe(items.iter().filter_map(|i| name_of(i, text)).collect());
        let better = best.as_ref().is_none_or(|b| names.len() > b.names.len());
        if names.len() >= 2 && better {
            best = Some(ClassList {
                names,
                confidence: 0.9,
            });
        }
    }
    if best.is_none() && answering {
        let words: Vec<String> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Word(span) | Token::Joined { word: span, .. } => {
                    name_of(std::slice::from_ref(span), text)
                }
                _ => None,
            })
            .collect();
        let names = dedupe(words);
        if names.len() >= 2 {
            best = Some(ClassList {
                names,
                confidence: 0.75,
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(message: &str) -> Vec<String> {
        let text = Text::new(message);
        find_list(&text.lower, &text, false)
            .map(|l| l.names)
            .unwrap_or_default()
    }

    #[test]
    fn lists() {
        assert_eq!(list("치즈, 나비, 츄르"), ["치즈", "나비", "츄르"]);
        assert_eq!(list("치즈, 나비, 츄르야"), ["치즈", "나비", "츄르"]);
        assert_eq!(list("apples and pears"), ["apples", "pears"]);
        assert_eq!(list("사자랑 호랑이"), ["사자", "호랑이"]);
        assert_eq!(list("사자와 호랑이를 구분하는 모델"), ["사자", "호랑이"]);
        assert_eq!(list("cats, dogs, and birds"), ["cats", "dogs", "birds"]);
        assert_eq!(
            list("classify Golden Retriever, Labrador and Poodle"),
            ["Golden Retriever", "Labrador", "Poodle"]
        );
        assert_eq!(
            list("고양이 치즈, 나비, 츄르 분류해줘"),
            ["치즈", "나비", "츄르"]
        );
        assert_eq!(list("호랑이랑 곰이랑 사자"), ["호랑이", "곰", "사자"]);
        assert_eq!(list("\"cat\", \"dog\""), ["cat", "dog"]);
        assert_eq!(list("빨강, 초록, 파랑"), ["빨강", "초록", "파랑"]);
        assert_eq!(list("개와 고양이를 구분하는 모델"), ["개", "고양이"]);
        assert_eq!(list("two classes: ok and defect"), ["ok", "defect"]);
    }

    #[test]
    fn not_lists() {
        assert!(list("고양이 분류하는 모델 만들어줘").is_empty());
        assert!(list("train a model and use my data").is_empty());
        assert!(list("사과").is_empty());
    }

    #[test]
    fn spaces_only_when_answering() {
        let text = Text::new("사자 호랑이 곰");
        assert_eq!(find_list(&text.lower, &text, false), None);
        let l = find_list(&text.lower, &text, true).unwrap();
        assert_eq!(l.names, ["사자", "호랑이", "곰"]);
    }
}
