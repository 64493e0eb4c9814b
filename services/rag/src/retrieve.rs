//! Retrieval over both indexes: dense (the vector store), BM25 (the full-text index), or
//! both fused by reciprocal rank. Writes go to both, vectors first: a BM25 hit whose
//! vector is missing is dropped rather than returned without its record.

use crate::fuse::reciprocal_rank;
use crate::lexical::{LexicalError, LexicalIndex};
use crate::record::{DocumentChunks, Hit, MetadataFilter};
use crate::store::{StoreError, VectorStore};
use longview_core::Tenant;
use std::collections::HashMap;
use std::sync::Arc;
use thiserror::Error;

/// How chunks are found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Hybrid,
    Dense,
    Bm25,
}

#[derive(Debug, Error)]
pub enum RetrieveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lexical(#[from] LexicalError),
    #[error("a retrieval task stopped unexpectedly")]
    Stopped,
}

/// Candidates each side contributes before fusion: deep enough that a chunk ranked
/// moderately by both sides can still win.
fn candidates(top_k: usize) -> usize {
    (top_k * 4).clamp(40, 400)
}

/// The vector store and the full-text index, kept in step.
#[derive(Clone)]
pub struct Retriever {
    store: Arc<dyn VectorStore>,
    lexical: Arc<LexicalIndex>,
}

impl Retriever {
    pub fn new(store: Arc<dyn VectorStore>, lexical: Arc<LexicalIndex>) -> Self {
        Self { store, lexical }
    }

    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// Replaces the documents' chunks in both indexes; returns chunks removed.
    pub async fn replace(
        &self,
        tenant: &Tenant,
        documents: Vec<DocumentChunks>,
    ) -> Result<usize, RetrieveError> {
        let ids: Vec<String> = documents.iter().map(|d| d.document_id.clone()).collect();
        let records: Vec<(u64, crate::record::ChunkRecord)> = documents
            .iter()
            .flat_map(|d| &d.chunks)
            .map(|c| (c.record.point_id(tenant), c.record.clone()))
            .collect();
        let removed = self.store.replace(tenant, documents).await?;
        let (lexical, tenant) = (self.lexical.clone(), tenant.clone());
        blocking(move || {
            let chunks: Vec<_> = records.iter().map(|(id, r)| (*id, r)).collect();
            lexical.replace(&tenant, &ids, &chunks)
        })
        .await?;
        Ok(removed)
    }

    /// Removes the documents from both indexes; returns chunks removed.
    pub async fn delete(
        &self,
        tenant: &Tenant,
        document_ids: Vec<String>,
    ) -> Result<usize, RetrieveError> {
        let removed = self.store.delete(tenant, document_ids.clone()).await?;
        let (lexical, tenant) = (self.lexical.clone(), tenant.clone());
        blocking(move || lexical.delete(&tenant, &document_ids)).await?;
        Ok(removed)
    }

    /// The `top_k` best chunks for the query under `mode`, best first. Dense and hybrid
    /// need the query's vector; BM25 and hybrid its text.
    pub async fn search(
        &self,
        tenant: &Tenant,
        query: &str,
        vector: Vec<f32>,
        top_k: usize,
        mode: Mode,
        filter: &MetadataFilter,
    ) -> Result<Vec<Hit>, RetrieveError> {
        match mode {
            Mode::Dense => Ok(self.store.search(tenant, vector, top_k, filter).await?),
            Mode::Bm25 => {
                let ranked = self.lexical_ids(tenant, query, top_k, filter).await?;
                self.with_records(tenant, ranked, HashMap::new()).await
            }
            Mode::Hybrid => self.hybrid(tenant, query, vector, top_k, filter).await,
        }
    }

    async fn hybrid(
        &self,
        tenant: &Tenant,
        query: &str,
        vector: Vec<f32>,
        top_k: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<Hit>, RetrieveError> {
        let depth = candidates(top_k);
        let (dense, lexical) = tokio::join!(
            self.store.search(tenant, vector, depth, filter),
            self.lexical_ids(tenant, query, depth, filter)
        );
        let (dense, lexical) = (dense?, lexical?);
        let dense_ids: Vec<u64> = dense.iter().map(|h| h.id).collect();
        let lexical_ids: Vec<u64> = lexical.iter().map(|(id, _)| *id).collect();
        let mut fused = reciprocal_rank(&[&dense_ids, &lexical_ids]);
        fused.truncate(top_k);
        let known = dense.into_iter().map(|h| (h.id, h)).collect();
        self.with_records(tenant, fused, known).await
    }

    async fn lexical_ids(
        &self,
        tenant: &Tenant,
        query: &str,
        limit: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<(u64, f32)>, RetrieveError> {
        let (lexical, tenant, query, filter) = (
            self.lexical.clone(),
            tenant.clone(),
            query.to_string(),
            filter.clone(),
        );
        blocking(move || lexical.search(&tenant, &query, limit, &filter)).await
    }

    /// Hits for ranked ids, in that order, with the given scores; records come from
    /// `known` or are fetched from the store. Ids the store no longer has are dropped.
    async fn with_records(
        &self,
        tenant: &Tenant,
        ranked: Vec<(u64, f32)>,
        mut known: HashMap<u64, Hit>,
    ) -> Result<Vec<Hit>, RetrieveError> {
        let missing: Vec<u64> = ranked
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !known.contains_key(id))
            .collect();
        let mut fetched: HashMap<u64, _> = if missing.is_empty() {
            HashMap::new()
        } else {
            self.store
                .fetch(tenant, missing)
                .await?
                .into_iter()
                .collect()
        };
        Ok(ranked
            .into_iter()
            .filter_map(|(id, score)| {
                let record = match known.remove(&id) {
                    Some(hit) => hit.record,
                    None => fetched.remove(&id)?,
                };
                Some(Hit { id, record, score })
            })
            .collect())
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, LexicalError> + Send + 'static,
) -> Result<T, RetrieveError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|_| RetrieveError::Stopped)?
        .map_err(RetrieveError::from)
}
