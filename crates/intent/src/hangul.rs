//! Hangul phonology for Korean particles: which particle follows a word, and stripping particles
//! and sentence endings off a word. Particles are data; each row says after what sound it occurs.

/// First precomposed Hangul syllable (가).
const SYLLABLE_FIRST: u32 = 0xAC00;
/// Last precomposed Hangul syllable (힣).
const SYLLABLE_LAST: u32 = 0xD7A3;
/// Final-consonant index of ㄹ.
const RIEUL: u32 = 8;
/// Final-consonant index of ㅇ.
const IEUNG: u32 = 21;

/// Whether `c` is a Hangul syllable or jamo.
pub(crate) fn is_hangul(c: char) -> bool {
    matches!(c as u32, 0x1100..=0x11FF | 0x3130..=0x318F | SYLLABLE_FIRST..=SYLLABLE_LAST)
}

/// Whether `text` contains any Hangul.
pub(crate) fn has_hangul(text: &str) -> bool {
    text.chars().any(is_hangul)
}

/// How a word ends when read aloud in Korean: no final consonant, or which one (jongseong index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coda {
    /// Ends in a vowel.
    Vowel,
    /// Ends in the final consonant with this index (1..=27).
    Consonant(u32),
}

/// The Korean reading of the last character of a word: Hangul by its syllable, digits as
/// Sino-Korean numerals (영 일 이 삼 …), Latin letters by their Korean letter names (엔, 엘, …).
fn coda(word: &str) -> Option<Coda> {
    let c = word.chars().rev().find(|c| c.is_alphanumeric())?;
    let code = c as u32;
    if (SYLLABLE_FIRST..=SYLLABLE_LAST).contains(&code) {
        let jong = (code - SYLLABLE_FIRST) % 28;
        return Some(if jong == 0 {
            Coda::Vowel
        } else {
            Coda::Consonant(jong)
        });
    }
    // Final consonants of the readings: digits 0-9 and letters a-z (0 = vowel).
    const DIGITS: [u32; 10] = [IEUNG, RIEUL, 0, 16, 0, 0, 1, RIEUL, RIEUL, 0];
    const LETTERS: [u32; 26] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, RIEUL, 16, 4, 0, 0, 0, RIEUL, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let jong = match c.to_ascii_lowercase() {
        d @ '0'..='9' => DIGITS[(d as u8 - b'0') as usize],
        l @ 'a'..='z' => LETTERS[(l as u8 - b'a') as usize],
        _ => return None,
    };
    Some(if jong == 0 {
        Coda::Vowel
    } else {
        Coda::Consonant(jong)
    })
}

/// After what a particle is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Any word.
    Any,
    /// A final consonant (을, 은, 과 …).
    Consonant,
    /// A vowel (를, 는, 와 …).
    Vowel,
    /// A vowel or ㄹ (로).
    VowelOrRieul,
    /// A final consonant other than ㄹ (으로).
    ConsonantNotRieul,
    /// A final consonant other than ㅇ: the 이- particles (이야, 이랑 …). Nouns such as 고양이 and
    /// 호랑이 end in ㅇ + 이, so after ㅇ the 이 is read as part of the noun.
    ConsonantNotIeung,
}

impl After {
    fn allows(self, coda: Coda) -> bool {
        match (self, coda) {
            (After::Any, _) => true,
            (After::Consonant, c) => c != Coda::Vowel,
            (After::Vowel, c) => c == Coda::Vowel,
            (After::VowelOrRieul, c) => matches!(c, Coda::Vowel | Coda::Consonant(RIEUL)),
            (After::ConsonantNotRieul, c) => !matches!(c, Coda::Vowel | Coda::Consonant(RIEUL)),
            (After::ConsonantNotIeung, c) => !matches!(c, Coda::Vowel | Coda::Consonant(IEUNG)),
        }
    }
}

/// Particles that join list items ("사자랑 호랑이", "치즈와 나비").
const CONJUNCTIONS: &[(&str, After)] = &[
    ("이랑", After::ConsonantNotIeung),
    ("랑", After::Vowel),
    ("하고", After::Any),
    ("과", After::Consonant),
    ("와", After::Vowel),
];

/// Case particles and sentence endings that may follow a noun at the end of a phrase
/// ("츄르야", "호랑이를", "고양이 데이터셋으로"). The list particles 랑, 와, 과 are left out:
/// at the end of a phrase they are more often part of a noun (파랑, 사과) than a particle.
const ENDINGS: &[(&str, After)] = &[
    ("입니다", After::Any),
    ("이에요", After::ConsonantNotIeung),
    ("이예요", After::ConsonantNotIeung),
    ("예요", After::Vowel),
    ("에요", After::Any),
    ("이요", After::ConsonantNotIeung),
    ("이야", After::ConsonantNotIeung),
    ("야", After::Vowel),
    ("요", After::Any),
    ("으로", After::ConsonantNotRieul),
    ("로", After::VowelOrRieul),
    ("을", After::Consonant),
    ("를", After::Vowel),
    ("은", After::Consonant),
    ("는", After::Vowel),
    ("이", After::ConsonantNotIeung),
    ("가", After::Vowel),
    ("에서", After::Any),
    ("의", After::Any),
    ("이랑", After::ConsonantNotIeung),
];

/// `word` without one particle from `table`, when the word before it is pronounced as the particle
/// requires; the longest fitting particle wins.
fn strip_one<'a>(word: &'a str, table: &[(&str, After)]) -> Option<&'a str> {
    table
        .iter()
        .filter_map(|(particle, after)| {
            let stem = word.strip_suffix(particle)?;
            let fits = coda(stem).is_some_and(|c| after.allows(c));
            (fits && stem.chars().any(char::is_alphanumeric)).then_some(stem)
        })
        .min_by_key(|stem| stem.len())
}

/// Whether `word` is nothing but a particle or ending ("로" left after "0.001로" was read).
pub(crate) fn is_ending(word: &str) -> bool {
    ENDINGS.iter().any(|(p, _)| *p == word)
}

/// `word` without a trailing list particle (랑, 이랑, 와, 과, 하고), if it has one.
pub(crate) fn strip_conjunction(word: &str) -> Option<&str> {
    strip_one(word, CONJUNCTIONS)
}

/// `word` without trailing particles and sentence endings (at most two: "츄르로요" → "츄르").
pub(crate) fn strip_endings(word: &str) -> &str {
    let Some(once) = strip_one(word, ENDINGS) else {
        return word;
    };
    strip_one(once, ENDINGS).unwrap_or(once)
}

/// `word` followed by the right one of a pair of particles: `with_consonant` after a final
/// consonant ("ResNet50으로"), `after_vowel` otherwise ("ResNet18로"). `rieul_as_vowel` is for 으로/로.
pub(crate) fn josa(
    word: &str,
    with_consonant: &str,
    after_vowel: &str,
    rieul_as_vowel: bool,
) -> String {
    let consonant = match coda(word) {
        Some(Coda::Vowel) | None => false,
        Some(Coda::Consonant(RIEUL)) => !rieul_as_vowel,
        Some(Coda::Consonant(_)) => true,
    };
    format!(
        "{word}{}",
        if consonant {
            with_consonant
        } else {
            after_vowel
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_follow_pronunciation() {
        assert_eq!(strip_endings("츄르야"), "츄르");
        assert_eq!(strip_endings("호랑이야"), "호랑이");
        assert_eq!(strip_endings("고양이"), "고양이");
        assert_eq!(strip_endings("곰이야"), "곰");
        assert_eq!(strip_endings("호랑이를"), "호랑이");
        assert_eq!(strip_endings("츄르예요"), "츄르");
        assert_eq!(strip_endings("츄르로요"), "츄르");
        assert_eq!(strip_endings("데이터셋으로"), "데이터셋");
        assert_eq!(strip_endings("사과"), "사과");
        assert_eq!(strip_endings("가을"), "가을");
        assert_eq!(strip_endings("포도"), "포도");
        assert_eq!(strip_endings("야"), "야");
        assert_eq!(strip_endings("cats"), "cats");
    }

    #[test]
    fn conjunctions() {
        assert_eq!(strip_conjunction("사자랑"), Some("사자"));
        assert_eq!(strip_conjunction("호랑이랑"), Some("호랑이"));
        assert_eq!(strip_conjunction("곰이랑"), Some("곰"));
        assert_eq!(strip_conjunction("치즈와"), Some("치즈"));
        assert_eq!(strip_conjunction("사과"), None);
        assert_eq!(strip_conjunction("곰과"), Some("곰"));
    }

    #[test]
    fn josa_reads_digits_and_letters() {
        assert_eq!(josa("ResNet50", "으로", "로", true), "ResNet50으로");
        assert_eq!(josa("ResNet18", "으로", "로", true), "ResNet18로");
        assert_eq!(josa("YOLOv8n", "으로", "로", true), "YOLOv8n으로");
        assert_eq!(josa("고양이", "은", "는", false), "고양이는");
        assert_eq!(josa("곰", "은", "는", false), "곰은");
    }
}
