//! Documents into chunks: token windows with overlap (the same windows Classify reads),
//! each keeping its exact place in the document as a character span.

use crate::record::{ChunkRecord, Metadata};
use longview_core::{CharIndex, TokenizedText, WindowPlan, WindowSpec};

/// A chunk before embedding: its record and the token ids the model reads.
#[derive(Clone, Debug)]
pub struct PendingChunk {
    pub record: ChunkRecord,
    pub token_ids: Vec<u32>,
}

/// Cuts one tokenized document into chunks under `spec`. The chunk text is the document's
/// text from the window's first token to its last, so it slices the original exactly.
pub fn chunk_document(
    document_id: &str,
    text: &str,
    metadata: &Metadata,
    tokens: &TokenizedText,
    spec: WindowSpec,
) -> Vec<PendingChunk> {
    let chars = CharIndex::new(text);
    WindowPlan::new(spec, &tokens.offsets)
        .windows()
        .map(|window| PendingChunk {
            record: ChunkRecord {
                document_id: document_id.to_string(),
                index: window.index as u32,
                text: text[window.bytes.clone()].to_string(),
                span: chars.span(window.bytes.start, window.bytes.end),
                metadata: metadata.clone(),
            },
            token_ids: tokens.ids[window.tokens].to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whitespace "tokens" with their byte offsets: enough to test the slicing.
    fn tokenize(text: &str) -> TokenizedText {
        let mut tokens = TokenizedText::default();
        let mut start = None;
        for (at, c) in text.char_indices().chain([(text.len(), ' ')]) {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    tokens.ids.push(tokens.ids.len() as u32);
                    tokens.offsets.push((s, at));
                    start = None;
                }
                (false, None) => start = Some(at),
                _ => {}
            }
        }
        tokens
    }

    #[test]
    fn chunks_overlap_and_slice_the_text_exactly() {
        let text = "Zürich ist schön. Der Fluss — die Limmat — fließt 🚀 ruhig durch die Stadt.";
        let spec = WindowSpec {
            size: 6,
            overlap: 1,
            special_tokens: 2,
        };
        let chunks = chunk_document("d", text, &Metadata::new(), &tokenize(text), spec);
        assert!(chunks.len() > 3);
        for (i, chunk) in chunks.iter().enumerate() {
            let span = chunk.record.span;
            assert_eq!(chunk.record.index as usize, i);
            assert_eq!(chunk.record.text, &text[span.byte_start..span.byte_end]);
            let by_chars: String = text
                .chars()
                .skip(span.start)
                .take(span.end - span.start)
                .collect();
            assert_eq!(chunk.record.text, by_chars);
            assert!(chunk.token_ids.len() <= 4);
        }
        let shared = chunks[0].token_ids.last();
        assert_eq!(shared, chunks[1].token_ids.first(), "one token of overlap");
        assert!(chunks.last().unwrap().record.text.ends_with("Stadt."));
    }
}
