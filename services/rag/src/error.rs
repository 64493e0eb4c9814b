//! Everything the Rag service can answer besides OK, and its one mapping to gRPC status.

use crate::generator::GenerateError;
use crate::retrieve::RetrieveError;
use crate::store::StoreError;
use longview_worker::WorkerError;
use thiserror::Error;
use tonic::{Code, Status};

#[derive(Debug, Error)]
pub enum RagError {
    #[error("documents is empty: send at least one document")]
    NoDocuments,
    #[error("{count} documents in one request, over the limit of {limit}; split the batch")]
    TooManyDocuments { count: usize, limit: usize },
    #[error(
        "the documents' text totals {bytes} bytes, over the limit of {limit} per request; split the batch"
    )]
    RequestTooLarge { bytes: usize, limit: usize },
    #[error("documents[{index}].id is empty")]
    EmptyId { index: usize },
    #[error("documents[{index}].id has {bytes} bytes, over the limit of {limit}")]
    IdTooLong {
        index: usize,
        bytes: usize,
        limit: usize,
    },
    #[error("documents[{index}].id {id:?} contains a control character")]
    IdControlCharacter { index: usize, id: String },
    #[error("documents[{index}] (id {id:?}) has no text (empty or only whitespace)")]
    BlankText { index: usize, id: String },
    #[error("documents[{second}].id {id:?} repeats documents[{first}].id; send each document once")]
    DuplicateId {
        id: String,
        first: usize,
        second: usize,
    },
    #[error("{field} key {key:?} must be 1-64 letters, digits, '_' or '-'")]
    BadMetadataKey { field: String, key: String },
    #[error("{field} has {count} entries, over the limit of {limit}")]
    TooManyMetadata {
        field: String,
        count: usize,
        limit: usize,
    },
    #[error("document_ids is empty: name at least one document")]
    NoDocumentIds,
    #[error("document_ids[{index}] is empty")]
    EmptyDocumentId { index: usize },
    #[error("{field} is empty")]
    EmptyQuery { field: &'static str },
    #[error("{field} has {bytes} bytes, over the limit of {limit}")]
    QueryTooLong {
        field: &'static str,
        bytes: usize,
        limit: usize,
    },
    #[error("top_k {requested} is over the limit of {limit}")]
    TopKTooLarge { requested: usize, limit: usize },
    #[error("max_new_tokens {requested} is over the limit of {limit}")]
    MaxNewTokensTooLarge { requested: usize, limit: usize },
    #[error("unknown {field} value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error(
        "generative answers need a generator and this server has none; ask with mode \
         ANSWER_MODE_EXTRACTIVE, or start the server with a generator configured"
    )]
    NoGenerator,
    #[error("the document store is still opening; retry shortly")]
    StoreNotReady,
    #[error("the request stream failed: {0}")]
    Stream(Status),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Retrieve(#[from] RetrieveError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

impl From<StoreError> for RagError {
    fn from(err: StoreError) -> Self {
        RagError::Retrieve(RetrieveError::Store(err))
    }
}

impl From<RagError> for Status {
    fn from(err: RagError) -> Status {
        match err {
            RagError::NoDocuments
            | RagError::TooManyDocuments { .. }
            | RagError::RequestTooLarge { .. }
            | RagError::EmptyId { .. }
            | RagError::IdTooLong { .. }
            | RagError::IdControlCharacter { .. }
            | RagError::BlankText { .. }
            | RagError::DuplicateId { .. }
            | RagError::BadMetadataKey { .. }
            | RagError::TooManyMetadata { .. }
            | RagError::NoDocumentIds
            | RagError::EmptyDocumentId { .. }
            | RagError::EmptyQuery { .. }
            | RagError::QueryTooLong { .. }
            | RagError::TopKTooLarge { .. }
            | RagError::MaxNewTokensTooLarge { .. }
            | RagError::UnknownEnum { .. } => Status::invalid_argument(err.to_string()),
            RagError::NoGenerator => Status::failed_precondition(err.to_string()),
            RagError::StoreNotReady => Status::unavailable(err.to_string()),
            RagError::Stream(status) => status,
            RagError::Worker(err) => err.into_status("documents"),
            RagError::Retrieve(err) => retrieve_status(err),
            RagError::Generate(err) => generate_status(err),
        }
    }
}

fn retrieve_status(err: RetrieveError) -> Status {
    match err {
        RetrieveError::Store(StoreError::Refused { .. }) => {
            Status::invalid_argument(format!("nothing was stored: {err}"))
        }
        RetrieveError::Store(StoreError::Unavailable(_)) => {
            Status::new(Code::Unavailable, err.to_string())
        }
        RetrieveError::Store(StoreError::Config(_) | StoreError::Backend(_))
        | RetrieveError::Lexical(_)
        | RetrieveError::Stopped => {
            tracing::error!(error = %err, "document store failed");
            Status::internal("internal error in the document store; see the server log")
        }
    }
}

fn generate_status(err: GenerateError) -> Status {
    match err {
        GenerateError::Unavailable(_) => Status::unavailable(err.to_string()),
        GenerateError::Failed(_) => {
            tracing::error!(error = %err, "generator failed");
            Status::internal("internal error while generating; see the server log")
        }
    }
}
