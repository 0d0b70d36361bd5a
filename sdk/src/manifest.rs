//! What a plugin is and the capabilities it asks for.
//!
//! ```
//! use portcullis_sdk::manifest::{Category, CredentialKind, CredentialSlot, Manifest};
//!
//! let m = Manifest::new("acme-alerts", "ACME alerts", "1.2.0", Category::Siem)
//!     .description("Alerts from the ACME SIEM")
//!     .config_schema(serde_json::json!({"type": "object"}))
//!     .host("https://api.acme.example")
//!     .credential_slot(CredentialSlot::new("api", "ACME API token", [CredentialKind::Bearer]).required());
//! assert_eq!(m.credential_slots[0].name, "api");
//! ```

use crate::event::UnknownName;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// What kind of data source a connector talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// A custom REST API.
    CustomApi,
}

impl Category {
    /// Every category.
    pub const ALL: &'static [Category] = &[
        Category::Siem,
        Category::ThreatIntel,
        Category::Osint,
        Category::Blockchain,
        Category::Vulnerability,
        Category::CloudLogs,
        Category::Endpoint,
        Category::Network,
        Category::CustomApi,
    ];

    /// The wire name (`siem`, `threat-intel`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Category::Siem => "siem",
            Category::ThreatIntel => "threat-intel",
            Category::Osint => "osint",
            Category::Blockchain => "blockchain",
            Category::Vulnerability => "vulnerability",
            Category::CloudLogs => "cloud-logs",
            Category::Endpoint => "endpoint",
            Category::Network => "network",
            Category::CustomApi => "custom-api",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the host may authenticate a request made through a credential slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// OAuth 2.0 client credentials; the host fetches and refreshes the token.
    Oauth2ClientCredentials,
    /// A key in a named header or query parameter.
    ApiKey,
    /// HTTP Basic.
    Basic,
}

impl CredentialKind {
    /// All four kinds.
    pub const ALL: &'static [CredentialKind] = &[
        CredentialKind::Bearer,
        CredentialKind::Oauth2ClientCredentials,
        CredentialKind::ApiKey,
        CredentialKind::Basic,
    ];

    /// The wire name (`bearer`, `oauth2-client-credentials`, `api-key`, `basic`).
    pub fn name(&self) -> &'static str {
        match self {
            CredentialKind::Bearer => "bearer",
            CredentialKind::Oauth2ClientCredentials => "oauth2-client-credentials",
            CredentialKind::ApiKey => "api-key",
            CredentialKind::Basic => "basic",
        }
    }
}

impl FromStr for Category {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .iter()
            .copied()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownName::new("category", s, Category::ALL.iter().map(|c| c.name())))
    }
}

impl FromStr for CredentialKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CredentialKind::ALL
            .iter()
            .copied()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                UnknownName::new(
                    "credential kind",
                    s,
                    CredentialKind::ALL.iter().map(|c| c.name()),
                )
            })
    }
}

/// A named place where the operator binds a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSlot {
    /// Slot name the plugin passes to [`crate::http::Request::credential`].
    pub name: String,
    /// What the credential is for, shown to the operator.
    pub description: String,
    /// Kinds the plugin can work with.
    pub kinds: Vec<CredentialKind>,
    /// Whether a connector needs a credential bound here.
    pub required: bool,
}

impl CredentialSlot {
    /// An optional slot accepting `kinds`.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        kinds: impl IntoIterator<Item = CredentialKind>,
    ) -> Self {
        CredentialSlot {
            name: name.into(),
            description: description.into(),
            kinds: kinds.into_iter().collect(),
            required: false,
        }
    }

    /// Marks the slot required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// What a plugin is and the capabilities it asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Stable identifier, lowercase `[a-z0-9-]`; by convention the package name.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Semantic version of the plugin (`env!("CARGO_PKG_VERSION")`).
    pub version: String,
    /// Kind of data source.
    pub category: Category,
    /// What the plugin does.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the connector configuration.
    pub config_schema: Value,
    /// Host patterns the plugin may reach (`scheme://host[:port]`).
    pub hosts: Vec<String>,
    /// Credential slots.
    pub credential_slots: Vec<CredentialSlot>,
    /// Whether the plugin implements `normalize` for pushed input.
    pub accepts_push: bool,
}

impl Manifest {
    /// A manifest with an empty description, the schema `{"type": "object"}`, no
    /// hosts, no credential slots and no push input.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
        category: Category,
    ) -> Self {
        Manifest {
            id: id.into(),
            name: name.into(),
            version: version.into(),
            category,
            description: String::new(),
            config_schema: serde_json::json!({"type": "object"}),
            hosts: Vec::new(),
            credential_slots: Vec::new(),
            accepts_push: false,
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the configuration JSON Schema.
    pub fn config_schema(mut self, schema: Value) -> Self {
        self.config_schema = schema;
        self
    }

    /// Adds a host pattern.
    pub fn host(mut self, pattern: impl Into<String>) -> Self {
        self.hosts.push(pattern.into());
        self
    }

    /// Adds a credential slot.
    pub fn credential_slot(mut self, slot: CredentialSlot) -> Self {
        self.credential_slots.push(slot);
        self
    }

    /// Declares that `normalize` accepts pushed input.
    pub fn accepts_push(mut self, accepts: bool) -> Self {
        self.accepts_push = accepts;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        for c in Category::ALL {
            assert_eq!(c.name().parse::<Category>().ok(), Some(*c));
        }
        for k in CredentialKind::ALL {
            assert_eq!(k.name().parse::<CredentialKind>().ok(), Some(*k));
        }
        assert!("saas".parse::<Category>().is_err());
    }
}
