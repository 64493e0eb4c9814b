//! Errors of the model runtime.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("model directory {dir}: missing {file}")]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("model type {found:?} is not supported (supported: {supported})")]
    Unsupported {
        found: String,
        supported: &'static str,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("GGUF: {0}")]
    Gguf(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("sequence of {tokens} tokens exceeds the model's {max_positions} positions")]
    SequenceTooLong { tokens: usize, max_positions: usize },
    #[error("model runtime: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Fetch(String),
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ModelError {
        let path = path.into();
        move |source| ModelError::Io { path, source }
    }
}
