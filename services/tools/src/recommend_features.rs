//! The score components of every candidate of every evaluation query, as of the moment
//! of the held-out interaction: popularity counts and last-interaction times include only
//! ratings made before it, so no query sees the future. Computed with the service's own
//! scoring functions.

use crate::movielens::{MovieLens, Query};
use longview_recommend::score::{self, CandidateFacts, HalfLife, HistoryVector};
use rayon::prelude::*;
use std::collections::HashSet;

/// History half-lives the tuning may pick from, in days (`None`: no decay).
pub const HISTORY_HALF_LIVES: [Option<f64>; 5] =
    [None, Some(30.0), Some(7.0), Some(1.0), Some(0.25)];
/// Recency half-lives the tuning may pick from, in days.
pub const RECENCY_HALF_LIVES: [f64; 4] = [1.0, 7.0, 30.0, 90.0];

/// One query's candidates (every movie the user has not rated before the held-out one)
/// and their components.
#[derive(Debug)]
pub struct QueryFeatures {
    /// The held-out movie's position among the candidates.
    pub target: usize,
    /// Content similarity per history half-life, per candidate.
    pub content: Vec<Vec<f32>>,
    pub popularity: Vec<f32>,
    /// Recency per recency half-life, per candidate.
    pub recency: Vec<Vec<f32>>,
}

impl QueryFeatures {
    pub fn candidates(&self) -> usize {
        self.popularity.len()
    }
}

/// What had happened by a query's time: ratings per movie and each movie's latest rating.
struct AsOf {
    counts: Vec<u64>,
    last: Vec<i64>,
}

/// Features for every query, in the order given.
pub fn features(data: &MovieLens, vectors: &[Vec<f32>], queries: &[Query]) -> Vec<QueryFeatures> {
    let as_of = as_of(data, queries);
    queries
        .par_iter()
        .zip(as_of)
        .filter_map(|(query, as_of)| query_features(vectors, query, &as_of))
        .collect()
}

/// A sweep through the ratings in time order, noting the state at each query's time.
fn as_of(data: &MovieLens, queries: &[Query]) -> Vec<AsOf> {
    let mut ratings: Vec<(i64, usize)> =
        data.ratings.iter().map(|r| (r.timestamp, r.item)).collect();
    ratings.sort_unstable();
    let mut order: Vec<usize> = (0..queries.len()).collect();
    order.sort_by_key(|&q| queries[q].time);
    let mut counts = vec![0u64; data.movies.len()];
    let mut last = vec![0i64; data.movies.len()];
    let mut next = 0;
    let mut states: Vec<Option<AsOf>> = (0..queries.len()).map(|_| None).collect();
    for q in order {
        while next < ratings.len() && ratings[next].0 < queries[q].time {
            let (time, item) = ratings[next];
            counts[item] += 1;
            last[item] = last[item].max(time);
            next += 1;
        }
        states[q] = Some(AsOf {
            counts: counts.clone(),
            last: last.clone(),
        });
    }
    states.into_iter().flatten().collect()
}

fn query_features(vectors: &[Vec<f32>], query: &Query, as_of: &AsOf) -> Option<QueryFeatures> {
    let seen: HashSet<usize> = query.history.iter().map(|&(item, _)| item).collect();
    let candidates: Vec<usize> = (0..vectors.len()).filter(|i| !seen.contains(i)).collect();
    let target = candidates.iter().position(|&c| c == query.target)?;
    let facts: Vec<CandidateFacts<'_>> = candidates
        .iter()
        .map(|&i| CandidateFacts {
            vector: &vectors[i],
            popularity: as_of.counts[i],
            timestamp: as_of.last[i],
        })
        .collect();
    let history: Vec<HistoryVector<'_>> = query
        .history
        .iter()
        .map(|&(item, timestamp)| HistoryVector {
            vector: &vectors[item],
            weight: 1.0,
            timestamp,
        })
        .collect();
    let mut popularity = Vec::new();
    let content = HISTORY_HALF_LIVES
        .iter()
        .map(|&days| {
            let decay = HalfLife(days.map(|d| d * 86_400.0));
            let user = score::user_vector(&history, query.time, decay);
            let parts = score::components(user.as_deref(), &facts, query.time, HalfLife::NONE);
            popularity = parts.iter().map(|p| p.popularity as f32).collect();
            parts
                .iter()
                .map(|p| p.content.unwrap_or(0.0) as f32)
                .collect()
        })
        .collect();
    let recency = RECENCY_HALF_LIVES
        .iter()
        .map(|&days| {
            let half_life = HalfLife::days(days);
            facts
                .iter()
                .map(|f| score::freshness(f.timestamp, query.time, half_life) as f32)
                .collect()
        })
        .collect();
    Some(QueryFeatures {
        target,
        content,
        popularity,
        recency,
    })
}
