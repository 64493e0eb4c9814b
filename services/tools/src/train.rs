//! `longview train classifier`: a head on frozen encoder features, saved where the
//! server finds it by name.

use crate::ModelArgs;
use crate::features::{Reading, document_vectors};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use longview_core::WindowSpec;
use longview_core::head::{
    AttentionWeights, ClassifierHead, FEATURES_EMBEDDING, FEATURES_FIRST_STATE, HeadSpec,
    HeadWeights,
};
use longview_models::sequence_head::{Dense, SequenceHead};
use longview_models::train::{Example, HeadAggregation, TrainConfig, TrainedHead, train_head};
use longview_worker::{ModelInfo, Output, Worker};
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

/// What the head reads from the encoder per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FeaturesArg {
    /// The sentence embedding (pooled and normalised): the best features for this model.
    Embedding,
    /// The first token's raw state through a learned pooler, as Hugging Face
    /// `…ForSequenceClassification` models work; needed for --export-hf.
    FirstState,
}

impl FeaturesArg {
    pub fn output(self) -> Output {
        match self {
            FeaturesArg::Embedding => Output::Embedding,
            FeaturesArg::FirstState => Output::FirstState,
        }
    }

    fn spec_name(self) -> &'static str {
        match self {
            FeaturesArg::Embedding => FEATURES_EMBEDDING,
            FeaturesArg::FirstState => FEATURES_FIRST_STATE,
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
    /// What the head reads from the encoder.
    #[arg(long, env = "LONGVIEW_TRAIN_FEATURES", value_enum, default_value_t = FeaturesArg::Embedding)]
    pub features: FeaturesArg,
    /// Also write the encoder and head as a Hugging Face BertForSequenceClassification
    /// directory here (needs --features first-state and --aggregation mean; such a model
    /// reads one window, so it matches the head on texts that fit one).
    #[arg(long, env = "LONGVIEW_TRAIN_EXPORT_HF")]
    pub export_hf: Option<PathBuf>,
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
    /// Loss weight per document; empty means all count the same.
    pub weights: Vec<f32>,
}

pub async fn train_classifier(args: TrainClassifierArgs) -> anyhow::Result<()> {
    if args.export_hf.is_some()
        && (args.features != FeaturesArg::FirstState
            || !matches!(args.aggregation, AggregationArg::Mean))
    {
        bail!(
            "--export-hf needs --features first-state and --aggregation mean, the shape of a Hugging Face classifier"
        );
    }
    let dataset = read_dataset(&args.data)?;
    let worker = args.model.worker().await?;
    let info = worker.loaded()?.info.clone();
    let window = WindowSpec {
        size: args.window,
        overlap: args.overlap,
        special_tokens: info.special_tokens,
    };
    window.validate(info.max_positions)?;
    let kind = if dataset.multi_label {
        "multi-label"
    } else {
        "one label each"
    };
    println!(
        "{} documents, {} labels ({kind})",
        dataset.texts.len(),
        dataset.labels.len()
    );

    let config = TrainConfig {
        aggregation: args.aggregation.into(),
        multi_label: dataset.multi_label,
        max_epochs: args.epochs,
        seed: args.seed,
        pooler: args.features == FeaturesArg::FirstState,
        ..Default::default()
    };
    let plan = HeadPlan {
        name: &args.name,
        window,
        features: args.features,
        config,
    };
    let head = train_on(&worker, &dataset, &plan).await?;
    let dir = args.model.models_root().join("heads").join(&args.name);
    head.save(&dir)?;
    println!(
        "saved head {:?} version {} to {}",
        head.spec.name,
        head.spec.version,
        dir.display()
    );
    if let Some(out) = &args.export_hf {
        export_hf(&head, &args.model.model_dir()?, out)?;
        println!(
            "exported a Hugging Face BertForSequenceClassification to {}",
            out.display()
        );
    }
    Ok(())
}

/// What to train and how.
pub struct HeadPlan<'a> {
    pub name: &'a str,
    pub window: WindowSpec,
    pub features: FeaturesArg,
    pub config: TrainConfig,
}

/// Encodes the dataset through the worker and trains a head on it.
pub async fn train_on(
    worker: &Worker,
    dataset: &Dataset,
    plan: &HeadPlan<'_>,
) -> anyhow::Result<ClassifierHead> {
    let info = worker.loaded()?.info.clone();
    let output = plan.features.output();
    let (vectors, tokens) = document_vectors(
        worker,
        &dataset.texts,
        Reading::Windows(plan.window),
        output,
    )
    .await?;
    println!("encoded {tokens} tokens");
    let examples: Vec<Example> = vectors
        .into_iter()
        .zip(&dataset.targets)
        .enumerate()
        .map(|(i, (windows, targets))| Example {
            windows,
            targets: targets.clone(),
            weight: dataset.weights.get(i).copied().unwrap_or(1.0),
        })
        .collect();
    let trained = train_with_progress(&examples, &plan.config)?;
    build_head(plan, dataset, &info, trained)
}

/// Writes `head` with the encoder in `encoder_dir` as a Hugging Face classifier directory.
pub fn export_hf(head: &ClassifierHead, encoder_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let weights = head.weights();
    let (pooler_weight, pooler_bias) = weights
        .pooler
        .clone()
        .context("the head has no pooler (train with --features first-state)")?;
    let sequence_head = SequenceHead {
        pooler: Dense {
            weight: pooler_weight,
            bias: pooler_bias,
        },
        classifier: Dense {
            weight: weights.weight.clone(),
            bias: weights.bias.clone(),
        },
        labels: head.labels().to_vec(),
    };
    let encoder = longview_models::ModelDir::open(encoder_dir)?;
    sequence_head.export(&encoder, out)?;
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
        weights: Vec::new(),
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

/// A head with its metadata; its version is a hash of its weights (see [`set_version`]).
pub fn build_head(
    plan: &HeadPlan<'_>,
    dataset: &Dataset,
    encoder: &ModelInfo,
    trained: TrainedHead,
) -> anyhow::Result<ClassifierHead> {
    let spec = HeadSpec {
        name: plan.name.to_string(),
        version: String::new(),
        labels: dataset.labels.clone(),
        multi_label: dataset.multi_label,
        aggregation: plan.config.aggregation.name().to_string(),
        dimensions: encoder.dimensions,
        encoder_name: encoder.name.clone(),
        encoder_version: encoder.version.clone(),
        window_size: plan.window.size,
        window_overlap: plan.window.overlap,
        features: plan.features.spec_name().to_string(),
        temperature: 1.0,
        metrics: serde_json::to_value(&trained.report)?,
    };
    let attention = trained
        .attention
        .map(|(proj, bias, query)| AttentionWeights { proj, bias, query });
    let weights = HeadWeights {
        weight: trained.weight,
        bias: trained.bias,
        attention,
        pooler: trained.pooler,
    };
    let mut head = ClassifierHead::new(spec, weights).map_err(anyhow::Error::msg)?;
    set_version(&mut head);
    Ok(head)
}

/// Versions a head by a hash of everything that changes its answers (weights and
/// temperature), so retraining the same data with the same seed gives the same version.
pub fn set_version(head: &mut ClassifierHead) {
    let w = head.weights();
    let attention = w
        .attention
        .iter()
        .flat_map(|a| a.proj.iter().chain(&a.bias).chain(&a.query));
    let pooler = w
        .pooler
        .iter()
        .flat_map(|(weight, bias)| weight.iter().chain(bias));
    let mut hasher = Sha256::new();
    for value in w
        .weight
        .iter()
        .chain(&w.bias)
        .chain(attention)
        .chain(pooler)
        .chain([&head.spec.temperature])
    {
        hasher.update(value.to_le_bytes());
    }
    head.spec.version = hex::encode(hasher.finalize())[..12].to_string();
}
