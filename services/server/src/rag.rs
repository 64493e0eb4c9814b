//! The Rag role's wiring: open the stores once the encoder is warm, and serve.

use crate::config::ServeConfig;
use anyhow::Context;
use longview_rag::generator::{TextGenerator, WorkerGenerator};
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
    security: &crate::security::Security,
) -> longview_proto::v1::rag_server::RagServer<RagService> {
    let limits = config.rag.limits;
    RagService::new(worker.clone(), backend.clone(), limits)
        .with_masking(security.masking.clone())
        .into_server()
        .max_decoding_message_size(limits.max_request_bytes + MESSAGE_OVERHEAD_BYTES)
}

/// Opens the configured vector store and the BM25 index for the loaded model. Fails (and
/// so stops the server) on a store that does not fit the model or cannot be reached.
pub async fn open_backend(config: &ServeConfig, worker: &Worker) -> anyhow::Result<RagBackend> {
    let generator = config
        .generator
        .start(&config.models_root, config.device)
        .await
        .context("starting the answer generator")?;
    // Rag reports SERVING only once Ask can answer the way it was configured to.
    if let Some(generator) = &generator {
        generator
            .ready()
            .await
            .context("loading the answer generator")?;
    }
    let generator = generator.map(|g| Arc::new(WorkerGenerator(g)) as Arc<dyn TextGenerator>);
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
        generator,
    })
}
