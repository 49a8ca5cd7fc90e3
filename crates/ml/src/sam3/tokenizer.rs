//! CLIP BPE tokenizer (`tokenizer.json` through the `tokenizers` crate), padded and truncated to
//! the text context like the reference processor.

use std::path::Path;

use super::error::{Result, Sam3Error};

/// Token ids of one prompt, padded to the context length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedText {
    /// `[<|startoftext|>, …, <|endoftext|>, pad…]`, length = context.
    pub ids: Vec<i64>,
    /// `true` for real tokens.
    pub valid: Vec<bool>,
}

/// CLIP tokenizer with SAM3's context handling.
#[derive(Debug)]
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    context: usize,
    eos: i64,
    pad: i64,
}

impl ClipTokenizer {
    /// Loads `tokenizer.json`; `context` is the text context length (32 for SAM3).
    pub fn from_file(path: &Path, context: usize, eos: i64, pad: i64) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Sam3Error::Tokenizer(format!("{}: {e}", path.display())))?;
        if context < 2 {
            return Err(Sam3Error::Tokenizer("context must hold BOS and EOS".into()));
        }
        Ok(Self {
            inner,
            context,
            eos,
            pad,
        })
    }

    /// Raw encoding with special tokens, no padding or truncation.
    pub fn encode_raw(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| Sam3Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().iter().map(|&i| i64::from(i)).collect())
    }

    /// Encodes, truncates to the context (keeping EOS last) and pads with the pad id.
    pub fn encode(&self, text: &str) -> Result<TokenizedText> {
        let mut ids = self.encode_raw(text)?;
        if ids.len() > self.context {
            ids.truncate(self.context - 1);
            ids.push(self.eos);
        }
        let n = ids.len();
        let mut valid = vec![true; n];
        ids.resize(self.context, self.pad);
        valid.resize(self.context, false);
        Ok(TokenizedText { ids, valid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::fixture_dir;

    #[test]
    fn matches_recorded_cases() {
        let dir = fixture_dir().join("tokenizer");
        let tok = ClipTokenizer::from_file(&dir.join("tokenizer.json"), 32, 49407, 49407).unwrap();
        let cases: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("tokenizer_cases.json")).unwrap(),
        )
        .unwrap();
        let cases = cases["cases"].as_array().unwrap();
        assert!(cases.len() >= 6);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let as_ids = |k: &str| -> Vec<i64> {
                case[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect()
            };
            assert_eq!(
                tok.encode_raw(text).unwrap(),
                as_ids("unpadded_ids"),
                "raw {text:?}"
            );
            let enc = tok.encode(text).unwrap();
            assert_eq!(enc.ids, as_ids("input_ids"), "padded {text:?}");
            let mask: Vec<bool> = as_ids("attention_mask").iter().map(|&m| m == 1).collect();
            assert_eq!(enc.valid, mask, "mask {text:?}");
        }
    }
}
