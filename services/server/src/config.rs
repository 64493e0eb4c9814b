//! The typed, validated configuration of `longview serve`. [`crate::settings`] layers
//! the file, the environment and the flags into it.

use crate::auth::AuthConfig;
use crate::rag::RagSettings;
use crate::recommend::RecommendConfig;
use crate::stack::RequestLimits;
use crate::tls::TlsConfig;
use clap::ValueEnum;
use longview_classify::ClassifyLimits;
use longview_core::MaskingSettings;
use longview_embed::EmbedLimits;
use longview_models::{Backend, DeviceKind};
use longview_sentiment::{SentimentLimits, Watchlist};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Which role(s) this process runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
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
    #[error("{flag}: {problem}")]
    Invalid { flag: &'static str, problem: String },
    /// The file, a `LONGVIEW__*` variable or a flag has a value of the wrong type, or a
    /// key no section knows (figment names the key and where it came from).
    #[error("{0}")]
    Layers(String),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(transparent)]
    Masking(#[from] longview_core::masking::MaskingError),
    #[error("{0:#}")]
    Tls(anyhow::Error),
}

/// Where `serve` listens unless told otherwise.
pub const LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50051);

/// Room above the document limit for the rest of a request message.
const MESSAGE_OVERHEAD_BYTES: usize = 1 << 20;

/// The request message limit when none is configured: a whole document and the rest of
/// its message.
pub fn default_request_bytes(classify: &ClassifyLimits) -> usize {
    classify.max_document_bytes + MESSAGE_OVERHEAD_BYTES
}

/// Everything `serve` needs, validated once.
#[derive(Clone, Debug, Serialize)]
pub struct ServeConfig {
    pub target: Target,
    pub listen: SocketAddr,
    /// The encoder's model directory; `None` means the default model, pulled if missing.
    pub model_dir: Option<PathBuf>,
    pub models_root: PathBuf,
    /// Remote model workers; empty means the model runs in this process.
    pub worker_endpoints: Vec<String>,
    /// How to reach the remote workers securely.
    pub worker_client: WorkerClient,
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
    pub rag: RagSettings,
    /// What writes Ask's answers (the Rag role only).
    pub generator: crate::generator::GeneratorArgs,
    pub monitor: crate::monitor::MonitorSettings,
    /// Prometheus `/metrics`, when set.
    pub metrics_listen: Option<SocketAddr>,
    pub limits: RequestLimits,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub masking: MaskingSettings,
    pub recommend: RecommendConfig,
}

/// TLS material and API key for calls to remote workers. Paths only: the key itself is
/// read when connecting, so it never appears in the logged configuration.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerClient {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub api_key_file: Option<PathBuf>,
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
            worker_endpoints: Vec::new(),
            worker_client: WorkerClient::default(),
            device: DeviceKind::Cpu,
            backend: Backend::Auto,
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
            rag: RagSettings::default(),
            generator: crate::generator::GeneratorArgs::default(),
            monitor: Default::default(),
            metrics_listen: None,
            limits: RequestLimits {
                max_concurrent_requests: 512,
                request_timeout: None,
                max_request_bytes: default_request_bytes(&ClassifyLimits::default()),
                request_bytes: BTreeMap::new(),
            },
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            masking: MaskingSettings::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.target == Target::Worker && !self.worker_endpoints.is_empty() {
            return Err(ConfigError::Invalid {
                flag: "--worker-endpoints",
                problem: "a worker runs its own model; give endpoints to task roles only".into(),
            });
        }
        if self.worker_endpoints.iter().any(|e| e.trim().is_empty()) {
            return Err(ConfigError::Invalid {
                flag: "--worker-endpoints",
                problem: "an endpoint is empty (check for a stray comma)".into(),
            });
        }
        let positive = [
            ("--queue-capacity", self.queue_capacity),
            ("--max-batch-tokens", self.max_batch_tokens),
            ("--max-document-tokens", self.classify.max_document_tokens),
            ("--max-texts", self.embed.max_texts),
            (
                "--recommend-max-candidates",
                self.recommend.limits.max_candidates,
            ),
            ("--max-request-bytes", self.limits.max_request_bytes),
            ("--rag-max-documents", self.rag.limits.max_documents),
            ("--rag-max-top-k", self.rag.limits.max_top_k),
        ];
        if self.serves_monitor() {
            self.monitor.validate()?;
        }
        if self.serves_rag() {
            self.generator.validate()?;
        }
        for (flag, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    flag,
                    problem: "must be at least 1".into(),
                });
            }
        }
        self.validate_request_bytes()?;
        // Reading the keys, the certificates and the patterns now makes a bad file an
        // exit at start, not a failure at the first request.
        crate::auth::Auth::load(&self.auth)?;
        longview_core::Masking::new(&self.masking)?;
        self.tls.server().map_err(ConfigError::Tls)?;
        Ok(())
    }

    fn validate_request_bytes(&self) -> Result<(), ConfigError> {
        for (rpc, &bytes) in &self.limits.request_bytes {
            let route = crate::stack::Route::parse(&format!("/{rpc}"));
            let problem = if !matches!(route.access, crate::stack::Access::Role(_))
                || route.method.is_empty()
            {
                format!("{rpc:?} is not a Longview RPC (write \"longview.v1.Service/Method\")")
            } else if bytes == 0 {
                format!("{rpc:?} must be at least 1 byte")
            } else {
                continue;
            };
            return Err(ConfigError::Invalid {
                flag: "limits.request_bytes",
                problem,
            });
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

    /// The monitor runs with `--target monitor`, or with `all` when a source is given.
    pub fn serves_monitor(&self) -> bool {
        match self.target {
            Target::Monitor => true,
            Target::All => {
                self.monitor.source.is_some() || self.monitor.config.kafka.brokers.is_some()
            }
            _ => false,
        }
    }

    pub fn serves_rag(&self) -> bool {
        matches!(self.target, Target::All | Target::Rag)
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

pub(crate) fn seconds_opt<S: serde::Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_f64(value.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

pub(crate) fn read_watchlist(path: &std::path::Path) -> Result<Watchlist, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        flag: "--watchlist",
        problem: format!("{}: {problem}", path.display()),
    };
    let json = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    Watchlist::from_json(&json).map_err(invalid)
}
