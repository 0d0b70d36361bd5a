//! The persistent backing of a connector's `state` import: one key space per connector
//! under `state/{org}/{connector}/` in the host's store, so what a plugin remembers
//! survives restarts (and is removed with the connector).

use std::sync::Arc;

use crate::runtime::state_store::ConnectorStateStore;
use crate::store::{KvStore, WriteOp};

/// Key prefix of one connector's state space.
pub fn state_prefix(org: &str, connector: &str) -> String {
    format!("state/{org}/{connector}/")
}

/// A connector's state space in the host's [`KvStore`].
pub struct StoreStateStore {
    store: Arc<dyn KvStore>,
    prefix: String,
}

impl std::fmt::Debug for StoreStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreStateStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl StoreStateStore {
    /// The state space of `connector` of `org`.
    pub fn new(store: Arc<dyn KvStore>, org: &str, connector: &str) -> Self {
        StoreStateStore {
            store,
            prefix: state_prefix(org, connector),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl ConnectorStateStore for StoreStateStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.store.get(&self.key(key)) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(prefix = %self.prefix, error = %e, "reading connector state");
                None
            }
        }
    }

    fn set(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.store
            .apply(vec![WriteOp::Put(self.key(key), value)])
            .map_err(|e| format!("state not saved: {e}"))
    }

    fn delete(&self, key: &str) {
        if let Err(e) = self.store.apply(vec![WriteOp::Delete(self.key(key))]) {
            tracing::error!(prefix = %self.prefix, error = %e, "deleting connector state");
        }
    }

    fn used_bytes(&self) -> usize {
        match self.store.scan_prefix(&self.prefix) {
            Ok(all) => all
                .iter()
                .map(|(k, v)| k.len() - self.prefix.len() + v.len())
                .sum(),
            Err(_) => usize::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[test]
    fn state_survives_reopen_and_connectors_are_apart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir.path()).unwrap());
            let a = StoreStateStore::new(store.clone(), "o1", "c1");
            let b = StoreStateStore::new(store.clone(), "o1", "c2");
            a.set("k", b"v1".to_vec()).unwrap();
            b.set("k", b"other".to_vec()).unwrap();
            a.set("gone", b"x".to_vec()).unwrap();
            a.delete("gone");
            assert_eq!(a.used_bytes(), 3);
            store.flush().unwrap();
        }
        let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir.path()).unwrap());
        let a = StoreStateStore::new(store.clone(), "o1", "c1");
        assert_eq!(a.get("k"), Some(b"v1".to_vec()));
        assert_eq!(a.get("gone"), None);
        let b = StoreStateStore::new(store, "o1", "c2");
        assert_eq!(b.get("k"), Some(b"other".to_vec()));
    }
}
