//! The Rag role's wiring: open the stores once the encoder is warm, and serve.

use crate::config::ServeConfig;
use anyhow::Context;
use longview_rag::lexical::LexicalIndex;
use longview_rag::store::{EmbeddedStore, QdrantStore, VectorStore};
use longview_rag::{ChunkSettings, RagBackend, RagLimits, RagService, Retriever};
use longview_worker::Worker;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Room above the text limit for ids, metadata and framing.
const MESSAGE_OVERHEAD_BYTES: usize = 1 << 20;

/// Configuration of the Rag role.
#[derive(Clone, Debug, Serialize)]
pub struct RagSettings {
    /// Where the embedded store (vectors and the BM25 index) lives; default
    /// `<models root>/rag`.
    pub dir: Option<PathBuf>,
    /// A Qdrant server's gRPC URL; when set, vectors live there instead of on local disk.
    pub qdrant_url: Option<String>,
    pub qdrant_collection: String,
    #[serde(skip)]
    pub chunking: ChunkSettings,
    #[serde(skip)]
    pub limits: RagLimits,
}

impl Default for RagSettings {
    fn default() -> Self {
        Self {
            dir: None,
            qdrant_url: None,
            qdrant_collection: "longview_chunks".into(),
            chunking: ChunkSettings::default(),
            limits: RagLimits::default(),
        }
    }
}

impl RagSettings {
    /// The local directory in use (vectors for the embedded store, and the BM25 index).
    pub fn resolved_dir(&self, models_root: &std::path::Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| models_root.join("rag"))
    }
}

/// The gRPC service, answering UNAVAILABLE until `backend` is set.
pub fn server(
    config: &ServeConfig,
    worker: &Worker,
    backend: &Arc<OnceLock<RagBackend>>,
) -> longview_proto::v1::rag_server::RagServer<RagService> {
    let limits = config.rag.limits;
    RagService::new(worker.clone(), backend.clone(), limits)
        .into_server()
        .max_decoding_message_size(limits.max_request_bytes + MESSAGE_OVERHEAD_BYTES)
}

/// Opens the configured vector store and the BM25 index for the loaded model. Fails (and
/// so stops the server) on a store that does not fit the model or cannot be reached.
pub async fn open_backend(config: &ServeConfig, worker: &Worker) -> anyhow::Result<RagBackend> {
    let info = worker.loaded()?.info.clone();
    let settings = &config.rag;
    let spec = settings
        .chunking
        .spec(info.special_tokens, info.max_positions)
        .context("--chunk-tokens / --chunk-overlap")?;
    let dir = settings.resolved_dir(&config.models_root);
    let (store, lexical_dir): (Arc<dyn VectorStore>, PathBuf) = match &settings.qdrant_url {
        Some(url) => {
            let store =
                QdrantStore::connect(url, &settings.qdrant_collection, info.dimensions).await?;
            let lexical = dir.join(format!("bm25-{}", settings.qdrant_collection));
            (Arc::new(store), lexical)
        }
        None => {
            let (embedded_dir, dimensions) = (dir.clone(), info.dimensions);
            let store =
                tokio::task::spawn_blocking(move || EmbeddedStore::open(&embedded_dir, dimensions))
                    .await??;
            (Arc::new(store), dir.join("bm25"))
        }
    };
    let lexical = tokio::task::spawn_blocking(move || LexicalIndex::open(&lexical_dir))
        .await?
        .context("opening the BM25 index")?;
    tracing::info!(store = store.kind(), dir = %dir.display(), chunk_tokens = spec.size, overlap = spec.overlap, "rag stores open");
    Ok(RagBackend {
        retriever: Retriever::new(store, Arc::new(lexical)),
        spec,
        // TODO(rag-generator): plug in the local GGUF / OpenAI-compatible generator once
        // the `gen` branch lands; until then Ask answers extractively.
        generator: None,
    })
}

/// `serve` flags of the Rag role.
#[derive(Debug, clap::Args)]
pub struct RagArgs {
    /// Directory of the embedded document store and BM25 index (default: <models root>/rag).
    #[arg(long, env = "LONGVIEW_RAG_DIR")]
    pub rag_dir: Option<PathBuf>,
    /// Keep vectors in a Qdrant server instead: its gRPC URL (port 6334, not REST's 6333).
    #[arg(long, env = "LONGVIEW_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    /// The Qdrant collection (created when missing).
    #[arg(
        long,
        env = "LONGVIEW_QDRANT_COLLECTION",
        default_value = "longview_chunks"
    )]
    pub qdrant_collection: String,
    /// Tokens per chunk, special tokens included.
    #[arg(long, env = "LONGVIEW_CHUNK_TOKENS", default_value_t = 128)]
    pub chunk_tokens: usize,
    /// Tokens shared by consecutive chunks.
    #[arg(long, env = "LONGVIEW_CHUNK_OVERLAP", default_value_t = 24)]
    pub chunk_overlap: usize,
    /// Documents per Ingest request (or per IngestStream message).
    #[arg(long, env = "LONGVIEW_RAG_MAX_DOCUMENTS", default_value_t = 1000)]
    pub rag_max_documents: usize,
    /// Bytes of document text per Ingest request (or per IngestStream message).
    #[arg(long, env = "LONGVIEW_RAG_MAX_REQUEST_BYTES", default_value_t = 16 << 20)]
    pub rag_max_request_bytes: usize,
    /// Largest top_k a Search or Ask may ask for.
    #[arg(long, env = "LONGVIEW_RAG_MAX_TOP_K", default_value_t = 100)]
    pub rag_max_top_k: usize,
}

impl RagArgs {
    pub fn into_settings(self) -> RagSettings {
        let mut settings = RagSettings {
            dir: self.rag_dir,
            qdrant_url: self.qdrant_url,
            qdrant_collection: self.qdrant_collection,
            chunking: ChunkSettings {
                chunk_tokens: self.chunk_tokens,
                overlap_tokens: self.chunk_overlap,
            },
            ..RagSettings::default()
        };
        settings.limits.max_documents = self.rag_max_documents;
        settings.limits.max_request_bytes = self.rag_max_request_bytes;
        settings.limits.max_top_k = self.rag_max_top_k;
        settings
    }
}
