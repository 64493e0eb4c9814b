//! A text as the model's tokenizer sees it.

/// Token ids of one text, without special tokens, with each token's byte range in the
/// original text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenizedText {
    pub ids: Vec<u32>,
    pub offsets: Vec<(usize, usize)>,
}

impl TokenizedText {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Keeps the first `max` tokens and returns how many were dropped.
    pub fn truncate(&mut self, max: usize) -> usize {
        let dropped = self.ids.len().saturating_sub(max);
        self.ids.truncate(max);
        self.offsets.truncate(max);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_reports_dropped() {
        let mut tokens = TokenizedText {
            ids: vec![1, 2, 3, 4],
            offsets: vec![(0, 1); 4],
        };
        assert_eq!(tokens.truncate(10), 0);
        assert_eq!(tokens.truncate(3), 1);
        assert_eq!(tokens.ids, vec![1, 2, 3]);
        assert_eq!(tokens.offsets.len(), 3);
    }
}
