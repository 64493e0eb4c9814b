//! Extractive answers: the sentences of the retrieved chunks closest in meaning to the
//! question, each cited by its exact span in the stored document. No generator needed.

use crate::record::Hit;
use longview_core::Span;
use longview_core::sentences::sentence_spans;
use std::collections::HashSet;

/// Passages whose sentences compete for the answer.
pub const PASSAGES_READ: usize = 5;
/// Sentences in an answer at most.
pub const MAX_SENTENCES: usize = 3;
/// A sentence joins the answer only within this cosine distance of the best one, so a
/// clear answer is not padded with loosely related sentences.
const WITHIN_BEST: f32 = 0.12;
/// Sentences shorter than this (in characters) are headings or fragments.
const MIN_SENTENCE_CHARS: usize = 12;

/// One candidate sentence: its text and where it lies in its document.
#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    /// Which hit (passage) it came from, 0-based.
    pub passage: usize,
    pub document_id: String,
    pub text: String,
    pub span: Span,
}

/// Candidate sentences of the first passages, each once even where chunks overlap.
pub fn candidates(hits: &[Hit]) -> Vec<Sentence> {
    let mut seen = HashSet::new();
    let mut sentences = Vec::new();
    for (passage, hit) in hits.iter().take(PASSAGES_READ).enumerate() {
        let chunk = &hit.record;
        for range in sentence_spans(&chunk.text) {
            let text = &chunk.text[range.clone()];
            if text.chars().count() < MIN_SENTENCE_CHARS {
                continue;
            }
            let chars_before = chunk.text[..range.start].chars().count();
            let span = Span {
                start: chunk.span.start + chars_before,
                end: chunk.span.start + chars_before + text.chars().count(),
                byte_start: chunk.span.byte_start + range.start,
                byte_end: chunk.span.byte_start + range.end,
            };
            if seen.insert((chunk.document_id.clone(), span.byte_start, span.byte_end)) {
                sentences.push(Sentence {
                    passage,
                    document_id: chunk.document_id.clone(),
                    text: text.to_string(),
                    span,
                });
            }
        }
    }
    sentences
}

/// The answer's sentences given each candidate's similarity to the question: the best,
/// and up to [`MAX_SENTENCES`] close to it, in reading order (passage, then position).
pub fn choose(candidates: Vec<Sentence>, similarity: &[f32]) -> Vec<Sentence> {
    let mut ranked: Vec<(f32, Sentence)> = similarity.iter().copied().zip(candidates).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let Some(best) = ranked.first().map(|r| r.0) else {
        return Vec::new();
    };
    let mut chosen: Vec<Sentence> = ranked
        .into_iter()
        .take(MAX_SENTENCES)
        .filter(|(score, _)| *score >= best - WITHIN_BEST)
        .map(|(_, sentence)| sentence)
        .collect();
    chosen.sort_by_key(|s| (s.passage, s.span.byte_start));
    chosen
}

/// Cosine similarity of two L2-normalised vectors.
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ChunkRecord;

    fn hit(document: &str, text: &str, char_start: usize, byte_start: usize) -> Hit {
        Hit {
            id: 0,
            record: ChunkRecord {
                document_id: document.into(),
                index: 0,
                text: text.into(),
                span: Span {
                    start: char_start,
                    end: char_start + text.chars().count(),
                    byte_start,
                    byte_end: byte_start + text.len(),
                },
                metadata: Default::default(),
            },
            score: 1.0,
        }
    }

    #[test]
    fn sentence_spans_are_absolute_in_the_document() {
        let document =
            "Préambule. Le fleuve déborde souvent au printemps. Les digues tiennent bien.";
        let offset = document.find("Le fleuve").unwrap();
        let chunk = &document[offset..];
        let chars = document[..offset].chars().count();
        let sentences = candidates(&[hit("d", chunk, chars, offset)]);
        assert_eq!(sentences.len(), 2);
        for s in &sentences {
            assert_eq!(&document[s.span.byte_start..s.span.byte_end], s.text);
            let by_chars: String = document
                .chars()
                .skip(s.span.start)
                .take(s.span.end - s.span.start)
                .collect();
            assert_eq!(by_chars, s.text);
        }
    }

    #[test]
    fn overlapping_chunks_give_each_sentence_once() {
        let text = "The first sentence is here. The second sentence is here.";
        let cut = text.find("The second").unwrap();
        let hits = [hit("d", text, 0, 0), hit("d", &text[cut..], cut, cut)];
        assert_eq!(candidates(&hits).len(), 2);
    }

    #[test]
    fn close_sentences_join_far_ones_do_not() {
        let text = "Alpha sentence one here. Beta sentence two here. Gamma sentence three.";
        let found = candidates(&[hit("d", text, 0, 0)]);
        let chosen = choose(found.clone(), &[0.5, 0.9, 0.85]);
        let texts: Vec<&str> = chosen.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["Beta sentence two here.", "Gamma sentence three."]
        );
        assert!(choose(Vec::new(), &[]).is_empty());
    }
}
