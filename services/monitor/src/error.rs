//! What can stop the monitor, and what the Monitor gRPC service answers besides OK.

use longview_worker::WorkerError;
use thiserror::Error;
use tonic::Status;

/// Failures of the monitor pipeline.
#[derive(Debug, Error)]
pub enum MonitorError {
    #[error("monitor configuration: {0}")]
    Config(String),
    #[error("the sentiment model is not ready")]
    NotReady,
    #[error("scoring failed: {0}")]
    Worker(#[from] WorkerError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("producing to {topic} failed: {reason}")]
    Produce { topic: String, reason: String },
    #[error("reading {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Why a Subscribe call is refused or ended.
#[derive(Debug, Error)]
pub enum SubscribeError {
    #[error("{field} has {count} entries, over the limit of {limit}")]
    TooManyFilters {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("{field}[{index}] is empty")]
    EmptyFilter { field: &'static str, index: usize },
    #[error("rules[{index}] {name:?} is not a configured rule; configured: {known}")]
    UnknownRule {
        index: usize,
        name: String,
        known: String,
    },
    #[error("states[{index}] {value:?} is not \"raised\" or \"cleared\"")]
    BadState { index: usize, value: String },
    #[error("this subscriber fell {missed} alerts behind and was dropped; subscribe again")]
    Lagged { missed: u64 },
    #[error("the monitor is not running on this server (serve --target monitor)")]
    NotRunning,
}

impl From<SubscribeError> for Status {
    fn from(err: SubscribeError) -> Status {
        match err {
            SubscribeError::TooManyFilters { .. }
            | SubscribeError::EmptyFilter { .. }
            | SubscribeError::BadState { .. } => Status::invalid_argument(err.to_string()),
            SubscribeError::UnknownRule { .. } => Status::not_found(err.to_string()),
            SubscribeError::Lagged { .. } => Status::resource_exhausted(err.to_string()),
            SubscribeError::NotRunning => Status::unavailable(err.to_string()),
        }
    }
}
