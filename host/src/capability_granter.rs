//! The one place that decides whether a plugin may use a capability: it must be
//! **declared** by the plugin's manifest **and granted** by the operator for this connector.

use url::Url;

use crate::broker::host_pattern::{HostPattern, origin_of};
use crate::manifest::{CredentialKind, Manifest};

/// An operator grant that the plugin never asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// A granted host pattern is not within what the plugin declares.
    #[error("granted host {grant:?} is not among the hosts plugin {plugin} requests ({declared})")]
    HostNotRequested {
        /// Plugin id.
        plugin: String,
        /// The grant.
        grant: String,
        /// What the plugin declares.
        declared: String,
    },
    /// A granted pattern does not parse.
    #[error("granted host {0}")]
    BadPattern(String),
}

/// Why a capability was refused at use time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denial(pub String);

/// Declared ∩ granted, for one connector.
#[derive(Debug, Clone)]
pub struct CapabilityGranter {
    plugin_id: String,
    declared: Vec<HostPattern>,
    granted: Vec<HostPattern>,
    slots: Vec<(String, Vec<CredentialKind>)>,
}

impl CapabilityGranter {
    /// Build the granter; every grant must be covered by a declared pattern.
    pub fn new(manifest: &Manifest, granted: &[HostPattern]) -> Result<Self, GrantError> {
        let declared = manifest.host_patterns();
        for g in granted {
            if !declared.iter().any(|d| d.covers(g)) {
                return Err(GrantError::HostNotRequested {
                    plugin: manifest.id.clone(),
                    grant: g.to_string(),
                    declared: if declared.is_empty() {
                        "none".into()
                    } else {
                        manifest.hosts.join(", ")
                    },
                });
            }
        }
        Ok(CapabilityGranter {
            plugin_id: manifest.id.clone(),
            declared,
            granted: granted.to_vec(),
            slots: manifest
                .credential_slots
                .iter()
                .map(|s| (s.name.clone(), s.kinds.clone()))
                .collect(),
        })
    }

    /// Patterns granted to this connector.
    pub fn granted(&self) -> &[HostPattern] {
        &self.granted
    }

    /// May the plugin send a request to `url`?
    pub fn check_url(&self, url: &Url) -> Result<(), Denial> {
        if !self.declared.iter().any(|p| p.matches(url)) {
            return Err(Denial(format!(
                "{} is not among the hosts plugin {} declares",
                origin_of(url),
                self.plugin_id
            )));
        }
        if !self.granted.iter().any(|p| p.matches(url)) {
            return Err(Denial(format!(
                "{} is declared by plugin {} but not granted to this connector",
                origin_of(url),
                self.plugin_id
            )));
        }
        Ok(())
    }

    /// May the plugin use credential slot `slot` holding a credential of `kind`?
    pub fn check_slot(&self, slot: &str, kind: Option<CredentialKind>) -> Result<(), Denial> {
        let Some((_, kinds)) = self.slots.iter().find(|(n, _)| n == slot) else {
            return Err(Denial(format!(
                "credential slot {slot:?} is not declared by plugin {}",
                self.plugin_id
            )));
        };
        if let Some(kind) = kind
            && !kinds.contains(&kind)
        {
            return Err(Denial(format!(
                "credential slot {slot:?} accepts {} but the bound credential is {kind}",
                kinds
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Category, CredentialSlot};

    fn manifest(hosts: &[&str]) -> Manifest {
        Manifest {
            id: "p".into(),
            name: "P".into(),
            version: "1.0.0".into(),
            category: Category::CustomApi,
            description: String::new(),
            config_schema: serde_json::json!({}),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            credential_slots: vec![CredentialSlot {
                name: "api".into(),
                description: String::new(),
                kinds: vec![CredentialKind::Bearer],
                required: false,
            }],
            accepts_push: false,
        }
    }

    fn pats(v: &[&str]) -> Vec<HostPattern> {
        v.iter().map(|s| HostPattern::parse(s).unwrap()).collect()
    }

    #[test]
    fn needs_declared_and_granted() {
        let g = CapabilityGranter::new(
            &manifest(&["https://*.example.com", "https://other.net"]),
            &pats(&["https://api.example.com"]),
        )
        .unwrap();
        assert!(
            g.check_url(&Url::parse("https://api.example.com/x").unwrap())
                .is_ok()
        );
        let e = g
            .check_url(&Url::parse("https://other.net/").unwrap())
            .unwrap_err();
        assert!(e.0.contains("not granted"), "{e}");
        let e = g
            .check_url(&Url::parse("https://evil.org/").unwrap())
            .unwrap_err();
        assert!(e.0.contains("not among the hosts"), "{e}");
    }

    #[test]
    fn grant_must_be_requested() {
        let err = CapabilityGranter::new(&manifest(&["https://a.com"]), &pats(&["https://b.com"]))
            .unwrap_err();
        assert!(matches!(err, GrantError::HostNotRequested { .. }));
    }

    #[test]
    fn slots_and_kinds() {
        let g = CapabilityGranter::new(&manifest(&[]), &[]).unwrap();
        assert!(g.check_slot("api", Some(CredentialKind::Bearer)).is_ok());
        assert!(g.check_slot("api", Some(CredentialKind::Basic)).is_err());
        assert!(g.check_slot("other", None).is_err());
    }
}
