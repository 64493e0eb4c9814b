//! The command line. Every flag also reads a `LONGVIEW_*` environment variable, and its
//! doc comment is what operators see in `--help`.

use crate::config::{ConfigError, ServeConfig};
use crate::settings::Settings;
use crate::telemetry::LogArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
    Serve(Box<ServeArgs>),
    /// Embed texts with a running server.
    Embed(EmbedArgs),
    /// Classify a document with a running server.
    Classify(ClassifyArgs),
    /// Sentiment of texts (documents, sentences, entities) with a running server.
    Sentiment(SentimentArgs),
    /// Store documents for retrieval (files, a directory, or JSON lines).
    Ingest(crate::rag_client::IngestArgs),
    /// Find the stored passages that match a query.
    Search(crate::rag_client::SearchArgs),
    /// Answer a question from the stored documents, streamed, with citations.
    Ask(crate::rag_client::AskArgs),
    /// Remove stored documents (every chunk of each).
    Delete(crate::rag_client::DeleteArgs),
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
    /// TLS helpers.
    Tls(TlsArgs),
    /// The streaming sentiment monitor without a server.
    Monitor(MonitorArgs),
}

#[derive(Debug, Args)]
pub struct TlsArgs {
    #[command(subcommand)]
    pub command: TlsCommand,
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Write a development CA, a server certificate and a client certificate (PEM) for
    /// trying TLS and mutual TLS locally; not for production.
    DevCerts {
        /// Directory for ca.pem, server.pem, server.key, client.pem, client.key.
        #[arg(long)]
        out: PathBuf,
        /// Names and addresses the server certificate is valid for.
        #[arg(long = "host", default_values = ["localhost", "127.0.0.1"])]
        hosts: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file of settings, one section per concern (see the README); variables
    /// `LONGVIEW__SECTION__KEY` override it, flags override both.
    #[arg(long, env = "LONGVIEW_CONFIG")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print it as JSON (secrets never appear) and exit.
    #[arg(long)]
    pub check_config: bool,
    #[command(flatten)]
    pub settings: Settings,
}

impl ServeArgs {
    pub fn into_config(self) -> Result<ServeConfig, ConfigError> {
        self.settings.layered(self.config.as_deref())?.into_config()
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
    /// API key, sent as `authorization: Bearer <key>`.
    #[arg(long, env = "LONGVIEW_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// PEM CA bundle to trust for an https:// server (default: the system's roots).
    #[arg(long, env = "LONGVIEW_CA")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for servers that require one (mutual TLS).
    #[arg(long, env = "LONGVIEW_CLIENT_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, env = "LONGVIEW_CLIENT_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
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
    /// Download the default models (the encoder all-MiniLM-L6-v2 and the answer generator
    /// SmolLM2-135M-Instruct) and verify their checksums; a no-op when they are present.
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
    /// Retrieval on news articles (title as question): recall@5 and MRR, dense/BM25/hybrid.
    Rag(longview_tools::eval_rag::EvalRagArgs),
    /// MovieLens-100K leave-last-out: popularity, content and blended rankings.
    Recommend(longview_tools::eval_recommend::EvalRecommendArgs),
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

#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(subcommand)]
    pub command: MonitorCommand,
}

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Score a JSONL file of documents, print the alerts its windows raise, and exit.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// JSONL: one {"id", "text", "source"?, "published_at"?, "entities"?} per line.
    pub file: PathBuf,
    /// TOML file with topic labels and alert rules (defaults otherwise).
    #[arg(long, env = "LONGVIEW_MONITOR_CONFIG")]
    pub monitor_config: Option<PathBuf>,
    /// JSON array of {"ticker", "name", "aliases"} to find companies by name.
    #[arg(long, env = "LONGVIEW_WATCHLIST")]
    pub watchlist: Option<PathBuf>,
    /// Where pulled models are kept.
    #[arg(long, env = "LONGVIEW_MODELS_ROOT")]
    pub models_root: Option<PathBuf>,
    /// Print alerts as JSON lines.
    #[arg(long, env = "LONGVIEW_JSON")]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::{CommandFactory, Parser};

    /// Clap checks ids, flags and defaults only when a command is built; a clash between
    /// two settings sections would otherwise surface as a panic at start-up.
    #[test]
    fn every_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// Sections that share a field name give their flags explicit ids; a bare `long`
    /// then took the id (`--rag_qdrant_url`), so the documented names were refused.
    #[test]
    fn sectioned_flags_keep_their_documented_names() {
        let cli = Cli::try_parse_from([
            "longview",
            "serve",
            "--qdrant-url",
            "http://qdrant:6334",
            "--qdrant-collection",
            "chunks",
            "--chunk-tokens",
            "64",
            "--chunk-overlap",
            "8",
            "--source",
            "stdin",
            "--kafka-brokers",
            "kafka:9092",
            "--recommend-max-candidates",
            "500",
        ])
        .expect("documented flags parse");
        let Command::Serve(args) = cli.command else {
            panic!("parsed as another command");
        };
        let s = &args.settings;
        assert_eq!(s.rag.qdrant_url.as_deref(), Some("http://qdrant:6334"));
        assert_eq!(s.rag.qdrant_collection.as_deref(), Some("chunks"));
        assert_eq!(
            (s.rag.chunk_tokens, s.rag.chunk_overlap),
            (Some(64), Some(8))
        );
        assert!(s.monitor.source.is_some());
        assert_eq!(s.monitor.kafka_brokers.as_deref(), Some("kafka:9092"));
        assert_eq!(s.recommend.max_candidates, Some(500));
    }
}
