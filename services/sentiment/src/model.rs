//! Which model answers: a trained head over the shared encoder (the default), or a user's
//! own Hugging Face sequence classifier running on a worker of its own.

use longview_core::aggregate::softmax;
use longview_core::head::ClassifierHead;
use longview_proto::v1 as pb;
use longview_worker::{Output, Worker, wire};
use std::sync::Arc;

#[derive(Debug)]
pub enum SentimentModel {
    /// A trained label set read through the shared encoder.
    Head {
        worker: Worker,
        head: Arc<ClassifierHead>,
    },
    /// A `…ForSequenceClassification` model whose native output is class logits.
    Classifier { worker: Worker },
}

impl SentimentModel {
    pub fn worker(&self) -> &Worker {
        match self {
            SentimentModel::Head { worker, .. } | SentimentModel::Classifier { worker } => worker,
        }
    }

    /// What the worker returns per sequence for this model.
    pub fn output(&self) -> Output {
        match self {
            SentimentModel::Head { head, .. } if head.reads_first_state() => Output::FirstState,
            SentimentModel::Head { .. } => Output::Embedding,
            SentimentModel::Classifier { .. } => Output::Native,
        }
    }

    /// Class logits from what the worker returned for one sequence.
    pub fn logits(&self, encoded: Vec<f32>) -> Vec<f32> {
        match self {
            SentimentModel::Head { head, .. } => head.logits(&encoded),
            SentimentModel::Classifier { .. } => encoded,
        }
    }

    /// Calibrated probabilities from logits.
    pub fn probabilities(&self, logits: &[f32]) -> Vec<f32> {
        match self {
            SentimentModel::Head { head, .. } => head.activate(logits),
            SentimentModel::Classifier { .. } => softmax(logits, 1.0),
        }
    }

    pub fn labels(&self) -> Vec<String> {
        match self {
            SentimentModel::Head { head, .. } => head.labels().to_vec(),
            SentimentModel::Classifier { worker } => worker
                .loaded()
                .ok()
                .and_then(|l| l.info.labels.clone())
                .unwrap_or_default(),
        }
    }

    /// Tokens per sequence the model reads, special tokens excluded.
    pub fn window_tokens(&self) -> usize {
        let info = self.worker().loaded().map(|l| l.info.clone()).ok();
        let (positions, special) = info.map_or((256, 2), |i| (i.trained_seq_len, i.special_tokens));
        match self {
            SentimentModel::Head { head, .. } => head.spec.window_size.min(positions),
            SentimentModel::Classifier { .. } => positions,
        }
        .saturating_sub(special)
    }

    pub fn model_info(&self) -> pb::ModelInfo {
        let mut model = self
            .worker()
            .loaded()
            .map(|l| wire::model(&l.info))
            .unwrap_or_default();
        if let SentimentModel::Head { head, .. } = self {
            model.head = head.spec.name.clone();
            model.head_version = head.spec.version.clone();
        }
        model
    }
}
