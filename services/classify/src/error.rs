//! Everything the Classify service can answer besides OK, and its gRPC status.

use longview_core::WindowSpecError;
use longview_worker::WorkerError;
use thiserror::Error;
use tonic::Status;

#[derive(Debug, Error)]
pub enum ClassifyError {
    #[error("options are required (labels at least)")]
    MissingOptions,
    #[error("options.labels is required: zero-shot labels or a label_set name")]
    MissingLabels,
    #[error("label set {name:?} not found (trained label sets: {known})")]
    UnknownLabelSet { name: String, known: String },
    #[error(
        "label set {name:?} was trained on {trained_on}, but this server runs {serving}; retrain it"
    )]
    HeadForOtherEncoder {
        name: String,
        trained_on: String,
        serving: String,
    },
    #[error("label set {name:?} has no learned attention; use MEAN or MAX aggregation")]
    HeadWithoutAttention { name: String },
    #[error("a label set needs at least 2 labels, got {0}")]
    TooFewLabels(usize),
    #[error("{count} labels, over the limit of {limit}")]
    TooManyLabels { count: usize, limit: usize },
    #[error("labels[{index}] has an empty name")]
    EmptyLabel { index: usize },
    #[error("label {name:?} appears more than once")]
    DuplicateLabel { name: String },
    #[error("text is empty after normalisation (only whitespace or invisible characters)")]
    BlankText,
    #[error("document has {tokens} tokens, over the limit of {limit} tokens")]
    DocumentTooLong { tokens: usize, limit: usize },
    #[error("document has {bytes} bytes, over the limit of {limit} bytes")]
    DocumentTooLarge { bytes: usize, limit: usize },
    #[error("windows: {0}")]
    Window(#[from] WindowSpecError),
    #[error(
        "aggregation ATTENTION needs a trained label set; zero-shot labels support MEAN and MAX"
    )]
    AttentionNeedsHead,
    #[error("the first stream message must carry options")]
    StreamWithoutOptions,
    #[error("the client stream failed: {0}")]
    Stream(Status),
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

impl From<ClassifyError> for Status {
    fn from(err: ClassifyError) -> Status {
        use ClassifyError as E;
        match err {
            E::MissingOptions
            | E::MissingLabels
            | E::TooFewLabels(_)
            | E::TooManyLabels { .. }
            | E::EmptyLabel { .. }
            | E::DuplicateLabel { .. }
            | E::BlankText
            | E::DocumentTooLong { .. }
            | E::DocumentTooLarge { .. }
            | E::Window(_)
            | E::AttentionNeedsHead
            | E::HeadWithoutAttention { .. }
            | E::StreamWithoutOptions => Status::invalid_argument(err.to_string()),
            E::UnknownLabelSet { .. } => Status::not_found(err.to_string()),
            E::HeadForOtherEncoder { .. } => Status::failed_precondition(err.to_string()),
            E::Stream(status) => status,
            E::Worker(err) => err.into_status("labels"),
        }
    }
}
