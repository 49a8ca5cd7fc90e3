//! Numbers written as digits, English words ("twenty-one") and Korean numerals, native
//! ("스물한", "세") and Sino-Korean ("이십일"). The tables below generate both the regex
//! fragment that finds a number and the function that reads its value.

use crate::pattern::alternation;

/// One numeral system: tens words combine with a following unit word ("twenty" + "one").
struct Numerals {
    /// Words for multiples of ten (or larger), with their values.
    tens: &'static [(&'static str, u64)],
    /// Words for units (and, in English, the teens), with their values.
    units: &'static [(&'static str, u64)],
    /// Whether a unit word stands alone as a number (not so for Sino-Korean 일, 이 …, which are
    /// common syllables and particles).
    units_alone: bool,
}

const ENGLISH: Numerals = Numerals {
    tens: &[
        ("twenty", 20),
        ("thirty", 30),
        ("forty", 40),
        ("fourty", 40),
        ("fifty", 50),
        ("sixty", 60),
        ("seventy", 70),
        ("eighty", 80),
        ("ninety", 90),
        ("hundred", 100),
    ],
    units: &[
        ("one", 1),
        ("two", 2),
        ("three", 3),
        ("four", 4),
        ("five", 5),
        ("six", 6),
        ("seven", 7),
        ("eight", 8),
        ("nine", 9),
        ("ten", 10),
        ("eleven", 11),
        ("twelve", 12),
        ("thirteen", 13),
        ("fourteen", 14),
        ("fifteen", 15),
        ("sixteen", 16),
        ("seventeen", 17),
        ("eighteen", 18),
        ("nineteen", 19),
    ],
    units_alone: true,
};

const KOREAN_NATIVE: Numerals = Numerals {
    tens: &[
        ("열", 10),
        ("스물", 20),
        ("스무", 20),
        ("서른", 30),
        ("마흔", 40),
        ("쉰", 50),
        ("예순", 60),
        ("일흔", 70),
        ("여든", 80),
        ("아흔", 90),
    ],
    units: &[
        ("하나", 1),
        ("한", 1),
        ("둘", 2),
        ("두", 2),
        ("셋", 3),
        ("석", 3),
        ("세", 3),
        ("넷", 4),
        ("넉", 4),
        ("네", 4),
        ("다섯", 5),
        ("여섯", 6),
        ("일곱", 7),
        ("여덟", 8),
        ("아홉", 9),
    ],
    units_alone: true,
};

const KOREAN_SINO: Numerals = Numerals {
    tens: &[
        ("구십", 90),
        ("팔십", 80),
        ("칠십", 70),
        ("육십", 60),
        ("오십", 50),
        ("사십", 40),
        ("삼십", 30),
        ("이십", 20),
        ("십", 10),
        ("백", 100),
    ],
    units: &[
        ("일", 1),
        ("이", 2),
        ("삼", 3),
        ("사", 4),
        ("오", 5),
        ("육", 6),
        ("칠", 7),
        ("팔", 8),
        ("구", 9),
    ],
    units_alone: false,
};

const SYSTEMS: [&Numerals; 3] = [&ENGLISH, &KOREAN_NATIVE, &KOREAN_SINO];

/// Joiner allowed between a tens word and a unit word.
const JOIN: &str = r"[\s\-]?";

/// Regex alternatives of a table's words, longest first.
fn words_of(table: &[(&str, u64)]) -> String {
    alternation(table.iter().map(|(w, _)| *w), regex::escape)
}

/// Regex fragment (no groups) matching a number written in words, in any system.
pub(crate) fn words_pattern() -> String {
    let mut parts = Vec::new();
    for system in SYSTEMS {
        let (tens, units) = (words_of(system.tens), words_of(system.units));
        parts.push(format!("{tens}(?:{JOIN}{units})?"));
        if system.units_alone {
            parts.push(units);
        }
    }
    parts.join("|")
}

/// Regex fragment (no groups) matching digits, with an optional fraction and exponent.
pub(crate) const DIGITS: &str = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?";

/// Value of a number written in words in one system.
fn words_value(text: &str, system: &Numerals) -> Option<u64> {
    let lookup = |table: &[(&str, u64)], w: &str| table.iter().find(|(t, _)| *t == w).map(|p| p.1);
    if let Some(v) = lookup(system.units, text).filter(|_| system.units_alone) {
        return Some(v);
    }
    system.tens.iter().find_map(|(tens, tv)| {
        let rest = text.strip_prefix(tens)?.trim_start_matches([' ', '-']);
        if rest.is_empty() {
            Some(*tv)
        } else {
            lookup(system.units, rest)
                .filter(|u| *u < 10 || *tv >= 100)
                .map(|u| tv + u)
        }
    })
}

/// Value of a number found by [`words_pattern`] or [`DIGITS`]; `None` for anything else.
pub(crate) fn value(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return text.parse::<f64>().ok().filter(|v| v.is_finite());
    }
    SYSTEMS
        .iter()
        .find_map(|s| words_value(text, s))
        .map(|v| v as f64)
}

/// `value` as a whole number (`u64::MAX` for huge ones, so range checks reject them).
pub(crate) fn whole(text: &str) -> Option<u64> {
    let v = value(text)?;
    if v.fract() != 0.0 || v < 0.0 {
        return None;
    }
    Some(if v >= u64::MAX as f64 {
        u64::MAX
    } else {
        v as u64
    })
}

/// Writes `n` (1..=99) in English words ("twenty-one"); used by tests and examples.
pub fn english_words(n: u64) -> String {
    spell(n, &ENGLISH, "-")
}

/// Writes `n` (1..=99) as a native Korean numeral in its counter form ("스물한", "세").
pub fn korean_native(n: u64) -> String {
    spell(n, &KOREAN_NATIVE, "")
}

/// Writes `n` (10..=99) as a Sino-Korean numeral ("이십일").
pub fn korean_sino(n: u64) -> String {
    spell(n, &KOREAN_SINO, "")
}

/// Spells `n` < 100 with a system's words. Of several words for one value, the last listed is the
/// form used before a counter ("한", "세", "스무"); a tens word joined to a unit uses the first
/// ("스물한").
fn spell(n: u64, system: &Numerals, joiner: &str) -> String {
    let words = |table: &'static [(&'static str, u64)], v: u64| {
        table.iter().filter(move |(_, tv)| *tv == v).map(|p| p.0)
    };
    if (system.units_alone || n >= 10)
        && let Some(w) = words(system.units, n).next_back()
    {
        return w.to_string();
    }
    let (tens, units) = (n / 10 * 10, n % 10);
    if units == 0 {
        return words(system.tens, tens)
            .next_back()
            .unwrap_or_default()
            .to_string();
    }
    let tens = words(system.tens, tens).next().unwrap_or_default();
    format!(
        "{tens}{joiner}{}",
        words(system.units, units).next_back().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_words() {
        assert_eq!(value("three"), Some(3.0));
        assert_eq!(value("twenty-one"), Some(21.0));
        assert_eq!(value("twenty one"), Some(21.0));
        assert_eq!(value("세"), Some(3.0));
        assert_eq!(value("스물한"), Some(21.0));
        assert_eq!(value("열 두"), Some(12.0));
        assert_eq!(value("이십일"), Some(21.0));
        assert_eq!(value("이"), None);
        assert_eq!(value("1e-3"), Some(0.001));
        assert_eq!(whole("12"), Some(12));
        assert_eq!(whole("2.5"), None);
    }

    #[test]
    fn spells() {
        assert_eq!(english_words(42), "forty-two");
        assert_eq!(english_words(13), "thirteen");
        assert_eq!(korean_native(20), "스무");
        assert_eq!(korean_native(21), "스물한");
        assert_eq!(korean_native(3), "세");
        assert_eq!(korean_sino(35), "삼십오");
    }

    #[test]
    fn pattern_compiles_and_prefers_long_words() {
        let re = regex::Regex::new(&format!("^(?:{})$", words_pattern())).unwrap();
        for w in ["seventeen", "스물두", "아흔아홉", "삼십", "twenty-one"] {
            assert!(re.is_match(w), "{w}");
        }
    }
}
