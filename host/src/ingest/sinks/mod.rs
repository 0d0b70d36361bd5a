//! Sinks configured per organisation, and the [`SinkRegistry`] the delivery pipeline asks
//! for an org's sinks.
//!
//! An org's configuration ([`OrgSinks`], `GET/PUT /v1/orgs/{org}/sinks`) is the embedded
//! event store switch plus a list of extra sinks:
//! - `event_store` (default `true`): the embedded sled event store. Leaving the key out
//!   of a `PUT` keeps it on; only an explicit `"event_store": false` turns it off, so it
//!   cannot be removed by accident (e.g. by a client that only knows about `sinks`).
//! - [`SinkSpec::Ndjson`]: [`ndjson::NdjsonSink`] writing
//!   `<data_dir>/sinks/<org>/<name>.ndjson` (the path is not configurable: an org
//!   operator must not choose where the host writes).
//! - [`SinkSpec::HttpForward`]: [`http_forward::HttpForwardSink`]. Its secrets (bearer
//!   token, OAuth client secret) are write-only: a `GET` leaves them out and says
//!   `secret_set: true`; a `PUT` that leaves a secret out keeps the stored one of the
//!   sink with the same name. With a credential vault attached (as the server does) they
//!   are stored sealed (`sealed:1:<fingerprint>:<ciphertext>`, XChaCha20-Poly1305 under
//!   the org's data key) and opened only when the sink is built.
//!
//! Stored at `sinks/<org>` as one record; the registry caches the built sinks per org and
//! rebuilds them when the configuration changes.

pub mod http_forward;
pub mod ndjson;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sink::EventSink;
use crate::broker::ip_policy::IpPolicy;
use crate::broker::oauth::OAuthTokenCache;
use crate::config_schema::FieldError;
use crate::store::{KvStore, KvStoreExt, StoreError, WriteOp};
use http_forward::{BodyFormat, ForwardAuth, ForwardSettings, HttpForwardSink, RetryPolicy};
use ndjson::NdjsonSink;

/// Most extra sinks per org.
pub const MAX_SINKS: usize = 8;

/// An org's sink configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSinks {
    /// Deliver into the embedded event store (default `true`; only an explicit `false`
    /// turns it off).
    #[serde(default = "yes")]
    pub event_store: bool,
    /// Extra sinks, each with a unique `name`.
    #[serde(default)]
    pub sinks: Vec<SinkSpec>,
}

fn yes() -> bool {
    true
}

impl Default for OrgSinks {
    fn default() -> Self {
        OrgSinks {
            event_store: true,
            sinks: Vec::new(),
        }
    }
}

/// One extra sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SinkSpec {
    /// NDJSON files with size-based rotation.
    Ndjson(NdjsonSpec),
    /// Batched HTTP POST.
    HttpForward(HttpForwardSpec),
}

impl SinkSpec {
    fn name(&self) -> &str {
        match self {
            SinkSpec::Ndjson(s) => &s.name,
            SinkSpec::HttpForward(s) => &s.name,
        }
    }
}

/// `{"type": "ndjson", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NdjsonSpec {
    /// Sink name and file stem (`[a-z0-9][a-z0-9-]*`, ≤ 64).
    pub name: String,
    /// Rotate past this size (1–4096 MiB; default 64).
    #[serde(default = "default_file_mib")]
    pub max_file_mib: u64,
    /// Rotated files kept (0–100; default 5).
    #[serde(default = "default_keep")]
    pub keep_files: usize,
}

fn default_file_mib() -> u64 {
    64
}
fn default_keep() -> usize {
    5
}

/// `{"type": "http-forward", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpForwardSpec {
    /// Sink name (`[a-z0-9][a-z0-9-]*`, ≤ 64).
    pub name: String,
    /// Target URL (`http` or `https`), e.g. `https://api.threathawk.example/v1/events`.
    pub url: String,
    /// `unified` (default: the unified events) or `threathawk`
    /// (`{timestamp, source, event_type, payload}`).
    #[serde(default = "default_format")]
    pub format: String,
    /// Events per request (1–10000; default 1000).
    #[serde(default = "default_batch")]
    pub batch_max_events: usize,
    /// gzip request bodies (default true).
    #[serde(default = "yes")]
    pub gzip: bool,
    /// Per-request timeout in seconds (1–300; default 30).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Attempts per delivery before the batch is reported unavailable (1–20; default 8).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Authentication (default none).
    #[serde(default)]
    pub auth: ForwardAuthSpec,
}

fn default_format() -> String {
    "unified".into()
}
fn default_batch() -> usize {
    1000
}
fn default_timeout() -> u64 {
    30
}
fn default_attempts() -> u32 {
    8
}

/// Authentication of an HTTP forward sink. Secrets are write-only.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ForwardAuthSpec {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token (write-only; omit to keep the stored one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Set in responses: a token is stored.
        #[serde(default)]
        secret_set: bool,
    },
    /// OAuth 2.0 client credentials.
    Oauth2ClientCredentials {
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret (write-only; omit to keep the stored one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<String>,
        /// Scopes to request.
        #[serde(default)]
        scopes: Vec<String>,
        /// Set in responses: a secret is stored.
        #[serde(default)]
        secret_set: bool,
    },
}

impl ForwardAuthSpec {
    fn secret(&self) -> Option<&String> {
        match self {
            ForwardAuthSpec::None => None,
            ForwardAuthSpec::Bearer { token, .. } => token.as_ref(),
            ForwardAuthSpec::Oauth2ClientCredentials { client_secret, .. } => {
                client_secret.as_ref()
            }
        }
    }

    fn set_secret(&mut self, value: Option<String>) {
        match self {
            ForwardAuthSpec::None => {}
            ForwardAuthSpec::Bearer { token, secret_set } => {
                *secret_set = value.is_some();
                *token = value;
            }
            ForwardAuthSpec::Oauth2ClientCredentials {
                client_secret,
                secret_set,
                ..
            } => {
                *secret_set = value.is_some();
                *client_secret = value;
            }
        }
    }

    fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl OrgSinks {
    /// The configuration as the API shows it: secrets left out, `secret_set` telling.
    pub fn redacted(&self) -> OrgSinks {
        let mut out = self.clone();
        for s in &mut out.sinks {
            if let SinkSpec::HttpForward(h) = s {
                let had = h.auth.secret().is_some();
                h.auth.set_secret(None);
                match &mut h.auth {
                    ForwardAuthSpec::Bearer { secret_set, .. }
                    | ForwardAuthSpec::Oauth2ClientCredentials { secret_set, .. } => {
                        *secret_set = had
                    }
                    ForwardAuthSpec::None => {}
                }
            }
        }
        out
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn http_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err("must be an http or https URL with a host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials; use `auth`".into());
    }
    Ok(u)
}

/// Check a configuration; every problem as a field error (JSON Pointer).
pub fn validate(cfg: &OrgSinks, policy: IpPolicy) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut push = |path: String, message: String| errs.push(FieldError { path, message });
    if cfg.sinks.len() > MAX_SINKS {
        push("/sinks".into(), format!("at most {MAX_SINKS} sinks"));
    }
    let mut names = std::collections::HashSet::new();
    for (i, s) in cfg.sinks.iter().enumerate() {
        let p = format!("/sinks/{i}");
        if !valid_name(s.name()) {
            push(
                format!("{p}/name"),
                "must match [a-z0-9][a-z0-9-]* (at most 64 characters)".into(),
            );
        } else if !names.insert(s.name().to_string()) {
            push(format!("{p}/name"), format!("{:?} is used twice", s.name()));
        }
        match s {
            SinkSpec::Ndjson(n) => {
                if !(1..=4096).contains(&n.max_file_mib) {
                    push(format!("{p}/max_file_mib"), "must be 1-4096".into());
                }
                if n.keep_files > 100 {
                    push(format!("{p}/keep_files"), "must be 0-100".into());
                }
            }
            SinkSpec::HttpForward(h) => {
                match http_url(&h.url) {
                    Err(m) => push(format!("{p}/url"), m),
                    Ok(u) => {
                        if let Err(m) = http_forward::check_literal_host(&u, policy) {
                            push(format!("{p}/url"), m);
                        }
                    }
                }
                if !matches!(h.format.as_str(), "unified" | "threathawk") {
                    push(
                        format!("{p}/format"),
                        "must be `unified` or `threathawk`".into(),
                    );
                }
                if !(1..=10_000).contains(&h.batch_max_events) {
                    push(format!("{p}/batch_max_events"), "must be 1-10000".into());
                }
                if !(1..=300).contains(&h.timeout_secs) {
                    push(format!("{p}/timeout_secs"), "must be 1-300".into());
                }
                if !(1..=20).contains(&h.max_attempts) {
                    push(format!("{p}/max_attempts"), "must be 1-20".into());
                }
                match &h.auth {
                    ForwardAuthSpec::None => {}
                    ForwardAuthSpec::Bearer { token, .. } => {
                        if token.as_ref().is_none_or(|t| t.trim().is_empty()) {
                            push(format!("{p}/auth/token"), "required".into());
                        }
                    }
                    ForwardAuthSpec::Oauth2ClientCredentials {
                        token_url,
                        client_id,
                        client_secret,
                        ..
                    } => {
                        if let Err(m) = http_url(token_url) {
                            push(format!("{p}/auth/token_url"), m);
                        }
                        if client_id.trim().is_empty() {
                            push(format!("{p}/auth/client_id"), "required".into());
                        }
                        if client_secret.as_ref().is_none_or(|t| t.is_empty()) {
                            push(format!("{p}/auth/client_secret"), "required".into());
                        }
                    }
                }
            }
        }
    }
    errs
}

/// Why a sink configuration was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SinkConfigError {
    /// Field errors.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Settings {
    files_dir: Option<PathBuf>,
    policy: IpPolicy,
    vault: Option<crate::vault::CredentialVault>,
}

const SEALED: &str = "sealed:";

fn vault_name(sink: &str) -> String {
    format!("sink:{sink}")
}

fn seal(
    vault: &crate::vault::CredentialVault,
    org: &str,
    sink: &str,
    secret: &str,
) -> Result<String, String> {
    let (sealed, fingerprint) = vault
        .seal(
            org,
            &vault_name(sink),
            1,
            crate::manifest::CredentialKind::Bearer,
            &SecretString::from(secret.to_string()),
        )
        .map_err(|e| e.to_string())?;
    Ok(format!("{SEALED}1:{fingerprint}:{sealed}"))
}

fn unseal(
    vault: Option<&crate::vault::CredentialVault>,
    org: &str,
    sink: &str,
    stored: &str,
) -> Result<String, String> {
    let Some(rest) = stored.strip_prefix(SEALED) else {
        return Ok(stored.to_string());
    };
    let vault = vault.ok_or("the secret is sealed but no credential vault is attached")?;
    let mut parts = rest.splitn(3, ':');
    let (Some(version), Some(fingerprint), Some(sealed)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err("sealed secret is malformed".into());
    };
    // `fingerprint` is `kh:<hex>`: rejoin what `splitn` cut at its colon.
    let (fingerprint, sealed) = match sealed.split_once(':') {
        Some((fp_rest, s)) if fingerprint == "kh" => (format!("kh:{fp_rest}"), s.to_string()),
        _ => (fingerprint.to_string(), sealed.to_string()),
    };
    let v = crate::vault::record::StoredVersion {
        version: version
            .parse()
            .map_err(|_| "sealed secret version".to_string())?,
        created_at: String::new(),
        created_by: String::new(),
        public: Default::default(),
        hosts: Vec::new(),
        expires_at: None,
        fingerprint,
        sealed,
        last_test: None,
    };
    vault
        .open_secret(org, &vault_name(sink), &v)
        .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_string())
        .map_err(|e| e.to_string())
}

/// Built sinks of one org, in delivery order.
type OrgSinkList = Arc<Vec<Arc<dyn EventSink>>>;

/// The org's sinks, built from their configuration and cached.
pub struct SinkRegistry {
    store: Arc<dyn KvStore>,
    settings: parking_lot::RwLock<Settings>,
    event_store: parking_lot::RwLock<Option<Arc<dyn EventSink>>>,
    built: parking_lot::RwLock<HashMap<String, OrgSinkList>>,
    tokens: Arc<OAuthTokenCache>,
}

impl std::fmt::Debug for SinkRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkRegistry").finish_non_exhaustive()
    }
}

fn key(org: &str) -> String {
    format!("sinks/{org}")
}

impl SinkRegistry {
    /// A registry over `store`; NDJSON sinks need [`Self::configure`] with a directory.
    pub fn new(store: Arc<dyn KvStore>) -> Self {
        SinkRegistry {
            store,
            settings: parking_lot::RwLock::new(Settings {
                files_dir: None,
                policy: IpPolicy::default(),
                vault: None,
            }),
            event_store: parking_lot::RwLock::new(None),
            built: parking_lot::RwLock::new(HashMap::new()),
            tokens: Arc::new(OAuthTokenCache::new()),
        }
    }

    /// Where NDJSON files go (`<dir>/<org>/<name>.ndjson`) and the egress policy of
    /// forward sinks.
    pub fn configure(&self, files_dir: PathBuf, policy: IpPolicy) {
        let mut s = self.settings.write();
        s.files_dir = Some(files_dir);
        s.policy = policy;
        drop(s);
        self.built.write().clear();
    }

    /// Seal forward-sink secrets in `vault` from now on (and open sealed ones).
    pub fn set_vault(&self, vault: crate::vault::CredentialVault) {
        self.settings.write().vault = Some(vault);
        self.built.write().clear();
    }

    /// Register the embedded event store sink (the delivery pipeline does this).
    pub fn set_event_store(&self, sink: Arc<dyn EventSink>) {
        *self.event_store.write() = Some(sink);
        self.built.write().clear();
    }

    /// The stored configuration (defaults when none), secrets included.
    fn stored(&self, org: &str) -> Result<OrgSinks, StoreError> {
        Ok(self.store.get_json(&key(org))?.unwrap_or_default())
    }

    /// The org's configuration as the API shows it.
    pub fn config(&self, org: &str) -> Result<OrgSinks, StoreError> {
        Ok(self.stored(org)?.redacted())
    }

    /// Validate and store `cfg` (secrets left out keep the stored ones), with `audit` in
    /// the same atomic batch; answers the redacted configuration.
    pub fn put_config(
        &self,
        org: &str,
        mut cfg: OrgSinks,
        audit: Option<WriteOp>,
    ) -> Result<OrgSinks, SinkConfigError> {
        let old = self.stored(org)?;
        for s in &mut cfg.sinks {
            if let SinkSpec::HttpForward(h) = s
                && h.auth.secret().is_none()
            {
                let kept = old.sinks.iter().find_map(|o| match o {
                    SinkSpec::HttpForward(oh)
                        if oh.name == h.name && oh.auth.same_kind(&h.auth) =>
                    {
                        oh.auth.secret().cloned()
                    }
                    _ => None,
                });
                h.auth.set_secret(kept);
            }
        }
        let policy = self.settings.read().policy;
        let errs = validate(&cfg, policy);
        if !errs.is_empty() {
            return Err(SinkConfigError::Invalid(errs));
        }
        if cfg.sinks.iter().any(|s| matches!(s, SinkSpec::Ndjson(_)))
            && self.settings.read().files_dir.is_none()
        {
            return Err(SinkConfigError::Invalid(vec![FieldError {
                path: "/sinks".into(),
                message: "this server has no data directory for NDJSON sinks".into(),
            }]));
        }
        // Build first: a sink that cannot be built is a field error, not a stored config.
        if let Err((i, m)) = self.build(org, &cfg) {
            return Err(SinkConfigError::Invalid(vec![FieldError {
                path: format!("/sinks/{i}"),
                message: m,
            }]));
        }
        let vault = self.settings.read().vault.clone();
        if let Some(vault) = &vault {
            for (i, s) in cfg.sinks.iter_mut().enumerate() {
                if let SinkSpec::HttpForward(h) = s
                    && let Some(secret) = h.auth.secret().cloned()
                    && !secret.starts_with(SEALED)
                {
                    let sealed = seal(vault, org, &h.name, &secret).map_err(|m| {
                        SinkConfigError::Invalid(vec![FieldError {
                            path: format!("/sinks/{i}/auth"),
                            message: format!("cannot seal the secret: {m}"),
                        }])
                    })?;
                    h.auth.set_secret(Some(sealed));
                }
            }
        }
        let mut ops = vec![WriteOp::put_json(key(org), &cfg)?];
        ops.extend(audit);
        self.store.apply(ops)?;
        self.built.write().remove(org);
        Ok(cfg.redacted())
    }

    fn build(&self, org: &str, cfg: &OrgSinks) -> Result<Vec<Arc<dyn EventSink>>, (usize, String)> {
        let (files_dir, policy, vault) = {
            let s = self.settings.read();
            (s.files_dir.clone(), s.policy, s.vault.clone())
        };
        let open = |i: usize, sink: &str, stored: &Option<String>| {
            unseal(
                vault.as_ref(),
                org,
                sink,
                stored.as_deref().unwrap_or_default(),
            )
            .map(SecretString::from)
            .map_err(|m| (i, m))
        };
        let mut out: Vec<Arc<dyn EventSink>> = Vec::new();
        if cfg.event_store
            && let Some(es) = self.event_store.read().clone()
        {
            out.push(es);
        }
        for (i, s) in cfg.sinks.iter().enumerate() {
            match s {
                SinkSpec::Ndjson(n) => {
                    let dir = files_dir
                        .as_ref()
                        .ok_or((i, "no data directory for NDJSON sinks".to_string()))?
                        .join(org);
                    out.push(Arc::new(NdjsonSink::new(
                        n.name.clone(),
                        dir,
                        n.name.clone(),
                        n.max_file_mib * 1024 * 1024,
                        n.keep_files,
                    )));
                }
                SinkSpec::HttpForward(h) => {
                    let url = http_url(&h.url).map_err(|m| (i, m))?;
                    let auth = match &h.auth {
                        ForwardAuthSpec::None => ForwardAuth::None,
                        ForwardAuthSpec::Bearer { token, .. } => {
                            ForwardAuth::Bearer(open(i, &h.name, token)?)
                        }
                        ForwardAuthSpec::Oauth2ClientCredentials {
                            token_url,
                            client_id,
                            client_secret,
                            scopes,
                            ..
                        } => ForwardAuth::OAuth2 {
                            token_url: http_url(token_url).map_err(|m| (i, m))?,
                            client_id: client_id.clone(),
                            client_secret: open(i, &h.name, client_secret)?,
                            scopes: scopes.clone(),
                        },
                    };
                    let settings = ForwardSettings {
                        name: h.name.clone(),
                        url,
                        format: if h.format == "threathawk" {
                            BodyFormat::ThreatHawk
                        } else {
                            BodyFormat::Unified
                        },
                        batch_max_events: h.batch_max_events,
                        gzip: h.gzip,
                        timeout: Duration::from_secs(h.timeout_secs),
                        auth,
                        retry: RetryPolicy {
                            max_attempts: h.max_attempts,
                            ..RetryPolicy::default()
                        },
                    };
                    let sink = HttpForwardSink::new(settings, policy, self.tokens.clone())
                        .map_err(|e| (i, e.to_string()))?;
                    out.push(Arc::new(sink));
                }
            }
        }
        Ok(out)
    }

    /// The sinks of `org` the pipeline delivers to, in order: the event store (unless
    /// the org turned it off), then the configured extra sinks. A configuration that can
    /// no longer be built (store failure) yields the event store alone, logged.
    pub fn sinks_for(&self, org: &str) -> Vec<Arc<dyn EventSink>> {
        if let Some(b) = self.built.read().get(org) {
            return b.as_ref().clone();
        }
        let built = match self.stored(org) {
            Ok(cfg) => self.build(org, &cfg).unwrap_or_else(|(i, m)| {
                tracing::error!(org, sink = i, error = %m, "sink cannot be built; delivering to the event store only");
                self.event_store.read().clone().into_iter().collect()
            }),
            Err(e) => {
                tracing::error!(org, error = %e, "sink configuration unreadable; delivering to the event store only");
                return self.event_store.read().clone().into_iter().collect();
            }
        };
        self.built
            .write()
            .insert(org.to_string(), Arc::new(built.clone()));
        built
    }
}

impl super::delivery::SinkResolver for SinkRegistry {
    fn sinks(&self, org: &str) -> Vec<Arc<dyn EventSink>> {
        self.sinks_for(org)
    }
}
