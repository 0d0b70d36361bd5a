//! Where the master key comes from, and the key check file that lets a start with the
//! wrong key be refused before anything is opened or written.
//!
//! Sources, first match wins: the environment variable [`ENV_VAR`] (base64 of 32 bytes),
//! else the file `[vault] master_key_file`, else `<data_dir>/master.key`. A key file must
//! not be readable by group or others (`chmod 600`). On the very first start (no key check
//! file in the data directory) a missing key file is created with a fresh random key,
//! mode 0600, and the start says so. The master key is never written to the store.
//!
//! `<data_dir>/vault-keycheck.json` holds, per accepted master key, its public id and a
//! check value (a known token sealed with it). It usually lists one key; during a master
//! key rotation it lists the old and the new one, so a crash half-way leaves a data
//! directory that starts with either key.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::VaultError;
use super::envelope::Key;

/// Environment variable holding the base64 master key.
pub const ENV_VAR: &str = "PORTCULLIS_MASTER_KEY";
/// Default key file name inside the data directory.
pub const DEFAULT_FILE: &str = "master.key";
/// Key check file name inside the data directory.
pub const CHECK_FILE: &str = "vault-keycheck.json";
const CHECK_CONTEXT: &str = "portcullis master key check";

/// Where the master key in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The environment variable [`ENV_VAR`].
    Env,
    /// A key file.
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => write!(f, "${ENV_VAR}"),
            KeySource::File(p) => write!(f, "key file {}", p.display()),
        }
    }
}

/// The master key with its id and source.
#[derive(Debug, Clone)]
pub struct MasterKey {
    /// The key (redacted in `Debug`).
    pub key: Key,
    /// Public id.
    pub id: String,
    /// Where it came from.
    pub source: KeySource,
}

impl MasterKey {
    /// A master key from a source.
    pub fn new(key: Key, source: KeySource) -> Self {
        MasterKey {
            id: key.id(),
            key,
            source,
        }
    }
}

/// One accepted master key in the check file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyCheck {
    /// The key's public id.
    pub key_id: String,
    /// A known token sealed with the key.
    pub check: String,
}

/// `vault-keycheck.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyCheckFile {
    /// Format version (1).
    pub version: u32,
    /// Keys that open this data directory.
    pub keys: Vec<KeyCheck>,
}

impl KeyCheckFile {
    /// A check file accepting `keys`.
    pub fn for_keys(keys: &[&Key]) -> Result<Self, VaultError> {
        Ok(KeyCheckFile {
            version: 1,
            keys: keys
                .iter()
                .map(|k| {
                    Ok(KeyCheck {
                        key_id: k.id(),
                        check: k.check_value(CHECK_CONTEXT)?,
                    })
                })
                .collect::<Result<_, VaultError>>()?,
        })
    }

    /// Whether `key` is accepted.
    pub fn accepts(&self, key: &Key) -> bool {
        let id = key.id();
        self.keys
            .iter()
            .any(|c| c.key_id == id && key.verify_check(CHECK_CONTEXT, &c.check))
    }

    /// Read `<data_dir>/vault-keycheck.json`, if present.
    pub fn read(data_dir: &Path) -> Result<Option<Self>, VaultError> {
        let path = data_dir.join(CHECK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                VaultError::MasterKey(format!("{} is not a key check file: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(VaultError::MasterKey(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Write it atomically (temporary file, fsync, rename).
    pub fn write(&self, data_dir: &Path) -> Result<(), VaultError> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| VaultError::MasterKey(format!("encoding the key check file: {e}")))?;
        write_atomically(&data_dir.join(CHECK_FILE), &bytes, 0o644)
    }
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> VaultError {
    VaultError::MasterKey(format!("{what} {}: {e}", path.display()))
}

/// Write `bytes` to `path` through a temporary file and a rename, with `mode`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), VaultError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts
            .open(&tmp)
            .map_err(|e| io_err(&tmp, "cannot create", e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| io_err(&tmp, "cannot write", e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, "cannot replace", e))
}

/// Read a key file, refusing one that group or others may read.
pub fn read_key_file(path: &Path) -> Result<Key, VaultError> {
    let meta =
        std::fs::metadata(path).map_err(|e| io_err(path, "cannot read master key file", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::MasterKey(format!(
                "master key file {} is accessible to group or others (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| io_err(path, "cannot read master key file", e))?,
    );
    Key::from_base64(&text)
        .map_err(|e| VaultError::MasterKey(format!("master key file {}: {e}", path.display())))
}

/// Write a key file (mode 0600), replacing any file there.
pub fn write_key_file(path: &Path, key: &Key) -> Result<(), VaultError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create", e))?;
    }
    let mut text = key.to_base64();
    text.push('\n');
    write_atomically(path, text.as_bytes(), 0o600)
}

/// What [`resolve`] found.
#[derive(Debug)]
pub struct Resolved {
    /// The master key.
    pub master: MasterKey,
    /// Set when the key file was just created (first start).
    pub created: Option<PathBuf>,
}

/// Find the master key for `data_dir` and check it against the key check file, before
/// anything else is opened: a wrong or missing key is refused and nothing is written.
/// `env_value` is the value of [`ENV_VAR`], if set.
pub fn resolve(
    configured_file: Option<&Path>,
    data_dir: &Path,
    env_value: Option<&str>,
) -> Result<Resolved, VaultError> {
    let check = KeyCheckFile::read(data_dir)?;
    let mut created = None;
    let master = if let Some(v) = env_value {
        let key =
            Key::from_base64(v).map_err(|e| VaultError::MasterKey(format!("${ENV_VAR}: {e}")))?;
        MasterKey::new(key, KeySource::Env)
    } else {
        let path = configured_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| data_dir.join(DEFAULT_FILE));
        let key = if path.exists() {
            read_key_file(&path)?
        } else if let Some(c) = &check {
            return Err(VaultError::MasterKey(format!(
                "master key file {} does not exist, but this data directory's credentials are sealed with master key {}; \
                 restore the key file, point `[vault] master_key_file` at it or set ${ENV_VAR}",
                path.display(),
                c.keys
                    .iter()
                    .map(|k| k.key_id.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        } else {
            let key = Key::generate()?;
            write_key_file(&path, &key)?;
            created = Some(path.clone());
            key
        };
        MasterKey::new(key, KeySource::File(path))
    };
    match &check {
        Some(c) if !c.accepts(&master.key) => {
            return Err(VaultError::WrongMasterKey {
                key_source: master.source.to_string(),
                got: master.id.clone(),
                expected: c
                    .keys
                    .iter()
                    .map(|k| k.key_id.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
            });
        }
        Some(_) => {}
        None => KeyCheckFile::for_keys(&[&master.key])?.write(data_dir)?,
    }
    Ok(Resolved { master, created })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_a_private_key_then_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolve(None, dir.path(), None).unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        assert_eq!(r.created.as_deref(), Some(path.as_path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let again = resolve(None, dir.path(), None).unwrap();
        assert!(again.created.is_none());
        assert_eq!(again.master.id, r.master.id);
        let other = Key::generate().unwrap();
        let err = resolve(None, dir.path(), Some(&other.to_base64())).unwrap_err();
        assert!(matches!(err, VaultError::WrongMasterKey { .. }), "{err}");
        assert!(err.to_string().contains(&r.master.id), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = resolve(None, dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_key_file(&path, &Key::generate().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = resolve(Some(&path), dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
