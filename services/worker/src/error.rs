//! What can go wrong between a caller and the model thread.

use thiserror::Error;
use tonic::{Code, Status};

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
            WorkerError::Loading | WorkerError::Failed(_) | WorkerError::Stopped => {
                Status::new(Code::Unavailable, self.to_string())
            }
            WorkerError::QueueFull { .. } => Status::resource_exhausted(self.to_string()),
            WorkerError::Model(model) => {
                tracing::error!(error = %model, field, "model failed on a request");
                Status::internal("internal error while running the model; see the server log")
            }
        }
    }
}
