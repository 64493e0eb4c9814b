//! The model's tokenizer, without the padding and truncation baked into tokenizer.json:
//! Longview pads per batch and truncates deliberately, reporting what it dropped.

use crate::ModelError;
use longview_core::TokenizedText;
use std::path::Path;
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
}

impl TextTokenizer {
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
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
        })
    }

    /// Token ids and byte offsets of `text`, special tokens excluded, nothing truncated.
    pub fn tokenize(&self, text: &str) -> Result<TokenizedText, ModelError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(TokenizedText {
            ids: encoding.get_ids().to_vec(),
            offsets: encoding.get_offsets().to_vec(),
        })
    }

    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }
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
