//! The language a reply is written in.

use serde::{Deserialize, Serialize};

use crate::hangul::has_hangul;

/// Language of the user's messages, and so of the replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Korean (the message contains Hangul).
    #[default]
    Ko,
    /// English.
    En,
}

impl Language {
    /// The language of `message`: Korean if it contains Hangul, English if it has at least two
    /// plain English words; `None` when it cannot tell (a bare id, number or model name), so the
    /// conversation keeps its language.
    pub fn detect(message: &str) -> Option<Self> {
        if has_hangul(message) {
            return Some(Language::Ko);
        }
        let english_words = message
            .split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '_')
            .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_alphabetic() || c == '\''))
            .count();
        (english_words >= 2).then_some(Language::En)
    }

    /// Picks the Korean or the English text.
    pub(crate) fn pick<T>(self, ko: T, en: T) -> T {
        match self {
            Language::Ko => ko,
            Language::En => en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects() {
        assert_eq!(Language::detect("ds_123 써줘"), Some(Language::Ko));
        assert_eq!(Language::detect("use my cats dataset"), Some(Language::En));
        assert_eq!(Language::detect("yolov8n"), None);
        assert_eq!(Language::detect("ds_123"), None);
        assert_eq!(Language::detect("edit_config"), None);
        assert_eq!(
            Language::detect("ResNet50으로 cats and dogs"),
            Some(Language::Ko)
        );
    }
}
