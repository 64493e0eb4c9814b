//! Reading a whole document window by window and aggregating what the windows say.

use crate::options::{ClassifyPlan, DocumentAggregation, LabelSource};
use crate::scorer::{Scorer, WindowScores};
use crate::zero_shot::{ZeroShotScorer, prototype_text};
use crate::{ClassifyError, ClassifyLimits};
use longview_core::aggregate::{Aggregation, Aggregator};
use longview_core::head::AttentionPool;
use longview_core::{CharIndex, Span, TokenLimit, TokenizedText, Usage, Window, WindowPlan, text};
use longview_worker::Worker;
use std::sync::Arc;

/// Scores of one window, when the caller asked for them.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowResult {
    pub index: usize,
    pub span: Span,
    pub scores: Vec<f32>,
}

/// A window that supports a label.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelEvidence {
    pub label: usize,
    pub window: usize,
    pub span: Span,
    pub score: f32,
    /// The window's text, as sent (masking is the service's decision).
    pub text: String,
}

/// A document's classification.
#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    /// Document score per label, in the plan's label order.
    pub scores: Vec<f32>,
    /// Predicted labels (indices), best first.
    pub predicted: Vec<usize>,
    pub evidence: Vec<LabelEvidence>,
    pub windows: Vec<WindowResult>,
    pub window_count: usize,
    pub usage: Usage,
}

/// Classifies `text` according to `plan`.
pub async fn classify(
    worker: &Worker,
    text: String,
    plan: &ClassifyPlan,
    limits: &ClassifyLimits,
) -> Result<Classification, ClassifyError> {
    check_text(&text, limits)?;
    let scorer = scorer(worker, plan).await?;
    let texts = Arc::new(vec![text]);
    let tokens = worker
        .tokenize(texts.clone())
        .await?
        .pop()
        .unwrap_or_default();
    if tokens.is_empty() {
        return Err(ClassifyError::BlankText);
    }
    if tokens.len() > limits.max_document_tokens {
        return Err(ClassifyError::DocumentTooLong {
            tokens: tokens.len(),
            limit: limits.max_document_tokens,
        });
    }
    let mut reading = Reading::new(plan, &texts[0]);
    read_windows(worker, &tokens, plan, limits, &scorer, &mut reading).await?;
    let usage = Usage::new(tokens.len(), 0);
    Ok(reading.finish(plan, &scorer, usage, &texts[0]))
}

fn check_text(text: &str, limits: &ClassifyLimits) -> Result<(), ClassifyError> {
    if text.len() > limits.max_document_bytes {
        return Err(ClassifyError::DocumentTooLarge {
            bytes: text.len(),
            limit: limits.max_document_bytes,
        });
    }
    if text::is_blank(text) {
        return Err(ClassifyError::BlankText);
    }
    Ok(())
}

async fn scorer(worker: &Worker, plan: &ClassifyPlan) -> Result<Scorer, ClassifyError> {
    let labels = match &plan.source {
        LabelSource::Head(head) => return Ok(Scorer::Head(head.clone())),
        LabelSource::ZeroShot(labels) => labels,
    };
    let texts = labels.iter().map(prototype_text).collect();
    let info = worker.loaded()?.info.clone();
    let limit = TokenLimit {
        max_tokens: info.trained_seq_len - info.special_tokens,
        truncate: true,
    };
    let prototypes = worker
        .embed_texts(texts, limit)
        .await?
        .into_iter()
        .map(|e| e.vector)
        .collect();
    Ok(Scorer::ZeroShot(ZeroShotScorer::new(
        prototypes,
        plan.multi_label,
    )))
}

/// Encodes the windows a batch at a time, so memory stays bounded by the batch, not the
/// document.
async fn read_windows(
    worker: &Worker,
    tokens: &TokenizedText,
    plan: &ClassifyPlan,
    limits: &ClassifyLimits,
    scorer: &Scorer,
    reading: &mut Reading,
) -> Result<(), ClassifyError> {
    let windows = WindowPlan::new(plan.window, &tokens.offsets);
    let mut pending = Vec::with_capacity(limits.windows_per_job);
    for window in windows.windows() {
        pending.push(window);
        if pending.len() == limits.windows_per_job {
            encode_and_score(worker, tokens, &mut pending, scorer, reading).await?;
        }
    }
    encode_and_score(worker, tokens, &mut pending, scorer, reading).await
}

async fn encode_and_score(
    worker: &Worker,
    tokens: &TokenizedText,
    pending: &mut Vec<Window>,
    scorer: &Scorer,
    reading: &mut Reading,
) -> Result<(), ClassifyError> {
    if pending.is_empty() {
        return Ok(());
    }
    let sequences = pending
        .iter()
        .map(|w| tokens.ids[w.tokens.clone()].to_vec())
        .collect();
    let vectors = worker.encode_as(sequences, scorer.output()).await?;
    for (window, vector) in pending.drain(..).zip(vectors) {
        let scores = scorer.window(&vector);
        reading.push(window, scores, &vector);
    }
    Ok(())
}

/// State while reading one document: the folded scores, attention pooling, and window
/// spans for evidence. Its size depends on the window count, never on window contents.
struct Reading {
    aggregator: Aggregator,
    attention: Option<AttentionPool>,
    chars: CharIndex,
    spans: Vec<(usize, usize)>,
    windows: Vec<WindowResult>,
    include_windows: bool,
}

impl Reading {
    fn new(plan: &ClassifyPlan, text: &str) -> Self {
        let fold = match plan.aggregation {
            DocumentAggregation::Max => Aggregation::Max,
            DocumentAggregation::Mean | DocumentAggregation::Attention => Aggregation::Mean,
        };
        let attention =
            (plan.aggregation == DocumentAggregation::Attention).then(AttentionPool::default);
        Self {
            aggregator: Aggregator::new(fold, plan.labels.len(), plan.top_evidence),
            attention,
            chars: CharIndex::new(text),
            spans: Vec::new(),
            windows: Vec::new(),
            include_windows: plan.include_windows,
        }
    }

    fn push(&mut self, window: Window, scores: WindowScores, vector: &[f32]) {
        self.aggregator
            .push(window.index, &scores.raw, &scores.scores, &scores.strengths);
        if let (Some(pool), Some(score)) = (self.attention.as_mut(), scores.attention) {
            pool.push(score, vector);
        }
        self.spans.push((window.bytes.start, window.bytes.end));
        if self.include_windows {
            let span = self.chars.span(window.bytes.start, window.bytes.end);
            self.windows.push(WindowResult {
                index: window.index,
                span,
                scores: scores.scores,
            });
        }
    }

    fn finish(
        self,
        plan: &ClassifyPlan,
        scorer: &Scorer,
        usage: Usage,
        text: &str,
    ) -> Classification {
        let pooled = self.attention.as_ref().map(AttentionPool::pooled);
        let scores = scorer.document(self.aggregator.scores(), pooled);
        let predicted = predict(&scores, plan.multi_label);
        let evidence = predicted
            .iter()
            .flat_map(|&label| {
                self.aggregator
                    .evidence(label)
                    .iter()
                    .map(move |scored| (label, scored))
            })
            .map(|(label, scored)| {
                let (start, end) = self.spans[scored.window];
                let span = self.chars.span(start, end);
                LabelEvidence {
                    label,
                    window: scored.window,
                    span,
                    score: scored.score,
                    text: text[start..end].to_string(),
                }
            })
            .collect();
        let window_count = self.aggregator.window_count();
        Classification {
            scores,
            predicted,
            evidence,
            windows: self.windows,
            window_count,
            usage,
        }
    }
}

/// Multi-class: the best label. Multi-label: every label at or above one half, best first.
fn predict(scores: &[f32], multi_label: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    if multi_label {
        order.retain(|&label| scores[label] >= 0.5);
    } else {
        order.truncate(1);
    }
    order
}
