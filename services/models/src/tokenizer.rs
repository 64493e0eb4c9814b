//! The model's tokenizer, without the padding and truncation baked into tokenizer.json:
//! Longview pads per batch and truncates deliberately, reporting what it dropped.

use crate::ModelError;
use longview_core::TokenizedText;
use std::path::Path;
use std::sync::Arc;
use tokenizers::Tokenizer;

/// Special tokens the model expects around every sequence, e.g. [CLS] … [SEP].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub prefix: Vec<u32>,
    pub suffix: Vec<u32>,
}

impl SpecialTokens {
    pub fn count(&self) -> usize {
        self.prefix.len() + self.suffix.len()
    }
}

/// Tokenizes texts into ids with byte offsets into the original text.
#[derive(Clone, Debug)]
pub struct TextTokenizer {
    inner: Tokenizer,
    special: SpecialTokens,
    pad_id: u32,
    /// Kept so a worker can hand the same tokenizer to remote task roles.
    json: Arc<[u8]>,
}

impl TextTokenizer {
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let json = std::fs::read(path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        Self::from_json(json.into())
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// A tokenizer from the contents of a tokenizer.json (as a remote worker sends it).
    pub fn from_json(json: Arc<[u8]>) -> Result<Self, ModelError> {
        let mut inner =
            Tokenizer::from_bytes(&json).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let pad_id = inner.get_padding().map(|p| p.pad_id).unwrap_or(0);
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let special = find_special_tokens(&inner)?;
        Ok(Self {
            inner,
            special,
            pad_id,
            json,
        })
    }

    /// The tokenizer.json this tokenizer was built from, byte for byte.
    pub fn json(&self) -> &Arc<[u8]> {
        &self.json
    }

    /// Token ids and byte offsets of `text`, special tokens excluded, nothing truncated.
    ///
    /// Long texts are tokenized a piece at a time, cut at whitespace: the tokenizer's own
    /// bookkeeping costs tens of bytes per input byte, so a whole 5 MB document at once
    /// would cost hundreds of megabytes, while the result costs 20 bytes per token.
    pub fn tokenize(&self, text: &str) -> Result<TokenizedText, ModelError> {
        let mut tokens = TokenizedText::default();
        for (start, piece) in pieces(text, PIECE_BYTES) {
            let encoding = self
                .inner
                .encode(piece, false)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
            tokens.ids.extend_from_slice(encoding.get_ids());
            tokens.offsets.extend(
                encoding
                    .get_offsets()
                    .iter()
                    .map(|&(s, e)| (s + start, e + start)),
            );
        }
        Ok(tokens)
    }

    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }
}

/// Bytes per tokenizer call for long texts.
const PIECE_BYTES: usize = 64 << 10;

/// Splits `text` into pieces of about `size` bytes, each (but the first) starting at a
/// whitespace character, so no word is cut; returns each piece with its byte offset. A
/// run without whitespace longer than `size` stays whole.
fn pieces(text: &str, size: usize) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let rest = &text[start..];
        let end = if rest.len() <= size {
            rest.len()
        } else {
            cut_at_whitespace(rest, size)
        };
        let piece = (start, &rest[..end]);
        start += end;
        Some(piece)
    })
}

/// The byte index of the first whitespace at or after `size` (on a char boundary), or the
/// end of `text` when there is none.
fn cut_at_whitespace(text: &str, size: usize) -> usize {
    let mut from = size;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..]
        .find(char::is_whitespace)
        .map_or(text.len(), |at| from + at)
}

/// Learns the template's special tokens by encoding a probe text with and without them,
/// so any single-sequence template (BERT's [CLS] x [SEP], RoBERTa's <s> x </s>) works.
fn find_special_tokens(tokenizer: &Tokenizer) -> Result<SpecialTokens, ModelError> {
    let encode = |add| {
        tokenizer
            .encode("probe", add)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    };
    let (plain, full) = (encode(false)?, encode(true)?);
    let at = full
        .windows(plain.len())
        .position(|w| w == plain.as_slice());
    let Some(at) = at.filter(|_| !plain.is_empty()) else {
        return Err(ModelError::Tokenizer(
            "cannot locate the text between special tokens".into(),
        ));
    };
    Ok(SpecialTokens {
        prefix: full[..at].to_vec(),
        suffix: full[at + plain.len()..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cut_at_whitespace_and_cover_the_text() {
        let text = "alpha beta\tgamma  délta\nepsilon zeta";
        for size in [1, 3, 7, 12, 100] {
            let parts: Vec<_> = pieces(text, size).collect();
            assert_eq!(
                parts.iter().map(|(_, p)| *p).collect::<String>(),
                text,
                "size {size}"
            );
            for (start, piece) in &parts {
                assert_eq!(&text[*start..*start + piece.len()], *piece);
                assert!(
                    *start == 0 || piece.starts_with(char::is_whitespace),
                    "{piece:?}"
                );
            }
        }
    }

    #[test]
    fn a_long_word_stays_whole() {
        let text = "x".repeat(50);
        assert_eq!(pieces(&text, 10).count(), 1);
    }
}
