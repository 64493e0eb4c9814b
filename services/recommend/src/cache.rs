//! The item embedding cache: vectors in memory (moka, bounded by bytes) in front of the
//! on-disk store, keyed so a changed text, another model or another tenant never meets a
//! stale or foreign vector.

use crate::store::{Store, StoreError};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Cache hits, by tier (`memory` or `disk`).
pub const HITS_METRIC: &str = "longview_recommend_embedding_cache_hits_total";
/// Texts the model had to encode.
pub const MISSES_METRIC: &str = "longview_recommend_embedding_cache_misses_total";

/// What a vector depends on besides its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorSource {
    pub model_name: String,
    pub model_version: String,
    /// Content tokens read per text: a different truncation is a different vector.
    pub max_tokens: usize,
}

/// SHA-256 of everything a vector depends on.
pub type VectorKey = [u8; 32];

/// One vector per looked-up key, `None` where neither memory nor disk has it.
pub type Lookup = Vec<Option<Arc<[f32]>>>;

/// The key of `text`'s vector for `tenant` under `source`. Fields are length-prefixed so
/// no two different inputs hash the same bytes.
pub fn vector_key(tenant: &str, source: &VectorSource, text: &str) -> VectorKey {
    let mut hash = Sha256::new();
    let max_tokens = source.max_tokens.to_string();
    let fields = [
        "longview-recommend-vector-v1",
        tenant,
        &source.model_name,
        &source.model_version,
        &max_tokens,
        text,
    ];
    for field in fields {
        hash.update((field.len() as u64).to_le_bytes());
        hash.update(field.as_bytes());
    }
    hash.finalize().into()
}

/// How one request's lookups were served, per distinct text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheUsage {
    pub memory_hits: usize,
    pub disk_hits: usize,
    pub misses: usize,
}

/// Vectors in memory, backed by the store.
pub struct EmbeddingCache {
    memory: moka::sync::Cache<VectorKey, Arc<[f32]>>,
}

impl std::fmt::Debug for EmbeddingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingCache")
            .field("entries", &self.memory.entry_count())
            .finish()
    }
}

impl EmbeddingCache {
    /// A cache holding at most about `max_bytes` of vectors in memory.
    pub fn new(max_bytes: u64) -> Self {
        let memory = moka::sync::Cache::builder()
            .weigher(|_key: &VectorKey, vector: &Arc<[f32]>| {
                u32::try_from(32 + 4 * vector.len()).unwrap_or(u32::MAX)
            })
            .max_capacity(max_bytes)
            .build();
        Self { memory }
    }

    /// Every key's vector where one is cached: memory first, then the store (whose hits
    /// are then kept in memory too).
    pub fn lookup(
        &self,
        store: &Store,
        keys: &[VectorKey],
    ) -> Result<(Lookup, CacheUsage), StoreError> {
        let mut found: Lookup = keys.iter().map(|k| self.memory.get(k)).collect();
        let absent: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        let mut usage = CacheUsage {
            memory_hits: keys.len() - absent.len(),
            ..CacheUsage::default()
        };
        if !absent.is_empty() {
            let wanted: Vec<&VectorKey> = absent.iter().map(|&i| &keys[i]).collect();
            for (&i, vector) in absent.iter().zip(store.get_vectors(&wanted)?) {
                if let Some(vector) = vector {
                    let vector: Arc<[f32]> = vector.into();
                    self.memory.insert(keys[i], vector.clone());
                    found[i] = Some(vector);
                    usage.disk_hits += 1;
                }
            }
        }
        usage.misses = keys.len() - usage.memory_hits - usage.disk_hits;
        count(&usage);
        Ok((found, usage))
    }

    /// Keeps new vectors in memory and on disk.
    pub fn insert(
        &self,
        store: &Store,
        entries: &[(VectorKey, Arc<[f32]>)],
    ) -> Result<(), StoreError> {
        let on_disk: Vec<(&VectorKey, &[f32])> = entries.iter().map(|(k, v)| (k, &v[..])).collect();
        store.put_vectors(&on_disk)?;
        for (key, vector) in entries {
            self.memory.insert(*key, vector.clone());
        }
        Ok(())
    }
}

fn count(usage: &CacheUsage) {
    metrics::counter!(HITS_METRIC, "tier" => "memory").increment(usage.memory_hits as u64);
    metrics::counter!(HITS_METRIC, "tier" => "disk").increment(usage.disk_hits as u64);
    metrics::counter!(MISSES_METRIC).increment(usage.misses as u64);
}

/// Describes the cache's metrics to whichever recorder the server installs.
pub fn describe_metrics() {
    metrics::describe_counter!(
        HITS_METRIC,
        "Item vectors found in the recommendation embedding cache, by tier (memory, disk)."
    );
    metrics::describe_counter!(
        MISSES_METRIC,
        "Item texts the recommendation service had to encode (not in the embedding cache)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    fn source(version: &str) -> VectorSource {
        VectorSource {
            model_name: "m".into(),
            model_version: version.into(),
            max_tokens: 254,
        }
    }

    #[test]
    fn keys_change_with_text_model_and_tenant() {
        let base = vector_key("t", &source("1"), "rockets");
        assert_eq!(base, vector_key("t", &source("1"), "rockets"));
        assert_ne!(base, vector_key("t", &source("1"), "rockets!"));
        assert_ne!(base, vector_key("t", &source("2"), "rockets"));
        assert_ne!(base, vector_key("u", &source("1"), "rockets"));
        let shorter = VectorSource {
            max_tokens: 16,
            ..source("1")
        };
        assert_ne!(base, vector_key("t", &shorter, "rockets"));
        // Length prefixes: moving a boundary between fields changes the key.
        assert_ne!(
            vector_key("ab", &source("1"), "c"),
            vector_key("a", &source("1"), "bc")
        );
    }

    #[test]
    fn memory_then_disk_then_miss_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshots = recorder.snapshotter();
        let store = Store::in_memory().unwrap();
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        metrics::with_local_recorder(&recorder, || {
            let cache = EmbeddingCache::new(1 << 20);
            cache
                .insert(&store, &[(a, Arc::from(vec![1.0f32]))])
                .unwrap();
            store.put_vectors(&[(&b, &[2.0])]).unwrap();
            let (found, usage) = cache.lookup(&store, &[a, b, c]).unwrap();
            assert_eq!(
                usage,
                CacheUsage {
                    memory_hits: 1,
                    disk_hits: 1,
                    misses: 1
                }
            );
            assert_eq!(found[1].as_deref(), Some(&[2.0f32][..]));
            assert!(found[2].is_none());
            // The disk hit is in memory now.
            assert_eq!(cache.lookup(&store, &[b]).unwrap().1.memory_hits, 1);
        });
        let counters: Vec<(String, Vec<String>, u64)> = snapshots
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Counter(n) => {
                    let key = key.key();
                    let labels = key.labels().map(|l| l.value().to_string()).collect();
                    Some((key.name().to_string(), labels, n))
                }
                _ => None,
            })
            .collect();
        let get = |name: &str, label: &[&str]| {
            counters
                .iter()
                .find(|(n, l, _)| {
                    n == name && l.iter().map(String::as_str).eq(label.iter().copied())
                })
                .map(|c| c.2)
        };
        assert_eq!(get(HITS_METRIC, &["memory"]), Some(2));
        assert_eq!(get(HITS_METRIC, &["disk"]), Some(1));
        assert_eq!(get(MISSES_METRIC, &[]), Some(1));
    }
}
