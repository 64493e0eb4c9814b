//! Scoring a batch of documents: every document window, and every sentence when asked,
//! goes to the worker in one call; documents are then scored by their windows, sentences
//! on their own, and entities by the sentences that mention them. A caller that wants
//! throughput over fixed windows can read documents as their sentences instead, so that
//! each sentence is encoded once and serves the document and its entities alike.

use crate::SentimentModel;
use crate::entities::Watchlist;
use longview_core::sentences::sentence_spans;
use longview_core::{TokenizedText, Usage, WindowSpec};
use longview_worker::{Output, WorkerError};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

/// One document to analyse.
#[derive(Clone, Debug)]
pub struct DocumentInput {
    pub text: String,
    /// Names the caller knows the document mentions, besides those found.
    pub entities: Vec<String>,
}

/// A sentence and its scores.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceResult {
    pub bytes: Range<usize>,
    pub probabilities: Vec<f32>,
}

/// An entity and the mean scores of the sentences that mention it.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityResult {
    pub entity: String,
    pub probabilities: Vec<f32>,
    pub sentences: Vec<Range<usize>>,
}

/// One document's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub probabilities: Vec<f32>,
    pub sentences: Vec<SentenceResult>,
    pub entities: Vec<EntityResult>,
    pub usage: Usage,
    /// Mean of the document's window embeddings (L2-normalised), when asked for and the
    /// model reads sentence embeddings; lets callers reuse the encoder pass (zero-shot
    /// topics) instead of encoding the document again.
    pub embedding: Option<Vec<f32>>,
}

/// What to compute besides document scores.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    pub sentences: bool,
    pub entities: bool,
    /// Return the document embedding as well (see [`Analysis::embedding`]).
    pub embedding: bool,
    /// Read each document as its sentences (a sentence longer than a window as several
    /// windows) instead of overlapping token windows, and score it by the token-weighted
    /// mean of their logits. The encoder then reads every token once even when entity or
    /// sentence scores are wanted, instead of once for the document and again for the
    /// sentences; sentences are scored without their neighbours as context.
    pub sentence_windows: bool,
}

/// Where one document's sequences sit in the batch sent to the worker.
struct Layout {
    windows: Range<usize>,
    /// Each window's token count, when windows are sentences of unequal length.
    weights: Option<Vec<f32>>,
    sentences: Vec<(Range<usize>, usize)>,
}

pub async fn analyse(
    model: &SentimentModel,
    watchlist: &Watchlist,
    documents: Vec<DocumentInput>,
    wanted: Wanted,
) -> Result<Vec<Analysis>, WorkerError> {
    let worker = model.worker();
    let texts: Arc<Vec<String>> = Arc::new(documents.iter().map(|d| d.text.clone()).collect());
    let tokenized = worker.tokenize(texts.clone()).await?;
    let special = worker.loaded()?.info.special_tokens;
    let content = model.window_tokens();
    let window = WindowSpec {
        size: content + special,
        overlap: (content / 8).min(32),
        special_tokens: special,
    };
    let need_sentences = wanted.sentences || wanted.entities;

    let mut sequences = Vec::new();
    let mut layouts = Vec::with_capacity(documents.len());
    for ((text, tokens), document) in texts.iter().zip(&tokenized).zip(&documents) {
        // Entities alone need only the sentences that mention one.
        let mentions = match wanted.sentences {
            true => Vec::new(),
            false => watchlist.mentions(text, &document.entities),
        };
        let keep = |bytes: &Range<usize>| {
            wanted.sentences
                || (wanted.entities && mentions.iter().any(|m| bytes.contains(&m.bytes.start)))
        };
        let by_sentence = wanted
            .sentence_windows
            .then(|| sentence_layout(text, tokens, content, keep, &mut sequences))
            .flatten();
        let layout = match by_sentence {
            Some(layout) => layout,
            None => window_layout(
                text,
                tokens,
                window,
                need_sentences.then_some(keep),
                &mut sequences,
            ),
        };
        layouts.push(layout);
    }
    // A one-sentence document's sentence is its window: encode each distinct sequence once.
    let (distinct, index) = distinct(sequences);
    let vectors = worker.encode_as(distinct, model.output()).await?;
    let encoded: Vec<Vec<f32>> = index.iter().map(|&i| vectors[i].clone()).collect();
    let embeddings = (wanted.embedding && model.output() == Output::Embedding).then(|| {
        layouts
            .iter()
            .map(|layout| normalised(layout.mean(&encoded)))
            .collect::<Vec<_>>()
    });
    let logits: Vec<Vec<f32>> = encoded.into_iter().map(|e| model.logits(e)).collect();

    Ok(documents
        .iter()
        .zip(layouts)
        .zip(&tokenized)
        .enumerate()
        .map(|(index, ((document, layout), tokens))| {
            let mut analysis = document_result(
                model,
                watchlist,
                document,
                &layout,
                &logits,
                tokens.len(),
                wanted,
            );
            analysis.embedding = embeddings.as_ref().map(|e| e[index].clone());
            analysis
        })
        .collect())
}

fn document_result(
    model: &SentimentModel,
    watchlist: &Watchlist,
    document: &DocumentInput,
    layout: &Layout,
    logits: &[Vec<f32>],
    tokens: usize,
    wanted: Wanted,
) -> Analysis {
    let probabilities = model.probabilities(&layout.mean(logits));
    let sentences: Vec<SentenceResult> = layout
        .sentences
        .iter()
        .map(|(bytes, at)| SentenceResult {
            bytes: bytes.clone(),
            probabilities: model.probabilities(&logits[*at]),
        })
        .collect();
    let entities = if wanted.entities {
        entity_results(watchlist, document, &sentences)
    } else {
        Vec::new()
    };
    let sentences = if wanted.sentences {
        sentences
    } else {
        Vec::new()
    };
    Analysis {
        probabilities,
        sentences,
        entities,
        usage: Usage::new(tokens, 0),
        embedding: None,
    }
}

/// The document as overlapping token windows, then each sentence `keep` accepts (when
/// sentences are wanted at all) as a sequence of its own, cut to one window's content.
fn window_layout(
    text: &str,
    tokens: &TokenizedText,
    window: WindowSpec,
    keep: Option<impl Fn(&Range<usize>) -> bool>,
    sequences: &mut Vec<Vec<u32>>,
) -> Layout {
    let start = sequences.len();
    sequences.extend(
        window
            .token_ranges(tokens.len())
            .map(|r| tokens.ids[r].to_vec()),
    );
    let windows = start..sequences.len();
    let mut sentences = Vec::new();
    if let Some(keep) = keep {
        for bytes in sentence_spans(text) {
            let range = token_range(tokens, &bytes);
            if keep(&bytes) && !range.is_empty() {
                let end = range.end.min(range.start + window.content_tokens());
                sentences.push((bytes, sequences.len()));
                sequences.push(tokens.ids[range.start..end].to_vec());
            }
        }
    }
    Layout {
        windows,
        weights: None,
        sentences,
    }
}

/// The document as its sentences, each cut into windows of `content` tokens; a sentence
/// `keep` accepts is scored by its first window, as [`window_layout`] scores it. `None`
/// when no sentence holds a token, so that the caller reads the document by windows.
fn sentence_layout(
    text: &str,
    tokens: &TokenizedText,
    content: usize,
    keep: impl Fn(&Range<usize>) -> bool,
    sequences: &mut Vec<Vec<u32>>,
) -> Option<Layout> {
    let start = sequences.len();
    let (mut weights, mut sentences) = (Vec::new(), Vec::new());
    for bytes in sentence_spans(text) {
        let range = token_range(tokens, &bytes);
        if range.is_empty() {
            continue;
        }
        if keep(&bytes) {
            sentences.push((bytes, sequences.len()));
        }
        for first in range.clone().step_by(content.max(1)) {
            let end = (first + content.max(1)).min(range.end);
            weights.push((end - first) as f32);
            sequences.push(tokens.ids[first..end].to_vec());
        }
    }
    (!weights.is_empty()).then_some(Layout {
        windows: start..sequences.len(),
        weights: Some(weights),
        sentences,
    })
}

impl Layout {
    /// The (token-weighted, for sentence windows) mean of this document's window rows.
    fn mean(&self, rows: &[Vec<f32>]) -> Vec<f32> {
        let rows = &rows[self.windows.clone()];
        match &self.weights {
            None => mean(rows),
            Some(weights) => weighted_mean(rows, weights),
        }
    }
}

/// Per entity, the mean probabilities of the distinct sentences that mention it, in order
/// of first mention.
fn entity_results(
    watchlist: &Watchlist,
    document: &DocumentInput,
    sentences: &[SentenceResult],
) -> Vec<EntityResult> {
    let mut by_entity: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for (order, mention) in watchlist
        .mentions(&document.text, &document.entities)
        .into_iter()
        .enumerate()
    {
        let Some(sentence) = sentences.iter().position(|s| {
            s.bytes.start <= mention.bytes.start && mention.bytes.start < s.bytes.end
        }) else {
            continue;
        };
        let entry = by_entity
            .entry(mention.entity)
            .or_insert((order, Vec::new()));
        if !entry.1.contains(&sentence) {
            entry.1.push(sentence);
        }
    }
    let mut results: Vec<(usize, EntityResult)> = by_entity
        .into_iter()
        .map(|(entity, (order, indices))| {
            let probabilities: Vec<Vec<f32>> = indices
                .iter()
                .map(|&i| sentences[i].probabilities.clone())
                .collect();
            let spans = indices
                .iter()
                .map(|&i| sentences[i].bytes.clone())
                .collect();
            (
                order,
                EntityResult {
                    entity,
                    probabilities: mean(&probabilities),
                    sentences: spans,
                },
            )
        })
        .collect();
    results.sort_by_key(|(order, _)| *order);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The distinct sequences, and for each original sequence the index of its copy.
fn distinct(sequences: Vec<Vec<u32>>) -> (Vec<Vec<u32>>, Vec<usize>) {
    let mut seen: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut unique = Vec::new();
    let index = sequences
        .into_iter()
        .map(|sequence| {
            *seen.entry(sequence).or_insert_with_key(|s| {
                unique.push(s.clone());
                unique.len() - 1
            })
        })
        .collect();
    (unique, index)
}

/// The tokens lying inside `bytes` (token offsets are sorted by start).
fn token_range(tokens: &TokenizedText, bytes: &Range<usize>) -> Range<usize> {
    let start = tokens.offsets.partition_point(|&(s, _)| s < bytes.start);
    let end = tokens.offsets.partition_point(|&(s, _)| s < bytes.end);
    start..end.max(start)
}

fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

fn mean(rows: &[Vec<f32>]) -> Vec<f32> {
    let width = rows.first().map_or(0, Vec::len);
    (0..width)
        .map(|i| rows.iter().map(|r| r[i]).sum::<f32>() / rows.len() as f32)
        .collect()
}

fn weighted_mean(rows: &[Vec<f32>], weights: &[f32]) -> Vec<f32> {
    let width = rows.first().map_or(0, Vec::len);
    let total: f32 = weights.iter().sum();
    (0..width)
        .map(|i| rows.iter().zip(weights).map(|(r, w)| r[i] * w).sum::<f32>() / total)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ranges_follow_byte_spans() {
        let tokens = TokenizedText {
            ids: vec![1, 2, 3, 4],
            offsets: vec![(0, 3), (4, 8), (9, 12), (13, 15)],
        };
        assert_eq!(token_range(&tokens, &(4..12)), 1..3);
        assert_eq!(token_range(&tokens, &(0..15)), 0..4);
        assert!(token_range(&tokens, &(16..20)).is_empty());
    }

    #[test]
    fn repeated_sequences_are_encoded_once() {
        let (unique, index) = distinct(vec![vec![1, 2], vec![3], vec![1, 2]]);
        assert_eq!(unique, vec![vec![1, 2], vec![3]]);
        assert_eq!(index, vec![0, 1, 0]);
    }

    #[test]
    fn mean_of_rows() {
        assert_eq!(mean(&[vec![1.0, 2.0], vec![3.0, 4.0]]), vec![2.0, 3.0]);
        let rows = [vec![1.0, 2.0], vec![4.0, 8.0]];
        assert_eq!(weighted_mean(&rows, &[2.0, 1.0]), vec![2.0, 4.0]);
    }

    #[test]
    fn sentence_windows_cover_every_token_once() {
        // "Aa bb. Cc dd ee ff." as six one-word tokens, windows of two tokens.
        let text = "Aa bb. Cc dd ee ff.";
        let tokens = TokenizedText {
            ids: vec![1, 2, 3, 4, 5, 6],
            offsets: vec![(0, 2), (3, 6), (7, 9), (10, 12), (13, 15), (16, 19)],
        };
        let mut sequences = Vec::new();
        let layout = sentence_layout(text, &tokens, 2, |b| b.start > 0, &mut sequences).unwrap();
        assert_eq!(sequences, vec![vec![1, 2], vec![3, 4], vec![5, 6]]);
        assert_eq!(layout.windows, 0..3);
        assert_eq!(layout.weights, Some(vec![2.0, 2.0, 2.0]));
        // The second sentence is kept and scored by its first window.
        assert_eq!(layout.sentences, vec![(7..19, 1)]);
    }
}
