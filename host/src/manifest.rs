//! What a plugin says it is and what it asks for — the host-side, serialisable form of
//! the WIT `manifest`, checked before a plugin is accepted.

use serde::{Deserialize, Serialize};

use crate::broker::host_pattern::{HostPattern, HostPatternError};
use crate::runtime::bindings::latest::portcullis::connector::types as wit;

/// Connector category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Security information and event management.
    Siem,
    /// Threat-intelligence feed.
    ThreatIntel,
    /// Open-source intelligence provider.
    Osint,
    /// Blockchain monitor.
    Blockchain,
    /// Vulnerability database.
    Vulnerability,
    /// Cloud logs.
    CloudLogs,
    /// Endpoint telemetry.
    Endpoint,
    /// Network telemetry.
    Network,
    /// Any other REST API.
    CustomApi,
}

impl From<wit::Category> for Category {
    fn from(c: wit::Category) -> Self {
        match c {
            wit::Category::Siem => Category::Siem,
            wit::Category::ThreatIntel => Category::ThreatIntel,
            wit::Category::Osint => Category::Osint,
            wit::Category::Blockchain => Category::Blockchain,
            wit::Category::Vulnerability => Category::Vulnerability,
            wit::Category::CloudLogs => Category::CloudLogs,
            wit::Category::Endpoint => Category::Endpoint,
            wit::Category::Network => Category::Network,
            wit::Category::CustomApi => Category::CustomApi,
        }
    }
}

/// Credential kinds the host can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// `Authorization: Bearer`.
    Bearer,
    /// OAuth 2.0 client credentials (RFC 6749 §4.4).
    #[serde(rename = "oauth2-client-credentials")]
    OAuth2ClientCredentials,
    /// Key in a header or query parameter.
    ApiKey,
    /// HTTP Basic.
    Basic,
}

impl std::fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredentialKind::Bearer => "bearer",
            CredentialKind::OAuth2ClientCredentials => "oauth2-client-credentials",
            CredentialKind::ApiKey => "api-key",
            CredentialKind::Basic => "basic",
        })
    }
}

impl From<wit::CredentialKind> for CredentialKind {
    fn from(k: wit::CredentialKind) -> Self {
        match k {
            wit::CredentialKind::Bearer => CredentialKind::Bearer,
            wit::CredentialKind::Oauth2ClientCredentials => CredentialKind::OAuth2ClientCredentials,
            wit::CredentialKind::ApiKey => CredentialKind::ApiKey,
            wit::CredentialKind::Basic => CredentialKind::Basic,
        }
    }
}

/// A credential slot a plugin declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CredentialSlot {
    /// Slot name the plugin uses in requests.
    pub name: String,
    /// What the credential is for.
    pub description: String,
    /// Accepted kinds.
    pub kinds: Vec<CredentialKind>,
    /// Whether a connector must bind it.
    pub required: bool,
}

/// A plugin's manifest, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    /// Plugin id (`[a-z0-9][a-z0-9-]*`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Plugin version (semver).
    pub version: String,
    /// Category.
    pub category: Category,
    /// Description.
    pub description: String,
    /// JSON Schema of the connector configuration.
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
    /// Host patterns the plugin asks to reach.
    pub hosts: Vec<String>,
    /// Credential slots it asks for.
    pub credential_slots: Vec<CredentialSlot>,
    /// Whether it accepts pushed input (`normalize`).
    pub accepts_push: bool,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Bad id.
    #[error("manifest field `id`: {0:?} must match [a-z0-9][a-z0-9-]{{0,63}}")]
    BadId(String),
    /// Bad version.
    #[error("manifest field `version`: {0:?} is not a semantic version (MAJOR.MINOR.PATCH)")]
    BadVersion(String),
    /// Config schema is not JSON or not a valid JSON Schema.
    #[error("manifest field `config-schema`: {0}")]
    BadSchema(String),
    /// A host pattern does not parse.
    #[error("manifest field `hosts[{index}]`: {source}")]
    BadHost {
        /// Index in `hosts`.
        index: usize,
        /// Why.
        source: HostPatternError,
    },
    /// A credential slot is malformed.
    #[error("manifest field `credential-slots[{index}]`: {message}")]
    BadSlot {
        /// Index in `credential-slots`.
        index: usize,
        /// Why.
        message: String,
    },
}

fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn valid_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl Manifest {
    /// Check and convert a manifest returned by `describe`.
    pub fn from_plugin(m: wit::Manifest) -> Result<Self, ManifestError> {
        if !valid_id(&m.id) {
            return Err(ManifestError::BadId(m.id));
        }
        if !valid_semver(&m.version) {
            return Err(ManifestError::BadVersion(m.version));
        }
        let config_schema: serde_json::Value = serde_json::from_str(&m.config_schema)
            .map_err(|e| ManifestError::BadSchema(format!("not JSON: {e}")))?;
        crate::config_schema::ConfigSchema::compile(&config_schema)
            .map_err(|e| ManifestError::BadSchema(e.to_string()))?;
        for (index, h) in m.hosts.iter().enumerate() {
            HostPattern::parse(h).map_err(|source| ManifestError::BadHost { index, source })?;
        }
        let mut seen = std::collections::HashSet::new();
        for (index, s) in m.credential_slots.iter().enumerate() {
            if !valid_id(&s.name) {
                return Err(ManifestError::BadSlot {
                    index,
                    message: format!("name {:?} must match [a-z0-9][a-z0-9-]*", s.name),
                });
            }
            if !seen.insert(s.name.clone()) {
                return Err(ManifestError::BadSlot {
                    index,
                    message: format!("slot {:?} is declared twice", s.name),
                });
            }
            if s.kinds.is_empty() {
                return Err(ManifestError::BadSlot {
                    index,
                    message: format!("slot {:?} accepts no credential kind", s.name),
                });
            }
        }
        Ok(Manifest {
            id: m.id,
            name: m.name,
            version: m.version,
            category: m.category.into(),
            description: m.description,
            config_schema,
            hosts: m.hosts,
            credential_slots: m
                .credential_slots
                .into_iter()
                .map(|s| CredentialSlot {
                    name: s.name,
                    description: s.description,
                    kinds: s.kinds.into_iter().map(Into::into).collect(),
                    required: s.required,
                })
                .collect(),
            accepts_push: m.accepts_push,
        })
    }

    /// The declared host patterns, parsed.
    pub fn host_patterns(&self) -> Vec<HostPattern> {
        self.hosts
            .iter()
            .filter_map(|h| HostPattern::parse(h).ok())
            .collect()
    }

    /// The slot called `name`, if declared.
    pub fn slot(&self, name: &str) -> Option<&CredentialSlot> {
        self.credential_slots.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_versions() {
        assert!(valid_id("rest-generic"));
        assert!(!valid_id("Rest"));
        assert!(!valid_id("-x"));
        assert!(!valid_id(""));
        assert!(valid_semver("1.2.3"));
        assert!(valid_semver("0.1.0-beta.1"));
        assert!(!valid_semver("1.2"));
        assert!(!valid_semver("1.x.3"));
    }
}
