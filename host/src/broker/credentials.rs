//! Credentials as the broker sees them: what kind, which secret, and which hosts they may
//! be sent to. Secrets are [`SecretString`]s — zeroised on drop, redacted in `Debug` — and
//! never leave the host: the broker injects them into requests itself.
//!
//! Where credentials *come from* is behind [`CredentialSource`]; the CLI reads a JSON file
//! ([`CredentialsFile`]), the server's encrypted vault plugs in behind the same trait.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::host_pattern::HostPattern;
use crate::manifest::CredentialKind;

/// Where an API key goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyPlacement {
    /// In a header, e.g. `X-API-Key`, optionally prefixed (`"Token "`).
    Header {
        /// Header name.
        name: String,
        /// Optional prefix put before the key.
        prefix: Option<String>,
    },
    /// In a query parameter.
    Query {
        /// Parameter name.
        name: String,
    },
}

/// The secret material of a credential.
#[derive(Debug)]
pub enum CredentialSecret {
    /// Bearer token.
    Bearer {
        /// The token.
        token: SecretString,
    },
    /// OAuth 2.0 client credentials.
    OAuth2ClientCredentials {
        /// Token endpoint.
        token_url: url::Url,
        /// Client id (not secret, but only sent to the token endpoint).
        client_id: String,
        /// Client secret.
        client_secret: SecretString,
        /// Requested scopes.
        scopes: Vec<String>,
        /// Optional `audience` parameter (Auth0, Okta and others).
        audience: Option<String>,
    },
    /// API key.
    ApiKey {
        /// The key.
        key: SecretString,
        /// Where it goes.
        placement: ApiKeyPlacement,
    },
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
}

impl CredentialSecret {
    /// The kind of this credential.
    pub fn kind(&self) -> CredentialKind {
        match self {
            CredentialSecret::Bearer { .. } => CredentialKind::Bearer,
            CredentialSecret::OAuth2ClientCredentials { .. } => {
                CredentialKind::OAuth2ClientCredentials
            }
            CredentialSecret::ApiKey { .. } => CredentialKind::ApiKey,
            CredentialSecret::Basic { .. } => CredentialKind::Basic,
        }
    }

    /// Every secret string of this credential, for redaction.
    pub fn secret_values(&self) -> Vec<&str> {
        match self {
            CredentialSecret::Bearer { token } => vec![token.expose_secret()],
            CredentialSecret::OAuth2ClientCredentials { client_secret, .. } => {
                vec![client_secret.expose_secret()]
            }
            CredentialSecret::ApiKey { key, .. } => vec![key.expose_secret()],
            CredentialSecret::Basic { password, .. } => vec![password.expose_secret()],
        }
    }
}

/// A credential ready to use.
#[derive(Debug)]
pub struct Credential {
    /// Stable identity of this credential *version* (token caches are keyed by it, so a
    /// rotated credential never reuses the old version's OAuth token).
    pub cache_key: String,
    /// The secret material.
    pub secret: CredentialSecret,
    /// Hosts the credential may be sent to.
    pub hosts: Vec<HostPattern>,
}

impl Credential {
    /// Whether this credential may be sent to `url`.
    pub fn bound_to(&self, url: &url::Url) -> bool {
        self.hosts.iter().any(|h| h.matches(url))
    }
}

/// Why a credential could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The backing store failed.
    #[error("credential store unavailable: {0}")]
    Unavailable(String),
    /// The credential file or record is malformed.
    #[error("credential {slot:?}: {message}")]
    Invalid {
        /// Slot or credential name.
        slot: String,
        /// What is wrong (never contains secret values).
        message: String,
    },
}

/// Where a connector's credentials come from: slot name → credential.
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync {
    /// The credential bound to `slot`, or `None` when nothing is bound.
    async fn credential_for_slot(
        &self,
        slot: &str,
    ) -> Result<Option<Arc<Credential>>, CredentialError>;

    /// The slots that have a binding (for messages and up-front checks).
    fn bound_slots(&self) -> Vec<String>;
}

/// No credentials at all.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCredentials;

#[async_trait::async_trait]
impl CredentialSource for NoCredentials {
    async fn credential_for_slot(
        &self,
        _slot: &str,
    ) -> Result<Option<Arc<Credential>>, CredentialError> {
        Ok(None)
    }
    fn bound_slots(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A fixed map of slot → credential (the CLI's credentials file, tests).
#[derive(Debug, Default)]
pub struct StaticCredentials {
    by_slot: HashMap<String, Arc<Credential>>,
}

impl StaticCredentials {
    /// Bind `credential` to `slot`.
    pub fn insert(&mut self, slot: impl Into<String>, credential: Credential) {
        self.by_slot.insert(slot.into(), Arc::new(credential));
    }
}

#[async_trait::async_trait]
impl CredentialSource for StaticCredentials {
    async fn credential_for_slot(
        &self,
        slot: &str,
    ) -> Result<Option<Arc<Credential>>, CredentialError> {
        Ok(self.by_slot.get(slot).cloned())
    }
    fn bound_slots(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_slot.keys().cloned().collect();
        v.sort();
        v
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum FileCredential {
    Bearer {
        token: SecretString,
        hosts: Vec<String>,
    },
    #[serde(rename = "oauth2-client-credentials")]
    OAuth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        audience: Option<String>,
        hosts: Vec<String>,
    },
    ApiKey {
        key: SecretString,
        #[serde(default)]
        header: Option<String>,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        query: Option<String>,
        hosts: Vec<String>,
    },
    Basic {
        username: String,
        password: SecretString,
        hosts: Vec<String>,
    },
}

/// The CLI's credentials file: `{"<slot>": {"kind": "bearer", "token": "...", "hosts": [...]}}`.
#[derive(Debug)]
pub struct CredentialsFile;

impl CredentialsFile {
    /// Read and check a credentials file. Errors name the slot and field, never a value.
    pub fn load(path: &Path) -> Result<StaticCredentials, CredentialError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CredentialError::Unavailable(format!("cannot read {}: {e}", path.display()))
        })?;
        Self::parse(&text)
    }

    /// Parse a credentials document.
    pub fn parse(text: &str) -> Result<StaticCredentials, CredentialError> {
        let raw: HashMap<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| CredentialError::Invalid {
                slot: String::new(),
                message: format!(
                    "credentials file must be a JSON object of slot → credential (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        let mut out = StaticCredentials::default();
        for (slot, value) in raw {
            let cred: FileCredential =
                serde_json::from_value(value).map_err(|e| CredentialError::Invalid {
                    slot: slot.clone(),
                    // serde's messages name fields and expected types, not values.
                    message: e.to_string(),
                })?;
            let credential = Self::convert(&slot, cred)?;
            out.insert(slot, credential);
        }
        Ok(out)
    }

    fn convert(slot: &str, cred: FileCredential) -> Result<Credential, CredentialError> {
        let invalid = |message: String| CredentialError::Invalid {
            slot: slot.to_string(),
            message,
        };
        let parse_hosts = |hosts: Vec<String>| -> Result<Vec<HostPattern>, CredentialError> {
            if hosts.is_empty() {
                return Err(invalid(
                    "`hosts` must list at least one host pattern the credential may be sent to"
                        .into(),
                ));
            }
            hosts
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    HostPattern::parse(h).map_err(|e| invalid(format!("`hosts[{i}]`: {e}")))
                })
                .collect()
        };
        let (secret, hosts) = match cred {
            FileCredential::Bearer { token, hosts } => {
                if token.expose_secret().is_empty() {
                    return Err(invalid("`token` is empty".into()));
                }
                (CredentialSecret::Bearer { token }, hosts)
            }
            FileCredential::OAuth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
                audience,
                hosts,
            } => {
                let token_url = url::Url::parse(&token_url)
                    .map_err(|e| invalid(format!("`token_url`: {e}")))?;
                if !matches!(token_url.scheme(), "http" | "https") {
                    return Err(invalid("`token_url` must be an http(s) URL".into()));
                }
                (
                    CredentialSecret::OAuth2ClientCredentials {
                        token_url,
                        client_id,
                        client_secret,
                        scopes,
                        audience,
                    },
                    hosts,
                )
            }
            FileCredential::ApiKey {
                key,
                header,
                prefix,
                query,
                hosts,
            } => {
                let placement = match (header, query) {
                    (Some(name), None) => {
                        reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                            invalid(format!("`header`: {name:?} is not a valid header name"))
                        })?;
                        ApiKeyPlacement::Header { name, prefix }
                    }
                    (None, Some(name)) if prefix.is_none() => ApiKeyPlacement::Query { name },
                    (None, Some(_)) => {
                        return Err(invalid("`prefix` only applies to `header` keys".into()));
                    }
                    _ => {
                        return Err(invalid(
                            "api-key needs exactly one of `header` or `query`".into(),
                        ));
                    }
                };
                (CredentialSecret::ApiKey { key, placement }, hosts)
            }
            FileCredential::Basic {
                username,
                password,
                hosts,
            } => (CredentialSecret::Basic { username, password }, hosts),
        };
        Ok(Credential {
            cache_key: content_key(&secret),
            secret,
            hosts: parse_hosts(hosts)?,
        })
    }
}

/// A token-cache key derived from the credential's content (a digest, never the secret):
/// two connectors share a cached OAuth token only when they use the very same client.
fn content_key(secret: &CredentialSecret) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    field(&secret.kind().to_string());
    match secret {
        CredentialSecret::Bearer { token } => field(token.expose_secret()),
        CredentialSecret::OAuth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scopes,
            audience,
        } => {
            field(token_url.as_str());
            field(client_id);
            field(client_secret.expose_secret());
            for s in scopes {
                field(s);
            }
            field(audience.as_deref().unwrap_or(""));
        }
        CredentialSecret::ApiKey { key, placement } => {
            field(key.expose_secret());
            field(&format!("{placement:?}"));
        }
        CredentialSecret::Basic { username, password } => {
            field(username);
            field(password.expose_secret());
        }
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn different_clients_in_the_same_slot_never_share_a_token_cache_entry() {
        let doc = |id: &str| {
            format!(
                r#"{{"api": {{"kind": "oauth2-client-credentials", "token_url": "https://auth.x.com/t", "client_id": "{id}", "client_secret": "s", "hosts": ["https://x.com"]}}}}"#
            )
        };
        let a = CredentialsFile::parse(&doc("a")).unwrap();
        let b = CredentialsFile::parse(&doc("b")).unwrap();
        let a2 = CredentialsFile::parse(&doc("a")).unwrap();
        let key = |c: &StaticCredentials| c.by_slot["api"].cache_key.clone();
        assert_ne!(key(&a), key(&b));
        assert_eq!(key(&a), key(&a2));
        assert!(key(&a).starts_with("sha256:"));
    }

    #[test]
    fn parses_every_kind() {
        let creds = CredentialsFile::parse(
            r#"{
              "a": {"kind": "bearer", "token": "t0k", "hosts": ["https://api.x.com"]},
              "b": {"kind": "oauth2-client-credentials", "token_url": "https://auth.x.com/token",
                    "client_id": "id", "client_secret": "s3cr3t", "scopes": ["read"], "hosts": ["https://*.x.com"]},
              "c": {"kind": "api-key", "key": "k", "header": "X-Key", "prefix": "Token ", "hosts": ["https://x.com"]},
              "d": {"kind": "api-key", "key": "k", "query": "apikey", "hosts": ["https://x.com"]},
              "e": {"kind": "basic", "username": "u", "password": "p", "hosts": ["https://x.com"]}
            }"#,
        )
        .unwrap();
        assert_eq!(creds.bound_slots(), vec!["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn errors_name_slot_and_field_but_not_secret() {
        let err = CredentialsFile::parse(
            r#"{"a": {"kind": "bearer", "token": "SUPERSECRET", "hosts": ["nope"]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"a\"") && err.contains("hosts[0]"), "{err}");
        assert!(!err.contains("SUPERSECRET"));
        let err = CredentialsFile::parse(
            r#"{"a": {"kind": "api-key", "key": "SUPERSECRET", "hosts": ["https://x"]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("header") && !err.contains("SUPERSECRET"),
            "{err}"
        );
        let err = CredentialsFile::parse(
            r#"{"a": {"kind": "bearer", "token": "SUPERSECRET", "hosts": [], "extra": 1}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("extra") && !err.contains("SUPERSECRET"),
            "{err}"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let creds = CredentialsFile::parse(
            r#"{"a": {"kind": "basic", "username": "u", "password": "SUPERSECRET", "hosts": ["https://x.com"]}}"#,
        )
        .unwrap();
        assert!(!format!("{creds:?}").contains("SUPERSECRET"));
    }
}
