//! What each role needs before it serves, prepared after the encoder is warm.

use crate::config::ServeConfig;
use crate::health::Health;
use anyhow::Context;
use longview_proto::service_names as names;
use longview_sentiment::SentimentModel;
use longview_worker::{Worker, WorkerConfig, WorkerState};
use std::sync::{Arc, OnceLock};

/// Models and heads the services wait for.
#[derive(Clone, Default)]
pub struct Prepared {
    pub sentiment: Arc<OnceLock<SentimentModel>>,
    /// Notified once `sentiment` is set (the monitor waits for it).
    pub sentiment_ready: Arc<tokio::sync::Notify>,
    pub rag: Arc<OnceLock<longview_rag::RagBackend>>,
}

/// Waits for the encoder, then prepares each role in turn, marking services ready in
/// `health` as soon as what they need is; logs "ready" when all are.
pub async fn prepare(
    config: ServeConfig,
    worker: Worker,
    prepared: Prepared,
    health: Health,
) -> anyhow::Result<()> {
    wait_for(&worker)
        .await
        .context("the encoder failed to load")?;
    ready(
        &health,
        &[
            names::EMBED,
            names::CLASSIFY,
            names::WORKER,
            names::RECOMMEND,
        ],
    )
    .await;
    if config.serves_rag() {
        let backend = crate::rag::open_backend(&config, &worker)
            .await
            .context("opening the rag stores")?;
        let _ = prepared.rag.set(backend);
        ready(&health, &[names::RAG]).await;
    }
    if config.serves_sentiment() || config.serves_monitor() {
        let model = sentiment_model(&config, &worker)
            .await
            .context("preparing the sentiment model")?;
        let _ = prepared.sentiment.set(model);
        prepared.sentiment_ready.notify_one();
        ready(&health, &[names::SENTIMENT]).await;
    }
    Ok(())
}

async fn ready(health: &Health, services: &[&'static str]) {
    if health.mark_ready(services).await {
        tracing::info!("ready");
    }
}

async fn wait_for(worker: &Worker) -> anyhow::Result<()> {
    let mut state = worker.watch_state();
    let settled = state
        .wait_for(|s| !matches!(s, WorkerState::Loading))
        .await
        .map(|s| s.clone());
    match settled {
        Ok(WorkerState::Ready(_)) => Ok(()),
        Ok(WorkerState::Failed(reason)) => anyhow::bail!("{reason}"),
        Ok(WorkerState::Loading) | Err(_) => anyhow::bail!("the model worker stopped"),
    }
}

/// The user's own classifier when configured, else the default head (trained on first
/// start, which takes a few minutes).
async fn sentiment_model(config: &ServeConfig, worker: &Worker) -> anyhow::Result<SentimentModel> {
    if let Some(dir) = &config.sentiment_model {
        let mut worker_config = WorkerConfig::new(dir.clone());
        worker_config.device = config.device;
        worker_config.backend = config.backend;
        let classifier = Worker::spawn(worker_config)?;
        let loaded = classifier.ready().await?;
        anyhow::ensure!(
            loaded.info.labels.is_some(),
            "{} is not a sequence-classification model (no id2label)",
            dir.display()
        );
        tracing::info!(model = %loaded.info.name, labels = ?loaded.info.labels, "sentiment from a user-supplied classifier");
        return Ok(SentimentModel::Classifier { worker: classifier });
    }
    let head = training_lock().lock().await;
    let cache = longview_tools::sentiment::default_data_cache(&config.models_root);
    let trained =
        longview_tools::sentiment::ensure_sentiment_head(worker, &cache, &config.models_root)
            .await?;
    drop(head);
    tracing::info!(head = %trained.spec.name, version = %trained.spec.version, "sentiment head ready");
    Ok(SentimentModel::Head {
        worker: worker.clone(),
        head: Arc::new(trained),
    })
}

/// One training at a time in a process, so servers started together share the result.
fn training_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}
