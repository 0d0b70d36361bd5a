//! Credentials as stored (versions of sealed secrets with their non-secret fields), the
//! write input (parsed by hand so no error ever echoes a value) and the metadata view
//! every read returns (never a secret).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::broker::host_pattern::HostPattern;
use crate::config_schema::FieldError;
use crate::manifest::CredentialKind;

/// Non-secret fields of a credential version (which apply depends on the kind).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublicFields {
    /// OAuth 2.0 token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// OAuth 2.0 client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OAuth 2.0 scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// OAuth 2.0 `audience`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// API key header name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// API key query parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// API key header prefix (e.g. `"Token "`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Basic user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// Outcome of the last `test` of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionTest {
    /// When (RFC 3339).
    pub at: String,
    /// Every bound connector's test passed.
    pub ok: bool,
}

/// One stored version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredVersion {
    /// Version number (1-based, increasing).
    pub version: u32,
    /// RFC 3339.
    pub created_at: String,
    /// Actor.
    pub created_by: String,
    /// Non-secret fields.
    pub public: PublicFields,
    /// Host patterns the credential may be sent to.
    pub hosts: Vec<String>,
    /// Set by the admin (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Keyed digest of the secret.
    pub fingerprint: String,
    /// Base64 of `nonce || XChaCha20-Poly1305(secret)` under the org's data key.
    pub sealed: String,
    /// Last test of this version.
    #[serde(default)]
    pub last_test: Option<VersionTest>,
}

/// A stored credential (`cred/{org}/{name}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCredential {
    /// Name (slug).
    pub name: String,
    /// Owning org.
    pub org: String,
    /// Kind (fixed for the credential's life).
    pub kind: CredentialKind,
    /// RFC 3339.
    pub created_at: String,
    /// Actor.
    pub created_by: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Actor.
    pub updated_by: String,
    /// The version requests use.
    pub promoted: u32,
    /// The version `rollback` returns to.
    #[serde(default)]
    pub previous: Option<u32>,
    /// Written but not yet promoted.
    #[serde(default)]
    pub pending: Option<u32>,
    /// Highest version number ever issued.
    pub latest: u32,
    /// Live versions (promoted, previous, pending).
    pub versions: Vec<StoredVersion>,
}

impl StoredCredential {
    /// A version by number.
    pub fn version(&self, v: u32) -> Option<&StoredVersion> {
        self.versions.iter().find(|x| x.version == v)
    }

    /// Keep only the promoted, previous and pending versions.
    pub fn prune(&mut self) {
        let keep = [Some(self.promoted), self.previous, self.pending];
        self.versions.retain(|v| keep.contains(&Some(v.version)));
    }

    /// State of version `v`.
    fn state_of(&self, v: u32) -> VersionState {
        if v == self.promoted {
            VersionState::Promoted
        } else if Some(v) == self.pending {
            VersionState::Pending
        } else {
            VersionState::Previous
        }
    }

    /// The metadata view.
    pub fn metadata(
        &self,
        last_used_at: Option<String>,
        bound_connectors: Vec<String>,
    ) -> CredentialMetadata {
        let cur = self.version(self.promoted);
        let mut versions: Vec<VersionMetadata> = self
            .versions
            .iter()
            .map(|v| VersionMetadata {
                version: v.version,
                state: self.state_of(v.version),
                created_at: v.created_at.clone(),
                created_by: v.created_by.clone(),
                fingerprint: v.fingerprint.clone(),
                hosts: v.hosts.clone(),
                expires_at: v.expires_at.clone(),
                fields: v.public.clone(),
                last_test: v.last_test.clone(),
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        CredentialMetadata {
            name: self.name.clone(),
            org: self.org.clone(),
            kind: self.kind,
            fields: cur.map(|v| v.public.clone()).unwrap_or_default(),
            hosts: cur.map(|v| v.hosts.clone()).unwrap_or_default(),
            expires_at: cur.and_then(|v| v.expires_at.clone()),
            fingerprint: cur.map(|v| v.fingerprint.clone()).unwrap_or_default(),
            version: self.promoted,
            pending_version: self.pending,
            previous_version: self.previous,
            versions,
            created_at: self.created_at.clone(),
            created_by: self.created_by.clone(),
            updated_at: self.updated_at.clone(),
            updated_by: self.updated_by.clone(),
            last_used_at,
            bound_connectors,
        }
    }
}

/// State of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Used by requests.
    Promoted,
    /// Written, testable, not used yet.
    Pending,
    /// Kept for rollback.
    Previous,
}

/// One version, metadata only.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VersionMetadata {
    /// Version number.
    pub version: u32,
    /// Promoted, pending or previous.
    pub state: VersionState,
    /// RFC 3339.
    pub created_at: String,
    /// Actor.
    pub created_by: String,
    /// Keyed digest of the secret (equal fingerprints: same secret).
    pub fingerprint: String,
    /// Bound host patterns.
    pub hosts: Vec<String>,
    /// Admin-set expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Non-secret fields.
    pub fields: PublicFields,
    /// Last test of this version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_test: Option<VersionTest>,
}

/// A credential as every API shows it: metadata only, never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CredentialMetadata {
    /// Name.
    pub name: String,
    /// Org.
    pub org: String,
    /// Kind.
    pub kind: CredentialKind,
    /// Non-secret fields of the promoted version.
    pub fields: PublicFields,
    /// Host patterns the promoted version may be sent to.
    pub hosts: Vec<String>,
    /// Admin-set expiry of the promoted version (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Keyed digest of the promoted secret.
    pub fingerprint: String,
    /// Promoted version.
    pub version: u32,
    /// Pending version, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_version: Option<u32>,
    /// Version `rollback` returns to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<u32>,
    /// Live versions, newest first.
    pub versions: Vec<VersionMetadata>,
    /// RFC 3339.
    pub created_at: String,
    /// Actor.
    pub created_by: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Actor.
    pub updated_by: String,
    /// Last time a request used it (minute resolution).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// Connectors of the org bound to it.
    pub bound_connectors: Vec<String>,
}

/// Body of `PUT /v1/orgs/{org}/credentials/{name}`. The secret field of the kind
/// (`token`, `client_secret`, `key` or `password`) is write-only: required when the
/// credential is created, optional afterwards (omitted: the promoted secret is kept).
#[derive(Debug, Clone, ToSchema)]
pub struct CredentialInputDoc {
    /// `bearer`, `oauth2-client-credentials`, `api-key` or `basic`.
    pub kind: CredentialKind,
    /// Host patterns the credential may be sent to (at least one).
    pub hosts: Vec<String>,
    /// Optional expiry (RFC 3339); drives a health warning before it.
    pub expires_at: Option<String>,
    /// bearer: the token (write-only).
    #[schema(write_only)]
    pub token: Option<String>,
    /// oauth2: token endpoint URL.
    pub token_url: Option<String>,
    /// oauth2: client id.
    pub client_id: Option<String>,
    /// oauth2: client secret (write-only).
    #[schema(write_only)]
    pub client_secret: Option<String>,
    /// oauth2: scopes.
    pub scopes: Option<Vec<String>>,
    /// oauth2: audience.
    pub audience: Option<String>,
    /// api-key: the key (write-only).
    #[schema(write_only)]
    pub key: Option<String>,
    /// api-key: header name (or `query`).
    pub header: Option<String>,
    /// api-key: query parameter name (or `header`).
    pub query: Option<String>,
    /// api-key: prefix before the key in the header.
    pub prefix: Option<String>,
    /// basic: user name.
    pub username: Option<String>,
    /// basic: password (write-only).
    #[schema(write_only)]
    pub password: Option<String>,
}

/// A parsed, checked write. The secret is zeroised on drop and never printed.
pub struct CredentialInput {
    /// Kind.
    pub kind: CredentialKind,
    /// Host patterns (checked).
    pub hosts: Vec<String>,
    /// Expiry (checked RFC 3339, normalised).
    pub expires_at: Option<String>,
    /// Non-secret fields.
    pub public: PublicFields,
    /// The secret, if given.
    pub secret: Option<secrecy::SecretString>,
}

impl std::fmt::Debug for CredentialInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialInput")
            .field("kind", &self.kind)
            .field("hosts", &self.hosts)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The name of the secret field of `kind`.
pub fn secret_field(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Bearer => "token",
        CredentialKind::OAuth2ClientCredentials => "client_secret",
        CredentialKind::ApiKey => "key",
        CredentialKind::Basic => "password",
    }
}

fn kind_fields(kind: CredentialKind) -> &'static [&'static str] {
    match kind {
        CredentialKind::Bearer => &["token"],
        CredentialKind::OAuth2ClientCredentials => &[
            "token_url",
            "client_id",
            "client_secret",
            "scopes",
            "audience",
        ],
        CredentialKind::ApiKey => &["key", "header", "query", "prefix"],
        CredentialKind::Basic => &["username", "password"],
    }
}

fn field_err(fields: &mut Vec<FieldError>, path: &str, message: impl Into<String>) {
    fields.push(FieldError {
        path: path.into(),
        message: message.into(),
    });
}

impl CredentialInput {
    /// Parse a JSON body. Every problem is a field error naming the field, never its value.
    pub fn parse(body: &serde_json::Value) -> Result<CredentialInput, Vec<FieldError>> {
        let mut errs = Vec::new();
        let Some(obj) = body.as_object() else {
            return Err(vec![FieldError {
                path: String::new(),
                message: "the body must be a JSON object".into(),
            }]);
        };
        let kind = match obj.get("kind").and_then(|v| v.as_str()) {
            Some(k) => match serde_json::from_value::<CredentialKind>(serde_json::json!(k)) {
                Ok(k) => k,
                Err(_) => {
                    return Err(vec![FieldError {
                        path: "/kind".into(),
                        message: "must be one of bearer, oauth2-client-credentials, api-key, basic"
                            .into(),
                    }]);
                }
            },
            None => {
                return Err(vec![FieldError {
                    path: "/kind".into(),
                    message: "required: bearer, oauth2-client-credentials, api-key or basic".into(),
                }]);
            }
        };
        let allowed = kind_fields(kind);
        for k in obj.keys() {
            if !matches!(k.as_str(), "kind" | "hosts" | "expires_at")
                && !allowed.contains(&k.as_str())
            {
                field_err(
                    &mut errs,
                    &format!("/{k}"),
                    format!(
                        "unknown field for kind {kind} (fields: kind, hosts, expires_at, {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        let string = |name: &str, errs: &mut Vec<FieldError>| -> Option<String> {
            match obj.get(name) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    field_err(errs, &format!("/{name}"), "must be a string");
                    None
                }
            }
        };
        let mut hosts = Vec::new();
        match obj.get("hosts") {
            Some(serde_json::Value::Array(a)) if !a.is_empty() => {
                for (i, h) in a.iter().enumerate() {
                    match h.as_str().map(HostPattern::parse) {
                        Some(Ok(_)) => hosts.push(h.as_str().unwrap_or_default().to_string()),
                        Some(Err(_)) => field_err(
                            &mut errs,
                            &format!("/hosts/{i}"),
                            "must be a host pattern such as https://api.example.com, https://*.example.com or http://127.0.0.1:8080",
                        ),
                        None => field_err(&mut errs, &format!("/hosts/{i}"), "must be a string"),
                    }
                }
            }
            _ => field_err(
                &mut errs,
                "/hosts",
                "required: a non-empty array of host patterns the credential may be sent to",
            ),
        }
        let expires_at =
            string("expires_at", &mut errs).and_then(
                |s| match chrono::DateTime::parse_from_rfc3339(&s) {
                    Ok(t) => Some(
                        t.with_timezone(&chrono::Utc)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ),
                    Err(_) => {
                        field_err(
                            &mut errs,
                            "/expires_at",
                            "must be an RFC 3339 date-time such as 2027-01-31T00:00:00Z",
                        );
                        None
                    }
                },
            );
        let secret_name = secret_field(kind);
        let secret = match obj.get(secret_name) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if !s.is_empty() => {
                if s.chars().any(|c| c.is_control()) {
                    field_err(
                        &mut errs,
                        &format!("/{secret_name}"),
                        "must not contain control characters",
                    );
                }
                Some(secrecy::SecretString::from(s.clone()))
            }
            Some(_) => {
                field_err(
                    &mut errs,
                    &format!("/{secret_name}"),
                    "must be a non-empty string",
                );
                None
            }
        };
        let mut public = PublicFields::default();
        match kind {
            CredentialKind::Bearer => {}
            CredentialKind::OAuth2ClientCredentials => {
                match string("token_url", &mut errs) {
                    Some(u) => match url::Url::parse(&u) {
                        Ok(p)
                            if matches!(p.scheme(), "http" | "https")
                                && p.username().is_empty()
                                && p.password().is_none() =>
                        {
                            public.token_url = Some(u)
                        }
                        _ => field_err(
                            &mut errs,
                            "/token_url",
                            "must be an absolute http(s) URL without user information",
                        ),
                    },
                    None => field_err(
                        &mut errs,
                        "/token_url",
                        "required for oauth2-client-credentials",
                    ),
                }
                match string("client_id", &mut errs) {
                    Some(c) if !c.is_empty() => public.client_id = Some(c),
                    _ => field_err(
                        &mut errs,
                        "/client_id",
                        "required for oauth2-client-credentials",
                    ),
                }
                public.audience = string("audience", &mut errs);
                match obj.get("scopes") {
                    None | Some(serde_json::Value::Null) => {}
                    Some(serde_json::Value::Array(a)) => {
                        for (i, s) in a.iter().enumerate() {
                            match s.as_str() {
                                Some(s) if !s.is_empty() && !s.contains(' ') => {
                                    public.scopes.push(s.to_string())
                                }
                                _ => field_err(
                                    &mut errs,
                                    &format!("/scopes/{i}"),
                                    "must be a scope token (non-empty, no spaces)",
                                ),
                            }
                        }
                    }
                    Some(_) => field_err(&mut errs, "/scopes", "must be an array of strings"),
                }
            }
            CredentialKind::ApiKey => {
                let header = string("header", &mut errs);
                let query = string("query", &mut errs);
                let prefix = string("prefix", &mut errs);
                match (&header, &query) {
                    (Some(h), None) => {
                        if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                            field_err(&mut errs, "/header", "is not a valid header name");
                        }
                    }
                    (None, Some(q)) => {
                        if q.is_empty() {
                            field_err(&mut errs, "/query", "must not be empty");
                        }
                        if prefix.is_some() {
                            field_err(&mut errs, "/prefix", "only applies to header keys");
                        }
                    }
                    _ => field_err(
                        &mut errs,
                        "/header",
                        "api-key needs exactly one of `header` or `query`",
                    ),
                }
                public.header = header;
                public.query = query;
                public.prefix = prefix;
            }
            CredentialKind::Basic => match string("username", &mut errs) {
                Some(u) if !u.contains(':') => public.username = Some(u),
                Some(_) => field_err(&mut errs, "/username", "must not contain `:` (RFC 7617)"),
                None => field_err(&mut errs, "/username", "required for basic"),
            },
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(CredentialInput {
            kind,
            hosts,
            expires_at,
            public,
            secret,
        })
    }
}

/// A credential due to expire (or expired), for health warnings.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExpiringCredential {
    /// Name.
    pub name: String,
    /// Promoted version.
    pub version: u32,
    /// RFC 3339.
    pub expires_at: String,
    /// Already past `expires_at`.
    pub expired: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_errors_name_fields_never_values() {
        let errs = CredentialInput::parse(&json!({
            "kind": "api-key", "key": "SUPERSECRET-1", "hosts": ["SUPERSECRET-2"], "extra": "SUPERSECRET-3"
        }))
        .unwrap_err();
        let text = format!("{errs:?}");
        assert!(
            text.contains("/hosts/0") && text.contains("/extra") && text.contains("/header"),
            "{text}"
        );
        assert!(!text.contains("SUPERSECRET"), "{text}");
        let errs = CredentialInput::parse(&json!({"kind": "SUPERSECRET"})).unwrap_err();
        assert!(!format!("{errs:?}").contains("SUPERSECRET"));
    }

    #[test]
    fn parses_every_kind() {
        for body in [
            json!({"kind": "bearer", "token": "t", "hosts": ["https://a.example"]}),
            json!({"kind": "oauth2-client-credentials", "token_url": "https://auth.example/t", "client_id": "c", "client_secret": "s", "scopes": ["r"], "hosts": ["https://a.example"]}),
            json!({"kind": "api-key", "key": "k", "header": "X-Key", "prefix": "Token ", "hosts": ["https://a.example"]}),
            json!({"kind": "api-key", "key": "k", "query": "apikey", "hosts": ["https://a.example"]}),
            json!({"kind": "basic", "username": "u", "password": "p", "hosts": ["https://a.example"], "expires_at": "2030-01-01T00:00:00+01:00"}),
        ] {
            let i = CredentialInput::parse(&body).unwrap();
            assert!(i.secret.is_some());
            assert!(!format!("{i:?}").contains("\"t\""));
        }
        let i = CredentialInput::parse(&json!({"kind": "basic", "username": "u", "password": "p", "hosts": ["https://a.example"], "expires_at": "2030-01-01T00:00:00+01:00"})).unwrap();
        assert_eq!(i.expires_at.as_deref(), Some("2029-12-31T23:00:00Z"));
    }
}

/// One bound connector's `test-connection` run with the tested version.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConnectorCredentialTest {
    /// Connector id.
    pub connector: String,
    /// Connector name.
    pub connector_name: String,
    /// Every stage passed.
    pub ok: bool,
    /// Host-measured latency.
    pub latency_ms: u64,
    /// Stages (auth, sample, ...); messages never contain secrets.
    pub stages: Vec<crate::runtime::TestStage>,
    /// `AUTH_FAILED` when authentication failed (with the RFC 6749 §5.2 code, if the
    /// token endpoint gave one, in `auth_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Token endpoint error code (`invalid_client`, `invalid_scope`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_error: Option<String>,
}

/// Result of `POST /v1/orgs/{org}/credentials/{name}/test`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CredentialTestReport {
    /// Credential name.
    pub name: String,
    /// Version tested.
    pub version: u32,
    /// Every bound connector's test passed.
    pub ok: bool,
    /// Per bound connector.
    pub connectors: Vec<ConnectorCredentialTest>,
}

/// Overwrite every string of a request body in place (after the secret in it has been
/// sealed), so the plaintext does not linger in freed memory longer than needed.
pub fn zeroize_json(v: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(zeroize_json),
        _ => {}
    }
}
