//! Where chunk vectors live. Two stores answer the same interface: the embedded default
//! (in process, on local disk) and a Qdrant server for deployments that outgrow it.
//!
//! Every call names the tenant; a store never returns another tenant's chunks.

mod embedded;
mod qdrant;

pub use embedded::EmbeddedStore;
pub use qdrant::QdrantStore;

use crate::record::{ChunkRecord, DocumentChunks, Hit, MetadataFilter};
use longview_core::Tenant;
use thiserror::Error;

/// Why a store could not do what was asked.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store is unusable as configured (wrong dimensions, unreachable, wrong port).
    #[error("{0}")]
    Config(String),
    /// The store failed an operation that should have worked; details are in the log.
    #[error("vector store failed: {0}")]
    Backend(String),
    /// The store is reachable but cannot answer now.
    #[error("vector store unavailable: {0}")]
    Unavailable(String),
    /// A chunk's vector failed the sanity gate.
    #[error("document {document_id:?} chunk {index}: vector {problem}")]
    Refused {
        document_id: String,
        index: u32,
        problem: crate::gate::GateError,
    },
}

/// The interface both stores implement.
#[tonic::async_trait]
pub trait VectorStore: Send + Sync + 'static {
    /// The vector size this store holds.
    fn dimensions(&self) -> usize;

    /// A short name for logs and health ("embedded", "qdrant").
    fn kind(&self) -> &'static str;

    /// Replaces every chunk of each document with the given ones (all vectors already
    /// gated). Returns how many chunks were removed.
    async fn replace(
        &self,
        tenant: &Tenant,
        documents: Vec<DocumentChunks>,
    ) -> Result<usize, StoreError>;

    /// Removes every chunk of the documents; returns how many chunks were removed.
    async fn delete(&self, tenant: &Tenant, document_ids: Vec<String>)
    -> Result<usize, StoreError>;

    /// The `limit` chunks nearest to `vector` that pass `filter`, best first.
    async fn search(
        &self,
        tenant: &Tenant,
        vector: Vec<f32>,
        limit: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<Hit>, StoreError>;

    /// The records of these points, where they exist for this tenant, in no set order.
    async fn fetch(
        &self,
        tenant: &Tenant,
        ids: Vec<u64>,
    ) -> Result<Vec<(u64, ChunkRecord)>, StoreError>;

    /// Chunks stored for one document (what tests and the CLI use to check upserts).
    async fn count(&self, tenant: &Tenant, document_id: &str) -> Result<usize, StoreError>;
}

/// Checks every chunk's vector before a store sees it.
pub fn gate_all(documents: &[DocumentChunks], dimensions: usize) -> Result<(), StoreError> {
    for chunk in documents.iter().flat_map(|d| &d.chunks) {
        crate::gate::check(&chunk.vector, dimensions).map_err(|problem| StoreError::Refused {
            document_id: chunk.record.document_id.clone(),
            index: chunk.record.index,
            problem,
        })?;
    }
    Ok(())
}
