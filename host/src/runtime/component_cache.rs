//! Precompiled components on disk, keyed by the component's sha256, the wasmtime version
//! and the engine's compatibility hash.
//!
//! This module holds the crate's only `unsafe` code: [`wasmtime::component::Component::deserialize`]
//! trusts its input to be an artifact produced by a compatible wasmtime. We therefore
//! deserialize only artifacts this host wrote itself: each artifact is stored next to a
//! keyed BLAKE3 MAC (key kept in the cache directory, created 0600 by the host) that is
//! verified over the exact bytes handed to `deserialize`. An artifact that fails the check
//! is deleted and recompiled.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Outcome of a cache lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a verified precompiled artifact.
    Hit,
    /// Compiled (and stored, when the cache is writable).
    Compiled,
}

/// Cache failures. Compilation errors are reported by the caller.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Filesystem error.
    #[error("component cache {path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
}

/// The on-disk cache.
pub struct ComponentCache {
    dir: PathBuf,
    mac_key: [u8; 32],
    engine_tag: String,
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache")
            .field("dir", &self.dir)
            .field("engine_tag", &self.engine_tag)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl ComponentCache {
    /// Open (creating if needed) a cache directory for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(dir))?;
        }
        let key_path = dir.join("artifact.key");
        let mac_key = match std::fs::read(&key_path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                k
            }
            _ => {
                let mut k = [0u8; 32];
                getrandom(&mut k);
                write_atomically(&key_path, &k)?;
                k
            }
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_tag = format!("wasmtime{}-{:016x}", wasmtime_version(), h.finish());
        Ok(ComponentCache {
            dir: dir.to_path_buf(),
            mac_key,
            engine_tag,
        })
    }

    fn artifact_path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256_hex}-{}.cwasm", self.engine_tag))
    }

    /// Load the precompiled artifact for `bytes` or compile and store it.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256_hex: &str,
    ) -> Result<(Component, CacheOutcome), wasmtime::Error> {
        if let Some(c) = self.load(engine, sha256_hex) {
            return Ok((c, CacheOutcome::Hit));
        }
        let artifact = engine.precompile_component(bytes)?;
        // SAFETY-relevant: the artifact was produced by `engine` just now.
        let component = self.deserialize_trusted(engine, &artifact)?;
        if let Err(e) = self.store(sha256_hex, &artifact) {
            tracing::warn!(error = %e, "could not write precompiled component to the cache");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    /// Load a verified artifact, if present.
    pub fn load(&self, engine: &Engine, sha256_hex: &str) -> Option<Component> {
        let path = self.artifact_path(sha256_hex);
        let mac_path = path.with_extension("cwasm.mac");
        let artifact = std::fs::read(&path).ok()?;
        let mac = std::fs::read(&mac_path).ok()?;
        let expected = mac_of(&self.mac_key, &artifact);
        if mac.len() != 32 || !constant_time_eq(expected.as_bytes(), &mac) {
            tracing::warn!(path = %path.display(), "precompiled artifact failed verification; discarding it");
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&mac_path);
            return None;
        }
        match self.deserialize_trusted(engine, &artifact) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "precompiled artifact rejected by wasmtime; recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Deserialize bytes that this host produced (fresh from `precompile_component`, or
    /// read back from disk and verified against the MAC this host wrote).
    #[allow(unsafe_code)]
    fn deserialize_trusted(
        &self,
        engine: &Engine,
        artifact: &[u8],
    ) -> Result<Component, wasmtime::Error> {
        // SAFETY: `artifact` is either the direct output of `Engine::precompile_component`
        // on this engine, or bytes read from this cache whose keyed BLAKE3 MAC (key known
        // only to this host, stored 0600) matched — i.e. bytes this host wrote. wasmtime
        // additionally checks version and engine compatibility in the artifact header.
        unsafe { Component::deserialize(engine, artifact) }
    }

    fn store(&self, sha256_hex: &str, artifact: &[u8]) -> Result<(), CacheError> {
        let path = self.artifact_path(sha256_hex);
        let mac = mac_of(&self.mac_key, artifact);
        write_atomically(&path, artifact)?;
        write_atomically(&path.with_extension("cwasm.mac"), mac.as_bytes())
    }
}

fn wasmtime_version() -> &'static str {
    // The wasmtime crate version this host was built with (kept in sync with Cargo.toml by
    // the precompile header check; used only to name cache entries).
    env!("PORTCULLIS_WASMTIME_VERSION")
}

/// Keyed BLAKE3 of an artifact (one thread: a thread pool's wake-up costs more than it
/// saves at artifact sizes).
fn mac_of(key: &[u8; 32], data: &[u8]) -> blake3::Hash {
    blake3::keyed_hash(key, data)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn getrandom(buf: &mut [u8]) {
    // blake3 over OS-provided randomness from std's hasher seeds and time is not enough;
    // read the kernel's CSPRNG directly.
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(buf).is_ok()
    {
        return;
    }
    // Fallback: derive from several independent RandomState seeds and the clock.
    let mut hasher = blake3::Hasher::new();
    for _ in 0..8 {
        let s = std::collections::hash_map::RandomState::new();
        let mut h = std::hash::BuildHasher::build_hasher(&s);
        h.write_u8(0);
        hasher.update(&h.finish().to_le_bytes());
    }
    hasher.update(&format!("{:?}", std::time::SystemTime::now()).into_bytes());
    buf.copy_from_slice(&hasher.finalize().as_bytes()[..buf.len().min(32)]);
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))
}
