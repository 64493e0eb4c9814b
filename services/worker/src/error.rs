//! What can go wrong between a caller and the model thread.

use thiserror::Error;

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
