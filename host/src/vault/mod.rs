//! The credential vault: organisation-scoped, named, versioned credentials, encrypted at
//! rest with envelope encryption, resolved at request time for the broker.
//!
//! - **Keys.** Every organisation has a random 256-bit data key; it is stored (key
//!   `vkey/{org}`) only sealed by the master key, with a check value (a known token sealed
//!   by the data key). The master key comes from a file or the environment
//!   ([`master_key`]) and is never written to the store or logged. A start with the wrong
//!   master key is refused before the store is opened ([`master_key::resolve`]).
//! - **Secrets.** Each credential version's secret is sealed with XChaCha20-Poly1305
//!   under the org's data key, bound (associated data) to org, name and version
//!   ([`envelope`]); non-secret fields (token URL, client id, header name, ...) are stored
//!   in the clear beside it ([`record`]). In memory secrets are `SecretString`s: zeroised
//!   on drop, redacted in `Debug`.
//! - **Versions.** A credential has a promoted version (what requests use), optionally a
//!   pending one (written, testable, not used) and a previous one (for rollback).
//!   [`VaultCredentialSource`] resolves a connector's slot → credential name → promoted
//!   version on every request, so a promotion takes effect on the next request of every
//!   bound connector; the OAuth tokens of the replaced version are dropped from the
//!   broker's token cache.
//! - **Master key rotation** ([`CredentialVault::rotate_master_key`]) re-wraps every data
//!   key online; secrets are not re-encrypted and no credential is re-entered.
//!
//! Authorization, tenancy, validation and audit of credential operations live in the
//! management service (`ManagementService::{put_credential, list_credentials, ...}`),
//! which the REST API, GraphQL and the admin panel call; this module is the storage and
//! crypto underneath, reachable as `ManagementService::vault()`.

pub mod envelope;
pub mod master_key;
pub mod record;
mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::broker::credentials::{ApiKeyPlacement, Credential, CredentialError, CredentialSecret};
use crate::broker::host_pattern::HostPattern;
use crate::broker::oauth::OAuthTokenCache;
use crate::manifest::CredentialKind;
use crate::store::{KvStore, KvStoreExt, StoreError, WriteOp};
use envelope::{EnvelopeError, Key};
use master_key::{KeyCheckFile, KeySource, MasterKey};
use record::{ExpiringCredential, StoredCredential, StoredVersion};
pub use source::VaultCredentialSource;

/// `[vault]` of the server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// Master key file (base64 of 32 random bytes, mode 0600). Default:
    /// `<data_dir>/master.key`, created on first start. `$PORTCULLIS_MASTER_KEY` wins.
    pub master_key_file: Option<PathBuf>,
    /// Warn (health) this many days before a credential's `expires_at`.
    pub expiry_warning_days: u32,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            master_key_file: None,
            expiry_warning_days: 14,
        }
    }
}

/// Vault failures. Never carry a secret, a key or a token.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key could not be found, read or created.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The master key does not open this data directory.
    #[error(
        "wrong master key: {key_source} holds master key {got}, but this data directory's credentials are sealed with master key {expected}; \
         start with the right key (`[vault] master_key_file` or $PORTCULLIS_MASTER_KEY). Nothing was changed."
    )]
    WrongMasterKey {
        /// Where the key came from.
        key_source: String,
        /// Its id.
        got: String,
        /// The id(s) the data directory expects.
        expected: String,
    },
    /// Encryption failure.
    #[error(transparent)]
    Crypto(#[from] EnvelopeError),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record is unusable.
    #[error("vault record {0}")]
    Corrupt(String),
}

/// A wrapped data key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WrappedKey {
    key_id: String,
    wrapped: String,
}

/// `vkey/{org}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DataKeyRecord {
    org: String,
    /// Master key id `wrapped` is sealed with.
    key_id: String,
    wrapped: String,
    /// Set during a master key rotation: the same data key under the new master key.
    #[serde(default)]
    next: Option<WrappedKey>,
    /// Check value of the data key.
    check: String,
    created_at: String,
}

fn wrap_aad(org: &str) -> Vec<u8> {
    format!("portcullis data key|{org}").into_bytes()
}
fn check_context(org: &str) -> String {
    format!("portcullis data key check|{org}")
}
fn secret_aad(org: &str, name: &str, version: u32) -> Vec<u8> {
    format!("portcullis credential|{org}|{name}|{version}").into_bytes()
}

/// Store key of a credential.
pub fn credential_key(org: &str, name: &str) -> String {
    format!("cred/{org}/{name}")
}
fn used_key(org: &str, name: &str) -> String {
    format!("credused/{org}/{name}")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What a master key rotation did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotationReport {
    /// Id of the master key replaced.
    pub previous_master_key_id: String,
    /// Id of the master key now in use.
    pub master_key_id: String,
    /// Data keys re-wrapped (one per organisation with credentials).
    pub rewrapped_data_keys: usize,
    /// Where the new key is (`key file ...` or `$PORTCULLIS_MASTER_KEY`).
    pub key_source: String,
}

struct VaultInner {
    store: Arc<dyn KvStore>,
    data_dir: PathBuf,
    config: VaultConfig,
    master: parking_lot::RwLock<MasterKey>,
    data_keys: parking_lot::RwLock<HashMap<String, Key>>,
    tokens: Arc<OAuthTokenCache>,
    decrypted: parking_lot::Mutex<HashMap<(String, String, u32), Arc<Credential>>>,
    used_persisted: parking_lot::Mutex<HashMap<(String, String), Instant>>,
    rotation: tokio::sync::Mutex<()>,
}

/// The vault (cheap to clone).
#[derive(Clone)]
pub struct CredentialVault {
    inner: Arc<VaultInner>,
}

impl std::fmt::Debug for CredentialVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialVault")
            .field("master_key_id", &self.inner.master.read().id)
            .finish_non_exhaustive()
    }
}

impl CredentialVault {
    /// Open the vault over `store` with `master` (already checked by
    /// [`master_key::resolve`]): every data key is unwrapped and checked now, so a key that
    /// does not open them is refused before anything runs. A master key rotation left
    /// half-way is completed.
    pub fn open(
        store: Arc<dyn KvStore>,
        data_dir: &Path,
        master: MasterKey,
        tokens: Arc<OAuthTokenCache>,
        config: VaultConfig,
    ) -> Result<Self, VaultError> {
        let mut keys = HashMap::new();
        let mut finish = Vec::new();
        for (k, mut rec) in store.scan_json::<DataKeyRecord>("vkey/")? {
            let aad = wrap_aad(&rec.org);
            let key = if rec.key_id == master.id {
                master.key.unwrap_key(&aad, &rec.wrapped)
            } else if let Some(next) = rec.next.clone().filter(|n| n.key_id == master.id) {
                let key = master.key.unwrap_key(&aad, &next.wrapped);
                rec.key_id = next.key_id;
                rec.wrapped = next.wrapped;
                rec.next = None;
                finish.push(WriteOp::put_json(&k, &rec)?);
                key
            } else {
                return Err(VaultError::WrongMasterKey {
                    key_source: master.source.to_string(),
                    got: master.id.clone(),
                    expected: rec.key_id.clone(),
                });
            }
            .map_err(|_| VaultError::WrongMasterKey {
                key_source: master.source.to_string(),
                got: master.id.clone(),
                expected: rec.key_id.clone(),
            })?;
            if !key.verify_check(&check_context(&rec.org), &rec.check) {
                return Err(VaultError::Corrupt(format!(
                    "{k}: the data key does not match its check value"
                )));
            }
            keys.insert(rec.org.clone(), key);
        }
        if !finish.is_empty() {
            tracing::info!(
                records = finish.len(),
                "completing an interrupted master key rotation"
            );
            store.apply(finish)?;
        }
        if KeyCheckFile::read(data_dir)?.is_none_or(|c| c.keys.len() != 1) {
            KeyCheckFile::for_keys(&[&master.key])?.write(data_dir)?;
        }
        Ok(CredentialVault {
            inner: Arc::new(VaultInner {
                store,
                data_dir: data_dir.to_path_buf(),
                config,
                master: parking_lot::RwLock::new(master),
                data_keys: parking_lot::RwLock::new(keys),
                tokens,
                decrypted: parking_lot::Mutex::new(HashMap::new()),
                used_persisted: parking_lot::Mutex::new(HashMap::new()),
                rotation: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The vault configuration.
    pub fn config(&self) -> &VaultConfig {
        &self.inner.config
    }

    /// Public id of the master key in use.
    pub fn master_key_id(&self) -> String {
        self.inner.master.read().id.clone()
    }

    /// The broker's OAuth token cache the vault drops tokens from.
    pub fn token_cache(&self) -> &Arc<OAuthTokenCache> {
        &self.inner.tokens
    }

    fn data_key(&self, org: &str) -> Option<Key> {
        self.inner.data_keys.read().get(org).cloned()
    }

    /// The org's data key, created (and stored, wrapped) on first use.
    fn ensure_data_key(&self, org: &str) -> Result<Key, VaultError> {
        if let Some(k) = self.data_key(org) {
            return Ok(k);
        }
        let mut map = self.inner.data_keys.write();
        if let Some(k) = map.get(org) {
            return Ok(k.clone());
        }
        let key = Key::generate()?;
        let master = self.inner.master.read();
        let rec = DataKeyRecord {
            org: org.to_string(),
            key_id: master.id.clone(),
            wrapped: master.key.wrap(&wrap_aad(org), &key)?,
            next: None,
            check: key.check_value(&check_context(org))?,
            created_at: now(),
        };
        self.inner
            .store
            .apply(vec![WriteOp::put_json(format!("vkey/{org}"), &rec)?])?;
        map.insert(org.to_string(), key.clone());
        Ok(key)
    }

    /// Seal `secret` as version `version` of `org/name`: the sealed text and the keyed
    /// fingerprint.
    pub fn seal(
        &self,
        org: &str,
        name: &str,
        version: u32,
        kind: CredentialKind,
        secret: &SecretString,
    ) -> Result<(String, String), VaultError> {
        let key = self.ensure_data_key(org)?;
        let sealed = key.seal(
            &secret_aad(org, name, version),
            secret.expose_secret().as_bytes(),
        )?;
        let mut material = kind.to_string().into_bytes();
        material.push(0);
        material.extend_from_slice(secret.expose_secret().as_bytes());
        let material = zeroize::Zeroizing::new(material);
        let fp = key.derive("credential fingerprint").keyed_hash(&material);
        Ok((envelope::b64(&sealed), format!("kh:{}", &fp[..32])))
    }

    /// Open the secret of a stored version.
    pub fn open_secret(
        &self,
        org: &str,
        name: &str,
        v: &StoredVersion,
    ) -> Result<SecretString, VaultError> {
        let key = self
            .data_key(org)
            .ok_or_else(|| VaultError::Corrupt(format!("vkey/{org} is missing")))?;
        let raw = envelope::unb64(&v.sealed).map_err(|_| {
            VaultError::Corrupt(format!("cred/{org}/{name} v{}: bad encoding", v.version))
        })?;
        let plain = key
            .open(&secret_aad(org, name, v.version), &raw)
            .map_err(|_| {
                VaultError::Corrupt(format!(
                    "cred/{org}/{name} v{}: does not decrypt",
                    v.version
                ))
            })?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| {
            VaultError::Corrupt(format!("cred/{org}/{name} v{}: not UTF-8", v.version))
        })?;
        Ok(SecretString::from(text))
    }

    /// The token cache key of a version (never a secret: org, name, version, fingerprint).
    pub fn cache_key(org: &str, name: &str, v: &StoredVersion) -> String {
        format!("vault:{org}/{name}/v{}/{}", v.version, v.fingerprint)
    }

    /// Drop what is cached for a version (decrypted credential, OAuth token).
    pub fn forget_version(&self, org: &str, name: &str, v: &StoredVersion) {
        self.inner
            .decrypted
            .lock()
            .remove(&(org.to_string(), name.to_string(), v.version));
        self.inner.tokens.forget(&Self::cache_key(org, name, v));
    }

    /// A stored credential.
    pub fn stored(&self, org: &str, name: &str) -> Result<Option<StoredCredential>, VaultError> {
        Ok(self.inner.store.get_json(&credential_key(org, name))?)
    }

    /// Every stored credential of an org.
    pub fn stored_all(&self, org: &str) -> Result<Vec<StoredCredential>, VaultError> {
        Ok(self
            .inner
            .store
            .scan_json::<StoredCredential>(&format!("cred/{org}/"))?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    /// When a request last used `org/name` (minute resolution).
    pub fn last_used(&self, org: &str, name: &str) -> Option<String> {
        self.inner
            .store
            .get_json(&used_key(org, name))
            .ok()
            .flatten()
    }

    fn touch(&self, org: &str, name: &str) {
        let k = (org.to_string(), name.to_string());
        {
            let mut m = self.inner.used_persisted.lock();
            if m.get(&k)
                .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
            {
                return;
            }
            m.insert(k, Instant::now());
        }
        let op = WriteOp::put_json(used_key(org, name), &now());
        if let Err(e) = op
            .map_err(VaultError::from)
            .and_then(|op| Ok(self.inner.store.apply(vec![op])?))
        {
            tracing::warn!(org, credential = name, error = %e, "cannot record credential use");
        }
    }

    /// Store ops removing a credential's use record.
    pub fn delete_ops(org: &str, name: &str) -> Vec<WriteOp> {
        vec![
            WriteOp::Delete(credential_key(org, name)),
            WriteOp::Delete(used_key(org, name)),
        ]
    }

    /// The usable credential `org/name` at `version` (default: promoted); `None` when it
    /// does not exist. Decrypted once per version and cached in memory.
    pub fn credential(
        &self,
        org: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<Arc<Credential>>, CredentialError> {
        let unavailable = |e: VaultError| CredentialError::Unavailable(e.to_string());
        let Some(rec) = self.stored(org, name).map_err(unavailable)? else {
            return Ok(None);
        };
        let want = version.unwrap_or(rec.promoted);
        let Some(v) = rec.version(want) else {
            return Err(CredentialError::Invalid {
                slot: name.to_string(),
                message: format!("credential {name:?} has no version {want}"),
            });
        };
        let ck = (org.to_string(), name.to_string(), want);
        let cached = self.inner.decrypted.lock().get(&ck).cloned();
        let cred = match cached {
            Some(c) if c.cache_key == Self::cache_key(org, name, v) => c,
            _ => {
                let secret = self.open_secret(org, name, v).map_err(unavailable)?;
                let cred = Arc::new(build_credential(
                    rec.kind,
                    v,
                    secret,
                    Self::cache_key(org, name, v),
                )?);
                self.inner.decrypted.lock().insert(ck, cred.clone());
                cred
            }
        };
        self.touch(org, name);
        Ok(Some(cred))
    }

    /// A credential source for a connector of `org` with `bindings` (slot → name),
    /// resolving the promoted version at request time. `pin` makes one credential name
    /// resolve to a given version (testing a pending version).
    pub fn source(
        &self,
        org: &str,
        bindings: std::collections::BTreeMap<String, String>,
        pin: Option<(String, u32)>,
    ) -> VaultCredentialSource {
        VaultCredentialSource::new(self.clone(), org.to_string(), bindings, pin)
    }

    /// Promoted credentials of `org` whose `expires_at` is within `within` from now (or
    /// already past), soonest first. The health checks warn about these.
    pub fn expiring(
        &self,
        org: &str,
        within: Duration,
    ) -> Result<Vec<ExpiringCredential>, VaultError> {
        let now = chrono::Utc::now();
        let horizon = now + chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
        let mut out = Vec::new();
        for c in self.stored_all(org)? {
            let Some(v) = c.version(c.promoted) else {
                continue;
            };
            let Some(exp) = &v.expires_at else { continue };
            let Ok(t) = chrono::DateTime::parse_from_rfc3339(exp) else {
                continue;
            };
            if t <= horizon {
                out.push(ExpiringCredential {
                    name: c.name.clone(),
                    version: v.version,
                    expires_at: exp.clone(),
                    expired: t <= now,
                });
            }
        }
        out.sort_by(|a, b| a.expires_at.cmp(&b.expires_at));
        Ok(out)
    }

    /// Re-wrap every data key under `new` (online; secrets are not touched). `persist`
    /// makes the new key durable where the next start will find it (e.g. replaces the key
    /// file); it runs after every data key is stored under both keys and before the old
    /// wrapping is dropped, so a crash at any point leaves a data directory that opens
    /// with the old or the new key.
    pub async fn rotate_master_key(
        &self,
        new: MasterKey,
        persist: impl FnOnce() -> Result<(), VaultError>,
    ) -> Result<RotationReport, VaultError> {
        let _g = self.inner.rotation.lock().await;
        let old = self.inner.master.read().clone();
        if old.id == new.id {
            return Err(VaultError::MasterKey(
                "the new master key is the key already in use".into(),
            ));
        }
        let keys = self.inner.data_keys.read().clone();
        let records = self.inner.store.scan_json::<DataKeyRecord>("vkey/")?;
        // 1. both keys accepted; every data key stored under both.
        KeyCheckFile::for_keys(&[&old.key, &new.key])?.write(&self.inner.data_dir)?;
        let mut staged = Vec::new();
        let mut ops = Vec::new();
        for (k, mut rec) in records {
            let dk = keys
                .get(&rec.org)
                .ok_or_else(|| VaultError::Corrupt(format!("{k}: data key not loaded")))?;
            rec.next = Some(WrappedKey {
                key_id: new.id.clone(),
                wrapped: new.key.wrap(&wrap_aad(&rec.org), dk)?,
            });
            ops.push(WriteOp::put_json(&k, &rec)?);
            staged.push((k, rec));
        }
        self.inner.store.apply(ops)?;
        self.inner.store.flush()?;
        // 2. the new key where the next start finds it.
        persist()?;
        // 3. the old wrapping dropped.
        let mut ops = Vec::new();
        for (k, mut rec) in staged.iter().cloned() {
            if let Some(n) = rec.next.take() {
                rec.key_id = n.key_id;
                rec.wrapped = n.wrapped;
            }
            ops.push(WriteOp::put_json(&k, &rec)?);
        }
        *self.inner.master.write() = new.clone();
        self.inner.store.apply(ops)?;
        self.inner.store.flush()?;
        KeyCheckFile::for_keys(&[&new.key])?.write(&self.inner.data_dir)?;
        tracing::info!(from = %old.id, to = %new.id, data_keys = staged.len(), "master key rotated");
        Ok(RotationReport {
            previous_master_key_id: old.id,
            master_key_id: new.id,
            rewrapped_data_keys: staged.len(),
            key_source: new.source.to_string(),
        })
    }

    /// Rotate to a fresh random key written to the current key file (which must be where
    /// the key came from), or to the key in `new_key_file`.
    pub async fn rotate_master_key_with_file(
        &self,
        new_key_file: Option<&Path>,
    ) -> Result<RotationReport, VaultError> {
        match new_key_file {
            Some(path) => {
                let key = if path.exists() {
                    master_key::read_key_file(path)?
                } else {
                    let k = Key::generate()?;
                    master_key::write_key_file(path, &k)?;
                    k
                };
                let new = MasterKey::new(key, KeySource::File(path.to_path_buf()));
                self.rotate_master_key(new, || Ok(())).await
            }
            None => {
                let source = self.inner.master.read().source.clone();
                let KeySource::File(path) = source else {
                    return Err(VaultError::MasterKey(format!(
                        "the master key comes from ${}; name a new key file (new_key_file / --new-key-file) and point the configuration at it",
                        master_key::ENV_VAR
                    )));
                };
                let key = Key::generate()?;
                let new = MasterKey::new(key.clone(), KeySource::File(path.clone()));
                self.rotate_master_key(new, || master_key::write_key_file(&path, &key))
                    .await
            }
        }
    }
}

/// Turn a stored version and its secret into what the broker injects.
fn build_credential(
    kind: CredentialKind,
    v: &StoredVersion,
    secret: SecretString,
    cache_key: String,
) -> Result<Credential, CredentialError> {
    let invalid = |m: &str| CredentialError::Invalid {
        slot: String::new(),
        message: m.to_string(),
    };
    let hosts = v
        .hosts
        .iter()
        .map(|h| HostPattern::parse(h).map_err(|_| invalid("stored host pattern is invalid")))
        .collect::<Result<Vec<_>, _>>()?;
    let p = &v.public;
    let secret = match kind {
        CredentialKind::Bearer => CredentialSecret::Bearer { token: secret },
        CredentialKind::OAuth2ClientCredentials => CredentialSecret::OAuth2ClientCredentials {
            token_url: p
                .token_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .ok_or_else(|| invalid("stored token_url is invalid"))?,
            client_id: p.client_id.clone().unwrap_or_default(),
            client_secret: secret,
            scopes: p.scopes.clone(),
            audience: p.audience.clone(),
        },
        CredentialKind::ApiKey => CredentialSecret::ApiKey {
            key: secret,
            placement: match (&p.header, &p.query) {
                (Some(h), _) => ApiKeyPlacement::Header {
                    name: h.clone(),
                    prefix: p.prefix.clone(),
                },
                (None, Some(q)) => ApiKeyPlacement::Query { name: q.clone() },
                (None, None) => return Err(invalid("stored api-key has no placement")),
            },
        },
        CredentialKind::Basic => CredentialSecret::Basic {
            username: p.username.clone().unwrap_or_default(),
            password: secret,
        },
    };
    Ok(Credential {
        cache_key,
        secret,
        hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn vault(
        dir: &Path,
        store: Arc<dyn KvStore>,
        key: &Key,
    ) -> Result<CredentialVault, VaultError> {
        let master = MasterKey::new(key.clone(), KeySource::Env);
        CredentialVault::open(
            store,
            dir,
            master,
            Arc::new(OAuthTokenCache::new()),
            VaultConfig::default(),
        )
    }

    fn stored_version(v: &CredentialVault, org: &str, secret: &str) -> StoredVersion {
        let (sealed, fingerprint) = v
            .seal(
                org,
                "c",
                1,
                CredentialKind::Bearer,
                &SecretString::from(secret.to_string()),
            )
            .unwrap();
        StoredVersion {
            version: 1,
            created_at: now(),
            created_by: "t".into(),
            public: Default::default(),
            hosts: vec!["https://a.example".into()],
            expires_at: None,
            fingerprint,
            sealed,
            last_test: None,
        }
    }

    #[tokio::test]
    async fn interrupted_master_key_rotation_opens_with_either_key_and_completes() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn KvStore> = Arc::new(SledStore::open(&dir.path().join("s")).unwrap());
        let (a, b) = (Key::generate().unwrap(), Key::generate().unwrap());
        let v = vault(dir.path(), store.clone(), &a).unwrap();
        let sv = stored_version(&v, "org1", "the-secret");
        stored_version(&v, "org2", "other");
        // The new key never becomes durable: the rotation stops after staging.
        let err = v
            .rotate_master_key(MasterKey::new(b.clone(), KeySource::Env), || {
                Err(VaultError::MasterKey("disk full".into()))
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert_eq!(v.master_key_id(), a.id(), "still on the old key");
        let check = KeyCheckFile::read(dir.path()).unwrap().unwrap();
        assert!(check.accepts(&a) && check.accepts(&b));
        drop(v);
        // Reopening with the old key works (and keeps accepting only it).
        let v = vault(dir.path(), store.clone(), &a).unwrap();
        assert_eq!(
            v.open_secret("org1", "c", &sv).unwrap().expose_secret(),
            "the-secret"
        );
        drop(v);
        let c = KeyCheckFile::read(dir.path()).unwrap().unwrap();
        assert!(c.accepts(&a) && !c.accepts(&b));
        // Reopening with the new key (as after a crash once it was persisted) completes it.
        let v = vault(dir.path(), store.clone(), &b).unwrap();
        assert_eq!(
            v.open_secret("org1", "c", &sv).unwrap().expose_secret(),
            "the-secret"
        );
        drop(v);
        assert!(matches!(
            vault(dir.path(), store.clone(), &a),
            Err(VaultError::WrongMasterKey { .. })
        ));
        // A full rotation back to A, and a key that is neither.
        let v = vault(dir.path(), store.clone(), &b).unwrap();
        let r = v
            .rotate_master_key(MasterKey::new(a.clone(), KeySource::Env), || Ok(()))
            .await
            .unwrap();
        assert_eq!(r.rewrapped_data_keys, 2);
        assert_eq!(
            v.open_secret("org1", "c", &sv).unwrap().expose_secret(),
            "the-secret"
        );
        drop(v);
        assert!(vault(dir.path(), store.clone(), &a).is_ok());
        let err = vault(dir.path(), store, &Key::generate().unwrap()).unwrap_err();
        assert!(matches!(err, VaultError::WrongMasterKey { .. }), "{err}");
    }

    #[test]
    fn fingerprints_are_keyed_per_org_and_equal_for_equal_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn KvStore> = Arc::new(SledStore::open(&dir.path().join("s")).unwrap());
        let v = vault(dir.path(), store, &Key::generate().unwrap()).unwrap();
        let s = SecretString::from("same".to_string());
        let (c1, f1) = v.seal("o1", "c", 1, CredentialKind::Bearer, &s).unwrap();
        let (c2, f2) = v.seal("o1", "c", 1, CredentialKind::Bearer, &s).unwrap();
        let (_, f3) = v.seal("o2", "c", 1, CredentialKind::Bearer, &s).unwrap();
        assert_eq!(f1, f2, "same org, same secret");
        assert_ne!(c1, c2, "fresh nonce per seal");
        assert_ne!(f1, f3, "fingerprints are keyed per org");
        let plain = blake3::hash(b"bearer\0same").to_hex().to_string();
        assert!(!plain.starts_with(f1.trim_start_matches("kh:")));
    }
}
