//! Turning window vectors into label scores, for zero-shot labels and trained heads alike.

use crate::zero_shot::ZeroShotScorer;
use longview_core::head::ClassifierHead;
use longview_worker::Output;
use std::sync::Arc;

/// What one window says about every label.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowScores {
    /// Folded into the document score by mean or max (probabilities for zero-shot,
    /// logits for heads).
    pub raw: Vec<f32>,
    /// The window's own scores, as reported per window.
    pub scores: Vec<f32>,
    /// How strongly the window speaks for each label: ranks evidence.
    pub strengths: Vec<f32>,
    /// The head's attention score for the window, for attention heads.
    pub attention: Option<f32>,
}

/// Scores windows against a label set.
#[derive(Debug)]
pub enum Scorer {
    ZeroShot(ZeroShotScorer),
    Head(Arc<ClassifierHead>),
}

impl Scorer {
    /// What the encoder must return per window for this scorer.
    pub fn output(&self) -> Output {
        match self {
            Scorer::Head(head) if head.reads_first_state() => Output::FirstState,
            _ => Output::Embedding,
        }
    }

    pub fn window(&self, vector: &[f32]) -> WindowScores {
        match self {
            Scorer::ZeroShot(zero_shot) => {
                let (probabilities, similarities) = zero_shot.score(vector);
                WindowScores {
                    raw: probabilities.clone(),
                    scores: probabilities,
                    strengths: similarities,
                    attention: None,
                }
            }
            Scorer::Head(head) => {
                let logits = head.logits(vector);
                let scores = head.activate(&logits);
                WindowScores {
                    raw: logits.clone(),
                    scores,
                    strengths: logits,
                    attention: head.attention_score(vector),
                }
            }
        }
    }

    /// Document scores from the folded raw scores, or from the attention-pooled vector.
    pub fn document(&self, folded: Vec<f32>, pooled: Option<Vec<f32>>) -> Vec<f32> {
        match (self, pooled) {
            (Scorer::ZeroShot(_), _) => folded,
            (Scorer::Head(head), Some(pooled)) => head.activate(&head.logits(&pooled)),
            (Scorer::Head(head), None) => head.activate(&folded),
        }
    }
}
