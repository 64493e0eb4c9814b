//! The on-disk store (redb): each tenant's items and profiles, and item vectors by cache
//! key. One database file per directory, shared by every server in the process.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use thiserror::Error;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// (tenant, item id) → JSON of [`StoredItem`].
const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");
/// (tenant, profile id) → JSON of [`StoredProfile`].
const PROFILES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("profiles");
/// Cache key → the vector as little-endian f32.
const VECTORS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("vectors");

// TODO(recommend-store): redb locks its file to one process, so replicas of the recommend
// role cannot share items and profiles; scaling out needs a shared store behind the same
// Store API. One process per directory is enough until the role runs replicated.
/// The database file inside a store directory.
pub const FILE_NAME: &str = "recommend.redb";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "the recommendation store {path} is open in another process; give each server its own --recommend-store-dir"
    )]
    Locked { path: PathBuf },
    #[error("cannot open the recommendation store {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("recommendation store failure: {0}")]
    Storage(#[from] redb::Error),
    #[error("a stored record cannot be read: {0}")]
    Corrupt(String),
}

fn storage(err: impl Into<redb::Error>) -> StoreError {
    StoreError::Storage(err.into())
}

/// An item as the store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    pub text: String,
    pub popularity: u64,
    pub timestamp: i64,
}

/// One history entry of a stored profile: a stored item id, or text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredHistoryItem {
    pub item_id: String,
    pub text: Option<String>,
    pub weight: f32,
    pub timestamp: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredProfile {
    pub history: Vec<StoredHistoryItem>,
}

/// One open database.
pub struct Store {
    db: Database,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Stores already open in this process, so servers started side by side (tests, `all`
/// next to `recommend`) share one handle instead of failing on redb's file lock.
static OPEN: Mutex<Option<HashMap<PathBuf, Weak<Store>>>> = Mutex::new(None);

impl Store {
    /// Opens (creating if needed) the store in `dir`, or the handle this process already
    /// has for it.
    pub fn open(dir: &Path) -> Result<Arc<Store>, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
        let dir = dir.canonicalize().map_err(|e| open_error(e.to_string()))?;
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let open = open.get_or_insert_with(HashMap::new);
        if let Some(store) = open.get(&dir).and_then(Weak::upgrade) {
            return Ok(store);
        }
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.clone() },
            other => open_error(other.to_string()),
        })?;
        let store = Arc::new(Self::initialised(db)?);
        open.insert(dir, Arc::downgrade(&store));
        Ok(store)
    }

    /// A store that lives in memory only (tools and tests).
    pub fn in_memory() -> Result<Arc<Store>, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(storage)?;
        Ok(Arc::new(Self::initialised(db)?))
    }

    /// Creates the tables, so readers never meet a missing one.
    fn initialised(db: Database) -> Result<Self, StoreError> {
        let write = db.begin_write().map_err(storage)?;
        write.open_table(ITEMS).map_err(storage)?;
        write.open_table(PROFILES).map_err(storage)?;
        write.open_table(VECTORS).map_err(storage)?;
        write.commit().map_err(storage)?;
        Ok(Self { db })
    }

    /// Stores or replaces items, in one transaction.
    pub fn put_items(
        &self,
        tenant: &str,
        items: &[(String, StoredItem)],
    ) -> Result<(), StoreError> {
        let write = self.db.begin_write().map_err(storage)?;
        {
            let mut table = write.open_table(ITEMS).map_err(storage)?;
            for (id, item) in items {
                let json =
                    serde_json::to_vec(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                table
                    .insert((tenant, id.as_str()), json.as_slice())
                    .map_err(storage)?;
            }
        }
        write.commit().map_err(storage)
    }

    /// The items stored under `ids`, `None` where there is none.
    pub fn get_items(
        &self,
        tenant: &str,
        ids: &[&str],
    ) -> Result<Vec<Option<StoredItem>>, StoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(ITEMS).map_err(storage)?;
        ids.iter()
            .map(|id| match table.get((tenant, *id)).map_err(storage)? {
                Some(json) => decode(json.value()).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// Deletes items; returns how many existed.
    pub fn delete_items(&self, tenant: &str, ids: &[&str]) -> Result<usize, StoreError> {
        let write = self.db.begin_write().map_err(storage)?;
        let mut deleted = 0;
        {
            let mut table = write.open_table(ITEMS).map_err(storage)?;
            for id in ids {
                deleted += usize::from(table.remove((tenant, *id)).map_err(storage)?.is_some());
            }
        }
        write.commit().map_err(storage)?;
        Ok(deleted)
    }

    pub fn put_profile(
        &self,
        tenant: &str,
        id: &str,
        profile: &StoredProfile,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(profile).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let write = self.db.begin_write().map_err(storage)?;
        write
            .open_table(PROFILES)
            .map_err(storage)?
            .insert((tenant, id), json.as_slice())
            .map_err(storage)?;
        write.commit().map_err(storage)
    }

    pub fn get_profile(&self, tenant: &str, id: &str) -> Result<Option<StoredProfile>, StoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(PROFILES).map_err(storage)?;
        let found = table.get((tenant, id)).map_err(storage)?;
        found.map(|json| decode(json.value())).transpose()
    }

    /// Deletes a profile; returns whether it existed.
    pub fn delete_profile(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let write = self.db.begin_write().map_err(storage)?;
        let existed = write
            .open_table(PROFILES)
            .map_err(storage)?
            .remove((tenant, id))
            .map_err(storage)?
            .is_some();
        write.commit().map_err(storage)?;
        Ok(existed)
    }

    /// Vectors by cache key, `None` where there is none.
    pub fn get_vectors(&self, keys: &[&[u8; 32]]) -> Result<Vec<Option<Vec<f32>>>, StoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(VECTORS).map_err(storage)?;
        keys.iter()
            .map(|key| {
                let found = table.get(*key).map_err(storage)?;
                Ok(found.map(|bytes| from_bytes(bytes.value())))
            })
            .collect()
    }

    pub fn put_vectors(&self, entries: &[(&[u8; 32], &[f32])]) -> Result<(), StoreError> {
        let write = self.db.begin_write().map_err(storage)?;
        {
            let mut table = write.open_table(VECTORS).map_err(storage)?;
            for (key, vector) in entries {
                table
                    .insert(*key, to_bytes(vector).as_slice())
                    .map_err(storage)?;
            }
        }
        write.commit().map_err(storage)
    }
}

/// Where a service's store lives, opened on first use: a server whose store is locked by
/// another process still serves its other roles, and Recommend answers UNAVAILABLE naming
/// the file until the lock is free.
#[derive(Debug)]
pub struct StoreHandle {
    dir: Option<PathBuf>,
    opened: Mutex<Option<Arc<Store>>>,
}

impl StoreHandle {
    /// The store in `dir` (on disk), or one in memory when `dir` is `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            opened: Mutex::new(None),
        }
    }

    pub fn get(&self) -> Result<Arc<Store>, StoreError> {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = opened.as_ref() {
            return Ok(store.clone());
        }
        let store = match &self.dir {
            Some(dir) => Store::open(dir)?,
            None => Store::in_memory()?,
        };
        *opened = Some(store.clone());
        Ok(store)
    }
}

fn decode<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str, popularity: u64) -> StoredItem {
        StoredItem {
            text: text.into(),
            popularity,
            timestamp: 7,
        }
    }

    #[test]
    fn items_are_kept_per_tenant_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .put_items("a", &[("x".into(), item("rockets", 3))])
                .unwrap();
            store
                .put_items("b", &[("x".into(), item("soup", 1))])
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let a = store.get_items("a", &["x", "y"]).unwrap();
        assert_eq!(a, [Some(item("rockets", 3)), None]);
        assert_eq!(
            store.get_items("b", &["x"]).unwrap()[0]
                .as_ref()
                .unwrap()
                .text,
            "soup"
        );
        assert_eq!(store.delete_items("a", &["x", "y"]).unwrap(), 1);
        assert_eq!(store.get_items("a", &["x"]).unwrap(), [None]);
        assert!(store.get_items("b", &["x"]).unwrap()[0].is_some());
    }

    #[test]
    fn one_handle_per_directory_in_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let second = Store::open(dir.path()).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn profiles_and_vectors_round_trip() {
        let store = Store::in_memory().unwrap();
        let profile = StoredProfile {
            history: vec![StoredHistoryItem {
                item_id: "x".into(),
                text: None,
                weight: 0.5,
                timestamp: 9,
            }],
        };
        store.put_profile("t", "u1", &profile).unwrap();
        assert_eq!(store.get_profile("t", "u1").unwrap(), Some(profile));
        assert_eq!(store.get_profile("other", "u1").unwrap(), None);
        assert!(store.delete_profile("t", "u1").unwrap());
        assert!(!store.delete_profile("t", "u1").unwrap());

        let key = [3u8; 32];
        store.put_vectors(&[(&key, &[0.5, -1.25])]).unwrap();
        assert_eq!(
            store.get_vectors(&[&key, &[4u8; 32]]).unwrap(),
            [Some(vec![0.5, -1.25]), None]
        );
    }
}
