//! Turning window scores into document scores, with bounded memory.

use std::cmp::Ordering;

/// How window scores become document scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    Mean,
    Max,
}

/// Softmax with a temperature; `logits` become probabilities that sum to one.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let scaled: Vec<f32> = logits.iter().map(|x| x / temperature).collect();
    let max = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scaled.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|x| x / sum).collect()
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A window's score for one label, kept as evidence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub window: usize,
    pub score: f32,
    /// What evidence is ranked by: how strongly the window speaks for the label on its
    /// own (a logit or similarity), since probabilities saturate near 1 and would tie.
    pub strength: f32,
}

/// Folds per-window label scores into document scores one window at a time, keeping the
/// `top_k` best windows per label, so memory does not grow with the document.
#[derive(Debug)]
pub struct Aggregator {
    aggregation: Aggregation,
    acc: Vec<f32>,
    windows: usize,
    top_k: usize,
    best: Vec<Vec<Scored>>,
}

impl Aggregator {
    pub fn new(aggregation: Aggregation, labels: usize, top_k: usize) -> Self {
        let init = match aggregation {
            Aggregation::Mean => 0.0,
            Aggregation::Max => f32::NEG_INFINITY,
        };
        Self {
            aggregation,
            acc: vec![init; labels],
            windows: 0,
            top_k,
            best: vec![Vec::new(); labels],
        }
    }

    /// Adds window `window`: per label, the value folded into the document score, the
    /// window's own score (kept with evidence) and its evidence strength.
    pub fn push(&mut self, window: usize, folded: &[f32], scores: &[f32], strengths: &[f32]) {
        for (label, &value) in folded.iter().enumerate() {
            match self.aggregation {
                Aggregation::Mean => self.acc[label] += value,
                Aggregation::Max => self.acc[label] = self.acc[label].max(value),
            }
            let (score, strength) = (scores[label], strengths[label]);
            keep_best(
                &mut self.best[label],
                Scored {
                    window,
                    score,
                    strength,
                },
                self.top_k,
            );
        }
        self.windows += 1;
    }

    pub fn window_count(&self) -> usize {
        self.windows
    }

    /// Document scores per label.
    pub fn scores(&self) -> Vec<f32> {
        match self.aggregation {
            Aggregation::Mean => {
                let n = self.windows.max(1) as f32;
                self.acc.iter().map(|sum| sum / n).collect()
            }
            Aggregation::Max => self.acc.clone(),
        }
    }

    /// The best windows for `label`, highest score first.
    pub fn evidence(&self, label: usize) -> &[Scored] {
        &self.best[label]
    }
}

fn keep_best(best: &mut Vec<Scored>, candidate: Scored, top_k: usize) {
    if top_k == 0 {
        return;
    }
    let at = best.partition_point(|kept| by_score(kept, &candidate) != Ordering::Greater);
    if at < top_k {
        best.insert(at, candidate);
        best.truncate(top_k);
    }
}

/// Descending by strength; ties keep the earlier window first.
fn by_score(a: &Scored, b: &Scored) -> Ordering {
    b.strength
        .total_cmp(&a.strength)
        .then(a.window.cmp(&b.window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[0.1, 0.5, 0.2], 0.05);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[2] && p[2] > p[0]);
    }

    #[test]
    fn mean_and_max() {
        let windows = [[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]];
        let mut mean = Aggregator::new(Aggregation::Mean, 2, 2);
        let mut max = Aggregator::new(Aggregation::Max, 2, 2);
        for (i, w) in windows.iter().enumerate() {
            mean.push(i, w, w, w);
            max.push(i, w, w, w);
        }
        let m = mean.scores();
        assert!((m[0] - 0.3).abs() < 1e-6 && (m[1] - 0.7).abs() < 1e-6);
        assert_eq!(max.scores(), vec![0.6, 0.9]);
        let best: Vec<usize> = mean.evidence(1).iter().map(|s| s.window).collect();
        assert_eq!(best, vec![2, 0]);
    }

    #[test]
    fn evidence_keeps_only_top_k() {
        let mut agg = Aggregator::new(Aggregation::Mean, 1, 3);
        for i in 0..100 {
            agg.push(i, &[0.5], &[0.5], &[(i % 17) as f32]);
        }
        let best: Vec<usize> = agg.evidence(0).iter().map(|s| s.window).collect();
        assert_eq!(best, vec![16, 33, 50]);
    }
}
