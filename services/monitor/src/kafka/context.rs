//! The consumer context: librdkafka calls it on its polling thread. On revoke it commits
//! what is safe for the partitions leaving (work still in flight for them will be redone
//! by their next owner); statistics report the lag per partition.

use crate::metrics;
use crate::offsets::OffsetTracker;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::{Arc, Mutex, MutexGuard};

/// Shared between the consuming loop and librdkafka's callbacks.
#[derive(Clone)]
pub struct MonitorContext {
    pub tracker: Arc<Mutex<OffsetTracker>>,
    pub topic: String,
}

impl MonitorContext {
    pub fn tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        // A poisoned lock only means another thread panicked mid-update of plain integers.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for MonitorContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (&partition, p) in &stats.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    metrics::lag(topic, partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for MonitorContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => self.commit_revoked(consumer, partitions),
            Rebalance::Assign(partitions) => {
                let assigned: Vec<i32> = partitions
                    .elements()
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                tracing::info!(?assigned, "partitions assigned");
            }
            Rebalance::Error(err) => tracing::warn!(error = %err, "rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(err) = &result {
            tracing::warn!(error = %err, "offset commit failed");
        }
        metrics::commit(result.is_ok());
    }
}

impl MonitorContext {
    fn commit_revoked(&self, consumer: &BaseConsumer<Self>, partitions: &TopicPartitionList) {
        let mut commit = TopicPartitionList::new();
        let mut revoked = Vec::new();
        {
            let mut tracker = self.tracker();
            for element in partitions.elements_for_topic(&self.topic) {
                revoked.push(element.partition());
                if let Some(point) = tracker.revoke(element.partition()) {
                    let _ = commit.add_partition_offset(
                        &self.topic,
                        element.partition(),
                        Offset::Offset(point),
                    );
                }
            }
        }
        tracing::info!(?revoked, commits = commit.count(), "partitions revoked");
        if commit.count() > 0
            && let Err(err) = consumer.commit(&commit, CommitMode::Sync)
        {
            tracing::warn!(error = %err, "commit on revoke failed");
        }
    }
}
