//! What the model thread reports through the `metrics` facade. The server installs the
//! Prometheus exporter; without one these calls cost next to nothing.

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

/// Jobs waiting for the model thread (requests' sequences, not yet in a forward pass).
const QUEUE_DEPTH: &str = "longview_worker_queue_depth";
/// Sequences in one forward pass.
const BATCH_SIZE: &str = "longview_worker_batch_size";
/// Padded tokens in one forward pass (sequences × longest sequence).
const BATCH_TOKENS: &str = "longview_worker_batch_tokens";
const INFERENCE_SECONDS: &str = "longview_worker_inference_seconds";
/// Real (unpadded) tokens the model read, special tokens included.
const TOKENS_PROCESSED: &str = "longview_tokens_processed_total";
/// Texts cut to the token limit before encoding.
const TRUNCATIONS: &str = "longview_truncations_total";
/// Jobs dropped unrun because their caller had gone (deadline passed, client left).
const ABANDONED: &str = "longview_worker_abandoned_jobs_total";

/// Registers each metric's help text and unit with the installed recorder.
pub fn describe_metrics() {
    describe_gauge!(
        QUEUE_DEPTH,
        Unit::Count,
        "Jobs waiting for the model thread."
    );
    describe_histogram!(BATCH_SIZE, Unit::Count, "Sequences per forward pass.");
    describe_histogram!(
        BATCH_TOKENS,
        Unit::Count,
        "Padded tokens per forward pass (sequences x longest sequence)."
    );
    describe_histogram!(
        INFERENCE_SECONDS,
        Unit::Seconds,
        "Seconds per forward pass."
    );
    describe_counter!(
        TOKENS_PROCESSED,
        Unit::Count,
        "Tokens the model read, unpadded."
    );
    describe_counter!(TRUNCATIONS, Unit::Count, "Texts cut to the token limit.");
    describe_counter!(
        ABANDONED,
        Unit::Count,
        "Jobs skipped because their caller had gone."
    );
}

pub(crate) fn job_queued() {
    gauge!(QUEUE_DEPTH).increment(1.0);
}

pub(crate) fn jobs_taken(count: usize) {
    gauge!(QUEUE_DEPTH).decrement(count as f64);
}

pub(crate) fn jobs_abandoned(count: usize) {
    if count > 0 {
        counter!(ABANDONED).increment(count as u64);
    }
}

pub(crate) fn forward_pass(lengths: &[usize], seconds: f64) {
    let longest = lengths.iter().copied().max().unwrap_or(0);
    histogram!(BATCH_SIZE).record(lengths.len() as f64);
    histogram!(BATCH_TOKENS).record((lengths.len() * longest) as f64);
    histogram!(INFERENCE_SECONDS).record(seconds);
    counter!(TOKENS_PROCESSED).increment(lengths.iter().sum::<usize>() as u64);
}

pub(crate) fn truncated(texts: usize) {
    if texts > 0 {
        counter!(TRUNCATIONS).increment(texts as u64);
    }
}
