//! The monitor's metrics, through the `metrics` facade (the server installs the
//! exporter). Names carry their unit; labels are bounded (reasons, rules, partitions).

use std::time::Duration;

pub const DOCUMENTS: &str = "longview_monitor_documents_total";
pub const DEAD_LETTERS: &str = "longview_monitor_dead_letters_total";
pub const LATE_DOCUMENTS: &str = "longview_monitor_late_documents_total";
pub const ALERTS: &str = "longview_monitor_alerts_total";
pub const PROCESSING_SECONDS: &str = "longview_monitor_processing_seconds";
pub const BATCH_SECONDS: &str = "longview_monitor_batch_seconds";
pub const IN_FLIGHT: &str = "longview_monitor_in_flight_messages";
pub const CONSUMER_LAG: &str = "longview_kafka_consumer_lag_messages";
pub const COMMITS: &str = "longview_kafka_commits_total";

/// Registers descriptions once, so exporters show help text.
pub fn describe() {
    ::metrics::describe_counter!(DOCUMENTS, "Documents scored and finished.");
    ::metrics::describe_counter!(DEAD_LETTERS, "Messages dead-lettered, by reason.");
    ::metrics::describe_counter!(LATE_DOCUMENTS, "Documents whose windows had all closed.");
    ::metrics::describe_counter!(ALERTS, "Alerts raised or cleared, by rule and state.");
    ::metrics::describe_histogram!(
        PROCESSING_SECONDS,
        ::metrics::Unit::Seconds,
        "From receiving a document to finishing it."
    );
    ::metrics::describe_histogram!(
        BATCH_SECONDS,
        ::metrics::Unit::Seconds,
        "One analysis call."
    );
    ::metrics::describe_gauge!(IN_FLIGHT, "Messages received and not yet finished.");
    ::metrics::describe_gauge!(CONSUMER_LAG, "Messages behind the partition end.");
    ::metrics::describe_counter!(COMMITS, "Offset commits, by outcome.");
}

pub fn document_finished(elapsed: Duration) {
    ::metrics::counter!(DOCUMENTS).increment(1);
    ::metrics::histogram!(PROCESSING_SECONDS).record(elapsed.as_secs_f64());
}

pub fn dead_lettered(reason: &'static str) {
    ::metrics::counter!(DEAD_LETTERS, "reason" => reason).increment(1);
}

pub fn late(count: usize) {
    ::metrics::counter!(LATE_DOCUMENTS).increment(count as u64);
}

pub fn alert(rule: &str, state: &'static str) {
    ::metrics::counter!(ALERTS, "rule" => rule.to_string(), "state" => state).increment(1);
}

pub fn batch(elapsed: Duration) {
    ::metrics::histogram!(BATCH_SECONDS).record(elapsed.as_secs_f64());
}

pub fn in_flight(count: usize) {
    ::metrics::gauge!(IN_FLIGHT).set(count as f64);
}

pub fn lag(topic: &str, partition: i32, messages: i64) {
    ::metrics::gauge!(CONSUMER_LAG, "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(messages as f64);
}

pub fn commit(ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    ::metrics::counter!(COMMITS, "outcome" => outcome).increment(1);
}
