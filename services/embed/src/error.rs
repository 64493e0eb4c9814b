//! Everything the Embed service can answer besides OK, and its gRPC status.

use longview_worker::WorkerError;
use thiserror::Error;
use tonic::Status;

#[derive(Debug, Error)]
pub enum EmbedError {
    #[error("texts is empty: send at least one text")]
    NoTexts,
    #[error("{count} texts in one request, over the limit of {limit}; split the batch")]
    TooManyTexts { count: usize, limit: usize },
    #[error("max_tokens {requested} exceeds the model's limit of {limit} tokens")]
    MaxTokensTooLarge { requested: usize, limit: usize },
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

impl From<EmbedError> for Status {
    fn from(err: EmbedError) -> Status {
        match err {
            EmbedError::NoTexts
            | EmbedError::TooManyTexts { .. }
            | EmbedError::MaxTokensTooLarge { .. } => Status::invalid_argument(err.to_string()),
            EmbedError::Worker(err) => err.into_status("texts"),
        }
    }
}
