//! Normalised message text: NFKC, lowercase, and masking of recognised spans.

use std::ops::Range;

use unicode_normalization::UnicodeNormalization;

/// Character written over recognised spans by [`Text::masked`]; every rule treats it as a boundary.
pub(crate) const MASK: char = '|';

/// A message prepared for matching.
///
/// `original` is the NFKC form with the user's casing; `lower` is its lowercase twin with the
/// same byte offsets, so a span found in `lower` cuts the user's spelling out of `original`.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    /// NFKC form, user's casing.
    pub original: String,
    /// Lowercase NFKC form, byte-aligned with `original`.
    pub lower: String,
}

impl Text {
    /// Normalises `message` (NFKC composes Hangul jamo into syllables and folds full-width forms).
    pub fn new(message: &str) -> Self {
        let mut original = String::with_capacity(message.len());
        let mut lower = String::with_capacity(message.len());
        for c in message.nfkc() {
            let c = if c.is_whitespace() || c.is_control() {
                ' '
            } else {
                c
            };
            original.push(c);
            let mut lc = c.to_lowercase();
            match (lc.next(), lc.next()) {
                (Some(l), None) if l.len_utf8() == c.len_utf8() => lower.push(l),
                _ => lower.push(c),
            }
        }
        Self { original, lower }
    }

    /// The user's spelling of a span of `lower`.
    pub fn original_of(&self, span: &Range<usize>) -> &str {
        self.original.get(span.clone()).unwrap_or_default()
    }

    /// `lower` with every span overwritten by [`MASK`] (byte offsets are kept).
    pub fn masked(&self, spans: &[Range<usize>]) -> String {
        mask(&self.lower, spans)
    }
}

/// `text` with every span overwritten by [`MASK`], one mask byte per byte (offsets are kept).
pub(crate) fn mask(text: &str, spans: &[Range<usize>]) -> String {
    text.char_indices()
        .flat_map(|(i, c)| {
            let hidden = spans.iter().any(|s| s.contains(&i));
            let (ch, n) = if hidden { (MASK, c.len_utf8()) } else { (c, 1) };
            std::iter::repeat_n(ch, n)
        })
        .collect()
}

/// Whether the character before byte `at` of `text` is absent or not an ASCII letter or digit.
pub(crate) fn ascii_boundary_before(text: &str, at: usize) -> bool {
    !text
        .get(..at)
        .and_then(|s| s.chars().next_back())
        .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Whether the character at byte `at` of `text` is absent or not an ASCII letter or digit.
pub(crate) fn ascii_boundary_after(text: &str, at: usize) -> bool {
    !text
        .get(at..)
        .and_then(|s| s.chars().next())
        .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Keeps the longest of overlapping candidates (earliest first on ties), sorted by position.
pub(crate) fn non_overlapping<T>(mut found: Vec<(Range<usize>, T)>) -> Vec<(Range<usize>, T)> {
    found.sort_by(|a, b| {
        let (la, lb) = (a.0.len(), b.0.len());
        lb.cmp(&la).then(a.0.start.cmp(&b.0.start))
    });
    let mut kept: Vec<(Range<usize>, T)> = Vec::new();
    for (span, value) in found {
        if kept
            .iter()
            .all(|(k, _)| span.end <= k.start || span.start >= k.end)
        {
            kept.push((span, value));
        }
    }
    kept.sort_by_key(|(s, _)| s.start);
    kept
}

/// Edit distance between two short strings, counting an adjacent swap as one edit
/// ("resent" → "resnet" is 1).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    if let Some(first) = d.first_mut() {
        for (j, cell) in first.iter_mut().enumerate() {
            *cell = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfkc_lowercase_keeps_offsets() {
        let t = Text::new("ＲｅｓＮｅｔ５０으로 Cats");
        assert_eq!(t.original, "ResNet50으로 Cats");
        assert_eq!(t.lower, "resnet50으로 cats");
        assert_eq!(t.original_of(&(15..19)), "Cats");
    }

    #[test]
    fn decomposed_hangul_is_composed() {
        // 고 as conjoining jamo ᄀ + ᅩ.
        assert_eq!(Text::new("\u{1100}\u{1169}양이").lower, "고양이");
    }

    #[test]
    fn mask_keeps_length() {
        let first_word = 0..9;
        let m = mask("사자랑 호랑이", &[first_word]);
        assert_eq!(m.len(), "사자랑 호랑이".len());
        assert!(m.starts_with("|||||||||"));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("resent", "resnet"), 1);
        assert_eq!(edit_distance("efficentnet", "efficientnet"), 1);
        assert_eq!(edit_distance("resnet", "resnet"), 0);
        assert_eq!(edit_distance("cat", "dog"), 3);
    }

    #[test]
    fn overlaps_keep_longest() {
        let kept = non_overlapping(vec![(0..4, 'a'), (0..7, 'b'), (5..9, 'c'), (8..10, 'd')]);
        assert_eq!(kept, vec![(0..7, 'b'), (8..10, 'd')]);
    }
}
