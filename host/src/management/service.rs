//! [`ManagementService`]: every management operation, with authorization, tenant
//! isolation (another org's objects answer "not found"), validation with field paths,
//! atomic writes and an audit record per action.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::lifecycle::ConnectorLifecycle;
use super::model::*;
use crate::broker::host_pattern::HostPattern;
use crate::config_schema::FieldError;
use crate::health::HealthMonitor;
use crate::ingest::state::StoreStateStore;
use crate::runtime::plugin_log::TracingLogSink;
use crate::runtime::{
    ConnectorEnv, ConnectorSandbox, LoadError, LoadedPlugin, Runtime, TestReport,
};
use crate::store::{KvStore, KvStoreExt, StoreError, WriteOp};
use crate::vault::CredentialVault;

mod credentials;

mod health_ops;
pub use health_ops::ConnectorHealthView;

/// Why an operation failed. The API maps each to a status and a problem document.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No or unknown token (401).
    #[error("missing or invalid API token")]
    Unauthenticated,
    /// The role does not allow it (403).
    #[error("{0}")]
    Forbidden(String),
    /// Unknown id, or an object of another org (404).
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// Object kind.
        kind: &'static str,
        /// Id asked for.
        id: String,
    },
    /// Invalid input, with field paths (422).
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// Field errors.
        fields: Vec<FieldError>,
    },
    /// Conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// A plugin was refused at install (422).
    #[error("plugin refused: {0}")]
    PluginRefused(#[from] LoadError),
    /// A sandbox call failed in a way that is the plugin's fault (502).
    #[error("plugin call failed: {0}")]
    PluginCall(String),
    /// Storage failure (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    fn invalid(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ServiceError::Invalid {
            message: format!("{path}: {message}"),
            fields: vec![FieldError {
                path: path.to_string(),
                message,
            }],
        }
    }
}

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The wire name of a category (`threat-intel`).
fn category_code(c: crate::manifest::Category) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Body of `POST /v1/orgs/{org}/connectors`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorInput {
    /// Display name.
    pub name: String,
    /// Plugin id.
    pub plugin: String,
    /// Plugin version (default: newest installed).
    #[serde(default)]
    pub plugin_version: Option<String>,
    /// Configuration (default `{}`).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Slot → credential name.
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
    /// Granted host patterns (explicit; none by default).
    #[serde(default)]
    pub grants: Vec<String>,
    /// ISO 8601 duration (default `PT5M`).
    #[serde(default)]
    pub schedule: Option<String>,
    /// Start enabled (default false: test before activation).
    #[serde(default)]
    pub enabled: bool,
    /// Catalogue category (default: the plugin's). Only a generic plugin (category
    /// `custom-api`) takes another one, for the source it stands in for.
    #[serde(default)]
    pub category: Option<crate::manifest::Category>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Body of `PATCH /v1/orgs/{org}/connectors/{id}`: every field optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorPatch {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// Upgrade/downgrade to this plugin version.
    #[serde(default)]
    pub plugin_version: Option<String>,
    /// Replace the configuration.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// Replace the credential bindings.
    #[serde(default)]
    pub credentials: Option<BTreeMap<String, String>>,
    /// Replace the grants.
    #[serde(default)]
    pub grants: Option<Vec<String>>,
    /// New schedule.
    #[serde(default)]
    pub schedule: Option<String>,
    /// New catalogue category (generic plugins only; see `ConnectorInput::category`).
    #[serde(default)]
    pub category: Option<crate::manifest::Category>,
    /// What a crash loop does (`disable` or `ignore`); not a configuration revision.
    #[serde(default)]
    pub crash_loop_policy: Option<CrashLoopPolicy>,
}

/// Filters of the connector list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConnectorFilter {
    /// Plugin category.
    #[param(value_type = Option<crate::manifest::Category>)]
    pub category: Option<String>,
    /// `enabled` or `disabled`.
    #[param(pattern = "^(enabled|disabled)$")]
    pub status: Option<String>,
    /// Health state.
    #[param(value_type = Option<HealthState>)]
    pub health: Option<String>,
    /// Plugin id.
    pub plugin: Option<String>,
    /// Substring of the name (case-insensitive).
    pub q: Option<String>,
    /// Page size (default 50, max 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Result of unloading a plugin.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginDeleteOutcome {
    /// Versions removed.
    pub removed: Vec<String>,
    /// Connectors disabled first (forced).
    pub disabled_connectors: Vec<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn random_id(prefix: &str, bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| ServiceError::Store(StoreError::Backend(format!("no randomness: {e}"))))?;
    Ok(format!("{prefix}{}", hex::encode(buf)))
}

fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// Parse an ISO 8601 duration of the forms `PnDTnHnMnS` (weeks `PnW` too); seconds.
pub fn parse_iso8601_duration(s: &str) -> Option<u64> {
    let rest = s.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total: u64 = 0;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut num = String::new();
        let mut idx = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
            } else {
                let pos = units[idx..].iter().position(|(u, _)| *u == c)? + idx;
                let n: u64 = num.parse().ok()?;
                total = total.checked_add(n.checked_mul(units[pos].1)?)?;
                num.clear();
                idx = pos + 1;
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(t) = time {
        take(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    Some(total)
}

/// An installed plugin version: its record (mirrors the store) and, when its component
/// still loads, the loaded plugin.
struct InstalledPlugin {
    record: Arc<PluginRecord>,
    loaded: Option<LoadedPlugin>,
}

/// The management service.
pub struct ManagementService {
    store: Arc<dyn KvStore>,
    runtime: Runtime,
    /// Every installed plugin version, kept in memory so catalogue reads (every connector
    /// list, every GraphQL `Connector.plugin`) never touch the store. Changed only under
    /// `write`, after the store batch has been applied.
    plugins: parking_lot::RwLock<HashMap<(String, String), InstalledPlugin>>,
    write: tokio::sync::Mutex<()>,
    /// Health, hold-offs and metrics of every configured connector.
    health: Arc<HealthMonitor>,
    /// The credential vault (secrets, versions, keys); see [`crate::vault`].
    vault: CredentialVault,
    /// Ingestion's hook, awaited by every connector change (weak: the scheduler owns the
    /// service, not the other way round).
    lifecycle: parking_lot::RwLock<Option<std::sync::Weak<dyn ConnectorLifecycle>>>,
}

impl std::fmt::Debug for ManagementService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementService").finish_non_exhaustive()
    }
}

fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |v: &str| -> Vec<u64> {
        v.split(['-', '+'])
            .next()
            .unwrap_or("")
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parse(a).cmp(&parse(b)).then_with(|| a.cmp(b))
}

impl ManagementService {
    /// A service over `store`, loading every installed plugin into `runtime`; credentials
    /// live in `vault` (opened over the same store).
    pub async fn open(
        store: Arc<dyn KvStore>,
        runtime: Runtime,
        vault: CredentialVault,
    ) -> Result<Self> {
        crate::store::migrate(store.as_ref())?;
        let svc = ManagementService {
            store,
            runtime,
            plugins: parking_lot::RwLock::new(HashMap::new()),
            write: tokio::sync::Mutex::new(()),
            health: Arc::new(HealthMonitor::default()),
            vault,
            lifecycle: parking_lot::RwLock::new(None),
        };
        for (_, rec) in svc.store.scan_json::<PluginRecord>("plugin/")? {
            let loaded = match svc.store.get(&format!("blob/{}", rec.sha256))? {
                None => {
                    tracing::error!(plugin = %rec.id, version = %rec.version, "component bytes missing from the store");
                    None
                }
                Some(bytes) => match svc.runtime.load(&bytes).await {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::error!(plugin = %rec.id, version = %rec.version, error = %e, "installed plugin no longer loads");
                        None
                    }
                },
            };
            svc.plugins.write().insert(
                (rec.id.clone(), rec.version.clone()),
                InstalledPlugin {
                    record: Arc::new(rec),
                    loaded,
                },
            );
        }
        svc.register_health()?;
        Ok(svc)
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// Register ingestion's hook: every connector change awaits it before returning.
    pub fn set_lifecycle(&self, hook: std::sync::Weak<dyn ConnectorLifecycle>) {
        *self.lifecycle.write() = Some(hook);
    }

    fn lifecycle(&self) -> Option<Arc<dyn ConnectorLifecycle>> {
        self.lifecycle.read().as_ref().and_then(|w| w.upgrade())
    }

    async fn notify_changed(&self, rec: &ConnectorRecord) {
        if let Some(hook) = self.lifecycle() {
            hook.connector_changed(rec).await;
        }
    }

    /// Every configured connector of every org (ingestion resumes the enabled ones).
    pub fn all_connectors(&self) -> Result<Vec<ConnectorRecord>> {
        Ok(self
            .store
            .scan_json::<ConnectorRecord>("conn/")?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    /// A connector's record, without a principal (ingestion, push receivers).
    pub fn connector_record(&self, org: &str, id: &str) -> Result<ConnectorRecord> {
        self.get_connector_record(org, id)
    }

    /// The sandbox a connector's calls run in: its plugin version bound to
    /// [`ManagementService::connector_env`].
    pub fn connector_sandbox(&self, rec: &ConnectorRecord) -> Result<ConnectorSandbox> {
        let plugin = self.loaded(&rec.spec.plugin.id, &rec.spec.plugin.version)?;
        plugin
            .bind(self.connector_env(rec))
            .map_err(|e| ServiceError::Conflict(e.to_string()))
    }

    // ----- tokens and principals -------------------------------------------------------

    /// Resolve a bearer token.
    pub fn authenticate(&self, token: &str) -> Result<Principal> {
        let rec: TokenRecord = self
            .store
            .get_json(&format!("token/{}", token_hash(token)))?
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(Principal {
            token_id: rec.id,
            name: rec.name,
            org: rec.org,
            role: rec.role,
        })
    }

    /// Make sure a platform-admin token exists. With `preset`, that token is registered;
    /// otherwise a new one is created and returned (to be printed once).
    pub async fn bootstrap_admin(&self, preset: Option<&str>) -> Result<Option<String>> {
        let _g = self.write.lock().await;
        if let Some(token) = preset {
            if token.len() < 16 {
                return Err(ServiceError::invalid(
                    "PORTCULLIS_ADMIN_TOKEN",
                    "must be at least 16 characters",
                ));
            }
            let key = format!("token/{}", token_hash(token));
            if self.store.get(&key)?.is_none() {
                self.insert_token(None, "platform-admin", Role::Admin, "bootstrap", token)?;
            }
            return Ok(None);
        }
        let any_admin = self
            .store
            .scan_json::<TokenRecord>("token/")?
            .into_iter()
            .any(|(_, t)| t.org.is_none() && t.role == Role::Admin);
        if any_admin {
            return Ok(None);
        }
        let token = random_id("pcs_", 24)?;
        self.insert_token(None, "platform-admin", Role::Admin, "bootstrap", &token)?;
        Ok(Some(token))
    }

    fn insert_token(
        &self,
        org: Option<String>,
        name: &str,
        role: Role,
        by: &str,
        token: &str,
    ) -> Result<TokenRecord> {
        let rec = TokenRecord {
            id: random_id("tok_", 8)?,
            name: name.to_string(),
            org: org.clone(),
            role,
            hash: token_hash(token),
            created_at: now(),
            created_by: by.to_string(),
        };
        let audit = self.audit_op(
            by,
            org.as_deref(),
            "token.create",
            &format!("token/{}", rec.id),
            "ok",
            serde_json::json!({"role": role, "name": name}),
        )?;
        self.store.apply(vec![
            WriteOp::put_json(format!("token/{}", rec.hash), &rec)?,
            WriteOp::put_json(format!("tokenid/{}", rec.id), &rec.hash)?,
            audit,
        ])?;
        Ok(rec)
    }

    /// One audit record as a write, to apply in the same batch as the action it records.
    pub fn audit_op(
        &self,
        actor: &str,
        org: Option<&str>,
        action: &str,
        target: &str,
        outcome: &str,
        detail: serde_json::Value,
    ) -> Result<WriteOp> {
        let at = now();
        let id = format!(
            "{}-{}",
            chrono::Utc::now().timestamp_micros(),
            random_id("", 4)?
        );
        let rec = AuditRecord {
            id: id.clone(),
            at,
            actor: actor.to_string(),
            org: org.map(str::to_string),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
            detail,
        };
        Ok(WriteOp::put_json(
            format!("audit/{}/{id}", org.unwrap_or("_platform")),
            &rec,
        )?)
    }

    fn audit_now(
        &self,
        p: &Principal,
        org: Option<&str>,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> Result<()> {
        let op = self.audit_op(
            &p.actor(),
            org,
            action,
            target,
            outcome,
            serde_json::Value::Null,
        )?;
        self.store.apply(vec![op])?;
        Ok(())
    }

    // ----- authorization -----------------------------------------------------------------

    /// The org must exist and be visible to `p`; otherwise "not found".
    fn scope(&self, p: &Principal, org: &str) -> Result<Org> {
        if let Some(own) = &p.org
            && own != org
        {
            return Err(ServiceError::NotFound {
                kind: "organisation",
                id: org.to_string(),
            });
        }
        self.store
            .get_json::<Org>(&format!("org/{org}"))?
            .ok_or_else(|| ServiceError::NotFound {
                kind: "organisation",
                id: org.to_string(),
            })
    }

    fn require(p: &Principal, role: Role, what: &str) -> Result<()> {
        if p.role >= role {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "{what} needs the {role:?} role; this token is {:?}",
                p.role
            )))
        }
    }

    fn require_platform_admin(p: &Principal, what: &str) -> Result<()> {
        if p.is_platform_admin() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "{what} needs the platform admin token"
            )))
        }
    }

    // ----- organisations -------------------------------------------------------------------

    /// Create an organisation (platform admin).
    pub async fn create_org(&self, p: &Principal, id: &str, name: &str) -> Result<Org> {
        Self::require_platform_admin(p, "creating organisations")?;
        if !valid_slug(id) {
            return Err(ServiceError::invalid(
                "/id",
                "must match [a-z0-9][a-z0-9-]{0,62}",
            ));
        }
        if name.trim().is_empty() || name.len() > 200 {
            return Err(ServiceError::invalid("/name", "must be 1-200 characters"));
        }
        let _g = self.write.lock().await;
        if self.store.get(&format!("org/{id}"))?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "organisation {id:?} already exists"
            )));
        }
        let org = Org {
            id: id.to_string(),
            name: name.to_string(),
            created_at: now(),
            created_by: p.actor(),
        };
        let audit = self.audit_op(
            &p.actor(),
            Some(id),
            "org.create",
            &format!("org/{id}"),
            "ok",
            serde_json::Value::Null,
        )?;
        self.store
            .apply(vec![WriteOp::put_json(format!("org/{id}"), &org)?, audit])?;
        Ok(org)
    }

    /// Organisations visible to `p`.
    pub fn list_orgs(&self, p: &Principal) -> Result<Vec<Org>> {
        let all = self.store.scan_json::<Org>("org/")?;
        Ok(all
            .into_iter()
            .map(|(_, o)| o)
            .filter(|o| p.org.as_deref().is_none_or(|own| own == o.id))
            .collect())
    }

    /// One organisation.
    pub fn get_org(&self, p: &Principal, org: &str) -> Result<Org> {
        self.scope(p, org)
    }

    /// Create an org token (org admin or platform admin). Returns the token once.
    pub async fn create_token(
        &self,
        p: &Principal,
        org: &str,
        name: &str,
        role: Role,
    ) -> Result<(TokenRecord, String)> {
        self.scope(p, org)?;
        Self::require(p, Role::Admin, "creating tokens")?;
        if name.trim().is_empty() || name.len() > 200 {
            return Err(ServiceError::invalid("/name", "must be 1-200 characters"));
        }
        let token = random_id("pcs_", 24)?;
        let _g = self.write.lock().await;
        let mut rec = self.insert_token(Some(org.to_string()), name, role, &p.actor(), &token)?;
        rec.hash.clear();
        Ok((rec, token))
    }

    /// Tokens of an org (metadata only).
    pub fn list_tokens(&self, p: &Principal, org: &str) -> Result<Vec<TokenRecord>> {
        self.scope(p, org)?;
        Self::require(p, Role::Admin, "listing tokens")?;
        Ok(self
            .store
            .scan_json::<TokenRecord>("token/")?
            .into_iter()
            .map(|(_, mut t)| {
                t.hash.clear();
                t
            })
            .filter(|t| t.org.as_deref() == Some(org))
            .collect())
    }

    /// Revoke a token of an org.
    pub async fn delete_token(&self, p: &Principal, org: &str, token_id: &str) -> Result<()> {
        self.scope(p, org)?;
        Self::require(p, Role::Admin, "revoking tokens")?;
        let _g = self.write.lock().await;
        let not_found = || ServiceError::NotFound {
            kind: "token",
            id: token_id.to_string(),
        };
        let hash: String = self
            .store
            .get_json(&format!("tokenid/{token_id}"))?
            .ok_or_else(not_found)?;
        let rec: TokenRecord = self
            .store
            .get_json(&format!("token/{hash}"))?
            .ok_or_else(not_found)?;
        if rec.org.as_deref() != Some(org) {
            return Err(not_found());
        }
        let audit = self.audit_op(
            &p.actor(),
            Some(org),
            "token.revoke",
            &format!("token/{token_id}"),
            "ok",
            serde_json::Value::Null,
        )?;
        self.store.apply(vec![
            WriteOp::Delete(format!("token/{hash}")),
            WriteOp::Delete(format!("tokenid/{token_id}")),
            audit,
        ])?;
        Ok(())
    }

    // ----- plugins ----------------------------------------------------------------------

    /// Install a component (platform admin; `bundled` for the startup directory). Loading,
    /// validation and precompilation happen before anything is stored.
    pub async fn install_plugin(
        &self,
        p: &Principal,
        bytes: &[u8],
        bundled: bool,
    ) -> Result<(PluginRecord, bool)> {
        Self::require_platform_admin(p, "installing plugins")?;
        let loaded = match self.runtime.load(bytes).await {
            Ok(l) => l,
            Err(e) => {
                self.audit_now(
                    p,
                    None,
                    "plugin.install",
                    "plugin/?",
                    &format!("refused: {e}"),
                )?;
                return Err(e.into());
            }
        };
        let info = loaded.info().clone();
        let key = format!("plugin/{}/{}", info.manifest.id, info.manifest.version);
        let _g = self.write.lock().await;
        if let Some(existing) = self.store.get_json::<PluginRecord>(&key)? {
            if existing.sha256 == info.sha256 {
                return Ok((existing, false));
            }
            return Err(ServiceError::Conflict(format!(
                "plugin {} version {} is already installed with different contents (sha256 {}); bump the version",
                info.manifest.id, info.manifest.version, existing.sha256
            )));
        }
        let rec = PluginRecord {
            id: info.manifest.id.clone(),
            version: info.manifest.version.clone(),
            sha256: info.sha256.clone(),
            size: info.size,
            api_version: info.api_version.clone(),
            manifest: info.manifest.clone(),
            imports: info.imports.clone(),
            installed_at: now(),
            installed_by: p.actor(),
            bundled,
        };
        let audit = self.audit_op(
            &p.actor(),
            None,
            "plugin.install",
            &format!("plugin/{}/{}", rec.id, rec.version),
            "ok",
            serde_json::json!({"sha256": rec.sha256, "hosts": rec.manifest.hosts, "bundled": bundled}),
        )?;
        self.store.apply(vec![
            WriteOp::Put(format!("blob/{}", rec.sha256), bytes.to_vec()),
            WriteOp::put_json(&key, &rec)?,
            audit,
        ])?;
        self.plugins.write().insert(
            (rec.id.clone(), rec.version.clone()),
            InstalledPlugin {
                record: Arc::new(rec.clone()),
                loaded: Some(loaded),
            },
        );
        Ok((rec, true))
    }

    /// Every installed plugin version.
    pub fn list_plugins(&self) -> Result<Vec<PluginRecord>> {
        let mut v: Vec<PluginRecord> = self
            .plugins
            .read()
            .values()
            .map(|i| PluginRecord::clone(&i.record))
            .collect();
        v.sort_by(|a, b| {
            a.id.cmp(&b.id)
                .then_with(|| cmp_versions(&b.version, &a.version))
        });
        Ok(v)
    }

    /// One installed plugin version, if present.
    pub fn plugin_record(&self, id: &str, version: &str) -> Option<PluginRecord> {
        self.plugins
            .read()
            .get(&(id.to_string(), version.to_string()))
            .map(|i| PluginRecord::clone(&i.record))
    }

    /// One installed plugin version, shared (no copy of its manifest): for readers that
    /// look plugins up per connector, such as GraphQL's `Connector.plugin`.
    pub fn plugin_record_shared(&self, id: &str, version: &str) -> Option<Arc<PluginRecord>> {
        self.plugins
            .read()
            .get(&(id.to_string(), version.to_string()))
            .map(|i| i.record.clone())
    }

    /// Versions of one plugin, newest first.
    pub fn plugin_versions(&self, id: &str) -> Result<Vec<PluginRecord>> {
        let v: Vec<PluginRecord> = self
            .list_plugins()?
            .into_iter()
            .filter(|r| r.id == id)
            .collect();
        if v.is_empty() {
            return Err(ServiceError::NotFound {
                kind: "plugin",
                id: id.to_string(),
            });
        }
        Ok(v)
    }

    fn loaded(&self, id: &str, version: &str) -> Result<LoadedPlugin> {
        self.plugins
            .read()
            .get(&(id.to_string(), version.to_string()))
            .and_then(|i| i.loaded.clone())
            .ok_or_else(|| ServiceError::NotFound {
                kind: "plugin version",
                id: format!("{id}@{version}"),
            })
    }

    /// Unload a plugin (all versions, or one). Refused while connectors use it unless
    /// `force`, which disables those connectors first.
    pub async fn delete_plugin(
        &self,
        p: &Principal,
        id: &str,
        version: Option<&str>,
        force: bool,
    ) -> Result<PluginDeleteOutcome> {
        Self::require_platform_admin(p, "unloading plugins")?;
        let _g = self.write.lock().await;
        let versions: Vec<PluginRecord> = self
            .plugin_versions(id)?
            .into_iter()
            .filter(|r| version.is_none_or(|v| v == r.version))
            .collect();
        if versions.is_empty() {
            return Err(ServiceError::NotFound {
                kind: "plugin version",
                id: format!("{id}@{}", version.unwrap_or("")),
            });
        }
        let users: Vec<ConnectorRecord> = self
            .store
            .scan_json::<ConnectorRecord>("conn/")?
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| {
                c.spec.plugin.id == id
                    && versions.iter().any(|v| v.version == c.spec.plugin.version)
            })
            .collect();
        if !users.is_empty() && !force {
            let ids: Vec<String> = users
                .iter()
                .map(|c| format!("{}/{}", c.org, c.id))
                .collect();
            self.store.apply(vec![self.audit_op(
                &p.actor(),
                None,
                "plugin.unload",
                &format!("plugin/{id}"),
                "refused: in use",
                serde_json::json!({"connectors": ids}),
            )?])?;
            return Err(ServiceError::Conflict(format!(
                "plugin {id} is used by {} connector(s) ({}); disable or delete them, or pass ?force=true to disable them first",
                users.len(),
                ids.join(", ")
            )));
        }
        let mut ops = Vec::new();
        let mut disabled = Vec::new();
        let mut stopped = Vec::new();
        for mut c in users {
            if c.enabled {
                c.enabled = false;
                c.health = Health {
                    state: HealthState::Disabled,
                    reasons: vec!["PLUGIN_UNLOADED".into()],
                    since: now(),
                    details: Vec::new(),
                };
                self.health.set_enabled(&c.org, &c.id, false);
                c.updated_at = now();
                c.updated_by = p.actor();
                ops.push(self.audit_op(
                    &p.actor(),
                    Some(&c.org),
                    "connector.disable",
                    &format!("connector/{}", c.id),
                    "ok",
                    serde_json::json!({"reason": format!("plugin {id} force-unloaded")}),
                )?);
            }
            disabled.push(format!("{}/{}", c.org, c.id));
            ops.push(WriteOp::put_json(format!("conn/{}/{}", c.org, c.id), &c)?);
            stopped.push(c);
        }
        for v in &versions {
            ops.push(WriteOp::Delete(format!("plugin/{}/{}", v.id, v.version)));
            // The id and version come from the component itself, so no other installed
            // version can share these bytes.
            ops.push(WriteOp::Delete(format!("blob/{}", v.sha256)));
        }
        ops.push(self.audit_op(
            &p.actor(),
            None,
            "plugin.unload",
            &format!("plugin/{id}"),
            "ok",
            serde_json::json!({"versions": versions.iter().map(|v| &v.version).collect::<Vec<_>>(), "forced": force, "disabled_connectors": disabled}),
        )?);
        self.store.apply(ops)?;
        for c in &stopped {
            self.notify_changed(c).await;
        }
        let mut map = self.plugins.write();
        for v in &versions {
            map.remove(&(v.id.clone(), v.version.clone()));
        }
        Ok(PluginDeleteOutcome {
            removed: versions.into_iter().map(|v| v.version).collect(),
            disabled_connectors: disabled,
        })
    }

    // ----- connectors -------------------------------------------------------------------

    fn connector_key(org: &str, id: &str) -> String {
        format!("conn/{org}/{id}")
    }

    /// The list cursor that points at connector `id` of `org`: a page asked for with this
    /// cursor starts right after that connector (the form `next_cursor` has).
    pub fn connector_cursor(org: &str, id: &str) -> String {
        Self::connector_key(org, id)
    }

    fn get_connector_record(&self, org: &str, id: &str) -> Result<ConnectorRecord> {
        self.store
            .get_json(&Self::connector_key(org, id))?
            .ok_or_else(|| ServiceError::NotFound {
                kind: "connector",
                id: id.to_string(),
            })
    }

    /// Check a spec against its plugin; every problem as a field error.
    async fn validate_spec(&self, org: &str, spec: &ConnectorSpec) -> Result<LoadedPlugin> {
        let plugin = self
            .loaded(&spec.plugin.id, &spec.plugin.version)
            .map_err(|_| {
                ServiceError::invalid(
                    "/plugin",
                    format!(
                        "plugin {}@{} is not installed",
                        spec.plugin.id, spec.plugin.version
                    ),
                )
            })?;
        let manifest = plugin.manifest();
        let mut fields = Vec::new();
        if let Some(c) = spec.category
            && c != manifest.category
            && manifest.category != crate::manifest::Category::CustomApi
        {
            fields.push(FieldError {
                path: "/category".into(),
                message: format!(
                    "plugin {} is a {} connector; only a generic (custom-api) plugin takes another category",
                    manifest.id,
                    category_code(manifest.category)
                ),
            });
        }
        if spec.name.trim().is_empty() || spec.name.len() > 200 {
            fields.push(FieldError {
                path: "/name".into(),
                message: "must be 1-200 characters".into(),
            });
        }
        match parse_iso8601_duration(&spec.schedule) {
            Some(s) if s >= 10 => {}
            Some(_) => fields.push(FieldError {
                path: "/schedule".into(),
                message: "must be at least PT10S".into(),
            }),
            None => fields.push(FieldError {
                path: "/schedule".into(),
                message: format!(
                    "{:?} is not an ISO 8601 duration such as PT5M",
                    spec.schedule
                ),
            }),
        }
        let mut grants = Vec::new();
        for (i, g) in spec.grants.iter().enumerate() {
            match HostPattern::parse(g) {
                Ok(p) => {
                    if !manifest.host_patterns().iter().any(|d| d.covers(&p)) {
                        fields.push(FieldError {
                            path: format!("/grants/{i}"),
                            message: format!(
                                "{g} is not among the hosts plugin {} requests ({})",
                                manifest.id,
                                manifest.hosts.join(", ")
                            ),
                        });
                    }
                    grants.push(p);
                }
                Err(e) => fields.push(FieldError {
                    path: format!("/grants/{i}"),
                    message: e.to_string(),
                }),
            }
        }
        for (slot, cred) in &spec.credentials {
            if manifest.slot(slot).is_none() {
                fields.push(FieldError {
                    path: format!("/credentials/{slot}"),
                    message: format!(
                        "plugin {} has no credential slot {slot:?} (slots: {})",
                        manifest.id,
                        manifest
                            .credential_slots
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            if !valid_slug(cred) {
                fields.push(FieldError {
                    path: format!("/credentials/{slot}"),
                    message: "credential names match [a-z0-9][a-z0-9-]*".into(),
                });
            } else if let Some(message) = self.binding_problem(org, manifest.slot(slot), cred)? {
                fields.push(FieldError {
                    path: format!("/credentials/{slot}"),
                    message,
                });
            }
        }
        for slot in manifest.credential_slots.iter().filter(|s| s.required) {
            if !spec.credentials.contains_key(&slot.name) {
                fields.push(FieldError {
                    path: format!("/credentials/{}", slot.name),
                    message: "this slot is required".into(),
                });
            }
        }
        let env = ConnectorEnv::isolated("validate");
        let sandbox = plugin
            .bind(env)
            .map_err(|e| ServiceError::invalid("/grants", e.to_string()))?;
        match sandbox.validate_config(&spec.config).await {
            Ok(errs) => fields.extend(errs.into_iter().map(|e| FieldError {
                path: format!("/config{}", e.path),
                message: e.message,
            })),
            Err(e) => return Err(ServiceError::PluginCall(format!("validate-config: {e}"))),
        }
        if !fields.is_empty() {
            return Err(ServiceError::Invalid {
                message: format!("{} invalid field(s)", fields.len()),
                fields,
            });
        }
        Ok(plugin)
    }

    fn newest_version(&self, id: &str) -> Result<String> {
        self.plugin_versions(id)
            .map_err(|_| {
                ServiceError::invalid("/plugin", format!("plugin {id:?} is not installed"))
            })?
            .into_iter()
            .next()
            .map(|r| r.version)
            .ok_or_else(|| {
                ServiceError::invalid("/plugin", format!("plugin {id:?} is not installed"))
            })
    }

    /// Create a connector (operator).
    pub async fn create_connector(
        &self,
        p: &Principal,
        org: &str,
        input: ConnectorInput,
    ) -> Result<ConnectorRecord> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "creating connectors")?;
        let version = match &input.plugin_version {
            Some(v) => v.clone(),
            None => self.newest_version(&input.plugin)?,
        };
        let spec = ConnectorSpec {
            name: input.name,
            plugin: PluginRef {
                id: input.plugin,
                version,
            },
            config: input.config,
            credentials: input.credentials,
            grants: input.grants,
            schedule: input.schedule.unwrap_or_else(|| "PT5M".into()),
            category: input.category,
        };
        let plugin = self.validate_spec(org, &spec).await?;
        let mut spec = spec;
        spec.category = Some(spec.category.unwrap_or(plugin.manifest().category));
        let at = now();
        let rec = ConnectorRecord {
            id: random_id("con_", 8)?,
            org: org.to_string(),
            spec: spec.clone(),
            enabled: input.enabled,
            health: Health::new(
                if input.enabled {
                    HealthState::Unknown
                } else {
                    HealthState::Disabled
                },
                at.clone(),
            ),
            crash_loop_policy: CrashLoopPolicy::default(),
            revision: 1,
            created_at: at.clone(),
            created_by: p.actor(),
            updated_at: at.clone(),
            updated_by: p.actor(),
            last_test: None,
        };
        let rev = Revision {
            revision: 1,
            author: p.actor(),
            at,
            change: "created".into(),
            spec,
        };
        let _g = self.write.lock().await;
        let audit = self.audit_op(
            &p.actor(),
            Some(org),
            "connector.create",
            &format!("connector/{}", rec.id),
            "ok",
            serde_json::json!({"plugin": rec.spec.plugin}),
        )?;
        self.store.apply(vec![
            WriteOp::put_json(Self::connector_key(org, &rec.id), &rec)?,
            WriteOp::put_json(format!("rev/{org}/{}/{:010}", rec.id, 1), &rev)?,
            audit,
        ])?;
        self.health
            .register(org, &rec.id, &rec.spec.plugin.id, rec.enabled, None);
        if rec.enabled {
            self.notify_changed(&rec).await;
        }
        Ok(rec)
    }

    /// One connector.
    pub fn get_connector(&self, p: &Principal, org: &str, id: &str) -> Result<ConnectorRecord> {
        self.scope(p, org)?;
        self.get_connector_record(org, id)
    }

    /// Connectors of an org, filtered, one page (and the cursor of the next).
    pub fn list_connectors(
        &self,
        p: &Principal,
        org: &str,
        filter: &ConnectorFilter,
    ) -> Result<(Vec<ConnectorRecord>, Option<String>)> {
        self.scope(p, org)?;
        let limit = filter.limit.unwrap_or(50);
        if limit == 0 || limit > 500 {
            return Err(ServiceError::invalid("/limit", "must be 1-500"));
        }
        let categories: HashMap<(String, String), String> = if filter.category.is_some() {
            self.plugins
                .read()
                .iter()
                .map(|(key, i)| (key.clone(), category_code(i.record.manifest.category)))
                .collect()
        } else {
            HashMap::new()
        };
        let q = filter.q.as_deref().map(str::to_lowercase);
        let mut out = Vec::new();
        let mut next = None;
        for (key, c) in self
            .store
            .scan_json::<ConnectorRecord>(&format!("conn/{org}/"))?
        {
            if let Some(cur) = &filter.cursor
                && key.as_str() <= cur.as_str()
            {
                continue;
            }
            if let Some(cat) = &filter.category {
                let effective = match c.spec.category {
                    Some(own) => Some(category_code(own).to_string()),
                    None => categories
                        .get(&(c.spec.plugin.id.clone(), c.spec.plugin.version.clone()))
                        .cloned(),
                };
                if effective.as_ref() != Some(cat) {
                    continue;
                }
            }
            if let Some(st) = &filter.status {
                let want = match st.as_str() {
                    "enabled" => true,
                    "disabled" => false,
                    _ => {
                        return Err(ServiceError::invalid(
                            "/status",
                            "must be enabled or disabled",
                        ));
                    }
                };
                if c.enabled != want {
                    continue;
                }
            }
            if let Some(h) = &filter.health
                && serde_json::to_value(c.health.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .as_deref()
                    != Some(h.as_str())
            {
                continue;
            }
            if let Some(pl) = &filter.plugin
                && &c.spec.plugin.id != pl
            {
                continue;
            }
            if let Some(q) = &q
                && !c.spec.name.to_lowercase().contains(q)
            {
                continue;
            }
            if out.len() == limit {
                next = out
                    .last()
                    .map(|c: &ConnectorRecord| Self::connector_key(org, &c.id));
                break;
            }
            out.push(c);
        }
        Ok((out, next))
    }

    /// Update a connector: a new revision.
    pub async fn update_connector(
        &self,
        p: &Principal,
        org: &str,
        id: &str,
        patch: ConnectorPatch,
    ) -> Result<(ConnectorRecord, Option<serde_json::Value>)> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "changing connectors")?;
        let _g = self.write.lock().await;
        let mut rec = self.get_connector_record(org, id)?;
        let mut spec = rec.spec.clone();
        let mut change = "updated";
        let mut diff = None;
        if let Some(v) = patch.plugin_version
            && v != spec.plugin.version
        {
            let old = self.loaded(&spec.plugin.id, &spec.plugin.version).ok();
            let new = self.loaded(&spec.plugin.id, &v).map_err(|_| {
                ServiceError::invalid(
                    "/plugin_version",
                    format!("plugin {}@{v} is not installed", spec.plugin.id),
                )
            })?;
            diff = Some(capability_diff(
                old.as_ref().map(|o| o.manifest()),
                new.manifest(),
            ));
            spec.plugin.version = v;
            change = "upgraded";
        }
        if let Some(n) = patch.name {
            spec.name = n;
        }
        if let Some(c) = patch.config {
            spec.config = c;
        }
        if let Some(c) = patch.credentials {
            spec.credentials = c;
        }
        if let Some(g) = patch.grants {
            spec.grants = g;
        }
        if let Some(s) = patch.schedule {
            spec.schedule = s;
        }
        if let Some(c) = patch.category {
            spec.category = Some(c);
        }
        let policy_change = patch
            .crash_loop_policy
            .filter(|c| *c != rec.crash_loop_policy);
        if let Some(policy) = policy_change {
            rec.crash_loop_policy = policy;
        }
        if spec == rec.spec {
            if let Some(policy) = policy_change {
                self.save_crash_loop_policy(p, &rec, policy)?;
            }
            return Ok((rec, diff));
        }
        self.validate_spec(org, &spec).await?;
        rec.spec = spec.clone();
        rec.revision += 1;
        rec.updated_at = now();
        rec.updated_by = p.actor();
        let rev = Revision {
            revision: rec.revision,
            author: p.actor(),
            at: rec.updated_at.clone(),
            change: change.into(),
            spec,
        };
        let audit = self.audit_op(
            &p.actor(),
            Some(org),
            &format!("connector.{change}"),
            &format!("connector/{id}"),
            "ok",
            serde_json::json!({"revision": rec.revision, "capability_diff": diff}),
        )?;
        self.store.apply(vec![
            WriteOp::put_json(Self::connector_key(org, id), &rec)?,
            WriteOp::put_json(format!("rev/{org}/{id}/{:010}", rec.revision), &rev)?,
            audit,
        ])?;
        self.health
            .register(org, id, &rec.spec.plugin.id, rec.enabled, None);
        if rec.enabled {
            self.notify_changed(&rec).await;
        }
        Ok((rec, diff))
    }

    /// Revisions, oldest first.
    pub fn revisions(&self, p: &Principal, org: &str, id: &str) -> Result<Vec<Revision>> {
        self.scope(p, org)?;
        self.get_connector_record(org, id)?;
        Ok(self
            .store
            .scan_json::<Revision>(&format!("rev/{org}/{id}/"))?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Enable or disable (operator). Keeps config, credentials, grants, cursor and history.
    pub async fn set_enabled(
        &self,
        p: &Principal,
        org: &str,
        id: &str,
        enabled: bool,
    ) -> Result<ConnectorRecord> {
        self.set_enabled_because(p, org, id, enabled, None).await
    }

    /// [`ManagementService::set_enabled`] with the health to record and the audit detail
    /// saying why (the crash-loop policy's automatic disable).
    pub(crate) async fn set_enabled_because(
        &self,
        p: &Principal,
        org: &str,
        id: &str,
        enabled: bool,
        because: Option<(Health, serde_json::Value)>,
    ) -> Result<ConnectorRecord> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "enabling or disabling connectors")?;
        // Disabling stops ingestion first, so silence does not wait for the write lock;
        // should the disable itself fail, ingestion is restarted below.
        let pre_stopped = if enabled {
            false
        } else {
            let mut current = self.get_connector_record(org, id)?;
            let was_enabled = current.enabled;
            if was_enabled {
                current.enabled = false;
                self.notify_changed(&current).await;
            }
            was_enabled
        };
        let _g = self.write.lock().await;
        let result = self.set_enabled_locked(p, org, id, enabled, because).await;
        if result.is_err()
            && pre_stopped
            && let Ok(current) = self.get_connector_record(org, id)
            && current.enabled
        {
            // Not disabled after all: resume what was stopped.
            self.notify_changed(&current).await;
        }
        result
    }

    async fn set_enabled_locked(
        &self,
        p: &Principal,
        org: &str,
        id: &str,
        enabled: bool,
        because: Option<(Health, serde_json::Value)>,
    ) -> Result<ConnectorRecord> {
        let mut rec = self.get_connector_record(org, id)?;
        if rec.enabled == enabled {
            if !enabled {
                // Disabled meanwhile by someone else: make sure it is stopped.
                self.notify_changed(&rec).await;
            }
            return Ok(rec);
        }
        if enabled {
            self.loaded(&rec.spec.plugin.id, &rec.spec.plugin.version)
                .map_err(|_| ServiceError::Conflict(format!(
                    "plugin {}@{} is not installed; upgrade the connector to an installed version first",
                    rec.spec.plugin.id, rec.spec.plugin.version
                )))?;
        }
        rec.enabled = enabled;
        let (health, detail) = because.unwrap_or_else(|| {
            let state = if enabled {
                HealthState::Unknown
            } else {
                HealthState::Disabled
            };
            (Health::new(state, now()), serde_json::Value::Null)
        });
        rec.health = health;
        self.health.set_enabled(org, id, enabled);
        rec.updated_at = now();
        rec.updated_by = p.actor();
        let action = if enabled {
            "connector.enable"
        } else {
            "connector.disable"
        };
        let audit = self.audit_op(
            &p.actor(),
            Some(org),
            action,
            &format!("connector/{id}"),
            "ok",
            detail,
        )?;
        self.store.apply(vec![
            WriteOp::put_json(Self::connector_key(org, id), &rec)?,
            audit,
        ])?;
        // Enabling starts ingestion; disabling returns only once it has stopped.
        self.notify_changed(&rec).await;
        Ok(rec)
    }

    /// Delete a connector with its revisions.
    pub async fn delete_connector(&self, p: &Principal, org: &str, id: &str) -> Result<()> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "deleting connectors")?;
        let _g = self.write.lock().await;
        self.get_connector_record(org, id)?;
        let mut ops: Vec<WriteOp> = self
            .store
            .scan_prefix(&format!("rev/{org}/{id}/"))?
            .into_iter()
            .map(|(k, _)| WriteOp::Delete(k))
            .collect();
        ops.push(WriteOp::Delete(Self::connector_key(org, id)));
        ops.push(WriteOp::Delete(format!("cursor/{org}/{id}")));
        // Its webhook secret (ingest::webhook) goes with it.
        ops.push(WriteOp::Delete(format!("webhook/{id}")));
        ops.extend(self.health_history_deletes(org, id)?);
        self.health.forget(org, id);
        ops.push(self.audit_op(
            &p.actor(),
            Some(org),
            "connector.delete",
            &format!("connector/{id}"),
            "ok",
            serde_json::Value::Null,
        )?);
        self.store.apply(ops)?;
        if let Some(hook) = self.lifecycle() {
            hook.connector_deleted(org, id).await;
        }
        Ok(())
    }

    /// The health monitor (shared with ingestion, the API and the health worker).
    pub fn health(&self) -> &Arc<HealthMonitor> {
        &self.health
    }

    /// The environment a connector's plugin calls run in: its org and id, the granted
    /// hosts, its credential bindings, its state space and log sink. The one place that
    /// builds it, for tests, polls and pushed input alike.
    pub fn connector_env(&self, rec: &ConnectorRecord) -> ConnectorEnv {
        self.connector_env_pinned(rec, None)
    }

    /// [`ManagementService::connector_env`] with credential `pin.0` resolved to version
    /// `pin.1` instead of its promoted version (testing a pending credential version).
    fn connector_env_pinned(
        &self,
        rec: &ConnectorRecord,
        pin: Option<(String, u32)>,
    ) -> ConnectorEnv {
        let grants = rec
            .spec
            .grants
            .iter()
            .filter_map(|g| HostPattern::parse(g).ok())
            .collect();
        // Answers to a version that is not in use (a credential test) say nothing about
        // the connector's health.
        let upstream = pin
            .is_none()
            .then(|| self.health.recorder(&rec.org, &rec.id));
        ConnectorEnv {
            org_id: Some(rec.org.clone()),
            connector_id: rec.id.clone(),
            grants,
            // Resolved slot → name → promoted version on every request, so a promotion
            // takes effect on the next request without rebuilding anything.
            credentials: Arc::new(
                self.vault
                    .source(&rec.org, rec.spec.credentials.clone(), pin),
            ),
            state: Arc::new(StoreStateStore::new(self.store.clone(), &rec.org, &rec.id)),
            log_sink: Arc::new(TracingLogSink),
            upstream,
        }
    }

    /// Run `test-connection` in the sandbox (allowed on disabled connectors).
    pub async fn test_connector(&self, p: &Principal, org: &str, id: &str) -> Result<TestReport> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "testing connectors")?;
        let rec = self.get_connector_record(org, id)?;
        let plugin = self.loaded(&rec.spec.plugin.id, &rec.spec.plugin.version)?;
        let env = self.connector_env(&rec);
        let sandbox = plugin
            .bind(env)
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let report = match sandbox.test_connection(&rec.spec.config).await {
            Ok(r) => r,
            Err(e) => plugin_failure_report(&e),
        };
        let _g = self.write.lock().await;
        if let Ok(mut cur) = self.get_connector_record(org, id) {
            cur.last_test = serde_json::to_value(LastTest {
                at: now(),
                by: p.actor(),
                ok: report.ok,
                latency_ms: report.latency_ms,
                stages: report.stages.clone(),
            })
            .ok();
            let audit = self.audit_op(
                &p.actor(),
                Some(org),
                "connector.test",
                &format!("connector/{id}"),
                if report.ok { "ok" } else { "failed" },
                serde_json::Value::Null,
            )?;
            self.store.apply(vec![
                WriteOp::put_json(Self::connector_key(org, id), &cur)?,
                audit,
            ])?;
        }
        Ok(report)
    }

    /// Audit records of an org (or platform-wide for the platform admin with `org = None`).
    pub fn audit(
        &self,
        p: &Principal,
        org: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>> {
        let prefix = match org {
            Some(o) => {
                self.scope(p, o)?;
                Self::require(p, Role::Viewer, "reading the audit log")?;
                format!("audit/{o}/")
            }
            None => {
                Self::require_platform_admin(p, "reading the platform audit log")?;
                "audit/".into()
            }
        };
        let mut v: Vec<AuditRecord> = self
            .store
            .scan_json::<AuditRecord>(&prefix)?
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        v.sort_by(|a, b| b.id.cmp(&a.id));
        v.truncate(limit.clamp(1, 1000));
        Ok(v)
    }
}

/// What changes between two plugin versions' capabilities.
fn capability_diff(
    old: Option<&crate::manifest::Manifest>,
    new: &crate::manifest::Manifest,
) -> serde_json::Value {
    let old_hosts: Vec<String> = old.map(|m| m.hosts.clone()).unwrap_or_default();
    let old_slots: Vec<String> = old
        .map(|m| m.credential_slots.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    let new_slots: Vec<String> = new
        .credential_slots
        .iter()
        .map(|s| s.name.clone())
        .collect();
    serde_json::json!({
        "from": old.map(|m| m.version.clone()),
        "to": new.version,
        "hosts_added": new.hosts.iter().filter(|h| !old_hosts.contains(h)).collect::<Vec<_>>(),
        "hosts_removed": old_hosts.iter().filter(|h| !new.hosts.contains(h)).collect::<Vec<_>>(),
        "credential_slots_added": new_slots.iter().filter(|s| !old_slots.contains(s)).collect::<Vec<_>>(),
        "credential_slots_removed": old_slots.iter().filter(|s| !new_slots.contains(s)).collect::<Vec<_>>(),
        "accepts_push": {"from": old.map(|m| m.accepts_push), "to": new.accepts_push},
        "note": "new hosts are not granted automatically; add them to `grants` explicitly",
    })
}

/// The report of a `test-connection` call that failed in the plugin itself (trapped,
/// timed out, refused): one failed `plugin` stage carrying the error.
fn plugin_failure_report(e: &impl std::fmt::Display) -> TestReport {
    TestReport {
        ok: false,
        latency_ms: 0,
        stages: vec![crate::runtime::TestStage {
            name: "plugin".into(),
            ok: false,
            message: e.to_string(),
            latency_ms: None,
        }],
        sample: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        assert_eq!(parse_iso8601_duration("PT5M"), Some(300));
        assert_eq!(parse_iso8601_duration("PT1H30M"), Some(5400));
        assert_eq!(parse_iso8601_duration("P1DT1S"), Some(86401));
        assert_eq!(parse_iso8601_duration("P2W"), Some(1_209_600));
        assert_eq!(parse_iso8601_duration("PT"), None);
        assert_eq!(parse_iso8601_duration("5M"), None);
        assert_eq!(parse_iso8601_duration("PT5X"), None);
        assert_eq!(parse_iso8601_duration("PTM"), None);
        assert_eq!(parse_iso8601_duration("PT5M1H"), None);
    }
}
