//! Masking of personal and financial data in text: e-mail addresses, phone numbers, card
//! numbers (Luhn-checked), IBANs (mod-97-checked) and labelled account numbers, plus any
//! extra patterns an operator configures. Applied, per tenant, before text leaves the
//! process: evidence in responses, documents in stores, records on output topics.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;
use thiserror::Error;

/// A kind of data the redactor finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitive {
    Email,
    Phone,
    Card,
    /// IBANs and numbers labelled as account numbers.
    Account,
}

impl Sensitive {
    pub const ALL: [Sensitive; 4] = [Self::Card, Self::Account, Self::Email, Self::Phone];

    /// What replaces a match of this kind.
    pub fn placeholder(self) -> &'static str {
        match self {
            Self::Email => "[EMAIL]",
            Self::Phone => "[PHONE]",
            Self::Card => "[CARD]",
            Self::Account => "[ACCOUNT]",
        }
    }
}

/// What replaces a match of an operator's own pattern.
pub const PATTERN_PLACEHOLDER: &str = "[REDACTED]";

/// Which data to mask: built-in kinds and extra regular expressions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionRules {
    pub kinds: Vec<Sensitive>,
    /// Regular expressions (Rust `regex` syntax); every match is replaced.
    pub patterns: Vec<String>,
}

impl Default for RedactionRules {
    fn default() -> Self {
        Self {
            kinds: Sensitive::ALL.to_vec(),
            patterns: Vec::new(),
        }
    }
}

#[derive(Debug, Error)]
#[error("masking pattern {index} ({pattern:?}) is not a valid regular expression: {source}")]
pub struct RedactError {
    pub index: usize,
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// Masks sensitive data in text. Cheap to share; build once per rule set.
#[derive(Clone, Debug)]
pub struct Redactor {
    kinds: Vec<Sensitive>,
    patterns: Vec<Regex>,
}

// Candidates; each is confirmed (digit counts, checksums) before it is masked.
static CARD: LazyLock<Regex> = LazyLock::new(|| regex(r"\b\d(?:[ -]?\d){12,18}\b"));
static IBAN: LazyLock<Regex> = LazyLock::new(|| regex(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b"));
static LABELLED_ACCOUNT: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b(?:account|acct|a/c)(?:\s*(?:no\.?|number|#))?\s*[:#]?\s*(\d(?:[ -]?\d){5,19})\b")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    )
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}|(?:\(\d{3}\)\s?|\b\d{3}[-. ])\d{3}[-. ]\d{4})\b",
    )
});

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in masking patterns compile")
}

impl Redactor {
    pub fn new(rules: &RedactionRules) -> Result<Self, RedactError> {
        let patterns = rules
            .patterns
            .iter()
            .enumerate()
            .map(|(index, pattern)| {
                Regex::new(pattern).map_err(|source| RedactError {
                    index,
                    pattern: pattern.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        let mut kinds = Vec::new();
        // A fixed order, so a card number is never half-masked as a phone number.
        for kind in Sensitive::ALL {
            if rules.kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(Self { kinds, patterns })
    }

    /// `text` with every sensitive match replaced by its placeholder; borrowed when
    /// nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut found: Vec<(Range<usize>, &'static str)> = Vec::new();
        for kind in &self.kinds {
            for range in find(*kind, text) {
                claim(&mut found, range, kind.placeholder());
            }
        }
        for pattern in &self.patterns {
            for m in pattern.find_iter(text).filter(|m| !m.is_empty()) {
                claim(&mut found, m.range(), PATTERN_PLACEHOLDER);
            }
        }
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        found.sort_by_key(|(range, _)| range.start);
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (range, placeholder) in found {
            out.push_str(&text[at..range.start]);
            out.push_str(placeholder);
            at = range.end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }
}

/// Keeps `range` unless an earlier (higher-priority) match overlaps it.
fn claim(found: &mut Vec<(Range<usize>, &'static str)>, range: Range<usize>, what: &'static str) {
    let overlaps = found
        .iter()
        .any(|(r, _)| r.start < range.end && range.start < r.end);
    if !overlaps {
        found.push((range, what));
    }
}

fn find(kind: Sensitive, text: &str) -> Vec<Range<usize>> {
    match kind {
        Sensitive::Card => CARD
            .find_iter(text)
            .filter(|m| luhn_valid(&digits(m.as_str())))
            .map(|m| m.range())
            .collect(),
        Sensitive::Account => {
            let ibans = IBAN
                .find_iter(text)
                .filter(|m| iban_valid(m.as_str()))
                .map(|m| m.range());
            let labelled = LABELLED_ACCOUNT
                .captures_iter(text)
                .filter_map(|c| c.get(1))
                .map(|m| m.range());
            ibans.chain(labelled).collect()
        }
        Sensitive::Email => EMAIL.find_iter(text).map(|m| m.range()).collect(),
        Sensitive::Phone => PHONE
            .find_iter(text)
            .filter(|m| (7..=15).contains(&digits(m.as_str()).len()))
            .map(|m| m.range())
            .collect(),
    }
}

fn digits(text: &str) -> Vec<u32> {
    text.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// The Luhn checksum that every payment card number satisfies.
fn luhn_valid(digits: &[u32]) -> bool {
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2 == 1, d * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 = 1.
fn iban_valid(candidate: &str) -> bool {
    let compact: Vec<char> = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut remainder = 0u32;
    for c in rotated {
        let Some(value) = c.to_digit(36) else {
            return false;
        };
        let width = if value < 10 { 10 } else { 100 };
        remainder = (remainder * width + value) % 97;
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Redactor {
        Redactor::new(&RedactionRules::default()).unwrap()
    }

    #[test]
    fn masks_emails_and_luhn_valid_cards() {
        let text = "Write to jane.doe@example.co.uk, card 4111 1111 1111 1111 expires soon.";
        assert_eq!(
            all().redact(text),
            "Write to [EMAIL], card [CARD] expires soon."
        );
    }

    #[test]
    fn leaves_numbers_that_fail_luhn() {
        let text = "Order 4111 1111 1111 1112 shipped; revenue rose 12% to 1,234,567.";
        assert_eq!(all().redact(text), text);
        assert!(matches!(all().redact(text), Cow::Borrowed(_)));
    }

    #[test]
    fn masks_ibans_by_checksum_and_labelled_accounts() {
        let text =
            "Pay GB82 WEST 1234 5698 7654 32 or account no. 12345678; not GB00WEST12345698765432.";
        assert_eq!(
            all().redact(text),
            "Pay [ACCOUNT] or account no. [ACCOUNT]; not GB00WEST12345698765432."
        );
    }

    #[test]
    fn masks_phone_numbers_but_not_dates() {
        let text = "Call +44 20 7946 0958 or (555) 123-4567 before 2024-01-15.";
        assert_eq!(
            all().redact(text),
            "Call [PHONE] or [PHONE] before 2024-01-15."
        );
    }

    #[test]
    fn extra_patterns_and_chosen_kinds() {
        let rules = RedactionRules {
            kinds: vec![Sensitive::Email],
            patterns: vec![r"ACME-\d{6}".into()],
        };
        let redactor = Redactor::new(&rules).unwrap();
        let text = "Ticket ACME-123456 from a@b.io, card 4111111111111111.";
        assert_eq!(
            redactor.redact(text),
            "Ticket [REDACTED] from [EMAIL], card 4111111111111111."
        );
    }

    #[test]
    fn invalid_pattern_is_named() {
        let rules = RedactionRules {
            kinds: vec![],
            patterns: vec!["ok".into(), "(unclosed".into()],
        };
        let err = Redactor::new(&rules).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.to_string().contains("(unclosed"), "{err}");
    }

    #[test]
    fn checksums() {
        assert!(luhn_valid(&digits("4012888888881881")));
        assert!(!luhn_valid(&digits("4012888888881882")));
        assert!(iban_valid("DE89 3704 0044 0532 0130 00"));
        assert!(!iban_valid("DE89 3704 0044 0532 0130 01"));
    }
}
