//! The command line. Every flag also reads a `LONGVIEW_*` environment variable, and its
//! doc comment is what operators see in `--help`.

use crate::config::{ConfigError, ServeConfig, Target};
use crate::telemetry::LogArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};
use longview_models::{Backend, DeviceKind};
use longview_sentiment::Watchlist;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Longview: long-context NLP serving over gRPC.
#[derive(Debug, Parser)]
#[command(name = "longview", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (every role by default).
    Serve(ServeArgs),
    /// Embed texts with a running server.
    Embed(EmbedArgs),
    /// Classify a document with a running server.
    Classify(ClassifyArgs),
    /// Sentiment of texts (documents, sentences, entities) with a running server.
    Sentiment(SentimentArgs),
    /// Rank candidate items for a user, and manage stored items and profiles.
    Recommend(crate::recommend_client::RecommendArgs),
    /// Fetch and inspect models.
    Models(ModelsArgs),
    /// Train heads on frozen encoder features.
    Train(TrainArgs),
    /// Measure quality on real data; writes a markdown report and a chart.
    Eval(EvalArgs),
    /// Measure speed and memory.
    Bench(longview_tools::bench::BenchArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Role(s) to run in this process.
    #[arg(long, env = "LONGVIEW_TARGET", value_enum, default_value_t = Target::All)]
    pub target: Target,
    /// Address for gRPC.
    #[arg(long, env = "LONGVIEW_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// A Hugging Face model directory (config.json, tokenizer.json, model.safetensors).
    /// Default: all-MiniLM-L6-v2 under --models-root, downloaded on first start.
    #[arg(long, env = "LONGVIEW_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Where pulled models are kept.
    #[arg(long, env = "LONGVIEW_MODELS_ROOT")]
    pub models_root: Option<PathBuf>,
    /// Device for models: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, env = "LONGVIEW_DEVICE", default_value = "cpu")]
    pub device: DeviceKind,
    /// Encoder implementation on CPU: fast (packed, fused; the default) or exact (candle's
    /// reference BERT). CUDA devices always use exact.
    #[arg(long, env = "LONGVIEW_ENCODER", default_value = "fast")]
    pub encoder: Backend,
    /// Jobs that may wait for the model; beyond that requests get RESOURCE_EXHAUSTED.
    #[arg(long, env = "LONGVIEW_QUEUE_CAPACITY", default_value_t = 256)]
    pub queue_capacity: usize,
    /// Padded tokens per forward pass (sequences × longest sequence).
    #[arg(long, env = "LONGVIEW_MAX_BATCH_TOKENS", default_value_t = 8192)]
    pub max_batch_tokens: usize,
    /// Share forward passes between concurrent requests (true) or run each alone (false).
    #[arg(long, env = "LONGVIEW_DYNAMIC_BATCHING", default_value_t = true, action = clap::ArgAction::Set)]
    pub dynamic_batching: bool,
    /// Milliseconds the first request of a batch may wait for others to join it.
    #[arg(long, env = "LONGVIEW_MAX_BATCH_WAIT_MS", default_value_t = 2)]
    pub max_batch_wait_ms: u64,
    /// Texts per Embed request.
    #[arg(long, env = "LONGVIEW_MAX_TEXTS", default_value_t = 256)]
    pub max_texts: usize,
    /// Tokens per classified document.
    #[arg(
        long,
        env = "LONGVIEW_MAX_DOCUMENT_TOKENS",
        default_value_t = 2_000_000
    )]
    pub max_document_tokens: usize,
    /// Bytes per classified document (unary or streamed).
    #[arg(long, env = "LONGVIEW_MAX_DOCUMENT_BYTES", default_value_t = 16 << 20)]
    pub max_document_bytes: usize,
    /// A Hugging Face sequence-classification directory (BertForSequenceClassification
    /// with id2label) to answer Sentiment with, instead of the default trained head.
    #[arg(long, env = "LONGVIEW_SENTIMENT_MODEL")]
    pub sentiment_model: Option<PathBuf>,
    /// JSON array of {"ticker", "name", "aliases"} that entity sentiment looks for.
    #[arg(long, env = "LONGVIEW_WATCHLIST")]
    pub watchlist: Option<PathBuf>,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "LONGVIEW_DRAIN_SECONDS", default_value_t = 30)]
    pub drain_seconds: u64,
    #[command(flatten)]
    pub recommend: crate::recommend::RecommendServeArgs,
}

impl ServeArgs {
    pub fn into_config(self) -> Result<ServeConfig, ConfigError> {
        let mut config = ServeConfig::new(self.listen);
        config.target = self.target;
        config.model_dir = self.model_dir;
        if let Some(root) = self.models_root {
            config.recommend = crate::recommend::RecommendConfig::new(&root);
            config.models_root = root;
        }
        config.recommend.apply(self.recommend)?;
        config.device = self.device;
        config.backend = self.encoder;
        config.queue_capacity = self.queue_capacity;
        config.max_batch_tokens = self.max_batch_tokens;
        config.dynamic_batching = self.dynamic_batching;
        config.max_batch_wait = Duration::from_millis(self.max_batch_wait_ms);
        config.embed.max_texts = self.max_texts;
        config.classify.max_document_tokens = self.max_document_tokens;
        config.classify.max_document_bytes = self.max_document_bytes;
        config.drain_deadline = Duration::from_secs(self.drain_seconds);
        config.sentiment_model = self.sentiment_model;
        if let Some(path) = &self.watchlist {
            config.watchlist = std::sync::Arc::new(read_watchlist(path)?);
        }
        config.validate()?;
        Ok(config)
    }
}

/// Where client commands find the server, and how they print.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Server address.
    #[arg(
        long,
        env = "LONGVIEW_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// Print the response as JSON.
    #[arg(long, env = "LONGVIEW_JSON")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Texts to embed (or use --file).
    pub texts: Vec<String>,
    /// Embed each line of this file ("-" for stdin).
    #[arg(long, env = "LONGVIEW_EMBED_FILE")]
    pub file: Option<PathBuf>,
    /// Refuse texts over the token limit instead of truncating them.
    #[arg(long, env = "LONGVIEW_NO_TRUNCATE")]
    pub no_truncate: bool,
    /// Token limit per text, special tokens included (default: the model's).
    #[arg(long, env = "LONGVIEW_MAX_TOKENS")]
    pub max_tokens: Option<u32>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AggregationArg {
    Mean,
    Max,
    Attention,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Comma-separated zero-shot labels; "name=description" adds a description.
    #[arg(long, env = "LONGVIEW_LABELS", required_unless_present = "label_set")]
    pub labels: Option<String>,
    /// A trained label set on the server, by name.
    #[arg(long, env = "LONGVIEW_LABEL_SET", conflicts_with = "labels")]
    pub label_set: Option<String>,
    /// The document (or use --file).
    pub text: Option<String>,
    /// Read the document from this file ("-" for stdin).
    #[arg(long, env = "LONGVIEW_CLASSIFY_FILE")]
    pub file: Option<PathBuf>,
    /// Independent scores per label instead of one distribution.
    #[arg(long, env = "LONGVIEW_MULTI_LABEL")]
    pub multi_label: bool,
    /// How window scores become document scores.
    #[arg(long, env = "LONGVIEW_AGGREGATION", value_enum, default_value_t = AggregationArg::Mean)]
    pub aggregation: AggregationArg,
    /// Window size in tokens (0: server default).
    #[arg(long, env = "LONGVIEW_WINDOW", default_value_t = 0)]
    pub window: u32,
    /// Window overlap in tokens (with --window; the server default otherwise).
    #[arg(long, env = "LONGVIEW_OVERLAP", default_value_t = 0)]
    pub overlap: u32,
    /// Evidence windows to show.
    #[arg(long, env = "LONGVIEW_TOP_EVIDENCE", default_value_t = 3)]
    pub top_evidence: u32,
    /// Send the document in pieces over the streaming RPC (for very large inputs).
    #[arg(long, env = "LONGVIEW_STREAM")]
    pub stream: bool,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download the default model (all-MiniLM-L6-v2) and verify its checksum; a no-op
    /// when it is already present.
    Pull {
        /// Where pulled models are kept.
        #[arg(long, env = "LONGVIEW_MODELS_ROOT")]
        models_root: Option<PathBuf>,
    },
    /// Show what a model directory holds.
    Info {
        /// A model directory (default: the default model).
        #[arg(long, env = "LONGVIEW_MODEL_DIR")]
        model_dir: Option<PathBuf>,
        /// Where pulled models are kept.
        #[arg(long, env = "LONGVIEW_MODELS_ROOT")]
        models_root: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    pub command: TrainCommand,
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// A classification head (label set) the server then serves by name.
    Classifier(longview_tools::train::TrainClassifierArgs),
    /// The default sentiment head (Rotten Tomatoes and financial sentences, calibrated).
    Sentiment(longview_tools::sentiment::TrainSentimentArgs),
    /// A logistic blend of the recommendation components, learnt from MovieLens-100K.
    Recommender(longview_tools::recommend_model::TrainRecommenderArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: EvalCommand,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Long news articles: windowed reading against truncation at 512 tokens.
    Classify(longview_tools::eval_classify::EvalClassifyArgs),
    /// Sentiment on held-out Rotten Tomatoes and financial sentences, against a baseline.
    Sentiment(longview_tools::sentiment::EvalSentimentArgs),
    /// MovieLens-100K leave-last-out: popularity, content and blended rankings.
    Recommend(longview_tools::eval_recommend::EvalRecommendArgs),
}

fn read_watchlist(path: &std::path::Path) -> Result<Watchlist, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        flag: "--watchlist",
        problem: format!("{}: {problem}", path.display()),
    };
    let json = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    Watchlist::from_json(&json).map_err(invalid)
}

#[derive(Debug, Args)]
pub struct SentimentArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Texts to analyse, one document each (or use --file).
    pub texts: Vec<String>,
    /// Analyse this file as one document ("-" for stdin).
    #[arg(long, env = "LONGVIEW_SENTIMENT_FILE")]
    pub file: Option<PathBuf>,
    /// Show each sentence's sentiment.
    #[arg(long, env = "LONGVIEW_SENTENCES")]
    pub sentences: bool,
    /// Names to treat as entities besides cashtags and the server's watchlist.
    #[arg(long, env = "LONGVIEW_ENTITIES", value_delimiter = ',')]
    pub entities: Vec<String>,
}
