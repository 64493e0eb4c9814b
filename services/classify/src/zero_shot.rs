//! Zero-shot scoring: each label becomes a prototype vector embedded from its name and
//! description, and a window's score for a label follows its cosine similarity to that
//! prototype.

use crate::options::LabelSpec;
use longview_core::aggregate::{sigmoid, softmax};

/// Cosine similarities between sentence embeddings of unrelated texts sit near 0.1 and of
/// a text and its topic near 0.4–0.6; these constants spread that range over [0, 1].
const TEMPERATURE: f32 = 0.05;
/// Multi-label: a window counts as about a label once its similarity passes this point.
const MULTI_LABEL_THRESHOLD: f32 = 0.25;

/// The text a label's prototype is embedded from. Phrasing the label as a statement about
/// a document matches how documents read better than the bare word does.
pub fn prototype_text(label: &LabelSpec) -> String {
    if label.description.is_empty() {
        format!("This text is about {}.", label.name)
    } else {
        format!("This text is about {}: {}", label.name, label.description)
    }
}

/// Label prototypes and how their similarities become scores.
#[derive(Debug)]
pub struct ZeroShotScorer {
    prototypes: Vec<Vec<f32>>,
    multi_label: bool,
}

impl ZeroShotScorer {
    pub fn new(prototypes: Vec<Vec<f32>>, multi_label: bool) -> Self {
        Self {
            prototypes,
            multi_label,
        }
    }

    /// Scores one window vector (L2-normalised) against every label: probabilities, and
    /// the cosine similarities they came from (the window's evidence strength).
    pub fn score(&self, window: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let similarities: Vec<f32> = self.prototypes.iter().map(|p| dot(p, window)).collect();
        let probabilities = if self.multi_label {
            let calibrate = |s: &f32| sigmoid((s - MULTI_LABEL_THRESHOLD) / TEMPERATURE);
            similarities.iter().map(calibrate).collect()
        } else {
            softmax(&similarities, TEMPERATURE)
        };
        (probabilities, similarities)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_prototype_wins() {
        let scorer = ZeroShotScorer::new(vec![vec![1.0, 0.0], vec![0.0, 1.0]], false);
        let (scores, similarities) = scorer.score(&[0.6, 0.8]);
        assert!(scores[1] > scores[0]);
        assert_eq!(similarities, vec![0.6, 0.8]);
        assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn multi_label_scores_are_independent() {
        let scorer = ZeroShotScorer::new(vec![vec![1.0, 0.0], vec![0.0, 1.0]], true);
        let (scores, _) = scorer.score(&[std::f32::consts::FRAC_1_SQRT_2; 2]);
        assert!(scores[0] > 0.5 && scores[1] > 0.5);
    }
}
