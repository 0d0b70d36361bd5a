//! Records of the management plane, as stored (JSON) and as the API shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::health::HealthReason;
use crate::manifest::{Category, CredentialSlot, Manifest};
use crate::runtime::TestStage;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Connectors, credentials, toggle, test.
    Operator,
    /// Everything in scope (org admin: the org's tokens; platform admin: orgs and plugins).
    Admin,
}

/// The caller of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id (never the token).
    pub token_id: String,
    /// Display name of the token.
    pub name: String,
    /// `None`: the platform admin.
    pub org: Option<String>,
    /// Role.
    pub role: Role,
}

impl Principal {
    /// The platform administrator.
    pub fn is_platform_admin(&self) -> bool {
        self.org.is_none() && self.role == Role::Admin
    }

    /// How audit records name this caller.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.name, self.token_id)
    }
}

/// An organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Org {
    /// Slug id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// Actor.
    pub created_by: String,
}

/// An API token (stored by hash only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenRecord {
    /// Public id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Scope (`None`: platform).
    pub org: Option<String>,
    /// Role.
    pub role: Role,
    /// sha256 of the token (hex); cleared before a record leaves the service.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    #[schema(ignore)]
    pub hash: String,
    /// RFC 3339.
    pub created_at: String,
    /// Actor.
    pub created_by: String,
}

/// An installed plugin version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginRecord {
    /// Plugin id.
    pub id: String,
    /// Version.
    pub version: String,
    /// Component sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
    /// WIT API version.
    pub api_version: String,
    /// Manifest.
    pub manifest: Manifest,
    /// Imports of the component.
    pub imports: Vec<String>,
    /// RFC 3339.
    pub installed_at: String,
    /// Actor.
    pub installed_by: String,
    /// Installed from the bundled plugin directory.
    pub bundled: bool,
}

impl PluginRecord {
    /// What the plugin asks for, for audit before it is granted.
    pub fn capabilities(&self) -> PluginCapabilities {
        PluginCapabilities {
            hosts: self.manifest.hosts.clone(),
            credential_slots: self.manifest.credential_slots.clone(),
            accepts_push: self.manifest.accepts_push,
            imports: self.imports.clone(),
        }
    }
}

/// The capabilities a plugin requests (hosts, credential slots and kinds, push input) and
/// the host interfaces it imports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginCapabilities {
    /// Host patterns it asks to reach.
    pub hosts: Vec<String>,
    /// Credential slots it asks for, with accepted kinds.
    pub credential_slots: Vec<CredentialSlot>,
    /// Whether it accepts pushed input (`normalize`).
    pub accepts_push: bool,
    /// Imports of the component.
    pub imports: Vec<String>,
}

/// Which plugin version a connector runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PluginRef {
    /// Plugin id.
    pub id: String,
    /// Version.
    pub version: String,
}

/// The configurable part of a connector (what a revision captures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectorSpec {
    /// Display name.
    pub name: String,
    /// Plugin.
    pub plugin: PluginRef,
    /// Configuration (validated by the plugin's schema and `validate-config`).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Credential slot → credential name (never a value).
    pub credentials: BTreeMap<String, String>,
    /// Granted host patterns.
    pub grants: Vec<String>,
    /// ISO 8601 duration.
    pub schedule: String,
    /// What the connector stands for in the catalogue: the plugin's category, or — for a
    /// generic plugin (`custom-api`, e.g. `rest-generic`) standing in for a source that has
    /// no plugin of its own yet — the category the operator gave (`threat-intel`, ...).
    /// Records written before this field existed have none: the plugin's applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
}

/// Health state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Not yet observed.
    Unknown,
    /// Fine.
    Healthy,
    /// Working with problems.
    Degraded,
    /// Not working.
    Failing,
    /// Disabled by an operator.
    Disabled,
}

/// Health with reason codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// State.
    pub state: HealthState,
    /// Reason codes (`AUTH_FAILED`, ...).
    pub reasons: Vec<String>,
    /// When the state was entered.
    pub since: String,
    /// The reasons with their fields (`{"code": "RATE_LIMITED", "until": ...}`), in the
    /// order of `reasons`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<HealthReason>,
}

impl Health {
    /// Health in `state` since now, without reasons.
    pub fn new(state: HealthState, since: String) -> Self {
        Health {
            state,
            reasons: Vec::new(),
            since,
            details: Vec::new(),
        }
    }

    /// Health in `state` since `since` for `details` (codes derived from them).
    pub fn with_reasons(state: HealthState, since: String, details: Vec<HealthReason>) -> Self {
        Health {
            state,
            reasons: details.iter().map(|d| d.code().to_string()).collect(),
            since,
            details,
        }
    }
}

/// What happens when a connector crash-loops (see `[health]` `crash_loop_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CrashLoopPolicy {
    /// Disable it automatically (audited with the reason).
    #[default]
    Disable,
    /// Only report it in health.
    Ignore,
}

/// One change of a connector's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthTransition {
    /// When (RFC 3339).
    pub at: String,
    /// Previous state.
    pub from: HealthState,
    /// New state.
    pub to: HealthState,
    /// New reason codes.
    pub reasons: Vec<String>,
    /// The reasons with their fields.
    #[serde(default)]
    pub details: Vec<HealthReason>,
}

/// A configured connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectorRecord {
    /// Id.
    pub id: String,
    /// Owning org.
    pub org: String,
    /// Configuration.
    #[serde(flatten)]
    pub spec: ConnectorSpec,
    /// Ingestion on?
    pub enabled: bool,
    /// Health.
    pub health: Health,
    /// What a crash loop does to this connector.
    #[serde(default)]
    pub crash_loop_policy: CrashLoopPolicy,
    /// Current revision number.
    pub revision: u64,
    /// RFC 3339.
    pub created_at: String,
    /// Actor.
    pub created_by: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Actor.
    pub updated_by: String,
    /// Last connection test, if any (a [`LastTest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<LastTest>)]
    pub last_test: Option<serde_json::Value>,
}

/// One configuration revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Revision {
    /// Revision number (1-based).
    pub revision: u64,
    /// Who.
    pub author: String,
    /// When (RFC 3339).
    pub at: String,
    /// What happened (`created`, `updated`, `upgraded`).
    pub change: String,
    /// The configuration after the change.
    pub spec: ConnectorSpec,
}

/// One audit record (never a secret value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// Id (sortable).
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// Org (`None`: platform-level).
    pub org: Option<String>,
    /// Action (`connector.disable`, ...).
    pub action: String,
    /// Target (`connector/<id>`, ...).
    pub target: String,
    /// `ok` or `refused: ...` / `failed: ...`.
    pub outcome: String,
    /// Extra, non-secret detail.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schema(value_type = Option<Object>)]
    pub detail: serde_json::Value,
}

/// The last connection test of a connector, kept on its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LastTest {
    /// When (RFC 3339).
    pub at: String,
    /// Who ran it.
    pub by: String,
    /// Every stage passed.
    pub ok: bool,
    /// Host-measured latency of the whole call.
    pub latency_ms: u64,
    /// Stages.
    pub stages: Vec<TestStage>,
}
