//! Embedding whole texts: tokenize, check, truncate or refuse, encode. Shared by every
//! service that embeds short texts (Embed, label prototypes, queries).

use crate::{Worker, WorkerError};
use longview_core::{InputError, TokenLimit, Usage, text};
use longview_models::Output;
use std::sync::Arc;

/// One text's vector and what the model read of it.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddedText {
    pub vector: Vec<f32>,
    pub usage: Usage,
}

impl Worker {
    /// Embeds each text as one sequence under `limit`. Blank texts, and texts that tokenize
    /// to nothing, are refused by index before any model work.
    pub async fn embed_texts(
        &self,
        texts: Vec<String>,
        limit: TokenLimit,
    ) -> Result<Vec<EmbeddedText>, WorkerError> {
        if let Some(index) = texts.iter().position(|t| text::is_blank(t)) {
            return Err(InputError::Blank { index }.into());
        }
        let tokenized = self.tokenize(Arc::new(texts)).await?;
        let mut sequences = Vec::with_capacity(tokenized.len());
        let mut usages = Vec::with_capacity(tokenized.len());
        for (index, mut tokens) in tokenized.into_iter().enumerate() {
            let total = tokens.len();
            if total == 0 {
                return Err(InputError::Blank { index }.into());
            }
            if total > limit.max_tokens && !limit.truncate {
                return Err(InputError::TooLong {
                    index,
                    tokens: total,
                    limit: limit.max_tokens,
                }
                .into());
            }
            let dropped = tokens.truncate(limit.max_tokens);
            crate::metrics::truncated(usize::from(dropped > 0));
            usages.push(Usage::new(total, dropped));
            sequences.push(tokens.ids);
        }
        let vectors = self.encode_as(sequences, Output::Embedding).await?;
        Ok(vectors
            .into_iter()
            .zip(usages)
            .map(|(vector, usage)| EmbeddedText { vector, usage })
            .collect())
    }
}
