//! Splitting one job's sequences into padded batches under a token budget.

use std::ops::Range;

/// Orders sequences by length (so each batch pads little) and groups them so that
/// `batch size × longest sequence` stays within `max_batch_tokens` (one sequence always
/// fits, however long). Returns the order and the ranges of that order forming batches.
pub fn plan_batches(lengths: &[usize], max_batch_tokens: usize) -> (Vec<usize>, Vec<Range<usize>>) {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches = Vec::new();
    let mut start = 0;
    for (at, &index) in order.iter().enumerate() {
        // Sorted ascending, so the current sequence is the batch's longest.
        let padded = (at + 1 - start) * lengths[index].max(1);
        if padded > max_batch_tokens && at > start {
            batches.push(start..at);
            start = at;
        }
    }
    if start < order.len() {
        batches.push(start..order.len());
    }
    (order, batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_budget_and_cover_all() {
        let lengths = [5, 100, 7, 3, 60, 61, 2, 300];
        let (order, batches) = plan_batches(&lengths, 128);
        let mut seen: Vec<usize> = batches
            .iter()
            .flat_map(|r| order[r.clone()].to_vec())
            .collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for range in &batches {
            let members = &order[range.clone()];
            let longest = members.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(
                members.len() == 1 || members.len() * longest <= 128,
                "{members:?}"
            );
        }
    }

    #[test]
    fn empty_job_has_no_batches() {
        let (order, batches) = plan_batches(&[], 64);
        assert!(order.is_empty() && batches.is_empty());
    }
}
