//! Reciprocal rank fusion: each list votes 1 / (K + rank) for the items it ranked, so
//! an item near the top of both lists beats one at the top of only one, and the lists'
//! incomparable scores (cosine, BM25) never need calibrating against each other.

use std::collections::HashMap;

/// The constant from Cormack, Clarke and Büttcher (2009); damps the weight of the very
/// first ranks so one list cannot decide alone.
pub const RRF_K: f32 = 60.0;

/// Fuses ranked id lists (best first) into one, best first, with fused scores. Ties keep
/// the order in which ids were first seen, so results are deterministic.
pub fn reciprocal_rank(lists: &[&[u64]]) -> Vec<(u64, f32)> {
    let mut scores: HashMap<u64, (f32, usize)> = HashMap::new();
    let mut seen = 0;
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            let entry = scores.entry(*id).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            entry.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(u64, f32, usize)> = scores
        .into_iter()
        .map(|(id, (score, order))| (id, score, order))
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused
        .into_iter()
        .map(|(id, score, _)| (id, score))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_beats_a_single_first_place() {
        let dense = [1, 2, 3];
        let lexical = [4, 2, 1];
        let fused = reciprocal_rank(&[&dense, &lexical]);
        let order: Vec<u64> = fused.iter().map(|(id, _)| *id).collect();
        assert_eq!(order, vec![1, 2, 4, 3]);
        let expected = 1.0 / 61.0 + 1.0 / 63.0;
        assert!((fused[0].1 - expected).abs() < 1e-6);
    }

    #[test]
    fn one_list_keeps_its_order() {
        let fused = reciprocal_rank(&[&[9, 7, 8]]);
        assert_eq!(fused.iter().map(|f| f.0).collect::<Vec<_>>(), vec![9, 7, 8]);
        assert!(reciprocal_rank(&[&[], &[]]).is_empty());
    }
}
