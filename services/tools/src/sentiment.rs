//! The default sentiment head: trained on Rotten Tomatoes and the team's financial
//! sentences, calibrated by temperature on held-out data, saved as the `sentiment` label
//! set. `longview train sentiment` builds it; `serve` builds it on first start; `longview
//! eval sentiment` measures it on the texts it never saw.

use crate::ModelArgs;
use crate::features::{Reading, document_vectors};
use crate::metrics::{argmax, expected_calibration_error, fit_temperature, label_counts, macro_f1};
use crate::sentiment_data::{self, LABELS, Labelled, Splits};
use crate::train::{FeaturesArg, HeadPlan, set_version, train_on};
use clap::Args;
use longview_core::WindowSpec;
use longview_core::aggregate::softmax;
use longview_core::head::ClassifierHead;
use longview_models::train::{HeadAggregation, TrainConfig};
use longview_worker::{Output, Worker};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The label set name the Sentiment service loads by default.
pub const HEAD_NAME: &str = "sentiment";

#[derive(Debug, Args)]
pub struct SentimentDataArgs {
    /// Where downloaded datasets are cached.
    #[arg(long, env = "LONGVIEW_DATA_CACHE")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

impl SentimentDataArgs {
    fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| default_data_cache(&self.model.models_root()))
    }
}

/// Datasets are cached beside the models they train heads for.
pub fn default_data_cache(models_root: &Path) -> PathBuf {
    models_root.parent().unwrap_or(models_root).join("data")
}

#[derive(Debug, Args)]
pub struct TrainSentimentArgs {
    /// Keep an existing head trained on this encoder instead of training again.
    #[arg(long, env = "LONGVIEW_TRAIN_IF_MISSING")]
    pub if_missing: bool,
    #[command(flatten)]
    pub data: SentimentDataArgs,
}

pub async fn train_command(args: TrainSentimentArgs) -> anyhow::Result<()> {
    let (data, root) = (&args.data, args.data.model.models_root());
    let worker = data.model.worker().await?;
    let head = match args.if_missing {
        true => ensure_sentiment_head(&worker, &data.cache_dir(), &root).await?,
        false => train_sentiment_head(&worker, &data.cache_dir(), &root).await?,
    };
    println!(
        "saved head {HEAD_NAME:?} version {} (temperature {:.2})",
        head.spec.version, head.spec.temperature
    );
    Ok(())
}

/// The head under `models_root`, trained now if it is missing or was trained on another
/// encoder.
pub async fn ensure_sentiment_head(
    worker: &Worker,
    cache_dir: &Path,
    models_root: &Path,
) -> anyhow::Result<ClassifierHead> {
    let dir = models_root.join("heads").join(HEAD_NAME);
    let info = worker.loaded()?.info.clone();
    if let Ok(head) = ClassifierHead::load(&dir)
        && head.spec.encoder_version == info.version
        && head.spec.encoder_name == info.name
    {
        return Ok(head);
    }
    tracing::info!("training the default sentiment head (first start; takes a few minutes)");
    train_sentiment_head(worker, cache_dir, models_root).await
}

/// Trains on the train splits of both sources, calibrates on their validation splits and
/// saves the head.
pub async fn train_sentiment_head(
    worker: &Worker,
    cache_dir: &Path,
    models_root: &Path,
) -> anyhow::Result<ClassifierHead> {
    let (movies, financial) = sentiment_data::load(cache_dir)?;
    let train: Vec<Labelled> = movies
        .train
        .iter()
        .chain(&financial.train)
        .cloned()
        .collect();
    let info = worker.loaded()?.info.clone();
    let config = TrainConfig {
        aggregation: HeadAggregation::Mean,
        multi_label: false,
        ..Default::default()
    };
    let window = WindowSpec {
        size: 256,
        overlap: 32,
        special_tokens: info.special_tokens,
    };
    let plan = HeadPlan {
        name: HEAD_NAME,
        window,
        features: FeaturesArg::Embedding,
        config,
    };
    // The financial sentences are few beside the movie reviews but are the domain that
    // matters; weighted so the two sources count about two to one.
    let mut dataset = sentiment_data::dataset(&train);
    let financial_weight = movies.train.len() as f32 / (2.0 * financial.train.len().max(1) as f32);
    dataset.weights = movies
        .train
        .iter()
        .map(|_| 1.0)
        .chain(financial.train.iter().map(|_| financial_weight))
        .collect();
    let mut head = train_on(worker, &dataset, &plan).await?;

    let validation: Vec<Labelled> = movies
        .validation
        .iter()
        .chain(&financial.validation)
        .cloned()
        .collect();
    let logits = document_logits(worker, &head, &validation).await?;
    let truth: Vec<usize> = validation.iter().map(|r| r.label).collect();
    head.spec.temperature = fit_temperature(&logits, &truth);
    set_version(&mut head);
    head.save(&models_root.join("heads").join(HEAD_NAME))?;
    Ok(head)
}

/// Logits per text: the mean of the head's window logits, as the service computes them.
async fn document_logits(
    worker: &Worker,
    head: &ClassifierHead,
    rows: &[Labelled],
) -> anyhow::Result<Vec<Vec<f32>>> {
    let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
    let window = WindowSpec {
        size: head.spec.window_size,
        overlap: head.spec.window_overlap,
        special_tokens: worker.loaded()?.info.special_tokens,
    };
    let (vectors, _) =
        document_vectors(worker, &texts, Reading::Windows(window), Output::Embedding).await?;
    Ok(vectors
        .iter()
        .map(|windows| {
            let per_window: Vec<Vec<f32>> = windows.iter().map(|w| head.logits(w)).collect();
            (0..LABELS.len())
                .map(|l| per_window.iter().map(|w| w[l]).sum::<f32>() / per_window.len() as f32)
                .collect()
        })
        .collect())
}

#[derive(Debug, Args)]
pub struct EvalSentimentArgs {
    /// Where the report (sentiment.md) is written.
    #[arg(long, env = "LONGVIEW_EVAL_OUT", default_value = "reports")]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub data: SentimentDataArgs,
}

/// Figures for one test set.
struct Figures {
    name: &'static str,
    texts: usize,
    accuracy: f64,
    macro_f1: f64,
    majority_accuracy: f64,
    majority_macro_f1: f64,
    ece_raw: f64,
    ece_calibrated: f64,
}

pub async fn eval_command(args: EvalSentimentArgs) -> anyhow::Result<()> {
    let worker = args.data.model.worker().await?;
    let models_root = args.data.model.models_root();
    let head = ensure_sentiment_head(&worker, &args.data.cache_dir(), &models_root).await?;
    let (movies, financial) = sentiment_data::load(&args.data.cache_dir())?;
    let mut figures = Vec::new();
    for (name, splits) in [
        ("Rotten Tomatoes (3 classes)", &movies),
        ("financial sentences (3 classes)", &financial),
    ] {
        figures.push(evaluate(&worker, &head, name, splits).await?);
    }
    let binary = fresh_vs_rotten(&worker, &head, &movies).await?;
    let report = report(&head, &figures, binary);
    println!("{report}");
    std::fs::create_dir_all(&args.out_dir)?;
    std::fs::write(args.out_dir.join("sentiment.md"), &report)?;
    Ok(())
}

async fn evaluate(
    worker: &Worker,
    head: &ClassifierHead,
    name: &'static str,
    splits: &Splits,
) -> anyhow::Result<Figures> {
    let logits = document_logits(worker, head, &splits.test).await?;
    let truth: Vec<usize> = splits.test.iter().map(|r| r.label).collect();
    let calibrated: Vec<Vec<f32>> = logits
        .iter()
        .map(|l| softmax(l, head.spec.temperature))
        .collect();
    let raw: Vec<Vec<f32>> = logits.iter().map(|l| softmax(l, 1.0)).collect();
    let predicted: Vec<usize> = calibrated.iter().map(|p| argmax(p).0).collect();
    let majority = majority_class(&splits.train);
    let (accuracy, macro_f1) = scores(&predicted, &truth);
    let (majority_accuracy, majority_macro_f1) = scores(&vec![majority; truth.len()], &truth);
    Ok(Figures {
        name,
        texts: truth.len(),
        accuracy,
        macro_f1,
        majority_accuracy,
        majority_macro_f1,
        ece_raw: expected_calibration_error(&raw, &truth, 10),
        ece_calibrated: expected_calibration_error(&calibrated, &truth, 10),
    })
}

/// Accuracy on the fresh and rotten reviews only, deciding by positive against negative.
async fn fresh_vs_rotten(
    worker: &Worker,
    head: &ClassifierHead,
    movies: &Splits,
) -> anyhow::Result<(f64, f64, usize)> {
    let reviews: Vec<Labelled> = movies
        .test
        .iter()
        .filter(|r| r.label != 1)
        .cloned()
        .collect();
    let logits = document_logits(worker, head, &reviews).await?;
    let correct = logits
        .iter()
        .zip(&reviews)
        .filter(|(l, r)| (l[2] > l[0]) == (r.label == 2))
        .count();
    let fresh = movies.train.iter().filter(|r| r.label == 2).count();
    let rotten = movies.train.iter().filter(|r| r.label == 0).count();
    let majority_is_fresh = fresh >= rotten;
    let majority_correct = reviews
        .iter()
        .filter(|r| (r.label == 2) == majority_is_fresh)
        .count();
    let n = reviews.len().max(1) as f64;
    Ok((
        correct as f64 / n,
        majority_correct as f64 / n,
        reviews.len(),
    ))
}

fn majority_class(rows: &[Labelled]) -> usize {
    (0..LABELS.len())
        .max_by_key(|&l| rows.iter().filter(|r| r.label == l).count())
        .unwrap_or(0)
}

/// Accuracy and macro-F1 over the three classes.
fn scores(predicted: &[usize], truth: &[usize]) -> (f64, f64) {
    let one_hot = |labels: &[usize]| -> Vec<Vec<bool>> {
        labels
            .iter()
            .map(|&l| (0..LABELS.len()).map(|c| c == l).collect())
            .collect()
    };
    let accuracy = predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64
        / truth.len().max(1) as f64;
    (
        accuracy,
        macro_f1(&label_counts(&one_hot(predicted), &one_hot(truth))),
    )
}

fn report(
    head: &ClassifierHead,
    figures: &[Figures],
    (binary, binary_majority, binary_n): (f64, f64, usize),
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Sentiment: held-out evaluation\n");
    let _ = writeln!(
        md,
        "Head `{}` version {} on {} ({}), temperature {:.2}. Test splits are fixed by seed and never \
         seen in training or calibration. Produced by `longview eval sentiment`.\n",
        head.spec.name,
        head.spec.version,
        head.spec.encoder_name,
        head.spec.encoder_version,
        head.spec.temperature
    );
    let _ = writeln!(
        md,
        "| test set | texts | accuracy | macro-F1 | majority accuracy | majority macro-F1 | ECE raw | ECE calibrated |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for f in figures {
        let _ = writeln!(
            md,
            "| {} | {} | **{:.3}** | **{:.3}** | {:.3} | {:.3} | {:.3} | {:.3} |",
            f.name,
            f.texts,
            f.accuracy,
            f.macro_f1,
            f.majority_accuracy,
            f.majority_macro_f1,
            f.ece_raw,
            f.ece_calibrated
        );
    }
    let _ = writeln!(
        md,
        "| Rotten Tomatoes, fresh vs rotten | {binary_n} | **{binary:.3}** | | {binary_majority:.3} | | | |"
    );
    md
}
