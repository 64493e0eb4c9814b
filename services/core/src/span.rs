//! Spans of the caller's original text, in both code points and bytes.

use serde::Serialize;

/// A span of the original text, end exclusive. `start`/`end` count Unicode code points
/// (what Python's `str` indices count); `byte_start`/`byte_end` count UTF-8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub byte_start: usize,
    pub byte_end: usize,
}

/// Converts byte offsets of one text into code-point offsets.
///
/// Built once per text; each lookup is a binary search, so a million-token document costs
/// no more than its token count in lookups.
#[derive(Debug)]
pub struct CharIndex {
    /// Byte offset of every char start, plus the text length as a sentinel.
    char_starts: Vec<usize>,
}

impl CharIndex {
    pub fn new(text: &str) -> Self {
        let mut char_starts: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
        char_starts.push(text.len());
        Self { char_starts }
    }

    /// Code-point offset of a byte offset. A byte offset inside a character rounds down
    /// to that character's start.
    pub fn char_at(&self, byte: usize) -> usize {
        match self.char_starts.binary_search(&byte) {
            Ok(index) => index,
            Err(index) => index.saturating_sub(1),
        }
    }

    /// The span covering bytes `byte_start..byte_end`.
    pub fn span(&self, byte_start: usize, byte_end: usize) -> Span {
        Span {
            start: self.char_at(byte_start),
            end: self.char_at(byte_end),
            byte_start,
            byte_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibyte_offsets() {
        let text = "aé日🚀b";
        let index = CharIndex::new(text);
        let byte_b = text.find('b').unwrap();
        let span = index.span(1, byte_b);
        assert_eq!((span.start, span.end), (1, 4));
        let chars: String = text
            .chars()
            .skip(span.start)
            .take(span.end - span.start)
            .collect();
        assert_eq!(chars, &text[span.byte_start..span.byte_end]);
        assert_eq!(index.char_at(text.len()), 5);
    }
}
