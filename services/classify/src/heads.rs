//! Trained heads the service can answer with, found by name under a directory
//! (`<models root>/heads/<name>/`). Heads trained while the server runs are picked up on
//! the first request that names them.

use longview_core::head::{ClassifierHead, HEAD_JSON};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Heads by name, loaded from disk on first use.
#[derive(Debug, Default)]
pub struct HeadRegistry {
    dir: Option<PathBuf>,
    loaded: RwLock<BTreeMap<String, Arc<ClassifierHead>>>,
}

impl HeadRegistry {
    /// Heads under `dir`; `None` serves zero-shot labels only.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            loaded: RwLock::default(),
        }
    }

    /// The head called `name`, loading it if it exists on disk.
    pub fn get(&self, name: &str) -> Option<Arc<ClassifierHead>> {
        if let Some(head) = self.read().get(name) {
            return Some(head.clone());
        }
        let dir = self.head_dir(name)?;
        match ClassifierHead::load(&dir) {
            Ok(head) => {
                tracing::info!(head = name, version = %head.spec.version, labels = head.labels().len(), "loaded head");
                let head = Arc::new(head);
                self.write().insert(name.to_string(), head.clone());
                Some(head)
            }
            Err(err) => {
                tracing::warn!(head = name, error = %err, "cannot load head");
                None
            }
        }
    }

    /// Every head on disk, loading those not yet loaded.
    pub fn list(&self) -> Vec<Arc<ClassifierHead>> {
        self.names()
            .iter()
            .filter_map(|name| self.get(name))
            .collect()
    }

    /// Names of the heads on disk, sorted.
    pub fn names(&self) -> Vec<String> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().join(HEAD_JSON).is_file())
            .filter_map(|entry| entry.file_name().to_str().map(String::from))
            .collect();
        names.sort();
        names
    }

    /// A head's folder, if `name` is a plain name (no path tricks) and the folder exists.
    fn head_dir(&self, name: &str) -> Option<PathBuf> {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !name.starts_with('.');
        let dir = self.dir.as_deref().filter(|_| plain)?.join(name);
        dir.join(HEAD_JSON).is_file().then_some(dir)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ClassifierHead>>> {
        self.loaded.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<ClassifierHead>>> {
        self.loaded.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where heads live under a models root.
pub fn heads_dir(models_root: &Path) -> PathBuf {
    models_root.join("heads")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_path_tricks_are_not_looked_up() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("heads")).unwrap();
        let registry = HeadRegistry::new(Some(root.path().join("heads")));
        for name in ["../etc", "", ".hidden", "a/b"] {
            assert!(registry.get(name).is_none(), "{name}");
        }
        assert!(registry.names().is_empty());
    }
}
