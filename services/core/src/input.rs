//! Why one item of a request cannot be processed. Services add the field name.

use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InputError {
    #[error("item {index} is empty after normalisation (only whitespace or invisible characters)")]
    Blank { index: usize },
    #[error("item {index} has {tokens} tokens, over the limit of {limit} tokens")]
    TooLong {
        index: usize,
        tokens: usize,
        limit: usize,
    },
}

impl InputError {
    pub fn index(&self) -> usize {
        match self {
            InputError::Blank { index } | InputError::TooLong { index, .. } => *index,
        }
    }

    /// The message with the item named as the caller knows it, e.g. `texts[3]`.
    pub fn describe(&self, field: &str) -> String {
        match self {
            InputError::Blank { index } => {
                format!(
                    "{field}[{index}] is empty after normalisation (only whitespace or invisible characters)"
                )
            }
            InputError::TooLong {
                index,
                tokens,
                limit,
            } => format!(
                "{field}[{index}] has {tokens} tokens, over the limit of {limit} tokens; \
                 enable truncation or send less text"
            ),
        }
    }
}

/// How many content tokens a text may have and what happens beyond that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenLimit {
    /// Content tokens allowed (special tokens excluded).
    pub max_tokens: usize,
    /// Keep the first `max_tokens` (true) or refuse the text (false).
    pub truncate: bool,
}
