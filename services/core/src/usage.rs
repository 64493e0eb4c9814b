//! Token accounting reported with every model answer.

use serde::Serialize;

/// How many tokens an answer covered. Special tokens are never counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens in the input before any truncation.
    pub tokens_total: u64,
    /// Tokens the model read.
    pub tokens_seen: u64,
    /// Tokens left unread by truncation or a document limit.
    pub tokens_dropped: u64,
}

impl Usage {
    pub fn new(tokens_total: usize, tokens_dropped: usize) -> Self {
        let total = tokens_total as u64;
        let dropped = tokens_dropped as u64;
        Self {
            tokens_total: total,
            tokens_seen: total - dropped,
            tokens_dropped: dropped,
        }
    }

    pub fn truncated(&self) -> bool {
        self.tokens_dropped > 0
    }
}

impl std::ops::Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            tokens_total: self.tokens_total + other.tokens_total,
            tokens_seen: self.tokens_seen + other.tokens_seen,
            tokens_dropped: self.tokens_dropped + other.tokens_dropped,
        }
    }
}

impl std::iter::Sum for Usage {
    fn sum<I: Iterator<Item = Usage>>(iter: I) -> Usage {
        iter.fold(Usage::default(), |sum, usage| sum + usage)
    }
}
