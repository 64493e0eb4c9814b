//! `longview train classifier`: a head on frozen encoder features, saved where the
//! server finds it by name.

use crate::ModelArgs;
use crate::features::{Reading, document_vectors};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use longview_core::WindowSpec;
use longview_core::head::{AttentionWeights, ClassifierHead, HeadSpec};
use longview_models::train::{Example, HeadAggregation, TrainConfig, TrainedHead, train_head};
use longview_worker::ModelInfo;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AggregationArg {
    Mean,
    Max,
    Attention,
}

impl From<AggregationArg> for HeadAggregation {
    fn from(arg: AggregationArg) -> Self {
        match arg {
            AggregationArg::Mean => HeadAggregation::Mean,
            AggregationArg::Max => HeadAggregation::Max,
            AggregationArg::Attention => HeadAggregation::Attention,
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainClassifierArgs {
    /// JSON lines: {"text": ..., "label": "x"} (one label each) or {"text": ..., "labels": ["x", "y"]} (any number).
    #[arg(long, env = "LONGVIEW_TRAIN_DATA")]
    pub data: PathBuf,
    /// Name the server will know the label set by.
    #[arg(long, env = "LONGVIEW_TRAIN_NAME")]
    pub name: String,
    /// How window scores combine into a document score.
    #[arg(long, env = "LONGVIEW_TRAIN_AGGREGATION", value_enum, default_value_t = AggregationArg::Attention)]
    pub aggregation: AggregationArg,
    /// Window size in tokens, special tokens included.
    #[arg(long, env = "LONGVIEW_TRAIN_WINDOW", default_value_t = 256)]
    pub window: usize,
    /// Tokens shared by consecutive windows.
    #[arg(long, env = "LONGVIEW_TRAIN_OVERLAP", default_value_t = 32)]
    pub overlap: usize,
    /// Most passes over the data (training stops earlier when validation stops improving).
    #[arg(long, env = "LONGVIEW_TRAIN_EPOCHS", default_value_t = 200)]
    pub epochs: usize,
    /// Seed for the split, the shuffles and the initial weights.
    #[arg(long, env = "LONGVIEW_TRAIN_SEED", default_value_t = 17)]
    pub seed: u64,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// One line of training data.
#[derive(Debug, Deserialize)]
struct Record {
    text: String,
    label: Option<String>,
    labels: Option<Vec<String>>,
}

/// Documents, label names, and the targets of each document.
pub struct Dataset {
    pub texts: Vec<String>,
    pub labels: Vec<String>,
    pub targets: Vec<Vec<f32>>,
    pub multi_label: bool,
}

pub async fn train_classifier(args: TrainClassifierArgs) -> anyhow::Result<()> {
    let dataset = read_dataset(&args.data)?;
    let worker = args.model.worker().await?;
    let info = worker.loaded()?.info.clone();
    let spec = WindowSpec {
        size: args.window,
        overlap: args.overlap,
        special_tokens: info.special_tokens,
    };
    spec.validate(info.max_positions)?;
    println!(
        "{} documents, {} labels ({})",
        dataset.texts.len(),
        dataset.labels.len(),
        if dataset.multi_label {
            "multi-label"
        } else {
            "one label each"
        }
    );

    let (vectors, tokens) =
        document_vectors(&worker, &dataset.texts, Reading::Windows(spec)).await?;
    println!("encoded {tokens} tokens");
    let examples: Vec<Example> = vectors
        .into_iter()
        .zip(&dataset.targets)
        .map(|(windows, targets)| Example {
            windows,
            targets: targets.clone(),
        })
        .collect();
    let config = TrainConfig {
        aggregation: args.aggregation.into(),
        multi_label: dataset.multi_label,
        max_epochs: args.epochs,
        seed: args.seed,
        ..Default::default()
    };
    let trained = train_with_progress(&examples, &config)?;
    let head = build_head(&args.name, &dataset, &info, spec, &config, trained)?;
    let dir = args.model.models_root().join("heads").join(&args.name);
    head.save(&dir)?;
    println!(
        "saved head {:?} version {} to {}",
        head.spec.name,
        head.spec.version,
        dir.display()
    );
    Ok(())
}

/// Reads JSON lines; one-label and many-label records cannot be mixed.
pub fn read_dataset(path: &Path) -> anyhow::Result<Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut records = Vec::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: Record = serde_json::from_str(line)
            .with_context(|| format!("{}:{}", path.display(), number + 1))?;
        records.push((number + 1, record));
    }
    let multi_label = records.iter().any(|(_, r)| r.labels.is_some());
    let mut texts = Vec::with_capacity(records.len());
    let mut label_lists = Vec::with_capacity(records.len());
    for (line, record) in records {
        let labels = match (record.label, record.labels, multi_label) {
            (Some(label), None, false) => vec![label],
            (None, Some(labels), true) => labels,
            _ => bail!(
                "{}:{line}: every line needs \"label\" (one) or every line \"labels\" (a list), not a mix",
                path.display()
            ),
        };
        if longview_core::text::is_blank(&record.text) {
            bail!("{}:{line}: text is empty", path.display());
        }
        texts.push(record.text);
        label_lists.push(labels);
    }
    let labels: Vec<String> = label_lists
        .iter()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if labels.len() < 2 {
        bail!(
            "{}: need at least two distinct labels, found {}",
            path.display(),
            labels.len()
        );
    }
    let targets = label_lists
        .iter()
        .map(|list| {
            labels
                .iter()
                .map(|l| if list.contains(l) { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    Ok(Dataset {
        texts,
        labels,
        targets,
        multi_label,
    })
}

/// Trains with a progress bar that shows the losses.
pub fn train_with_progress(
    examples: &[Example],
    config: &TrainConfig,
) -> anyhow::Result<TrainedHead> {
    let progress = ProgressBar::new(config.max_epochs as u64).with_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] epoch {pos}/{len} {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_message(format!("train {}", config.aggregation.name()));
    let trained = train_head(
        examples,
        config,
        &mut |epoch: usize, train: f32, validation: f32| {
            progress.set_position(epoch as u64);
            progress.set_prefix(format!("loss {train:.4} / validation {validation:.4}"));
        },
    )?;
    progress.finish();
    let report = &trained.report;
    tracing::info!(
        epochs = report.epochs,
        best_epoch = report.best_epoch,
        best_validation_loss = report.best_validation_loss,
        "trained head"
    );
    Ok(trained)
}

/// A head with its metadata; its version is a hash of its weights, so retraining the
/// same data with the same seed gives the same version.
pub fn build_head(
    name: &str,
    dataset: &Dataset,
    encoder: &ModelInfo,
    window: WindowSpec,
    config: &TrainConfig,
    trained: TrainedHead,
) -> anyhow::Result<ClassifierHead> {
    let mut hasher = Sha256::new();
    let attention_values = trained
        .attention
        .iter()
        .flat_map(|(p, b, q)| p.iter().chain(b).chain(q));
    for value in trained
        .weight
        .iter()
        .chain(&trained.bias)
        .chain(attention_values)
    {
        hasher.update(value.to_le_bytes());
    }
    let spec = HeadSpec {
        name: name.to_string(),
        version: hex::encode(hasher.finalize())[..12].to_string(),
        labels: dataset.labels.clone(),
        multi_label: dataset.multi_label,
        aggregation: config.aggregation.name().to_string(),
        dimensions: encoder.dimensions,
        encoder_name: encoder.name.clone(),
        encoder_version: encoder.version.clone(),
        window_size: window.size,
        window_overlap: window.overlap,
        metrics: serde_json::to_value(&trained.report)?,
    };
    let attention = trained
        .attention
        .map(|(proj, bias, query)| AttentionWeights { proj, bias, query });
    ClassifierHead::new(spec, trained.weight, trained.bias, attention).map_err(anyhow::Error::msg)
}
