//! Persistent state behind a small key-value trait ([`KvStore`]) so a networked backend can
//! follow the embedded [`SledStore`]. Keys are UTF-8 paths (`conn/<org>/<id>`); values are
//! JSON records. Every action that touches several records writes them in one atomic
//! batch, so a crash never leaves half an action on disk.

mod sled_store;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use sled_store::{DEFAULT_CACHE_BYTES, SledStore};

/// Current on-disk schema version.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &str = "meta/schema_version";

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error("store backend: {0}")]
    Backend(String),
    /// A record does not decode.
    #[error("corrupt record {key}: {message}")]
    Corrupt {
        /// Key.
        key: String,
        /// Decoder message.
        message: String,
    },
    /// The data directory was written by a newer version.
    #[error(
        "the data directory has schema version {found}, newer than this build supports ({SCHEMA_VERSION}); upgrade Portcullis"
    )]
    TooNew {
        /// Version found.
        found: u32,
    },
}

/// One write of an atomic batch.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Set a key.
    Put(String, Vec<u8>),
    /// Remove a key.
    Delete(String),
}

impl WriteOp {
    /// A JSON-encoded put.
    pub fn put_json<T: Serialize>(key: impl Into<String>, value: &T) -> Result<Self, StoreError> {
        let key = key.into();
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            message: e.to_string(),
        })?;
        Ok(WriteOp::Put(key, bytes))
    }
}

/// The storage trait the host owns.
pub trait KvStore: Send + Sync + 'static {
    /// Value of `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key/value under `prefix`, in key order.
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Apply all writes atomically (all or nothing, durable once `flush` returns).
    fn apply(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
    /// Make every applied batch durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Bytes used on disk, when known.
    fn size_on_disk(&self) -> Option<u64>;

    /// Up to `limit` key/values under `prefix` strictly after `after` (or from the start
    /// of the prefix), in key order; `reverse` walks from the end (strictly before
    /// `after`). Backends should override this with a real range scan; the default
    /// filters [`KvStore::scan_prefix`].
    fn scan_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut all = self.scan_prefix(prefix)?;
        if reverse {
            all.reverse();
        }
        Ok(all
            .into_iter()
            .filter(|(k, _)| match after {
                None => true,
                Some(a) if reverse => k.as_str() < a,
                Some(a) => k.as_str() > a,
            })
            .take(limit)
            .collect())
    }
}

/// Typed access on top of a [`KvStore`].
pub trait KvStoreExt: KvStore {
    /// Decode the JSON record at `key`.
    fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        key: key.to_string(),
                        message: e.to_string(),
                    })
            }
        }
    }

    /// Decode every JSON record under `prefix`.
    fn scan_json<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        self.scan_prefix(prefix)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| StoreError::Corrupt {
                        key: k,
                        message: e.to_string(),
                    })
            })
            .collect()
    }
}

impl<S: KvStore + ?Sized> KvStoreExt for S {}

/// Bring a store to [`SCHEMA_VERSION`], refusing data from a newer build.
pub fn migrate(store: &dyn KvStore) -> Result<u32, StoreError> {
    let found = match store.get(SCHEMA_KEY)? {
        None => 0,
        Some(b) => String::from_utf8_lossy(&b)
            .trim()
            .parse::<u32>()
            .map_err(|e| StoreError::Corrupt {
                key: SCHEMA_KEY.into(),
                message: e.to_string(),
            })?,
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found });
    }
    if found < SCHEMA_VERSION {
        // Version 0 → 1: a fresh store; nothing to rewrite yet. Future migrations go here,
        // each in one atomic batch together with the new version number.
        store.apply(vec![WriteOp::Put(
            SCHEMA_KEY.into(),
            SCHEMA_VERSION.to_string().into_bytes(),
        )])?;
        store.flush()?;
    }
    Ok(SCHEMA_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_atomic_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            migrate(&s).unwrap();
            s.apply(vec![
                WriteOp::put_json("conn/o1/a", &serde_json::json!({"n": 1})).unwrap(),
                WriteOp::put_json("conn/o1/b", &serde_json::json!({"n": 2})).unwrap(),
                WriteOp::put_json("conn/o2/c", &serde_json::json!({"n": 3})).unwrap(),
            ])
            .unwrap();
            s.apply(vec![WriteOp::Delete("conn/o1/a".into())]).unwrap();
            s.flush().unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(migrate(&s).unwrap(), SCHEMA_VERSION);
        let o1: Vec<(String, serde_json::Value)> = s.scan_json("conn/o1/").unwrap();
        assert_eq!(o1.len(), 1);
        assert_eq!(o1[0].0, "conn/o1/b");
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.apply(vec![WriteOp::Put(SCHEMA_KEY.into(), b"99".to_vec())])
            .unwrap();
        assert!(matches!(migrate(&s), Err(StoreError::TooNew { found: 99 })));
    }
}
