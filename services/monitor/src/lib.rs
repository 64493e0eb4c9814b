//! Longview's streaming sentiment monitor: documents arrive on Kafka (or as JSONL from a
//! file or stdin), every document is scored by the same workers the gRPC services use
//! (sentiment, entities, topic), scores go to `document-scores`, sentiment is tracked per
//! entity and topic in event-time windows, and negative surges raise alerts to the
//! `alerts` topic and to gRPC subscribers. Offsets are committed only up to the lowest
//! document not yet fully processed; unusable messages go to a dead-letter topic.
//!
//! Owns the sources, batching, offset bookkeeping, windows, rules and sinks. Uses the
//! Sentiment and Classify crates through their public APIs only; must not depend on
//! candle or the server.

mod alert;
mod config;
mod document;
mod engine;
mod error;
mod kafka;
mod lines;
pub mod metrics;
mod offsets;
mod outputs;
mod pieces;
mod processor;
mod rules;
mod scorer;
mod scores;
mod service;
mod window;

pub use alert::Alert;
pub use config::{KafkaConfig, KeyKind, MonitorConfig, ProcessingConfig, RuleConfig, TopicLabel};
pub use document::{Document, Poison, decode};
pub use engine::Engine;
pub use error::{MonitorError, SubscribeError};
pub use offsets::OffsetTracker;
pub use outputs::Print;
pub use rules::AlertState;
pub use scorer::Scorer;
pub use scores::{DocumentScore, EntityScore, Position, TimeSource};
pub use service::{AlertHub, MonitorService};

use longview_sentiment::{SentimentModel, Watchlist};
use longview_worker::Worker;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// Where documents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The consumer group on the configured brokers.
    Kafka,
    /// A JSONL file.
    File(PathBuf),
    /// JSONL on standard input.
    Stdin,
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "kafka" => Ok(Source::Kafka),
            "stdin" | "-" => Ok(Source::Stdin),
            _ => match value.strip_prefix("file:") {
                Some(path) if !path.is_empty() => Ok(Source::File(path.into())),
                _ => Err(format!("{value:?}: expected kafka, stdin or file:PATH")),
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Kafka => f.write_str("kafka"),
            Source::Stdin => f.write_str("stdin"),
            Source::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub documents: u64,
    pub dead_lettered: u64,
    pub alerts: u64,
}

/// A configured monitor, ready to run on a source.
pub struct Monitor {
    config: MonitorConfig,
    scorer: Arc<Scorer>,
    hub: AlertHub,
}

impl Monitor {
    /// Prepares scoring (embeds the topic prototypes); the sentiment model must be ready.
    pub async fn new(
        config: MonitorConfig,
        sentiment: Arc<OnceLock<SentimentModel>>,
        watchlist: Arc<Watchlist>,
        encoder: Worker,
        hub: AlertHub,
    ) -> Result<Self, MonitorError> {
        config.validate()?;
        metrics::describe();
        let scorer = Scorer::new(sentiment, watchlist, encoder, &config.topics).await?;
        Ok(Self {
            config,
            scorer: Arc::new(scorer),
            hub,
        })
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    pub fn scorer(&self) -> &Arc<Scorer> {
        &self.scorer
    }

    /// Runs until the source ends (files, stdin) or `shutdown` turns true, then drains.
    pub async fn run(
        &self,
        source: &Source,
        print: Print,
        shutdown: watch::Receiver<bool>,
    ) -> Result<RunSummary, MonitorError> {
        match source {
            Source::Kafka => kafka::run_kafka(self, shutdown).await,
            Source::Stdin => {
                let stdin = tokio::io::BufReader::new(tokio::io::stdin());
                lines::run_lines(self, stdin, print, shutdown).await
            }
            Source::File(path) => {
                let file =
                    tokio::fs::File::open(path)
                        .await
                        .map_err(|source| MonitorError::Io {
                            what: path.display().to_string(),
                            source,
                        })?;
                let reader = tokio::io::BufReader::new(file);
                lines::run_lines(self, reader, print, shutdown).await
            }
        }
    }

    fn engine(&self) -> Engine {
        Engine::new(&self.config.rules)
    }

    fn idle_close(&self) -> Duration {
        Duration::from_secs(self.config.processing.idle_close_seconds.max(1))
    }
}

/// Rule names of a configuration, for the hub's filter checks.
pub fn rule_names(config: &MonitorConfig) -> Vec<String> {
    config.rules.iter().map(|r| r.name.clone()).collect()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
