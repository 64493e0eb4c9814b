//! Everything the Sentiment service can answer besides OK, and its gRPC status.

use longview_worker::WorkerError;
use thiserror::Error;
use tonic::{Code, Status};

#[derive(Debug, Error)]
pub enum SentimentError {
    #[error("documents is empty: send at least one document")]
    NoDocuments,
    #[error("{count} documents in one request, over the limit of {limit}; split the batch")]
    TooManyDocuments { count: usize, limit: usize },
    #[error(
        "documents[{index}] is empty after normalisation (only whitespace or invisible characters)"
    )]
    BlankDocument { index: usize },
    #[error("documents[{index}] has {bytes} bytes, over the limit of {limit} bytes")]
    DocumentTooLarge {
        index: usize,
        bytes: usize,
        limit: usize,
    },
    #[error("the sentiment model is still being prepared (first start trains it); retry shortly")]
    NotReady,
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

impl From<SentimentError> for Status {
    fn from(err: SentimentError) -> Status {
        match err {
            SentimentError::NoDocuments
            | SentimentError::TooManyDocuments { .. }
            | SentimentError::BlankDocument { .. }
            | SentimentError::DocumentTooLarge { .. } => Status::invalid_argument(err.to_string()),
            SentimentError::NotReady => Status::new(Code::Unavailable, err.to_string()),
            SentimentError::Worker(err) => err.into_status("documents"),
        }
    }
}
