//! Documents to stored chunks: tokenize, cut into windows, embed each window.

use crate::RagError;
use crate::chunk::{PendingChunk, chunk_document};
use crate::record::{DocumentChunks, StoredChunk};
use crate::validate::Document;
use longview_core::{Usage, WindowSpec, WindowSpecError};
use longview_worker::{Output, Worker};
use std::sync::Arc;

/// Chunks per encode call: bounds one job's memory while letting the batcher pack.
const ENCODE_BATCH: usize = 256;

/// How documents are cut into chunks, in tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSettings {
    /// Tokens per chunk, the model's special tokens included.
    pub chunk_tokens: usize,
    /// Tokens consecutive chunks share.
    pub overlap_tokens: usize,
}

impl Default for ChunkSettings {
    /// 128 tokens is what the default encoder (all-MiniLM-L6-v2) was trained on; the
    /// overlap keeps a sentence cut at a boundary whole in one of the two chunks.
    fn default() -> Self {
        Self {
            chunk_tokens: 128,
            overlap_tokens: 24,
        }
    }
}

impl ChunkSettings {
    /// The window spec for a model, checked against its positions.
    pub fn spec(
        &self,
        special_tokens: usize,
        max_positions: usize,
    ) -> Result<WindowSpec, WindowSpecError> {
        let spec = WindowSpec {
            size: self.chunk_tokens,
            overlap: self.overlap_tokens,
            special_tokens,
        };
        spec.validate(max_positions)?;
        Ok(spec)
    }
}

/// Chunks and embeds checked documents. A document that tokenizes to nothing is refused.
pub async fn embed_documents(
    worker: &Worker,
    documents: Vec<Document>,
    spec: WindowSpec,
) -> Result<(Vec<DocumentChunks>, Usage), RagError> {
    let texts: Vec<String> = documents.iter().map(|d| d.text.clone()).collect();
    let tokenized = worker.tokenize(Arc::new(texts)).await?;
    let mut pending: Vec<(String, Vec<PendingChunk>)> = Vec::with_capacity(documents.len());
    let mut tokens = 0;
    for (index, (document, tokens_of)) in documents.iter().zip(&tokenized).enumerate() {
        if tokens_of.is_empty() {
            return Err(RagError::BlankText {
                index,
                id: document.id.clone(),
            });
        }
        tokens += tokens_of.len();
        let chunks = chunk_document(
            &document.id,
            &document.text,
            &document.metadata,
            tokens_of,
            spec,
        );
        pending.push((document.id.clone(), chunks));
    }
    let sequences: Vec<Vec<u32>> = pending
        .iter()
        .flat_map(|(_, chunks)| chunks.iter().map(|c| c.token_ids.clone()))
        .collect();
    let mut vectors = Vec::with_capacity(sequences.len());
    for batch in sequences.chunks(ENCODE_BATCH) {
        vectors.extend(worker.encode_as(batch.to_vec(), Output::Embedding).await?);
    }
    let mut vectors = vectors.into_iter();
    let documents = pending
        .into_iter()
        .map(|(document_id, chunks)| DocumentChunks {
            document_id,
            chunks: chunks
                .into_iter()
                .zip(vectors.by_ref())
                .map(|(chunk, vector)| StoredChunk {
                    record: chunk.record,
                    vector,
                })
                .collect(),
        })
        .collect();
    Ok((documents, Usage::new(tokens, 0)))
}
