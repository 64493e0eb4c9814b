//! The gRPC handler: validate at the edge, analyse, convert back.

use crate::analysis::{DocumentInput, Wanted};
use crate::{Analysis, SentimentError, SentimentModel, Watchlist, analyse};
use longview_core::CharIndex;
use longview_proto::v1::{self as pb, sentiment_server::Sentiment};
use longview_worker::wire;
use std::sync::{Arc, OnceLock};
use tonic::{Request, Response, Status};

/// Request limits of the Sentiment service.
#[derive(Clone, Copy, Debug)]
pub struct SentimentLimits {
    pub max_documents: usize,
    pub max_document_bytes: usize,
}

impl Default for SentimentLimits {
    fn default() -> Self {
        Self {
            max_documents: 64,
            max_document_bytes: 1 << 20,
        }
    }
}

pub struct SentimentService {
    /// Set once the model is ready (the default head may be trained at first start).
    model: Arc<OnceLock<SentimentModel>>,
    watchlist: Arc<Watchlist>,
    limits: SentimentLimits,
}

impl SentimentService {
    pub fn new(
        model: Arc<OnceLock<SentimentModel>>,
        watchlist: Arc<Watchlist>,
        limits: SentimentLimits,
    ) -> Self {
        Self {
            model,
            watchlist,
            limits,
        }
    }

    pub fn into_server(self) -> pb::sentiment_server::SentimentServer<Self> {
        let limit = self.limits.max_document_bytes * self.limits.max_documents.min(16) + (1 << 20);
        pb::sentiment_server::SentimentServer::new(self).max_decoding_message_size(limit)
    }

    async fn analyse(
        &self,
        request: pb::SentimentRequest,
    ) -> Result<pb::SentimentResponse, SentimentError> {
        self.validate(&request)?;
        let model = self.model.get().ok_or(SentimentError::NotReady)?;
        let wanted = Wanted {
            sentences: request.include_sentences,
            entities: request.include_entities,
            embedding: false,
            sentence_windows: false,
        };
        let inputs = request
            .documents
            .iter()
            .map(|d| DocumentInput {
                text: d.text.clone(),
                entities: d.entities.clone(),
            })
            .collect();
        let analyses = analyse(model, &self.watchlist, inputs, wanted).await?;
        let labels = model.labels();
        let documents: Vec<pb::DocumentSentiment> = request
            .documents
            .iter()
            .zip(analyses)
            .map(|(d, a)| document_pb(&d.id, &d.text, a, &labels))
            .collect();
        let usage = documents
            .iter()
            .filter_map(|d| d.usage)
            .map(usage_core)
            .sum();
        Ok(pb::SentimentResponse {
            documents,
            model: Some(model.model_info()),
            usage: Some(wire::usage(usage)),
        })
    }

    fn validate(&self, request: &pb::SentimentRequest) -> Result<(), SentimentError> {
        let count = request.documents.len();
        if count == 0 {
            return Err(SentimentError::NoDocuments);
        }
        if count > self.limits.max_documents {
            return Err(SentimentError::TooManyDocuments {
                count,
                limit: self.limits.max_documents,
            });
        }
        for (index, document) in request.documents.iter().enumerate() {
            if document.text.len() > self.limits.max_document_bytes {
                let (bytes, limit) = (document.text.len(), self.limits.max_document_bytes);
                return Err(SentimentError::DocumentTooLarge {
                    index,
                    bytes,
                    limit,
                });
            }
            if longview_core::text::is_blank(&document.text) {
                return Err(SentimentError::BlankDocument { index });
            }
        }
        Ok(())
    }
}

fn usage_core(usage: pb::Usage) -> longview_core::Usage {
    longview_core::Usage {
        tokens_total: usage.tokens_total,
        tokens_seen: usage.tokens_seen,
        tokens_dropped: usage.tokens_dropped,
    }
}

fn document_pb(
    id: &str,
    text: &str,
    analysis: Analysis,
    labels: &[String],
) -> pb::DocumentSentiment {
    let chars = CharIndex::new(text);
    let span =
        |bytes: &std::ops::Range<usize>| Some(wire::span(chars.span(bytes.start, bytes.end)));
    let sentences = analysis
        .sentences
        .iter()
        .map(|s| pb::SentenceSentiment {
            span: span(&s.bytes),
            label: best(labels, &s.probabilities),
            probabilities: scored(labels, &s.probabilities),
        })
        .collect();
    let entities = analysis
        .entities
        .iter()
        .map(|e| pb::EntitySentiment {
            entity: e.entity.clone(),
            label: best(labels, &e.probabilities),
            probabilities: scored(labels, &e.probabilities),
            mentions: e.sentences.iter().filter_map(span).collect(),
        })
        .collect();
    pb::DocumentSentiment {
        id: id.to_string(),
        label: best(labels, &analysis.probabilities),
        probabilities: scored(labels, &analysis.probabilities),
        sentences,
        entities,
        usage: Some(wire::usage(analysis.usage)),
    }
}

fn best(labels: &[String], probabilities: &[f32]) -> String {
    let index = probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    labels.get(index).cloned().unwrap_or_default()
}

/// Probabilities by label, in the model's label order.
fn scored(labels: &[String], probabilities: &[f32]) -> Vec<pb::LabelScore> {
    labels
        .iter()
        .zip(probabilities)
        .map(|(label, &score)| pb::LabelScore {
            label: label.clone(),
            score,
        })
        .collect()
}

#[tonic::async_trait]
impl Sentiment for SentimentService {
    #[tracing::instrument(name = "sentiment", skip_all, fields(documents = request.get_ref().documents.len() as i64))]
    async fn analyze(
        &self,
        request: Request<pb::SentimentRequest>,
    ) -> Result<Response<pb::SentimentResponse>, Status> {
        Ok(Response::new(self.analyse(request.into_inner()).await?))
    }
}
