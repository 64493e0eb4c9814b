//! `longview bench monitor`: documents per second through the whole monitor pipeline
//! (JSONL source, decoding, batching, sentiment with entities, topic, windows and rules)
//! against the encoder alone embedding the same texts, in one run, side by side.

use crate::ModelArgs;
use futures::StreamExt;
use longview_core::TokenLimit;
use longview_monitor::{AlertHub, Monitor, MonitorConfig, Print, Source};
use longview_sentiment::{SentimentModel, Watchlist};
use longview_worker::Worker;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

const COMPANIES: [&str; 5] = ["HRBK", "QLMT", "VLTN", "CRVF", "PLSD"];

/// News items of `sentences` sentences, the first with a cashtag, as a newswire would
/// send them; every sentence distinct (the corpus has only a few), so that neither side
/// saves work on repeats: the pipeline encodes a batch's equal sequences once.
fn texts(count: usize, sentences: usize) -> Vec<String> {
    let corpus = crate::bench::CORPUS;
    (0..count)
        .map(|i| {
            let company = COMPANIES[(i / 3) % COMPANIES.len()];
            let body: Vec<String> = (0..sentences.max(1))
                .map(|s| {
                    let sentence = corpus[(i + s) % corpus.len()];
                    match s {
                        0 => format!("${company} item {i}: {sentence}"),
                        _ => format!("Update {i}-{s}: {sentence}"),
                    }
                })
                .collect();
            body.join(" ")
        })
        .collect()
}

pub async fn run(
    model: &ModelArgs,
    documents: usize,
    sentences: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let worker = model.worker().await?;
    let root = model.models_root();
    let cache = crate::sentiment::default_data_cache(&root);
    let head = crate::sentiment::ensure_sentiment_head(&worker, &cache, &root).await?;
    let sentiment = Arc::new(OnceLock::new());
    let _ = sentiment.set(SentimentModel::Head {
        worker: worker.clone(),
        head: Arc::new(head),
    });
    let config = MonitorConfig::default();
    let hub = AlertHub::new(longview_monitor::rule_names(&config));
    let monitor = Monitor::new(
        config,
        sentiment,
        Arc::new(Watchlist::default()),
        worker.clone(),
        hub,
    )
    .await?;
    let texts = texts(documents, sentences);
    let file = jsonl(&texts)?;
    println!(
        "{documents} documents of {sentences} sentence(s), batches of {}, {} in flight",
        monitor.config().processing.batch_documents,
        monitor.config().processing.concurrent_batches
    );
    println!("| round | encoder alone (docs/s) | whole pipeline (docs/s) | ratio |");
    println!("|---|---|---|---|");
    for round in 1..=rounds {
        let encoder = encoder_alone(&worker, &texts, &monitor).await?;
        let pipeline = whole_pipeline(&monitor, file.path()).await?;
        println!(
            "| {round} | {encoder:.1} | {pipeline:.1} | {:.2} |",
            pipeline / encoder
        );
    }
    Ok(())
}

fn jsonl(texts: &[String]) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::NamedTempFile::new()?;
    for (i, text) in texts.iter().enumerate() {
        let line = serde_json::json!({ "id": format!("bench-{i}"), "text": text });
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    Ok(file)
}

/// The same texts embedded once each, in the pipeline's batch size and concurrency.
async fn encoder_alone(
    worker: &Worker,
    texts: &[String],
    monitor: &Monitor,
) -> anyhow::Result<f64> {
    let processing = &monitor.config().processing;
    let info = worker.loaded()?.info.clone();
    let limit = TokenLimit {
        max_tokens: info.trained_seq_len - info.special_tokens,
        truncate: true,
    };
    let started = Instant::now();
    let batches = texts.chunks(processing.batch_documents).map(|batch| {
        let worker = worker.clone();
        let batch = batch.to_vec();
        async move { worker.embed_texts(batch, limit).await }
    });
    let mut results =
        futures::stream::iter(batches).buffer_unordered(processing.concurrent_batches);
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(texts.len() as f64 / started.elapsed().as_secs_f64())
}

async fn whole_pipeline(monitor: &Monitor, path: &std::path::Path) -> anyhow::Result<f64> {
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let summary = monitor
        .run(&Source::File(path.to_path_buf()), Print::Nothing, shutdown)
        .await?;
    anyhow::ensure!(summary.dead_lettered == 0, "bench documents were refused");
    Ok(summary.documents as f64 / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_sentence_is_distinct() {
        let texts = super::texts(64, 3);
        let sentences: Vec<_> = texts
            .iter()
            .flat_map(|t| {
                longview_core::sentences::sentence_spans(t)
                    .into_iter()
                    .map(move |r| &t[r])
            })
            .collect();
        let distinct: std::collections::HashSet<_> = sentences.iter().collect();
        assert_eq!(sentences.len(), 64 * 3);
        assert_eq!(distinct.len(), sentences.len());
    }
}
