//! Stored items with a memory in front: scoring 10,000 stored (or unstored) candidates
//! should not mean 10,000 disk reads and decodes per request. Absent ids are remembered
//! too, so text candidates that were never stored cost no disk reads either.

use crate::store::{Store, StoreError, StoredItem};
use std::sync::{Arc, RwLock};

/// Stored items by (tenant, id), `None` for ids known to be absent.
pub struct ItemCache {
    memory: moka::sync::Cache<String, Option<Arc<StoredItem>>>,
    /// Writers hold it across their commit and cache update, readers across their disk read
    /// and cache fill, so a reader never puts back a value a writer has just replaced.
    order: RwLock<()>,
}

impl std::fmt::Debug for ItemCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemCache")
            .field("entries", &self.memory.entry_count())
            .finish()
    }
}

/// One string per (tenant, id); the tenant's length first, so no two pairs collide.
fn key(tenant: &str, id: &str) -> String {
    format!("{}:{tenant}{id}", tenant.len())
}

impl ItemCache {
    /// A cache holding about `max_bytes` of item texts.
    pub fn new(max_bytes: u64) -> Self {
        let memory = moka::sync::Cache::builder()
            .weigher(|key: &String, item: &Option<Arc<StoredItem>>| {
                let text = item.as_ref().map_or(0, |i| i.text.len());
                u32::try_from(key.len() + text + 64).unwrap_or(u32::MAX)
            })
            .max_capacity(max_bytes)
            .build();
        Self {
            memory,
            order: RwLock::new(()),
        }
    }

    /// The items stored under `ids`, `None` where there is none.
    pub fn get(
        &self,
        store: &Store,
        tenant: &str,
        ids: &[&str],
    ) -> Result<Vec<Option<Arc<StoredItem>>>, StoreError> {
        let _reading = self.order.read().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<String> = ids.iter().map(|id| key(tenant, id)).collect();
        let mut found: Vec<Option<Option<Arc<StoredItem>>>> =
            keys.iter().map(|k| self.memory.get(k)).collect();
        let unknown: Vec<usize> = (0..ids.len()).filter(|&i| found[i].is_none()).collect();
        if !unknown.is_empty() {
            let wanted: Vec<&str> = unknown.iter().map(|&i| ids[i]).collect();
            for (&i, item) in unknown.iter().zip(store.get_items(tenant, &wanted)?) {
                let item = item.map(Arc::new);
                self.memory.insert(keys[i].clone(), item.clone());
                found[i] = Some(item);
            }
        }
        Ok(found.into_iter().map(Option::flatten).collect())
    }

    /// Stores or replaces items on disk, then in memory.
    pub fn put(
        &self,
        store: &Store,
        tenant: &str,
        items: Vec<(String, StoredItem)>,
    ) -> Result<(), StoreError> {
        let _writing = self.order.write().unwrap_or_else(|e| e.into_inner());
        store.put_items(tenant, &items)?;
        for (id, item) in items {
            self.memory.insert(key(tenant, &id), Some(Arc::new(item)));
        }
        Ok(())
    }

    /// Deletes items on disk and in memory; returns how many existed.
    pub fn delete(&self, store: &Store, tenant: &str, ids: &[&str]) -> Result<usize, StoreError> {
        let _writing = self.order.write().unwrap_or_else(|e| e.into_inner());
        let deleted = store.delete_items(tenant, ids)?;
        for id in ids {
            self.memory.insert(key(tenant, id), None);
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str) -> StoredItem {
        StoredItem {
            text: text.into(),
            popularity: 1,
            timestamp: 2,
        }
    }

    #[test]
    fn remembers_items_and_absences_and_follows_writes() {
        let store = Store::in_memory().unwrap();
        let cache = ItemCache::new(1 << 20);
        assert_eq!(cache.get(&store, "t", &["a"]).unwrap(), [None]);
        // Written behind the cache's back: the remembered absence still answers...
        store
            .put_items("t", &[("a".into(), item("behind"))])
            .unwrap();
        assert_eq!(cache.get(&store, "t", &["a"]).unwrap(), [None]);
        // ...while writes through the cache are seen at once.
        cache
            .put(&store, "t", vec![("a".into(), item("rockets"))])
            .unwrap();
        let got = cache.get(&store, "t", &["a", "b"]).unwrap();
        assert_eq!(got[0].as_deref(), Some(&item("rockets")));
        assert!(got[1].is_none());
        assert!(
            cache.get(&store, "u", &["a"]).unwrap()[0].is_none(),
            "tenants apart"
        );
        assert_eq!(cache.delete(&store, "t", &["a"]).unwrap(), 1);
        assert!(cache.get(&store, "t", &["a"]).unwrap()[0].is_none());
        assert_eq!(store.get_items("t", &["a"]).unwrap(), [None]);
    }

    #[test]
    fn keys_keep_tenant_and_id_apart() {
        assert_ne!(key("ab", "c"), key("a", "bc"));
    }
}
