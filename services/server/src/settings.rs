//! Layered settings for `longview serve`: built-in defaults < the file given by
//! `--config` (TOML) < `LONGVIEW__SECTION__KEY` variables < flags (and each flag's own
//! `LONGVIEW_*` variable, which counts as the flag). One section per concern or role; the
//! same struct is the file's schema and the flags, so a setting is declared once.
//!
//! A role adds its section as a field of [`Settings`] (`#[command(flatten)]`, a struct of
//! `Option`s deriving `Args`, `Serialize` and `Deserialize`) and one line per field in
//! [`Settings::into_config`]. Settings without a flag (maps, lists) use `#[arg(skip)]`.

use crate::auth::AuthConfig;
use crate::config::{ConfigError, ServeConfig, Target};
use crate::generator::{GeneratorArgs, GeneratorKind};
use crate::tls::TlsConfig;
use clap::Args;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Value;
use longview_core::MaskingSettings;
use longview_models::{Backend, DeviceKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of the section-form variables: `LONGVIEW__WORKER__QUEUE_CAPACITY=512`.
pub const ENV_PREFIX: &str = "LONGVIEW__";

/// Every setting of `longview serve`. Each `None` means "not given at this layer".
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Role(s) to run in this process [default: all].
    #[arg(long, env = "LONGVIEW_TARGET", value_enum)]
    pub target: Option<Target>,
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub embed: EmbedSettings,
    #[command(flatten)]
    pub classify: ClassifySettings,
    #[command(flatten)]
    pub sentiment: SentimentSettings,
    #[command(flatten)]
    pub rag: RagSection,
    #[command(flatten)]
    pub generator: GeneratorSection,
    #[command(flatten)]
    pub monitor: MonitorSection,
    #[command(flatten)]
    pub recommend: crate::recommend::RecommendSection,
    #[command(flatten)]
    pub limits: LimitsSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub tls: TlsSettings,
    /// Masking of e-mail addresses, phone, card and account numbers, per tenant (file or
    /// `LONGVIEW__MASKING__ENABLED=true`).
    #[arg(skip)]
    pub masking: Option<MaskingSettings>,
}

/// `[server]`: addresses and shutdown.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address for gRPC [default: 127.0.0.1:50051].
    #[arg(long, env = "LONGVIEW_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address for Prometheus /metrics (off unless given).
    #[arg(long, env = "LONGVIEW_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds in-flight requests get to finish after SIGTERM [default: 30].
    #[arg(long, env = "LONGVIEW_DRAIN_SECONDS")]
    pub drain_seconds: Option<u64>,
}

/// `[worker]`: the model and its queue.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// A Hugging Face model directory (config.json, tokenizer.json, model.safetensors).
    /// Default: all-MiniLM-L6-v2 under --models-root, downloaded on first start.
    #[arg(long, env = "LONGVIEW_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Where pulled models are kept.
    #[arg(long, env = "LONGVIEW_MODELS_ROOT")]
    pub models_root: Option<PathBuf>,
    /// Model workers (`--target worker` processes) to run the encoder on, instead of
    /// loading it here: host:port, comma-separated. Calls are balanced over them and
    /// retried on the next one when a worker is unavailable.
    #[arg(
        id = "worker_endpoints",
        long = "worker-endpoints",
        env = "LONGVIEW_WORKER_ENDPOINTS",
        value_delimiter = ','
    )]
    pub endpoints: Option<Vec<String>>,
    /// CA that signs the workers' certificates, for `https://` worker endpoints
    /// [default: the system's roots].
    #[arg(id = "worker_ca", long = "worker-ca", env = "LONGVIEW_WORKER_CA")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) shown to workers that require mutual TLS.
    #[arg(id = "worker_cert", long = "worker-cert", env = "LONGVIEW_WORKER_CERT")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --worker-cert.
    #[arg(id = "worker_key", long = "worker-key", env = "LONGVIEW_WORKER_KEY")]
    pub key: Option<PathBuf>,
    /// File holding the API key sent to workers that require one.
    #[arg(
        id = "worker_api_key_file",
        long = "worker-api-key-file",
        env = "LONGVIEW_WORKER_API_KEY_FILE"
    )]
    pub api_key_file: Option<PathBuf>,
    /// Device for models: cpu, cuda or cuda:N (CUDA needs a build with --features cuda)
    /// [default: cpu].
    #[arg(long, env = "LONGVIEW_DEVICE")]
    #[serde(with = "as_text")]
    pub device: Option<DeviceKind>,
    /// Encoder implementation: auto (on CPU int8 where it has AVX-512 VNNI, else fast; on
    /// CUDA exact-f16), int8 (packed CPU code, int8 linear layers; several times faster,
    /// cosine ≥ 0.99 to f32), fast (packed CPU code, f32), exact (BERT on candle tensors,
    /// f32), exact-bf16 or exact-f16 (the same in bf16 or f16, for GPUs). CUDA devices
    /// run an exact one [default: auto].
    #[arg(long, env = "LONGVIEW_ENCODER")]
    #[serde(with = "as_text")]
    pub encoder: Option<Backend>,
    /// Jobs that may wait for the model; beyond that requests get RESOURCE_EXHAUSTED
    /// [default: 256].
    #[arg(long, env = "LONGVIEW_QUEUE_CAPACITY")]
    pub queue_capacity: Option<usize>,
    /// Padded tokens per forward pass (sequences × longest sequence) [default: 8192].
    #[arg(long, env = "LONGVIEW_MAX_BATCH_TOKENS")]
    pub max_batch_tokens: Option<usize>,
    /// Share forward passes between concurrent requests (true) or run each alone (false)
    /// [default: true].
    #[arg(long, env = "LONGVIEW_DYNAMIC_BATCHING", action = clap::ArgAction::Set)]
    pub dynamic_batching: Option<bool>,
    /// Milliseconds the first request of a batch may wait for others to join it
    /// [default: 2].
    #[arg(long, env = "LONGVIEW_MAX_BATCH_WAIT_MS")]
    pub max_batch_wait_ms: Option<u64>,
}

/// `[rag]`: where chunks are stored, how documents are cut, request limits.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RagSection {
    /// Directory of the embedded document store and BM25 index [default: <models root>/rag].
    #[arg(id = "rag_dir", long = "rag-dir", env = "LONGVIEW_RAG_DIR")]
    pub dir: Option<PathBuf>,
    /// Keep vectors in a Qdrant server instead: its gRPC URL (port 6334, not REST's 6333).
    #[arg(
        id = "rag_qdrant_url",
        long = "qdrant-url",
        env = "LONGVIEW_QDRANT_URL"
    )]
    pub qdrant_url: Option<String>,
    /// The Qdrant collection, created when missing [default: longview_chunks].
    #[arg(
        id = "rag_qdrant_collection",
        long = "qdrant-collection",
        env = "LONGVIEW_QDRANT_COLLECTION"
    )]
    pub qdrant_collection: Option<String>,
    /// Tokens per chunk, special tokens included [default: 128].
    #[arg(
        id = "rag_chunk_tokens",
        long = "chunk-tokens",
        env = "LONGVIEW_CHUNK_TOKENS"
    )]
    pub chunk_tokens: Option<usize>,
    /// Tokens shared by consecutive chunks [default: 24].
    #[arg(
        id = "rag_chunk_overlap",
        long = "chunk-overlap",
        env = "LONGVIEW_CHUNK_OVERLAP"
    )]
    pub chunk_overlap: Option<usize>,
    /// Documents per Ingest request or IngestStream message [default: 1000].
    #[arg(
        id = "rag_max_documents",
        long = "rag-max-documents",
        env = "LONGVIEW_RAG_MAX_DOCUMENTS"
    )]
    pub max_documents: Option<usize>,
    /// Bytes of document text per Ingest request or IngestStream message [default: 16 MiB].
    #[arg(
        id = "rag_max_request_bytes",
        long = "rag-max-request-bytes",
        env = "LONGVIEW_RAG_MAX_REQUEST_BYTES"
    )]
    pub max_request_bytes: Option<usize>,
    /// Largest top_k a Search or Ask may ask for [default: 100].
    #[arg(
        id = "rag_max_top_k",
        long = "rag-max-top-k",
        env = "LONGVIEW_RAG_MAX_TOP_K"
    )]
    pub max_top_k: Option<usize>,
}

/// `[generator]`: what writes Ask's answers.
#[derive(Clone, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorSection {
    /// Where answers come from: local (a GGUF model here), openai (a server), or none
    /// (extractive answers only) [default: local].
    #[arg(
        id = "generator_kind",
        long = "generator",
        env = "LONGVIEW_GENERATOR",
        value_enum
    )]
    pub kind: Option<GeneratorKind>,
    /// A llama-architecture GGUF chat model. Default: SmolLM2-135M-Instruct under
    /// --models-root, downloaded on first start.
    #[arg(
        id = "generator_model",
        long = "generator-model",
        env = "LONGVIEW_GENERATOR_MODEL"
    )]
    pub model: Option<PathBuf>,
    /// Answers that may wait for the local model; beyond that RESOURCE_EXHAUSTED [default: 8].
    #[arg(
        id = "generator_queue_capacity",
        long = "generator-queue-capacity",
        env = "LONGVIEW_GENERATOR_QUEUE_CAPACITY"
    )]
    pub queue_capacity: Option<usize>,
    /// API root of the OpenAI-compatible server, e.g. http://vllm:8000/v1.
    #[arg(
        id = "generator_url",
        long = "generator-url",
        env = "LONGVIEW_GENERATOR_URL"
    )]
    pub url: Option<String>,
    /// The model name the server serves.
    #[arg(
        id = "generator_model_name",
        long = "generator-model-name",
        env = "LONGVIEW_GENERATOR_MODEL_NAME"
    )]
    pub model_name: Option<String>,
    /// Bearer token for the server; best set through the environment. Never logged.
    #[arg(
        id = "generator_api_key",
        long = "generator-api-key",
        env = "LONGVIEW_GENERATOR_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Seconds one remote answer may take in all [default: 300].
    #[arg(
        id = "generator_timeout_seconds",
        long = "generator-timeout-seconds",
        env = "LONGVIEW_GENERATOR_TIMEOUT_SECONDS"
    )]
    pub timeout_seconds: Option<u64>,
    /// Remote answers in flight at once; beyond that RESOURCE_EXHAUSTED [default: 16].
    #[arg(
        id = "generator_max_concurrent",
        long = "generator-max-concurrent",
        env = "LONGVIEW_GENERATOR_MAX_CONCURRENT"
    )]
    pub max_concurrent: Option<usize>,
}

impl std::fmt::Debug for GeneratorSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorSection")
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("url", &self.url)
            .field("model_name", &self.model_name)
            .field("api_key", &self.api_key.as_ref().map(|_| "<hidden>"))
            .finish_non_exhaustive()
    }
}

impl GeneratorSection {
    fn into_args(self) -> GeneratorArgs {
        GeneratorArgs {
            kind: self.kind.unwrap_or_default(),
            generator_model: self.model,
            generator_queue_capacity: self.queue_capacity.unwrap_or(8),
            generator_url: self.url,
            generator_model_name: self.model_name,
            generator_api_key: self.api_key,
            generator_timeout_seconds: self.timeout_seconds.unwrap_or(300),
            generator_max_concurrent: self.max_concurrent.unwrap_or(16),
        }
    }
}

/// `[monitor]`: where documents come from; topics, batching and alert rules live in
/// their own TOML file.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorSection {
    /// Monitor input: kafka, stdin, or file:PATH (JSONL). Default: kafka when
    /// --kafka-brokers is set, else stdin. With --target all the monitor runs only when
    /// this or --kafka-brokers is given.
    #[arg(
        id = "monitor_source",
        long = "source",
        env = "LONGVIEW_MONITOR_SOURCE"
    )]
    #[serde(with = "as_text")]
    pub source: Option<longview_monitor::Source>,
    /// Kafka bootstrap servers for the monitor (host:port,...).
    #[arg(
        id = "monitor_kafka_brokers",
        long = "kafka-brokers",
        env = "LONGVIEW_KAFKA_BROKERS"
    )]
    pub kafka_brokers: Option<String>,
    /// TOML file with the monitor's topics, batching, topic labels and alert rules.
    #[arg(
        id = "monitor_rules_file",
        long = "monitor-config",
        env = "LONGVIEW_MONITOR_CONFIG"
    )]
    pub rules_file: Option<PathBuf>,
}

/// `[embed]`.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedSettings {
    /// Texts per Embed request [default: 256].
    #[arg(long, env = "LONGVIEW_MAX_TEXTS")]
    pub max_texts: Option<usize>,
}

/// `[classify]`.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifySettings {
    /// Tokens per classified document [default: 2000000].
    #[arg(long, env = "LONGVIEW_MAX_DOCUMENT_TOKENS")]
    pub max_document_tokens: Option<usize>,
    /// Bytes per classified document, unary or streamed [default: 16 MiB].
    #[arg(long, env = "LONGVIEW_MAX_DOCUMENT_BYTES")]
    pub max_document_bytes: Option<usize>,
}

/// `[sentiment]`.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentimentSettings {
    /// A Hugging Face sequence-classification directory (BertForSequenceClassification
    /// with id2label) to answer Sentiment with, instead of the default trained head.
    #[arg(
        id = "sentiment_model",
        long = "sentiment-model",
        env = "LONGVIEW_SENTIMENT_MODEL"
    )]
    pub model: Option<PathBuf>,
    /// JSON array of {"ticker", "name", "aliases"} that entity sentiment looks for.
    #[arg(long, env = "LONGVIEW_WATCHLIST")]
    pub watchlist: Option<PathBuf>,
}

/// `[limits]`: what one call may ask of the server.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// API calls served at once; more are refused with RESOURCE_EXHAUSTED and a retry
    /// hint (0: no limit) [default: 512].
    #[arg(long, env = "LONGVIEW_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// The server's cap on one call, in seconds, on top of callers' deadlines (0: callers'
    /// deadlines only) [default: 0].
    #[arg(long, env = "LONGVIEW_REQUEST_TIMEOUT_SECONDS")]
    pub request_timeout_seconds: Option<f64>,
    /// Bytes per request message for RPCs without their own limit [default:
    /// --max-document-bytes + 1 MiB].
    #[arg(long, env = "LONGVIEW_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Per-RPC limits in bytes, by "package.Service/Method" (file or env only).
    #[arg(skip)]
    pub request_bytes: Option<BTreeMap<String, usize>>,
}

/// `[auth]`: API keys and quotas.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// TOML file of API keys per tenant (mount it from a Secret); unset: no
    /// authentication, every call acts for the tenant "default".
    #[arg(long, env = "LONGVIEW_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Requests per second per tenant, for tenants without their own quota (0: no limit)
    /// [default: 0].
    #[arg(long, env = "LONGVIEW_TENANT_REQUESTS_PER_SECOND")]
    pub requests_per_second: Option<u32>,
    /// Requests a tenant may send at once above its rate (0: one second's worth).
    #[arg(long, env = "LONGVIEW_TENANT_BURST")]
    pub burst: Option<u32>,
}

/// `[tls]`: PEM files.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain for gRPC over TLS.
    #[arg(id = "tls_cert", long = "tls-cert", env = "LONGVIEW_TLS_CERT")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(id = "tls_key", long = "tls-key", env = "LONGVIEW_TLS_KEY")]
    pub key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (mutual TLS).
    #[arg(
        id = "tls_client_ca",
        long = "tls-client-ca",
        env = "LONGVIEW_TLS_CLIENT_CA"
    )]
    pub client_ca: Option<PathBuf>,
}

impl Settings {
    /// Layers the file (if any), the `LONGVIEW__*` variables and these flags.
    pub fn layered(self, file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::Invalid {
                    flag: "--config",
                    problem: format!("{}: no such file", file.display()),
                });
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .merge(Serialized::globals(self.given()?))
            .extract()
            .map_err(|e| ConfigError::Layers(e.to_string()))
    }

    /// Only what was given: `None`s dropped, so they do not mask lower layers.
    fn given(&self) -> Result<Value, ConfigError> {
        let value = Value::serialize(self).map_err(|e| ConfigError::Layers(e.to_string()))?;
        Ok(prune(value).unwrap_or_else(|| Value::from(figment::value::Dict::new())))
    }

    /// The resolved configuration: defaults where nothing was given, validated.
    pub fn into_config(self) -> Result<ServeConfig, ConfigError> {
        let mut config = ServeConfig::new(self.server.listen.unwrap_or(crate::config::LISTEN));
        set(&mut config.target, self.target);
        config.metrics_listen = self.server.metrics_listen;
        if let Some(seconds) = self.server.drain_seconds {
            config.drain_deadline = Duration::from_secs(seconds);
        }

        let w = self.worker;
        config.model_dir = w.model_dir;
        set(&mut config.models_root, w.models_root);
        set(&mut config.worker_endpoints, w.endpoints);
        config.worker_client = crate::config::WorkerClient {
            ca: w.ca,
            cert: w.cert,
            key: w.key,
            api_key_file: w.api_key_file,
        };
        set(&mut config.device, w.device);
        set(&mut config.backend, w.encoder);
        set(&mut config.queue_capacity, w.queue_capacity);
        set(&mut config.max_batch_tokens, w.max_batch_tokens);
        set(&mut config.dynamic_batching, w.dynamic_batching);
        if let Some(ms) = w.max_batch_wait_ms {
            config.max_batch_wait = Duration::from_millis(ms);
        }

        set(&mut config.embed.max_texts, self.embed.max_texts);
        let c = self.classify;
        set(
            &mut config.classify.max_document_tokens,
            c.max_document_tokens,
        );
        set(
            &mut config.classify.max_document_bytes,
            c.max_document_bytes,
        );

        config.sentiment_model = self.sentiment.model;
        if let Some(path) = &self.sentiment.watchlist {
            config.watchlist = std::sync::Arc::new(crate::config::read_watchlist(path)?);
        }

        let r = self.rag;
        let rag = &mut config.rag;
        rag.dir = r.dir;
        rag.qdrant_url = r.qdrant_url;
        set(&mut rag.qdrant_collection, r.qdrant_collection);
        set(&mut rag.chunking.chunk_tokens, r.chunk_tokens);
        set(&mut rag.chunking.overlap_tokens, r.chunk_overlap);
        set(&mut rag.limits.max_documents, r.max_documents);
        set(&mut rag.limits.max_request_bytes, r.max_request_bytes);
        set(&mut rag.limits.max_top_k, r.max_top_k);
        config.generator = self.generator.into_args();

        config.recommend = crate::recommend::RecommendConfig::new(&config.models_root);
        config.recommend.apply(self.recommend)?;

        let m = self.monitor;
        config.monitor =
            crate::monitor::MonitorSettings::load(m.source, m.kafka_brokers, m.rules_file)?;

        let l = self.limits;
        let limits = &mut config.limits;
        set(
            &mut limits.max_concurrent_requests,
            l.max_concurrent_requests,
        );
        if let Some(seconds) = l.request_timeout_seconds {
            limits.request_timeout = seconds_to_timeout(seconds)?;
        }
        limits.max_request_bytes = l
            .max_request_bytes
            .unwrap_or_else(|| crate::config::default_request_bytes(&config.classify));
        set(&mut limits.request_bytes, l.request_bytes);

        config.auth = AuthConfig {
            api_keys_file: self.auth.api_keys_file,
            requests_per_second: self.auth.requests_per_second.unwrap_or(0),
            burst: self.auth.burst.unwrap_or(0),
        };
        config.tls = TlsConfig {
            cert: self.tls.cert,
            key: self.tls.key,
            client_ca: self.tls.client_ca,
        };
        set(&mut config.masking, self.masking);
        config.validate()?;
        Ok(config)
    }
}

fn set<T>(slot: &mut T, given: Option<T>) {
    if let Some(value) = given {
        *slot = value;
    }
}

fn seconds_to_timeout(seconds: f64) -> Result<Option<Duration>, ConfigError> {
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d.is_zero() => Ok(None),
        Ok(d) => Ok(Some(d)),
        Err(_) => Err(ConfigError::Invalid {
            flag: "limits.request_timeout_seconds",
            problem: format!("{seconds} is not a number of seconds"),
        }),
    }
}

/// Drops empty values (unset `Option`s) and dictionaries left empty.
fn prune(value: Value) -> Option<Value> {
    match value {
        Value::Empty(..) => None,
        Value::Dict(tag, dict) => {
            let dict: figment::value::Dict = dict
                .into_iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                .collect();
            (!dict.is_empty()).then_some(Value::Dict(tag, dict))
        }
        other => Some(other),
    }
}

/// Serde for `Option<T>` through `T`'s `Display` and `FromStr` (device and encoder names).
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        match Option::<String>::deserialize(d)? {
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
