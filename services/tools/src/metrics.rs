//! Classification metrics: per-label F1, macro-F1, accuracy, threshold tuning.

/// Counts for one label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub true_positive: usize,
    pub false_positive: usize,
    pub false_negative: usize,
}

impl Counts {
    /// F1, or 0 when the label was neither present nor predicted (scikit-learn's
    /// `zero_division=0`).
    pub fn f1(&self) -> f64 {
        let denominator = 2 * self.true_positive + self.false_positive + self.false_negative;
        if denominator == 0 {
            0.0
        } else {
            2.0 * self.true_positive as f64 / denominator as f64
        }
    }

    pub fn support(&self) -> usize {
        self.true_positive + self.false_negative
    }
}

/// Per-label counts for multi-label predictions (`predicted[d][l]`, `truth[d][l]`).
pub fn label_counts(predicted: &[Vec<bool>], truth: &[Vec<bool>]) -> Vec<Counts> {
    let labels = truth.first().map_or(0, Vec::len);
    let mut counts = vec![Counts::default(); labels];
    for (p, t) in predicted.iter().zip(truth) {
        for (label, c) in counts.iter_mut().enumerate() {
            match (p[label], t[label]) {
                (true, true) => c.true_positive += 1,
                (true, false) => c.false_positive += 1,
                (false, true) => c.false_negative += 1,
                (false, false) => {}
            }
        }
    }
    counts
}

pub fn macro_f1(counts: &[Counts]) -> f64 {
    counts.iter().map(Counts::f1).sum::<f64>() / counts.len().max(1) as f64
}

/// Per label, the probability threshold that maximises F1 on the given data (ties: the
/// one closest to 0.5). Tuned on validation data, applied to test data.
pub fn tune_thresholds(probabilities: &[Vec<f32>], truth: &[Vec<bool>]) -> Vec<f32> {
    let labels = truth.first().map_or(0, Vec::len);
    let candidates: Vec<f32> = (1..20).map(|i| i as f32 * 0.05).collect();
    (0..labels)
        .map(|label| {
            let f1_at = |threshold: f32| {
                let predicted: Vec<Vec<bool>> = probabilities
                    .iter()
                    .map(|p| vec![p[label] >= threshold])
                    .collect();
                let truth: Vec<Vec<bool>> = truth.iter().map(|t| vec![t[label]]).collect();
                label_counts(&predicted, &truth)[0].f1()
            };
            let mut best = (f1_at(0.5), 0.5f32);
            for &threshold in &candidates {
                let f1 = f1_at(threshold);
                if f1 > best.0 + 1e-12
                    || ((f1 - best.0).abs() <= 1e-12
                        && (threshold - 0.5).abs() < (best.1 - 0.5).abs())
                {
                    best = (f1, threshold);
                }
            }
            best.1
        })
        .collect()
}

/// Expected calibration error: the mean gap between confidence (the top probability) and
/// accuracy, over `bins` equal-width confidence bins, weighted by how many predictions
/// fall in each.
pub fn expected_calibration_error(probabilities: &[Vec<f32>], truth: &[usize], bins: usize) -> f64 {
    let mut sums = vec![(0usize, 0.0f64, 0.0f64); bins];
    for (p, &t) in probabilities.iter().zip(truth) {
        let (best, confidence) = argmax(p);
        let bin = ((confidence as f64 * bins as f64) as usize).min(bins - 1);
        sums[bin].0 += 1;
        sums[bin].1 += confidence as f64;
        sums[bin].2 += f64::from(u8::from(best == t));
    }
    let n = probabilities.len().max(1) as f64;
    sums.iter()
        .map(|(_, confidence, correct)| (confidence - correct).abs() / n)
        .sum()
}

/// Index and value of the largest entry.
pub fn argmax(values: &[f32]) -> (usize, f32) {
    values
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 { (i, v) } else { best }
        })
}

/// The softmax temperature that minimises negative log-likelihood of `truth` given
/// `logits`, searched on a grid (calibration by temperature scaling).
pub fn fit_temperature(logits: &[Vec<f32>], truth: &[usize]) -> f32 {
    let nll = |t: f32| -> f64 {
        logits
            .iter()
            .zip(truth)
            .map(|(l, &y)| {
                let p = longview_core::aggregate::softmax(l, t);
                -(p[y].max(1e-12) as f64).ln()
            })
            .sum()
    };
    (5..=400)
        .map(|i| i as f32 * 0.01)
        .min_by(|a, b| nll(*a).total_cmp(&nll(*b)))
        .unwrap_or(1.0)
}

/// Hit rate and NDCG at `k` for one held-out item that `greater` candidates outscore and
/// `ties` others equal, in expectation over a random order among the tied: ties neither
/// help nor hurt a method that scores many items alike (popularity does).
pub fn expected_hit_and_ndcg(greater: usize, ties: usize, k: usize) -> (f64, f64) {
    let (mut hit, mut ndcg) = (0.0, 0.0);
    for position in (greater + 1)..=(greater + ties + 1).min(k) {
        hit += 1.0;
        ndcg += 1.0 / ((position + 1) as f64).log2();
    }
    let orders = (ties + 1) as f64;
    (hit / orders, ndcg / orders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_by_hand() {
        let truth = vec![vec![true, false], vec![true, true], vec![false, false]];
        let predicted = vec![vec![true, true], vec![false, true], vec![false, false]];
        let counts = label_counts(&predicted, &truth);
        assert_eq!(
            counts[0],
            Counts {
                true_positive: 1,
                false_positive: 0,
                false_negative: 1
            }
        );
        assert!((counts[0].f1() - 2.0 / 3.0).abs() < 1e-12);
        assert!((counts[1].f1() - 2.0 / 3.0).abs() < 1e-12);
        assert!((macro_f1(&counts) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn calibration_error_by_hand() {
        // Two predictions at 0.9 confidence, one right: |1.8 − 1| / 2 = 0.4.
        let probabilities = vec![vec![0.9, 0.1], vec![0.1, 0.9]];
        assert!((expected_calibration_error(&probabilities, &[0, 0], 10) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn overconfident_logits_get_a_temperature_above_one() {
        // Logits that say 99% but are right only 70% of the time.
        let logits: Vec<Vec<f32>> = (0..100).map(|_| vec![4.6, 0.0]).collect();
        let truth: Vec<usize> = (0..100).map(|i| usize::from(i % 10 >= 7)).collect();
        assert!(fit_temperature(&logits, &truth) > 2.0);
    }

    #[test]
    fn thresholds_separate_when_they_can() {
        let probabilities = vec![vec![0.3], vec![0.25], vec![0.1], vec![0.05]];
        let truth = vec![vec![true], vec![true], vec![false], vec![false]];
        let threshold = tune_thresholds(&probabilities, &truth)[0];
        assert!(threshold > 0.1 && threshold <= 0.25, "{threshold}");
    }

    #[test]
    fn ranking_metrics_by_hand() {
        assert_eq!(expected_hit_and_ndcg(0, 0, 10), (1.0, 1.0));
        let (hit, ndcg) = expected_hit_and_ndcg(2, 0, 10);
        assert_eq!(hit, 1.0);
        assert!((ndcg - 0.5).abs() < 1e-12, "position 3: 1 / log2(4)");
        assert_eq!(expected_hit_and_ndcg(10, 0, 10), (0.0, 0.0));
        // Tied with 3 others behind 8 better ones: positions 9..=12 equally likely.
        let (hit, ndcg) = expected_hit_and_ndcg(8, 3, 10);
        assert!((hit - 0.5).abs() < 1e-12);
        let expected = (1.0 / 10f64.log2() + 1.0 / 11f64.log2()) / 4.0;
        assert!((ndcg - expected).abs() < 1e-12);
    }
}
