//! The `state` import's backing store: a small key-value space private to one connector.

use std::collections::HashMap;

/// Storage for connector state. Implementations must keep connectors apart.
pub trait ConnectorStateStore: Send + Sync {
    /// Value of `key`.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Set `key`; the caller has checked quotas.
    fn set(&self, key: &str, value: Vec<u8>) -> Result<(), String>;
    /// Remove `key`.
    fn delete(&self, key: &str);
    /// Bytes used (keys + values).
    fn used_bytes(&self) -> usize;
}

/// An in-memory state space (the CLI and tests; the server persists state in its store).
#[derive(Debug, Default)]
pub struct InMemoryStateStore {
    map: parking_lot::Mutex<HashMap<String, Vec<u8>>>,
}

impl InMemoryStateStore {
    /// An empty space.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ConnectorStateStore for InMemoryStateStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.map.lock().get(key).cloned()
    }
    fn set(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.map.lock().insert(key.to_string(), value);
        Ok(())
    }
    fn delete(&self, key: &str) {
        self.map.lock().remove(key);
    }
    fn used_bytes(&self) -> usize {
        self.map.lock().iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}
