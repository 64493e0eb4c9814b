//! Which offsets may be committed. Documents finish out of order (batches, long documents
//! read in pieces, producer acknowledgements), so a partition's commit point is the lowest
//! offset still being processed, never the highest finished: a restart then re-reads
//! everything not yet fully processed (at-least-once).

use std::collections::{BTreeMap, BTreeSet};

/// In-flight offsets of one partition.
#[derive(Debug, Default)]
struct PartitionOffsets {
    pending: BTreeSet<i64>,
    /// One past the highest offset seen.
    next: Option<i64>,
    /// The last offset committed (the next one to read, in Kafka's convention).
    committed: Option<i64>,
}

impl PartitionOffsets {
    fn commit_point(&self) -> Option<i64> {
        let next = self.next?;
        Some(self.pending.first().copied().unwrap_or(next).min(next))
    }
}

/// Offset bookkeeping for every partition this consumer reads.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<i32, PartitionOffsets>,
}

impl OffsetTracker {
    /// A message was received and its processing starts.
    pub fn begin(&mut self, partition: i32, offset: i64) {
        let state = self.partitions.entry(partition).or_default();
        state.pending.insert(offset);
        state.next = Some(state.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// Processing of a message is complete. False when the offset is unknown (its
    /// partition was revoked meanwhile): nothing changes then.
    pub fn finish(&mut self, partition: i32, offset: i64) -> bool {
        self.partitions
            .get_mut(&partition)
            .is_some_and(|state| state.pending.remove(&offset))
    }

    /// The offset to commit for `partition`: the lowest in flight, or one past the
    /// highest seen when nothing is.
    pub fn commit_point(&self, partition: i32) -> Option<i64> {
        self.partitions.get(&partition)?.commit_point()
    }

    /// Commit points that moved since the last [`OffsetTracker::committed`] call.
    pub fn to_commit(&self) -> Vec<(i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|(&p, state)| {
                let point = state.commit_point()?;
                (state.committed.is_none_or(|c| point > c)).then_some((p, point))
            })
            .collect()
    }

    /// Records that `offset` was committed for `partition`.
    pub fn committed(&mut self, partition: i32, offset: i64) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.committed = Some(state.committed.map_or(offset, |c| c.max(offset)));
        }
    }

    /// Forgets a revoked partition, returning its commit point if it moved since the last
    /// commit. Work still in flight for it finishes without effect.
    pub fn revoke(&mut self, partition: i32) -> Option<i64> {
        let state = self.partitions.remove(&partition)?;
        let point = state.commit_point()?;
        state.committed.is_none_or(|c| point > c).then_some(point)
    }

    /// Messages received and not yet finished, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|s| s.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_commit_before_anything_arrives() {
        let tracker = OffsetTracker::default();
        assert_eq!(tracker.commit_point(0), None);
        assert!(tracker.to_commit().is_empty());
    }

    #[test]
    fn in_order_completion_commits_one_past_the_last() {
        let mut tracker = OffsetTracker::default();
        for offset in 0..3 {
            tracker.begin(0, offset);
        }
        for offset in 0..3 {
            assert!(tracker.finish(0, offset));
        }
        assert_eq!(tracker.to_commit(), vec![(0, 3)]);
    }

    #[test]
    fn a_slow_message_holds_the_commit_point() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..20 {
            tracker.begin(0, offset);
        }
        // Everything after 12 finishes first.
        for offset in (13..20).chain([10, 11]) {
            tracker.finish(0, offset);
        }
        assert_eq!(tracker.commit_point(0), Some(12));
        tracker.finish(0, 12);
        assert_eq!(tracker.commit_point(0), Some(20));
    }

    #[test]
    fn reverse_completion_moves_only_at_the_end() {
        let mut tracker = OffsetTracker::default();
        for offset in 0..100 {
            tracker.begin(3, offset);
        }
        for offset in (1..100).rev() {
            tracker.finish(3, offset);
            assert_eq!(tracker.commit_point(3), Some(0));
        }
        tracker.finish(3, 0);
        assert_eq!(tracker.commit_point(3), Some(100));
    }

    #[test]
    fn partitions_are_independent() {
        let mut tracker = OffsetTracker::default();
        tracker.begin(0, 5);
        tracker.begin(1, 7);
        tracker.begin(1, 8);
        tracker.finish(1, 8);
        assert_eq!(tracker.to_commit(), vec![(0, 5), (1, 7)]);
        assert_eq!(tracker.in_flight(), 2);
    }

    #[test]
    fn commits_are_reported_once_until_they_move() {
        let mut tracker = OffsetTracker::default();
        tracker.begin(0, 0);
        tracker.finish(0, 0);
        assert_eq!(tracker.to_commit(), vec![(0, 1)]);
        tracker.committed(0, 1);
        assert!(tracker.to_commit().is_empty());
        tracker.begin(0, 1);
        assert!(tracker.to_commit().is_empty(), "1 is in flight: still 1");
        tracker.finish(0, 1);
        assert_eq!(tracker.to_commit(), vec![(0, 2)]);
    }

    #[test]
    fn gaps_in_offsets_do_not_block() {
        // Compacted topics and transaction markers leave holes.
        let mut tracker = OffsetTracker::default();
        tracker.begin(0, 4);
        tracker.begin(0, 9);
        tracker.finish(0, 4);
        assert_eq!(tracker.commit_point(0), Some(9));
        tracker.finish(0, 9);
        assert_eq!(tracker.commit_point(0), Some(10));
    }

    #[test]
    fn redelivered_offsets_below_the_high_mark_are_tracked() {
        let mut tracker = OffsetTracker::default();
        tracker.begin(0, 10);
        tracker.finish(0, 10);
        tracker.begin(0, 3);
        assert_eq!(tracker.commit_point(0), Some(3));
    }

    #[test]
    fn revoking_returns_the_point_and_ignores_late_completions() {
        let mut tracker = OffsetTracker::default();
        tracker.begin(2, 0);
        tracker.begin(2, 1);
        tracker.finish(2, 0);
        assert_eq!(tracker.revoke(2), Some(1));
        assert!(!tracker.finish(2, 1));
        assert_eq!(tracker.commit_point(2), None);
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn revoking_an_already_committed_partition_commits_nothing() {
        let mut tracker = OffsetTracker::default();
        tracker.begin(0, 0);
        tracker.finish(0, 0);
        tracker.committed(0, 1);
        assert_eq!(tracker.revoke(0), None);
        assert_eq!(tracker.revoke(7), None);
    }

    #[test]
    fn random_completion_orders_never_commit_past_an_unfinished_offset() {
        // A deterministic shuffle (linear congruential) over many orders.
        let mut seed: u64 = 42;
        for _ in 0..50 {
            let mut tracker = OffsetTracker::default();
            let mut order: Vec<i64> = (0..64).collect();
            for i in (1..order.len()).rev() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                order.swap(i, (seed >> 33) as usize % (i + 1));
            }
            (0..64).for_each(|o| tracker.begin(0, o));
            let mut done = std::collections::BTreeSet::new();
            for offset in order {
                tracker.finish(0, offset);
                done.insert(offset);
                let point = tracker.commit_point(0).unwrap();
                assert!((0..point).all(|o| done.contains(&o)));
                assert!(point == 64 || !done.contains(&point));
            }
        }
    }
}
