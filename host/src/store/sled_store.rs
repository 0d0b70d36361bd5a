//! The embedded default backend.

use std::path::Path;

use super::{KvStore, StoreError, WriteOp};

/// sled under one data directory.
pub struct SledStore {
    db: sled::Db,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledStore {
    /// Open (creating) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Open (or create) the store in `dir` with a page cache of at most `cache_bytes`
    /// (sled's own default, 1 GiB, would dominate the server's memory).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(200))
            .open()
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", dir.display())))?;
        Ok(SledStore { db })
    }
}

/// Page cache of [`SledStore::open`]: 256 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

impl KvStore for SledStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(key.as_bytes())
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.db
            .scan_prefix(prefix.as_bytes())
            .map(|r| {
                let (k, v) = r.map_err(backend)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    fn apply(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                WriteOp::Put(k, v) => batch.insert(k.as_bytes(), v),
                WriteOp::Delete(k) => batch.remove(k.as_bytes()),
            }
        }
        // `apply_batch` is atomic: all writes or none, even across a crash.
        self.db.apply_batch(batch).map_err(backend)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.db.size_on_disk().ok()
    }

    fn scan_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        use std::ops::Bound;
        let p = prefix.as_bytes().to_vec();
        let end = prefix_end(&p);
        // An `after` outside the prefix means "from the start" (forward) or "from the
        // end" (reverse) of the prefix.
        let after = after.filter(|a| a.starts_with(prefix));
        let (lo, hi): (Bound<Vec<u8>>, Bound<Vec<u8>>) = match (after, reverse) {
            (Some(a), false) => (Bound::Excluded(a.as_bytes().to_vec()), end),
            (None, false) => (Bound::Included(p.clone()), end),
            (Some(a), true) => (
                Bound::Included(p.clone()),
                Bound::Excluded(a.as_bytes().to_vec()),
            ),
            (None, true) => (Bound::Included(p.clone()), end),
        };
        let range = self.db.range::<Vec<u8>, _>((lo, hi));
        let decode = |r: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = r.map_err(backend)?;
            Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
        };
        let mut out = Vec::new();
        if reverse {
            for r in range.rev() {
                let (k, v) = decode(r)?;
                if !k.starts_with(prefix) {
                    break;
                }
                out.push((k, v));
                if out.len() >= limit {
                    break;
                }
            }
        } else {
            for r in range {
                let (k, v) = decode(r)?;
                if !k.starts_with(prefix) {
                    break;
                }
                out.push((k, v));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The smallest key greater than every key starting with `prefix` (unbounded if none).
fn prefix_end(prefix: &[u8]) -> std::ops::Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return std::ops::Bound::Excluded(end);
        }
    }
    std::ops::Bound::Unbounded
}
