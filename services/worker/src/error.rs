//! What can go wrong between a caller and the model thread.

use std::time::Duration;
use thiserror::Error;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("the model is still loading")]
    Loading,
    #[error("the model failed to load: {0}")]
    Failed(String),
    #[error("the model queue is full ({capacity} requests waiting); retry shortly")]
    QueueFull { capacity: usize },
    #[error("the model worker has stopped")]
    Stopped,
    /// No remote worker could take the call (all stopped, restarting or loading).
    #[error("model workers unavailable: {0}")]
    Unreachable(String),
    /// Every remote worker's queue was full.
    #[error("{0}")]
    Busy(String),
    /// A remote worker refused the input itself (e.g. a sequence over its positions).
    #[error("the model worker refused the input: {0}")]
    Rejected(String),
    /// A remote worker failed in a way the caller cannot fix.
    #[error("the model worker failed: {0}")]
    Remote(String),
    #[error(transparent)]
    Input(#[from] longview_core::InputError),
    #[error(transparent)]
    Model(#[from] longview_models::ModelError),
}

impl WorkerError {
    /// The status a task service answers with when the worker fails its request. `field`
    /// names the request field that input errors point into (`texts`, `labels`); model
    /// errors are logged here and reach the client only as a generic INTERNAL.
    pub fn into_status(self, field: &str) -> Status {
        match self {
            WorkerError::Input(input) => Status::invalid_argument(input.describe(field)),
            WorkerError::Loading
            | WorkerError::Failed(_)
            | WorkerError::Stopped
            | WorkerError::Unreachable(_) => Status::new(Code::Unavailable, self.to_string()),
            WorkerError::QueueFull { .. } | WorkerError::Busy(_) => retry_later(self.to_string()),
            WorkerError::Rejected(message) => Status::invalid_argument(message),
            WorkerError::Model(_) | WorkerError::Remote(_) => {
                tracing::error!(error = %self, field, "model failed on a request");
                Status::internal("internal error while running the model; see the server log")
            }
        }
    }
}

/// How long a client should wait before retrying a request refused for load.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// RESOURCE_EXHAUSTED for load: retry after a short pause.
pub fn retry_later(message: String) -> Status {
    retry_after(message, RETRY_AFTER)
}

/// RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` detail (and a plain `retry-after-ms`
/// header for clients that do not decode details). Shared by every refusal for load or
/// quota, so clients handle them all one way.
pub fn retry_after(message: String, after: Duration) -> Status {
    let mut status = Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(after)),
    );
    status.metadata_mut().insert(
        "retry-after-ms",
        after
            .as_millis()
            .max(1)
            .to_string()
            .parse()
            .expect("digits are valid metadata"),
    );
    status
}
