//! Long documents are read in pieces (at sentence boundaries), and batches take at most
//! one piece of any long document: a long document then spreads over several batches
//! while short documents behind it keep finishing, instead of every short document waiting
//! for one long analysis. Finishing out of order is what the offset tracker is for.

use std::collections::VecDeque;
use std::time::{Duration, Instant};
use unicode_segmentation::UnicodeSegmentation;

/// A piece of a document on its way to the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    /// The document's slot in the pipeline.
    pub slot: u64,
    pub index: usize,
    pub text: String,
    pub entities: Vec<String>,
}

/// Splits `text` into pieces of about `piece_bytes` at sentence boundaries (a longer
/// sentence is a piece of its own).
pub fn split(text: &str, piece_bytes: usize) -> Vec<String> {
    if text.len() <= piece_bytes {
        return vec![text.to_string()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    for sentence in text.split_sentence_bounds() {
        if !current.is_empty() && current.len() + sentence.len() > piece_bytes {
            pieces.push(std::mem::take(&mut current));
        }
        current.push_str(sentence);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces.retain(|p| !longview_core::text::is_blank(p));
    pieces
}

/// Builds batches from waiting pieces.
#[derive(Debug)]
pub struct Assembler {
    short: VecDeque<Piece>,
    long: VecDeque<Piece>,
    batch_size: usize,
    linger: Duration,
    oldest: Option<Instant>,
}

impl Assembler {
    pub fn new(batch_size: usize, linger: Duration) -> Self {
        Self {
            short: VecDeque::new(),
            long: VecDeque::new(),
            batch_size: batch_size.max(1),
            linger,
            oldest: None,
        }
    }

    /// Queues a document's pieces.
    pub fn push(&mut self, pieces: Vec<Piece>, now: Instant) {
        self.oldest.get_or_insert(now);
        match pieces.len() {
            1 => self.short.extend(pieces),
            _ => self.long.extend(pieces),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.short.is_empty() && self.long.is_empty()
    }

    /// When a partly filled batch is due.
    pub fn due(&self) -> Option<Instant> {
        self.oldest.map(|t| t + self.linger)
    }

    /// The next batch: when a full one is waiting, when the oldest piece has lingered
    /// long enough, or at once when `force` (input ended, draining).
    pub fn next_batch(&mut self, now: Instant, force: bool) -> Option<Vec<Piece>> {
        if self.is_empty() {
            return None;
        }
        let full = self.short.len() + usize::from(!self.long.is_empty()) >= self.batch_size;
        let lingered = self.due().is_some_and(|due| now >= due);
        if !(full || lingered || force) {
            return None;
        }
        let mut batch: Vec<Piece> = self.long.pop_front().into_iter().collect();
        let room = self.batch_size - batch.len();
        batch.extend(self.short.drain(..room.min(self.short.len())));
        self.oldest = (!self.is_empty()).then_some(now);
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(slot: u64, index: usize) -> Piece {
        Piece {
            slot,
            index,
            text: format!("doc {slot} piece {index}"),
            entities: vec![],
        }
    }

    #[test]
    fn short_texts_are_one_piece() {
        assert_eq!(split("Shares rose.", 100), vec!["Shares rose."]);
    }

    #[test]
    fn long_texts_split_at_sentences_and_lose_nothing() {
        let text = "Harbrook cut its outlook. ".repeat(40);
        let pieces = split(&text, 200);
        assert!(pieces.len() > 4);
        assert!(pieces.iter().all(|p| p.len() <= 200));
        assert!(pieces.iter().all(|p| p.ends_with(". ")));
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn a_sentence_longer_than_a_piece_stays_whole() {
        let long = format!("Then {}", "word ".repeat(100));
        let text = format!("Short one. {long}");
        let pieces = split(&text, 50);
        assert_eq!(pieces, vec!["Short one. ".to_string(), long]);
    }

    #[test]
    fn a_full_batch_goes_at_once_and_a_partial_one_after_linger() {
        let start = Instant::now();
        let mut assembler = Assembler::new(2, Duration::from_millis(10));
        assembler.push(vec![piece(0, 0)], start);
        assert!(assembler.next_batch(start, false).is_none());
        assembler.push(vec![piece(1, 0)], start);
        assert_eq!(assembler.next_batch(start, false).unwrap().len(), 2);
        assembler.push(vec![piece(2, 0)], start);
        let later = start + Duration::from_millis(10);
        assert_eq!(assembler.due(), Some(later));
        assert_eq!(assembler.next_batch(later, false).unwrap().len(), 1);
        assert!(assembler.is_empty());
    }

    #[test]
    fn long_documents_take_one_piece_per_batch() {
        let now = Instant::now();
        let mut assembler = Assembler::new(4, Duration::ZERO);
        assembler.push((0..3).map(|i| piece(0, i)).collect(), now);
        for slot in 1..=6 {
            assembler.push(vec![piece(slot, 0)], now);
        }
        let batches: Vec<Vec<(u64, usize)>> =
            std::iter::from_fn(|| assembler.next_batch(now, true))
                .map(|b| b.iter().map(|p| (p.slot, p.index)).collect())
                .collect();
        assert_eq!(
            batches,
            vec![
                vec![(0, 0), (1, 0), (2, 0), (3, 0)],
                vec![(0, 1), (4, 0), (5, 0), (6, 0)],
                vec![(0, 2)],
            ]
        );
    }
}
