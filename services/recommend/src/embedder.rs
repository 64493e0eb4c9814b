//! Vectors for item texts: from the cache where they are, from the model where not, and
//! the new ones kept for next time.

use crate::RecommendError;
use crate::cache::{CacheUsage, EmbeddingCache, VectorKey, VectorSource, vector_key};
use crate::store::Store;
use longview_core::{Tenant, TokenLimit, Usage};
use longview_worker::{Worker, WorkerError};
use std::collections::HashMap;
use std::sync::Arc;

/// One vector per text given, and how they were found.
#[derive(Debug)]
pub struct Embedded {
    pub vectors: Vec<Arc<[f32]>>,
    pub cache: CacheUsage,
    /// Tokens the model read for the texts it encoded now.
    pub usage: Usage,
}

/// The worker and the cache in front of it.
#[derive(Clone, Debug)]
pub struct Embedder {
    worker: Worker,
    cache: Arc<EmbeddingCache>,
}

impl Embedder {
    pub fn new(worker: Worker, cache: Arc<EmbeddingCache>) -> Self {
        Self { worker, cache }
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// The model and truncation vectors are made with now: texts are read up to the length
    /// the model was trained for, as Embed does by default.
    pub fn source(&self) -> Result<VectorSource, WorkerError> {
        let info = &self.worker.loaded()?.info;
        Ok(VectorSource {
            model_name: info.name.clone(),
            model_version: info.version.clone(),
            max_tokens: info
                .trained_seq_len
                .saturating_sub(info.special_tokens)
                .max(1),
        })
    }

    /// Vectors for `texts` (which must not be blank), each distinct text looked up or
    /// encoded once.
    pub async fn vectors(
        &self,
        store: Arc<Store>,
        tenant: &Tenant,
        texts: Vec<String>,
    ) -> Result<Embedded, RecommendError> {
        let source = self.source()?;
        let (distinct, slots) = distinct(texts);
        let distinct = Arc::new(distinct);
        let (keys, mut found, cache) = {
            let (cache, store, distinct) = (self.cache.clone(), store.clone(), distinct.clone());
            let tenant = tenant.clone();
            blocking(move || {
                // TODO(recommend-speed): every Score hashes all 10,000 candidate texts
                // (SHA-256) and looks each up twice (item, then vector); the server spends
                // ~25 ms CPU per call against ~1.4 ms for the scoring itself (bench
                // recommend). Keeping the vector on the cached item would skip both for
                // stored candidates; it waits for a profile showing where the rest goes.
                let keys: Vec<VectorKey> = distinct
                    .iter()
                    .map(|t| vector_key(tenant.as_str(), &source, t))
                    .collect();
                let (found, usage) = cache.lookup(&store, &keys)?;
                Ok((keys, found, usage))
            })
            .await?
        };
        let missing: Vec<usize> = (0..found.len()).filter(|&i| found[i].is_none()).collect();
        let usage = self
            .encode(store, &keys, &distinct, &missing, &mut found)
            .await?;
        let vectors = slots
            .into_iter()
            .map(|slot| found[slot].clone().unwrap_or_else(|| Arc::from(Vec::new())))
            .collect();
        Ok(Embedded {
            vectors,
            cache,
            usage,
        })
    }

    /// Encodes the texts at `missing`, fills them into `found` and caches them.
    async fn encode(
        &self,
        store: Arc<Store>,
        keys: &[VectorKey],
        texts: &[String],
        missing: &[usize],
        found: &mut [Option<Arc<[f32]>>],
    ) -> Result<Usage, RecommendError> {
        if missing.is_empty() {
            return Ok(Usage::default());
        }
        let limit = TokenLimit {
            max_tokens: self.source()?.max_tokens,
            truncate: true,
        };
        let wanted = missing.iter().map(|&i| texts[i].clone()).collect();
        let embedded = self.worker.embed_texts(wanted, limit).await?;
        let mut usage = Usage::default();
        let mut entries = Vec::with_capacity(missing.len());
        for (&i, text) in missing.iter().zip(embedded) {
            usage = usage + text.usage;
            let vector: Arc<[f32]> = text.vector.into();
            found[i] = Some(vector.clone());
            entries.push((keys[i], vector));
        }
        let cache = self.cache.clone();
        blocking(move || Ok(cache.insert(&store, &entries)?)).await?;
        Ok(usage)
    }
}

/// The distinct texts, and for each text given the index of its distinct copy.
fn distinct(texts: Vec<String>) -> (Vec<String>, Vec<usize>) {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(texts.len());
    let mut distinct = Vec::with_capacity(texts.len());
    let slots = texts
        .into_iter()
        .map(|text| {
            *index.entry(text).or_insert_with_key(|text| {
                distinct.push(text.clone());
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, slots)
}

/// Runs store and cache work (file I/O, hashing many texts) off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RecommendError> + Send + 'static,
) -> Result<T, RecommendError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        RecommendError::Worker(WorkerError::Failed(format!("store task failed: {e}")))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_texts_keep_their_slots() {
        let texts = ["a", "b", "a", "c", "b"].map(String::from).to_vec();
        let (distinct, slots) = distinct(texts);
        assert_eq!(distinct, ["a", "b", "c"]);
        assert_eq!(slots, [0, 1, 0, 2, 1]);
    }
}
