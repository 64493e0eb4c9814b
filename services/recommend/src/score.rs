//! The score itself: a user vector from the history, the components of each candidate,
//! their weighted blend and the ranking. Plain arithmetic, shared by the service and the
//! offline evaluation so both rank the same way.

use std::collections::BTreeMap;

/// Cosine similarity between the user's history and the candidate.
pub const CONTENT: &str = "content";
/// How often the item was interacted with, relative to the other candidates.
pub const POPULARITY: &str = "popularity";
/// How fresh the item is.
pub const RECENCY: &str = "recency";
/// The built-in components, in the order responses list them.
pub const COMPONENTS: [&str; 3] = [CONTENT, POPULARITY, RECENCY];

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Blend weights: one per built-in component, and any per feature name.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub content: f64,
    pub popularity: f64,
    pub recency: f64,
    /// Features without a weight here count 0.
    pub features: BTreeMap<String, f64>,
}

impl Weights {
    pub fn new(content: f64, popularity: f64, recency: f64) -> Self {
        Self {
            content,
            popularity,
            recency,
            features: BTreeMap::new(),
        }
    }

    /// Sets the weight named `name`: a built-in component or a feature.
    pub fn set(&mut self, name: &str, value: f64) {
        match name {
            CONTENT => self.content = value,
            POPULARITY => self.popularity = value,
            RECENCY => self.recency = value,
            feature => {
                self.features.insert(feature.to_string(), value);
            }
        }
    }

    /// The weights a user without history is ranked with: content drops out, and if
    /// nothing else is weighted, popularity alone ranks.
    pub fn for_cold_start(&self) -> Self {
        let mut weights = Self {
            content: 0.0,
            ..self.clone()
        };
        let nothing_else = weights.popularity == 0.0
            && weights.recency == 0.0
            && weights.features.values().all(|&w| w == 0.0);
        if nothing_else {
            weights.popularity = 1.0;
        }
        weights
    }

    /// Every weight by name, built-in components first.
    pub fn named(&self) -> impl Iterator<Item = (&str, f64)> {
        [
            (CONTENT, self.content),
            (POPULARITY, self.popularity),
            (RECENCY, self.recency),
        ]
        .into_iter()
        .chain(self.features.iter().map(|(k, &v)| (k.as_str(), v)))
    }
}

impl Default for Weights {
    /// Tuned on MovieLens-100K validation items (`longview eval recommend`).
    fn default() -> Self {
        Self::new(1.0, 0.5, 0.1)
    }
}

/// How fast a weight halves with age; `None` never decays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HalfLife(pub Option<f64>);

impl HalfLife {
    pub fn days(days: f64) -> Self {
        Self(Some(days * SECONDS_PER_DAY))
    }

    pub const NONE: Self = Self(None);

    /// 0.5 ^ (age / half-life); ages at or below zero (and unknown times, 0) count fully.
    pub fn factor(self, now: i64, timestamp: i64) -> f64 {
        match self.0 {
            Some(half_life) if timestamp != 0 => {
                let age = (now - timestamp).max(0) as f64;
                0.5f64.powf(age / half_life)
            }
            _ => 1.0,
        }
    }
}

/// One history item with its vector.
#[derive(Clone, Copy, Debug)]
pub struct HistoryVector<'a> {
    pub vector: &'a [f32],
    pub weight: f32,
    pub timestamp: i64,
}

/// The user's taste as one unit vector: the history's vectors weighted by their weight
/// and age. `None` when nothing carries weight (the cold-start case).
///
/// Only relative weights matter once the sum is normalised, so ages count from the newest
/// dated item (or `now`, if earlier): an old history then decays relative to its own
/// latest item instead of underflowing to nothing.
pub fn user_vector(history: &[HistoryVector<'_>], now: i64, decay: HalfLife) -> Option<Vec<f32>> {
    let dimensions = history.first()?.vector.len();
    let newest = history
        .iter()
        .map(|h| h.timestamp)
        .filter(|&t| t != 0)
        .max();
    let reference = newest.map_or(now, |t| t.min(now));
    let mut sum = vec![0f64; dimensions];
    for item in history {
        let weight = f64::from(item.weight) * decay.factor(reference, item.timestamp);
        for (s, &v) in sum.iter_mut().zip(item.vector) {
            *s += weight * f64::from(v);
        }
    }
    let norm = sum.iter().map(|s| s * s).sum::<f64>().sqrt();
    (norm > 1e-12 && norm.is_finite()).then(|| sum.iter().map(|s| (s / norm) as f32).collect())
}

/// What the score needs to know about one candidate.
#[derive(Clone, Copy, Debug)]
pub struct CandidateFacts<'a> {
    pub vector: &'a [f32],
    pub popularity: u64,
    pub timestamp: i64,
}

/// The parts of one candidate's score. `content` is `None` without a user vector.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Components {
    pub content: Option<f64>,
    pub popularity: f64,
    pub recency: f64,
}

/// Components for every candidate. Popularity is relative to the most popular candidate
/// on a log scale, so one blockbuster does not flatten everything else to zero.
pub fn components(
    user: Option<&[f32]>,
    candidates: &[CandidateFacts<'_>],
    now: i64,
    recency: HalfLife,
) -> Vec<Components> {
    let most = candidates.iter().map(|c| c.popularity).max().unwrap_or(0);
    candidates
        .iter()
        .map(|c| Components {
            content: user.map(|u| f64::from(dot(u, c.vector))),
            popularity: popularity(c.popularity, most),
            recency: freshness(c.timestamp, now, recency),
        })
        .collect()
}

/// log(1 + count) / log(1 + most), in [0, 1]; 0 when nothing has been interacted with.
pub fn popularity(count: u64, most: u64) -> f64 {
    let scale = (most as f64).ln_1p();
    if scale > 0.0 {
        (count as f64).ln_1p() / scale
    } else {
        0.0
    }
}

/// The recency component: 0.5 ^ (age / half-life), or 0 for an item without a time.
pub fn freshness(timestamp: i64, now: i64, half_life: HalfLife) -> f64 {
    if timestamp == 0 {
        0.0
    } else {
        half_life.factor(now, timestamp)
    }
}

/// The weighted sum of a candidate's components and features.
pub fn blend(components: &Components, features: &BTreeMap<String, f64>, weights: &Weights) -> f64 {
    let built_in = weights.content * components.content.unwrap_or(0.0)
        + weights.popularity * components.popularity
        + weights.recency * components.recency;
    let extra: f64 = features
        .iter()
        .filter_map(|(name, value)| weights.features.get(name).map(|w| w * value))
        .sum();
    built_in + extra
}

/// Candidate indices best first; equal scores keep the caller's order.
pub fn rank(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Dot product in f32 lanes the compiler vectorises.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn user_vector_weights_recent_items_more() {
        let (old, new) = (unit(&[1.0, 0.0]), unit(&[0.0, 1.0]));
        let day = 86_400;
        let history = [
            HistoryVector {
                vector: &old,
                weight: 1.0,
                timestamp: 1,
            },
            HistoryVector {
                vector: &new,
                weight: 1.0,
                timestamp: 30 * day,
            },
        ];
        let now = 30 * day;
        let flat = user_vector(&history, now, HalfLife::NONE).unwrap();
        assert!((flat[0] - flat[1]).abs() < 1e-6);
        let decayed = user_vector(&history, now, HalfLife::days(7.0)).unwrap();
        assert!(decayed[1] > 0.99, "{decayed:?}");
        let norm: f32 = decayed.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn an_old_history_still_makes_a_user() {
        let v = unit(&[1.0, 1.0]);
        let long_ago = [HistoryVector {
            vector: &v,
            weight: 1.0,
            timestamp: 1,
        }];
        let now = 10 * 365 * 86_400;
        assert!(user_vector(&long_ago, now, HalfLife::days(1.0)).is_some());
    }

    #[test]
    fn no_weight_means_no_user_vector() {
        let v = unit(&[1.0, 1.0]);
        let history = [HistoryVector {
            vector: &v,
            weight: 0.0,
            timestamp: 0,
        }];
        assert!(user_vector(&history, 0, HalfLife::NONE).is_none());
        assert!(user_vector(&[], 0, HalfLife::NONE).is_none());
    }

    #[test]
    fn components_by_hand() {
        let user = unit(&[1.0, 0.0]);
        let (a, b) = (unit(&[1.0, 1.0]), unit(&[0.0, 1.0]));
        let day = 86_400;
        let candidates = [
            CandidateFacts {
                vector: &a,
                popularity: 99,
                timestamp: 10 * day,
            },
            CandidateFacts {
                vector: &b,
                popularity: 9,
                timestamp: 0,
            },
        ];
        let c = components(Some(&user), &candidates, 20 * day, HalfLife::days(10.0));
        assert!((c[0].content.unwrap() - 0.5f64.sqrt()).abs() < 1e-6);
        assert!(c[1].content.unwrap().abs() < 1e-6);
        assert!((c[0].popularity - 1.0).abs() < 1e-12);
        assert!((c[1].popularity - 10f64.ln() / 100f64.ln()).abs() < 1e-12);
        assert!((c[0].recency - 0.5).abs() < 1e-12);
        assert_eq!(c[1].recency, 0.0, "no timestamp, no recency");
    }

    #[test]
    fn blend_and_rank() {
        let mut weights = Weights::new(1.0, 0.5, 0.0);
        weights.set("margin", 2.0);
        let features = BTreeMap::from([("margin".to_string(), 0.25), ("other".into(), 9.0)]);
        let parts = Components {
            content: Some(0.5),
            popularity: 0.2,
            recency: 1.0,
        };
        assert!((blend(&parts, &features, &weights) - (0.5 + 0.1 + 0.5)).abs() < 1e-12);
        assert_eq!(rank(&[0.1, 0.9, 0.5, 0.9]), [1, 3, 2, 0]);
    }

    #[test]
    fn cold_start_weights_fall_back_to_popularity() {
        let mut content_only = Weights::new(1.0, 0.0, 0.0);
        assert_eq!(content_only.for_cold_start(), Weights::new(0.0, 1.0, 0.0));
        content_only.set("margin", 1.0);
        let cold = content_only.for_cold_start();
        assert_eq!((cold.content, cold.popularity), (0.0, 0.0));
    }

    #[test]
    fn dot_matches_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.05).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
