//! The prompt for generative answers: the retrieved passages, numbered, and an instruction
//! to answer from them alone and cite them by number.

use crate::generator::ChatPrompt;
use crate::record::Hit;

/// Characters of passage text a prompt carries at most: the small local model reads 2,048
/// tokens, and an answer needs room too.
pub const PASSAGE_BUDGET_CHARS: usize = 4_000;

const SYSTEM: &str = "You answer questions using only the numbered passages you are given. \
Cite the passages you use by their number in square brackets, like [1]. \
If the passages do not contain the answer, say that you do not know.";

/// The prompt for `question` over `hits` (passage n is hits[n - 1]).
pub fn build(question: &str, hits: &[Hit]) -> ChatPrompt {
    let per_passage = PASSAGE_BUDGET_CHARS / hits.len().max(1);
    let mut user = String::from("Passages:\n");
    for (n, hit) in hits.iter().enumerate() {
        let text = clip(&hit.record.text, per_passage);
        user.push_str(&format!("[{}] {}\n", n + 1, text.trim()));
    }
    user.push_str(&format!("\nQuestion: {}\nAnswer:", question.trim()));
    ChatPrompt {
        system: SYSTEM.to_string(),
        user,
    }
}

/// Passage numbers (1-based) the answer cites as `[n]`, in first-cited order, within
/// `passages`.
pub fn cited(answer: &str, passages: usize) -> Vec<usize> {
    let mut numbers = Vec::new();
    for piece in answer.split('[').skip(1) {
        let Some((inside, _)) = piece.split_once(']') else {
            continue;
        };
        for part in inside.split(',') {
            if let Ok(n) = part.trim().parse::<usize>()
                && (1..=passages).contains(&n)
                && !numbers.contains(&n)
            {
                numbers.push(n);
            }
        }
    }
    numbers
}

/// The first `max` characters of `text`, ending on a character boundary.
fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ChunkRecord;
    use longview_core::Span;

    fn hit(text: &str) -> Hit {
        Hit {
            id: 1,
            record: ChunkRecord {
                document_id: "d".into(),
                index: 0,
                text: text.into(),
                span: Span::default(),
                metadata: Default::default(),
            },
            score: 1.0,
        }
    }

    #[test]
    fn passages_are_numbered_and_the_question_last() {
        let prompt = build("Who won?", &[hit("Alpha won."), hit("Beta lost.")]);
        assert!(prompt.user.contains("[1] Alpha won.\n[2] Beta lost.\n"));
        assert!(
            prompt
                .user
                .trim_end()
                .ends_with("Question: Who won?\nAnswer:")
        );
        assert!(prompt.system.contains("[1]"));
    }

    #[test]
    fn long_passages_are_clipped_on_characters() {
        let long = "é".repeat(PASSAGE_BUDGET_CHARS * 2);
        let prompt = build("q", &[hit(&long)]);
        assert!(prompt.user.chars().filter(|&c| c == 'é').count() == PASSAGE_BUDGET_CHARS);
    }

    #[test]
    fn citations_are_parsed_in_order_within_range() {
        assert_eq!(
            cited("Alpha [2] and beta [1, 2]; see [7] [x]", 3),
            vec![2, 1]
        );
        assert!(cited("no citations", 3).is_empty());
    }
}
