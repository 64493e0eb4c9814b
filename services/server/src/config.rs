//! The typed, validated configuration of `longview serve`.

use crate::recommend::RecommendConfig;
use clap::ValueEnum;
use longview_classify::ClassifyLimits;
use longview_embed::EmbedLimits;
use longview_models::{Backend, DeviceKind};
use longview_sentiment::{SentimentLimits, Watchlist};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Which role(s) this process runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every role in one process.
    #[default]
    All,
    Classify,
    Sentiment,
    Rag,
    Recommend,
    Monitor,
    /// Models only: the internal worker API and Embed.
    Worker,
}

/// Configuration that cannot be used, found at start.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(
        "--target {0:?} is not available in this release yet; available: all, classify, sentiment, recommend, worker"
    )]
    TargetUnavailable(Target),
    #[error("{flag}: {problem}")]
    Invalid { flag: &'static str, problem: String },
}

/// Everything `serve` needs, validated once.
#[derive(Clone, Debug, Serialize)]
pub struct ServeConfig {
    pub target: Target,
    pub listen: SocketAddr,
    /// The encoder's model directory; `None` means the default model, pulled if missing.
    pub model_dir: Option<PathBuf>,
    pub models_root: PathBuf,
    #[serde(serialize_with = "display")]
    pub device: DeviceKind,
    #[serde(serialize_with = "display")]
    pub backend: Backend,
    pub queue_capacity: usize,
    pub max_batch_tokens: usize,
    pub dynamic_batching: bool,
    #[serde(serialize_with = "seconds")]
    pub max_batch_wait: Duration,
    #[serde(skip)]
    pub embed: EmbedLimits,
    #[serde(skip)]
    pub classify: ClassifyLimits,
    #[serde(serialize_with = "seconds")]
    pub drain_deadline: Duration,
    /// A user's own sequence-classification model for sentiment, instead of the default head.
    pub sentiment_model: Option<PathBuf>,
    #[serde(skip)]
    pub sentiment: SentimentLimits,
    /// Companies entity sentiment looks for (cashtags are always found).
    #[serde(serialize_with = "watchlist_size")]
    pub watchlist: Arc<Watchlist>,
    pub recommend: RecommendConfig,
}

impl ServeConfig {
    /// Defaults for a server on `listen` with the default model.
    pub fn new(listen: SocketAddr) -> Self {
        let models_root = longview_models::pull::default_models_root();
        Self {
            recommend: RecommendConfig::new(&models_root),
            target: Target::All,
            listen,
            model_dir: None,
            models_root,
            device: DeviceKind::Cpu,
            backend: Backend::Fast,
            queue_capacity: 256,
            max_batch_tokens: 8192,
            dynamic_batching: true,
            max_batch_wait: Duration::from_millis(2),
            embed: EmbedLimits::default(),
            classify: ClassifyLimits::default(),
            drain_deadline: Duration::from_secs(30),
            sentiment_model: None,
            sentiment: SentimentLimits::default(),
            watchlist: Arc::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(
            self.target,
            Target::All | Target::Classify | Target::Sentiment | Target::Recommend | Target::Worker
        ) {
            return Err(ConfigError::TargetUnavailable(self.target));
        }
        let positive = [
            ("--queue-capacity", self.queue_capacity),
            ("--max-batch-tokens", self.max_batch_tokens),
            ("--max-document-tokens", self.classify.max_document_tokens),
            ("--max-texts", self.embed.max_texts),
        ];
        for (flag, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    flag,
                    problem: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }

    /// The model directory in use: the configured one, or the default under models_root.
    pub fn resolved_model_dir(&self) -> PathBuf {
        self.model_dir
            .clone()
            .unwrap_or_else(|| longview_models::pull::default_model_dir(&self.models_root))
    }

    pub fn serves_classify(&self) -> bool {
        matches!(self.target, Target::All | Target::Classify)
    }

    pub fn serves_sentiment(&self) -> bool {
        matches!(self.target, Target::All | Target::Sentiment)
    }

    pub fn serves_recommend(&self) -> bool {
        matches!(self.target, Target::All | Target::Recommend)
    }

    pub fn serves_worker_api(&self) -> bool {
        matches!(self.target, Target::All | Target::Worker)
    }
}

fn display<S: serde::Serializer, T: std::fmt::Display>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn seconds<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

fn watchlist_size<S: serde::Serializer>(
    value: &Arc<Watchlist>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{} companies", value.len()))
}
