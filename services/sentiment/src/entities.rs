//! Finding the companies a text talks about: cashtags (`$ACME`) always, and the names,
//! aliases and tickers of a configurable watchlist.

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;
use serde::Deserialize;
use std::ops::Range;
use std::sync::LazyLock;

/// One company: its ticker (the canonical name reported) and what texts call it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct WatchlistEntry {
    pub ticker: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Names to look for, matched on word boundaries.
#[derive(Debug, Default)]
pub struct Watchlist {
    entries: Vec<WatchlistEntry>,
    /// Every name, alias and ticker, pointing back to its entry.
    matcher: Option<AhoCorasick>,
    owners: Vec<usize>,
}

/// A mention of an entity in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention {
    pub entity: String,
    pub bytes: Range<usize>,
}

static CASHTAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$([A-Za-z][A-Za-z0-9.]{0,9})\b").expect("valid cashtag pattern")
});

impl Watchlist {
    pub fn new(entries: Vec<WatchlistEntry>) -> Result<Self, String> {
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            for name in std::iter::once(&entry.name)
                .chain(&entry.aliases)
                .chain(std::iter::once(&entry.ticker))
            {
                if !name.trim().is_empty() {
                    patterns.push(name.trim().to_string());
                    owners.push(index);
                }
            }
        }
        let matcher = match patterns.is_empty() {
            true => None,
            false => Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(Self {
            entries,
            matcher,
            owners,
        })
    }

    /// Reads a JSON array of entries.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let entries: Vec<WatchlistEntry> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Self::new(entries)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every mention in `text`: cashtags, watchlist names and `extra` names, left to right.
    pub fn mentions(&self, text: &str, extra: &[String]) -> Vec<Mention> {
        let mut found: Vec<Mention> = CASHTAG
            .captures_iter(text)
            .filter_map(|c| c.get(0).zip(c.get(1)))
            .map(|(whole, ticker)| Mention {
                entity: self.canonical_ticker(ticker.as_str()),
                bytes: whole.range(),
            })
            .collect();
        if let Some(matcher) = &self.matcher {
            for m in matcher.find_iter(text) {
                if on_word_boundaries(text, m.range()) && !overlaps(&found, &m.range()) {
                    found.push(Mention {
                        entity: self.entries[self.owners[m.pattern().as_usize()]]
                            .ticker
                            .clone(),
                        bytes: m.range(),
                    });
                }
            }
        }
        for name in extra.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            for (at, _) in text.match_indices(name) {
                let range = at..at + name.len();
                if on_word_boundaries(text, range.clone()) && !overlaps(&found, &range) {
                    found.push(Mention {
                        entity: name.to_string(),
                        bytes: range,
                    });
                }
            }
        }
        found.sort_by_key(|m| m.bytes.start);
        found
    }

    /// A cashtag's ticker as the watchlist spells it, else upper-cased.
    fn canonical_ticker(&self, ticker: &str) -> String {
        let upper = ticker.to_uppercase();
        self.entries
            .iter()
            .find(|e| e.ticker.eq_ignore_ascii_case(&upper))
            .map_or(upper, |e| e.ticker.clone())
    }
}

fn overlaps(found: &[Mention], range: &Range<usize>) -> bool {
    found
        .iter()
        .any(|m| m.bytes.start < range.end && range.start < m.bytes.end)
}

/// True when the match is not part of a longer word ("Acme" in "Acmeville" is not a mention).
fn on_word_boundaries(text: &str, range: Range<usize>) -> bool {
    let before = text[..range.start].chars().next_back();
    let after = text[range.end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watchlist() -> Watchlist {
        Watchlist::new(vec![
            WatchlistEntry {
                ticker: "HRBK".into(),
                name: "Harbrook Industries".into(),
                aliases: vec!["Harbrook".into()],
            },
            WatchlistEntry {
                ticker: "QLMT".into(),
                name: "Quillmont Foods".into(),
                aliases: vec![],
            },
        ])
        .unwrap()
    }

    #[test]
    fn finds_cashtags_names_and_aliases() {
        let text = "Harbrook Industries beat estimates; $qlmt fell, and Harbrook's rival Quillmont Foods was flat.";
        let mentions: Vec<(String, &str)> = watchlist()
            .mentions(text, &[])
            .into_iter()
            .map(|m| (m.entity, &text[m.bytes]))
            .collect();
        assert_eq!(
            mentions,
            vec![
                ("HRBK".into(), "Harbrook Industries"),
                ("QLMT".into(), "$qlmt"),
                ("HRBK".into(), "Harbrook"),
                ("QLMT".into(), "Quillmont Foods")
            ]
        );
    }

    #[test]
    fn ignores_names_inside_words_and_unknown_cashtags_keep_their_ticker() {
        let mentions = watchlist().mentions("Harbrookville is quiet; $ZZZ rose. 💸", &[]);
        let entities: Vec<&str> = mentions.iter().map(|m| m.entity.as_str()).collect();
        assert_eq!(entities, vec!["ZZZ"]);
    }

    #[test]
    fn extra_names_from_the_request() {
        let mentions = Watchlist::default().mentions(
            "Nordhavn Shipping cut its outlook.",
            &["Nordhavn Shipping".into()],
        );
        assert_eq!(mentions.len(), 1);
    }
}
