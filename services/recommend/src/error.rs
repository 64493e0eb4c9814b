//! Everything the Recommend service can answer besides OK, and its gRPC status.

use crate::store::StoreError;
use longview_worker::WorkerError;
use thiserror::Error;
use tonic::{Code, Status};

#[derive(Debug, Error)]
pub enum RecommendError {
    #[error("{field} is empty: send at least one")]
    Empty { field: &'static str },
    #[error("{count} {field} in one request, over the limit of {limit}; split the request")]
    TooMany {
        field: String,
        count: usize,
        limit: usize,
    },
    #[error("{field} has no item_id; every {what} needs one")]
    MissingId { field: String, what: &'static str },
    #[error("{field} has an id of {bytes} bytes, over the limit of {limit} bytes")]
    IdTooLong {
        field: String,
        bytes: usize,
        limit: usize,
    },
    #[error("{field} repeats item_id {id:?} of {first}; ids must be unique")]
    Duplicate {
        field: String,
        id: String,
        first: String,
    },
    #[error("{field} is blank (only whitespace or invisible characters)")]
    BlankText { field: String },
    #[error("{field} has {bytes} bytes of text, over the limit of {limit} bytes")]
    TextTooLong {
        field: String,
        bytes: usize,
        limit: usize,
    },
    #[error("{field} is named {name:?}, a built-in component; rename the feature")]
    ReservedFeature { field: String, name: String },
    #[error("{field} has neither item_id nor text")]
    NoItem { field: String },
    #[error("{field} is {value}; it must be finite{rule}")]
    BadNumber {
        field: String,
        value: f64,
        rule: &'static str,
    },
    #[error(
        "weights names {name:?}, which is neither a component (content, popularity, recency) nor a feature of any candidate"
    )]
    UnknownWeight { name: String },
    #[error("profile_id is empty; name a stored profile or send a history")]
    MissingProfileId,
    #[error("{field}: item {id:?} is not stored; send its text or store it with PutItems first")]
    UnknownItem { field: String, id: String },
    #[error("profile {id:?} is not stored; store it with PutProfile first")]
    UnknownProfile { id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

impl From<RecommendError> for Status {
    fn from(err: RecommendError) -> Status {
        match err {
            RecommendError::Empty { .. }
            | RecommendError::TooMany { .. }
            | RecommendError::MissingId { .. }
            | RecommendError::IdTooLong { .. }
            | RecommendError::Duplicate { .. }
            | RecommendError::BlankText { .. }
            | RecommendError::TextTooLong { .. }
            | RecommendError::ReservedFeature { .. }
            | RecommendError::NoItem { .. }
            | RecommendError::BadNumber { .. }
            | RecommendError::UnknownWeight { .. }
            | RecommendError::MissingProfileId => Status::invalid_argument(err.to_string()),
            RecommendError::UnknownItem { .. } | RecommendError::UnknownProfile { .. } => {
                Status::not_found(err.to_string())
            }
            RecommendError::Store(StoreError::Locked { .. } | StoreError::Open { .. }) => {
                tracing::error!(error = %err, "recommendation store unavailable");
                Status::new(Code::Unavailable, err.to_string())
            }
            RecommendError::Store(StoreError::Storage(_) | StoreError::Corrupt(_)) => {
                tracing::error!(error = %err, "recommendation store failed");
                Status::internal("internal error in the recommendation store; see the server log")
            }
            RecommendError::Worker(err) => err.into_status("texts"),
        }
    }
}
