//! Token windows over long documents.
//!
//! A document of any length is read as overlapping windows of at most `size` tokens,
//! special tokens included, so every window fits the model and no token goes unread.

use std::ops::Range;
use thiserror::Error;

/// Window length and overlap, both in tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Tokens per window including the model's special tokens.
    pub size: usize,
    /// Content tokens shared by consecutive windows.
    pub overlap: usize,
    /// Special tokens the model adds to every window ([CLS] and [SEP] for BERT).
    pub special_tokens: usize,
}

/// Why a window specification cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WindowSpecError {
    #[error("window size {size} exceeds the model's {max_positions} positions")]
    TooLarge { size: usize, max_positions: usize },
    #[error("window size {size} leaves no room for content after {special_tokens} special tokens")]
    TooSmall { size: usize, special_tokens: usize },
    #[error("window overlap {overlap} must be smaller than the window's {content} content tokens")]
    OverlapTooLarge { overlap: usize, content: usize },
}

/// One window: which tokens it covers, and which bytes of the text those tokens span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub index: usize,
    pub tokens: Range<usize>,
    pub bytes: Range<usize>,
}

impl WindowSpec {
    /// Checks the spec against a model with `max_positions` positions.
    pub fn validate(&self, max_positions: usize) -> Result<(), WindowSpecError> {
        if self.size > max_positions {
            return Err(WindowSpecError::TooLarge {
                size: self.size,
                max_positions,
            });
        }
        if self.size <= self.special_tokens {
            let special_tokens = self.special_tokens;
            return Err(WindowSpecError::TooSmall {
                size: self.size,
                special_tokens,
            });
        }
        let content = self.content_tokens();
        if self.overlap >= content {
            return Err(WindowSpecError::OverlapTooLarge {
                overlap: self.overlap,
                content,
            });
        }
        Ok(())
    }

    /// Content tokens per window.
    pub fn content_tokens(&self) -> usize {
        self.size.saturating_sub(self.special_tokens)
    }

    /// Windows needed for `token_count` tokens.
    pub fn window_count(&self, token_count: usize) -> usize {
        let (content, stride) = (self.content_tokens(), self.stride());
        if token_count <= content {
            return usize::from(token_count > 0);
        }
        1 + (token_count - content).div_ceil(stride)
    }

    /// Token ranges of every window over `token_count` tokens, in order. The last window
    /// ends at the last token; no window lies entirely inside the one before it.
    pub fn token_ranges(&self, token_count: usize) -> impl Iterator<Item = Range<usize>> + use<> {
        let (content, stride) = (self.content_tokens(), self.stride());
        (0..self.window_count(token_count)).map(move |index| {
            let start = index * stride;
            start..(start + content).min(token_count)
        })
    }

    fn stride(&self) -> usize {
        (self.content_tokens() - self.overlap).max(1)
    }
}

/// The windows of one tokenized document.
#[derive(Debug)]
pub struct WindowPlan<'a> {
    spec: WindowSpec,
    offsets: &'a [(usize, usize)],
}

impl<'a> WindowPlan<'a> {
    pub fn new(spec: WindowSpec, offsets: &'a [(usize, usize)]) -> Self {
        Self { spec, offsets }
    }

    pub fn len(&self) -> usize {
        self.spec.window_count(self.offsets.len())
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Every window with its byte span: from its first token's start to its last token's end.
    pub fn windows(&self) -> impl Iterator<Item = Window> + '_ {
        self.spec
            .token_ranges(self.offsets.len())
            .enumerate()
            .map(|(index, tokens)| {
                let bytes = self.offsets[tokens.start].0..self.offsets[tokens.end - 1].1;
                Window {
                    index,
                    tokens,
                    bytes,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: usize, overlap: usize) -> WindowSpec {
        WindowSpec {
            size,
            overlap,
            special_tokens: 2,
        }
    }

    #[test]
    fn windows_cover_every_token_once_or_in_overlap() {
        for (size, overlap, n) in [(10, 2, 1), (10, 2, 8), (10, 2, 9), (10, 2, 50), (6, 3, 17)] {
            let ranges: Vec<_> = spec(size, overlap).token_ranges(n).collect();
            assert_eq!(ranges.first().unwrap().start, 0);
            assert_eq!(
                ranges.last().unwrap().end,
                n,
                "size {size} overlap {overlap} n {n}"
            );
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end - pair[1].start, overlap.min(pair[0].len()));
                assert!(
                    pair[1].end > pair[0].end,
                    "a window inside the previous one"
                );
            }
            assert!(ranges.iter().all(|r| r.len() <= size - 2 && !r.is_empty()));
        }
    }

    #[test]
    fn window_count_matches_ranges() {
        for n in 0..100 {
            let s = spec(12, 4);
            assert_eq!(s.window_count(n), s.token_ranges(n).count(), "n = {n}");
        }
    }

    #[test]
    fn invalid_specs_name_the_problem() {
        assert_eq!(
            spec(600, 0).validate(512),
            Err(WindowSpecError::TooLarge {
                size: 600,
                max_positions: 512
            })
        );
        assert_eq!(
            spec(2, 0).validate(512),
            Err(WindowSpecError::TooSmall {
                size: 2,
                special_tokens: 2
            })
        );
        let err = spec(10, 8).validate(512).unwrap_err();
        assert_eq!(
            err.to_string(),
            "window overlap 8 must be smaller than the window's 8 content tokens"
        );
    }

    #[test]
    fn window_bytes_follow_token_offsets() {
        let offsets = [(0, 3), (4, 7), (8, 12), (13, 15)];
        let plan = WindowPlan::new(spec(4, 1), &offsets);
        let windows: Vec<_> = plan.windows().collect();
        assert_eq!(windows.len(), 3);
        assert_eq!(windows[0].bytes, 0..7);
        assert_eq!(windows[1].bytes, 4..12);
        assert_eq!(windows[2].bytes, 8..15);
    }
}
