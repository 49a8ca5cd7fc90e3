//! Building regexes from phrase tables: flexible spelling of a phrase, and alternations.

/// Separators a written phrase may carry between its pieces ("resnet-50", "batch_size",
/// "vit_b/16").
pub(crate) const SEP: &str = r"[\s_\-/.]*";

/// A phrase as a regex: split at separators and where letters meet digits or scripts change, the
/// pieces joined by [`SEP`]; so "resnet50" also matches "resnet-50" and "resnet 50", "레즈넷50"
/// matches "레즈넷 50", and "batch size" matches "batch_size" and "batchsize".
pub(crate) fn flexible(phrase: &str) -> String {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Digit,
        Latin,
        Other,
    }
    let class = |c: char| {
        if c.is_ascii_digit() {
            Class::Digit
        } else if c.is_ascii_alphabetic() {
            Class::Latin
        } else {
            Class::Other
        }
    };
    let mut pieces: Vec<String> = Vec::new();
    let mut last: Option<Class> = None;
    for c in phrase.chars() {
        if c == ' ' || c == '-' || c == '_' {
            last = None;
            continue;
        }
        if last != Some(class(c)) {
            pieces.push(String::new());
        }
        last = Some(class(c));
        if let Some(p) = pieces.last_mut() {
            p.push(c);
        }
    }
    pieces
        .iter()
        .map(|p| regex::escape(p))
        .collect::<Vec<_>>()
        .join(SEP)
}

/// `(?:a|b|…)` of `phrases`, longest first (so "seventeen" is tried before "seven" and "batch
/// size" before "batch"), each written as `to_pattern` says.
pub(crate) fn alternation<'a>(
    phrases: impl IntoIterator<Item = &'a str>,
    to_pattern: impl Fn(&str) -> String,
) -> String {
    let mut phrases: Vec<&str> = phrases.into_iter().collect();
    phrases.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let parts: Vec<String> = phrases.iter().map(|p| to_pattern(p)).collect();
    format!("(?:{})", parts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flexible_spelling() {
        let re = regex::Regex::new(&format!("^{}$", flexible("resnet50"))).unwrap();
        for s in ["resnet50", "resnet 50", "resnet-50", "resnet_50"] {
            assert!(re.is_match(s), "{s}");
        }
        let re = regex::Regex::new(&format!("^{}$", flexible("batch size"))).unwrap();
        for s in ["batch size", "batch_size", "batchsize"] {
            assert!(re.is_match(s), "{s}");
        }
        let re = regex::Regex::new(&format!(
            "^{}$",
            alternation(["seven", "seventeen"], regex::escape)
        ))
        .unwrap();
        assert!(re.is_match("seventeen"));
    }
}
