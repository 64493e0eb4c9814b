//! Scoring documents with the same workers the gRPC services use: sentiment and entity
//! sentiment through the Sentiment crate's analysis (its default trained head and its
//! watchlist), and a topic by zero-shot labels (the Classify crate's prototypes) scored on
//! the document embedding that same analysis pass produced, so topics cost no extra
//! encoder work with the default head.

use crate::MonitorError;
use crate::config::TopicLabel;
use crate::pieces::Piece;
use longview_classify::{LabelSpec, ZeroShotScorer, prototype_text};
use longview_core::TokenLimit;
use longview_sentiment::{DocumentInput, SentimentModel, Wanted, Watchlist, analyse};
use longview_worker::{Worker, WorkerError};
use std::sync::{Arc, OnceLock};

/// What one piece of a document scored.
#[derive(Clone, Debug)]
pub struct PieceScore {
    pub tokens: usize,
    pub probabilities: Vec<f32>,
    pub entities: Vec<EntityPiece>,
    pub embedding: Vec<f32>,
}

/// An entity's scores in one piece, with how many sentences mention it there.
#[derive(Clone, Debug)]
pub struct EntityPiece {
    pub entity: String,
    pub probabilities: Vec<f32>,
    pub sentences: usize,
}

/// Sentiment, entities and topics for batches of documents.
pub struct Scorer {
    sentiment: Arc<OnceLock<SentimentModel>>,
    watchlist: Arc<Watchlist>,
    encoder: Worker,
    topics: Vec<String>,
    topic_scorer: ZeroShotScorer,
    labels: Vec<String>,
    negative: usize,
}

impl Scorer {
    /// Embeds the topic prototypes and checks the sentiment labels include a negative one.
    pub async fn new(
        sentiment: Arc<OnceLock<SentimentModel>>,
        watchlist: Arc<Watchlist>,
        encoder: Worker,
        topics: &[TopicLabel],
    ) -> Result<Self, MonitorError> {
        let model = sentiment.get().ok_or(MonitorError::NotReady)?;
        let labels = model.labels();
        let negative = labels
            .iter()
            .position(|l| l.to_lowercase().starts_with("neg"))
            .ok_or_else(|| {
                MonitorError::Config(format!(
                    "the sentiment model's labels {labels:?} have no negative label"
                ))
            })?;
        let texts = topics
            .iter()
            .map(|t| {
                prototype_text(&LabelSpec {
                    name: t.name.clone(),
                    description: t.description.clone(),
                })
            })
            .collect();
        let prototypes = encoder
            .embed_texts(texts, limit(&encoder)?)
            .await?
            .into_iter()
            .map(|e| e.vector)
            .collect();
        Ok(Self {
            sentiment,
            watchlist,
            encoder,
            topics: topics.iter().map(|t| t.name.clone()).collect(),
            topic_scorer: ZeroShotScorer::new(prototypes, false),
            labels,
            negative,
        })
    }

    /// Sentiment labels in the model's order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Index of the negative label.
    pub fn negative(&self) -> usize {
        self.negative
    }

    /// The best topic and its score for a document embedding.
    pub fn topic(&self, embedding: &[f32]) -> (String, f32) {
        let (scores, _) = self.topic_scorer.score(embedding);
        let best = argmax(&scores);
        (self.topics[best].clone(), scores[best])
    }

    /// Scores one batch of pieces in one analysis call.
    pub async fn score(&self, pieces: &[Piece]) -> Result<Vec<PieceScore>, WorkerError> {
        let model = self.sentiment.get().ok_or(WorkerError::Loading)?;
        let inputs = pieces
            .iter()
            .map(|p| DocumentInput {
                text: p.text.clone(),
                entities: p.entities.clone(),
            })
            .collect();
        let wanted = Wanted {
            sentences: false,
            entities: true,
            embedding: true,
            // Throughput: every token is encoded once, for the document and its entities.
            sentence_windows: true,
        };
        let analyses = analyse(model, &self.watchlist, inputs, wanted).await?;
        let mut embeddings: Vec<Option<Vec<f32>>> =
            analyses.iter().map(|a| a.embedding.clone()).collect();
        self.embed_missing(pieces, &mut embeddings).await?;
        Ok(analyses
            .into_iter()
            .zip(embeddings)
            .map(|(analysis, embedding)| PieceScore {
                tokens: analysis.usage.tokens_total as usize,
                probabilities: analysis.probabilities,
                entities: analysis
                    .entities
                    .into_iter()
                    .map(|e| EntityPiece {
                        entity: e.entity,
                        probabilities: e.probabilities,
                        sentences: e.sentences.len(),
                    })
                    .collect(),
                embedding: embedding.unwrap_or_default(),
            })
            .collect())
    }

    /// A user's own sentiment classifier yields no sentence embedding; topics then need
    /// one encoder pass of their own (truncated at the encoder's trained length).
    async fn embed_missing(
        &self,
        pieces: &[Piece],
        embeddings: &mut [Option<Vec<f32>>],
    ) -> Result<(), WorkerError> {
        let missing: Vec<usize> = (0..pieces.len())
            .filter(|&i| embeddings[i].is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let texts = missing.iter().map(|&i| pieces[i].text.clone()).collect();
        let embedded = self
            .encoder
            .embed_texts(texts, limit(&self.encoder)?)
            .await?;
        for (i, e) in missing.into_iter().zip(embedded) {
            embeddings[i] = Some(e.vector);
        }
        Ok(())
    }
}

fn limit(encoder: &Worker) -> Result<TokenLimit, WorkerError> {
    let info = encoder.loaded()?.info.clone();
    Ok(TokenLimit {
        max_tokens: info.trained_seq_len - info.special_tokens,
        truncate: true,
    })
}

pub(crate) fn argmax(scores: &[f32]) -> usize {
    scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}
