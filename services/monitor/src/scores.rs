//! The per-document result produced to `document-scores`: pieces combined into one
//! document score (token-weighted), with its topic and its entities.

use crate::document::{Document, rfc3339};
use crate::scorer::{PieceScore, Scorer, argmax};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a document sits in its source: partition and offset (JSONL: 0 and line number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// Which clock a document's event time came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    PublishedAt,
    /// No `published_at`: the time the message arrived (Kafka timestamp, else wall clock).
    Arrival,
}

/// A label and its probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// One entity's sentiment in a document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityScore {
    pub entity: String,
    pub label: String,
    pub negative: bool,
    pub probabilities: Vec<LabelScore>,
}

/// One document's scores, as produced to `document-scores` (keyed by id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentScore {
    pub id: String,
    pub source: Option<String>,
    pub event_time: String,
    pub event_time_ms: i64,
    pub time_source: TimeSource,
    pub label: String,
    pub negative: bool,
    pub probabilities: Vec<LabelScore>,
    pub topic: String,
    pub topic_score: f32,
    pub entities: Vec<EntityScore>,
    pub tokens: usize,
    pub pieces: usize,
    pub position: Position,
}

/// Combines a document's piece scores into its document score.
pub fn combine(
    scorer: &Scorer,
    document: &Document,
    position: Position,
    arrival_ms: i64,
    pieces: &[PieceScore],
) -> DocumentScore {
    let weights: Vec<f32> = pieces.iter().map(|p| p.tokens.max(1) as f32).collect();
    let probabilities = weighted_mean(pieces.iter().map(|p| &p.probabilities), &weights);
    let embedding = normalised(weighted_mean(pieces.iter().map(|p| &p.embedding), &weights));
    let (topic, topic_score) = scorer.topic(&embedding);
    let (event_time_ms, time_source) = match document.published_at_ms {
        Some(ms) => (ms, TimeSource::PublishedAt),
        None => (arrival_ms, TimeSource::Arrival),
    };
    let best = argmax(&probabilities);
    DocumentScore {
        id: document.id.clone(),
        source: document.source.clone(),
        event_time: rfc3339(event_time_ms),
        event_time_ms,
        time_source,
        label: scorer.labels().get(best).cloned().unwrap_or_default(),
        negative: best == scorer.negative(),
        probabilities: labelled(scorer.labels(), &probabilities),
        topic,
        topic_score,
        entities: entities(scorer, pieces),
        tokens: pieces.iter().map(|p| p.tokens).sum(),
        pieces: pieces.len(),
        position,
    }
}

/// Entities over all pieces, each weighted by the sentences that mention it.
fn entities(scorer: &Scorer, pieces: &[PieceScore]) -> Vec<EntityScore> {
    let mut found: BTreeMap<&str, (Vec<&Vec<f32>>, Vec<f32>)> = BTreeMap::new();
    for entity in pieces.iter().flat_map(|p| &p.entities) {
        let (rows, weights) = found.entry(&entity.entity).or_default();
        rows.push(&entity.probabilities);
        weights.push(entity.sentences.max(1) as f32);
    }
    found
        .into_iter()
        .map(|(entity, (rows, weights))| {
            let probabilities = weighted_mean(rows.into_iter(), &weights);
            let best = argmax(&probabilities);
            EntityScore {
                entity: entity.to_string(),
                label: scorer.labels().get(best).cloned().unwrap_or_default(),
                negative: best == scorer.negative(),
                probabilities: labelled(scorer.labels(), &probabilities),
            }
        })
        .collect()
}

fn labelled(labels: &[String], probabilities: &[f32]) -> Vec<LabelScore> {
    labels
        .iter()
        .zip(probabilities)
        .map(|(label, &score)| LabelScore {
            label: label.clone(),
            score,
        })
        .collect()
}

fn weighted_mean<'a>(rows: impl Iterator<Item = &'a Vec<f32>>, weights: &[f32]) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    let mut total = 0.0;
    for (row, &w) in rows.zip(weights) {
        if sum.is_empty() {
            sum = vec![0.0; row.len()];
        }
        sum.iter_mut().zip(row).for_each(|(s, x)| *s += w * x);
        total += w;
    }
    sum.iter_mut()
        .for_each(|s| *s /= total.max(f32::MIN_POSITIVE));
    sum
}

fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_mean_weighs_by_tokens() {
        let rows = [vec![1.0, 0.0], vec![0.0, 1.0]];
        assert_eq!(weighted_mean(rows.iter(), &[3.0, 1.0]), vec![0.75, 0.25]);
        assert!(weighted_mean(std::iter::empty(), &[]).is_empty());
    }

    #[test]
    fn normalising_keeps_zero_vectors() {
        assert_eq!(normalised(vec![3.0, 4.0]), vec![0.6, 0.8]);
        assert_eq!(normalised(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }
}
