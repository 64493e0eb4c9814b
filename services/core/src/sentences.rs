//! Sentences as byte spans of the original text (Unicode sentence boundaries, UAX #29).

use std::ops::Range;
use unicode_segmentation::UnicodeSegmentation;

/// Byte ranges of the sentences of `text`, trimmed of surrounding whitespace; blank
/// pieces are skipped.
pub fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    text.split_sentence_bound_indices()
        .filter_map(|(start, piece)| {
            let leading = piece.len() - piece.trim_start().len();
            let trimmed = piece.trim();
            (!crate::text::is_blank(trimmed))
                .then(|| start + leading..start + leading + trimmed.len())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_trims() {
        let text = "Shares rose 5%. The CEO resigned!  Analysts were unsure… \n\nWhat next?";
        let spans = sentence_spans(text);
        let sentences: Vec<&str> = spans.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(sentences[0], "Shares rose 5%.");
        assert_eq!(sentences[1], "The CEO resigned!");
        assert_eq!(sentences.len(), 4, "{sentences:?}");
    }

    #[test]
    fn no_sentences_in_blank_text() {
        assert!(sentence_spans("  \n ").is_empty());
    }
}
