//! GraphQL for the credential vault: metadata queries (`credentials`, `credential`) and the
//! `setCredential`, `promoteCredential` and `rollbackCredential` mutations. Secret fields
//! exist only on the input type: no output type has a field that could carry one.

use async_graphql::{Context, Enum, ID, InputObject, Object};

use super::{CredentialKind, GqlResult, OrGql, caller, nullable};
use crate::vault::record::{CredentialMetadata, VersionMetadata};

/// State of a credential version.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::vault::record::VersionState")]
pub(super) enum VersionState {
    /// Used by requests.
    Promoted,
    /// Written, testable, not used yet.
    Pending,
    /// Kept for rollback.
    Previous,
}

/// One version of a credential (metadata only).
pub(super) struct CredentialVersion(VersionMetadata);

#[Object]
impl CredentialVersion {
    /// Version number.
    async fn version(&self) -> u32 {
        self.0.version
    }
    /// Promoted, pending or previous.
    async fn state(&self) -> VersionState {
        VersionState::from(self.0.state)
    }
    /// RFC 3339.
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    /// Who wrote it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// Keyed digest of the secret.
    async fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }
    /// Host patterns it may be sent to.
    async fn hosts(&self) -> &[String] {
        &self.0.hosts
    }
    /// Admin-set expiry (RFC 3339).
    async fn expires_at(&self) -> Option<&str> {
        self.0.expires_at.as_deref()
    }
    /// Whether its last test passed (null: never tested).
    async fn last_test_ok(&self) -> Option<bool> {
        self.0.last_test.as_ref().map(|t| t.ok)
    }
}

/// A credential: metadata only, never a secret.
pub(super) struct Credential(CredentialMetadata);

#[Object]
impl Credential {
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Owning organisation.
    async fn org(&self) -> ID {
        ID(self.0.org.clone())
    }
    /// Kind.
    async fn kind(&self) -> CredentialKind {
        CredentialKind::from(self.0.kind)
    }
    /// Host patterns the promoted version may be sent to.
    async fn hosts(&self) -> &[String] {
        &self.0.hosts
    }
    /// OAuth 2.0 token endpoint.
    async fn token_url(&self) -> Option<&str> {
        self.0.fields.token_url.as_deref()
    }
    /// OAuth 2.0 client id.
    async fn client_id(&self) -> Option<&str> {
        self.0.fields.client_id.as_deref()
    }
    /// OAuth 2.0 scopes.
    async fn scopes(&self) -> &[String] {
        &self.0.fields.scopes
    }
    /// OAuth 2.0 audience.
    async fn audience(&self) -> Option<&str> {
        self.0.fields.audience.as_deref()
    }
    /// API key header name.
    async fn header(&self) -> Option<&str> {
        self.0.fields.header.as_deref()
    }
    /// API key query parameter name.
    async fn query(&self) -> Option<&str> {
        self.0.fields.query.as_deref()
    }
    /// API key header prefix.
    async fn prefix(&self) -> Option<&str> {
        self.0.fields.prefix.as_deref()
    }
    /// Basic user name.
    async fn username(&self) -> Option<&str> {
        self.0.fields.username.as_deref()
    }
    /// Admin-set expiry of the promoted version.
    async fn expires_at(&self) -> Option<&str> {
        self.0.expires_at.as_deref()
    }
    /// Keyed digest of the promoted secret.
    async fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }
    /// Promoted version.
    async fn version(&self) -> u32 {
        self.0.version
    }
    /// Pending version, if any.
    async fn pending_version(&self) -> Option<u32> {
        self.0.pending_version
    }
    /// Version a rollback returns to, if any.
    async fn previous_version(&self) -> Option<u32> {
        self.0.previous_version
    }
    /// Live versions, newest first.
    async fn versions(&self) -> Vec<CredentialVersion> {
        self.0
            .versions
            .iter()
            .cloned()
            .map(CredentialVersion)
            .collect()
    }
    /// RFC 3339.
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    /// Actor.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// RFC 3339.
    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
    /// Actor.
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// Last use by a request (minute resolution).
    async fn last_used_at(&self) -> Option<&str> {
        self.0.last_used_at.as_deref()
    }
    /// Ids of the connectors bound to it.
    async fn bound_connectors(&self) -> Vec<ID> {
        self.0.bound_connectors.iter().cloned().map(ID).collect()
    }
}

/// A credential write. The secret field of the kind (`token`, `clientSecret`, `key`,
/// `password`) is write-only: required on creation, optional afterwards.
#[derive(InputObject)]
pub(super) struct SetCredentialInput {
    kind: CredentialKind,
    hosts: Vec<String>,
    expires_at: Option<String>,
    token: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scopes: Option<Vec<String>>,
    audience: Option<String>,
    key: Option<String>,
    header: Option<String>,
    query: Option<String>,
    prefix: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl SetCredentialInput {
    /// The REST body form (snake_case keys), which the service parses and checks.
    fn into_body(self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert(
            "kind".into(),
            crate::manifest::CredentialKind::from(self.kind)
                .to_string()
                .into(),
        );
        m.insert("hosts".into(), self.hosts.into());
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        };
        put("expires_at", self.expires_at);
        put("token", self.token);
        put("token_url", self.token_url);
        put("client_id", self.client_id);
        put("client_secret", self.client_secret);
        put("audience", self.audience);
        put("key", self.key);
        put("header", self.header);
        put("query", self.query);
        put("prefix", self.prefix);
        put("username", self.username);
        put("password", self.password);
        if let Some(s) = self.scopes {
            m.insert("scopes".into(), s.into());
        }
        serde_json::Value::Object(m)
    }
}

/// Credential queries (merged into `Query`).
pub(super) async fn credentials(ctx: &Context<'_>, org: ID) -> Option<Vec<Credential>> {
    let result: GqlResult<Vec<Credential>> = async {
        let (svc, p) = caller(ctx)?;
        Ok(svc
            .list_credentials(p, &org)
            .gql()?
            .into_iter()
            .map(Credential)
            .collect())
    }
    .await;
    nullable(ctx, result)
}

/// One credential.
pub(super) async fn credential(ctx: &Context<'_>, org: ID, name: String) -> Option<Credential> {
    let result: GqlResult<Credential> = async {
        let (svc, p) = caller(ctx)?;
        Ok(Credential(svc.get_credential(p, &org, &name).gql()?))
    }
    .await;
    nullable(ctx, result)
}

/// `setCredential`.
pub(super) async fn set_credential(
    ctx: &Context<'_>,
    org: ID,
    name: String,
    input: SetCredentialInput,
    promote: bool,
) -> Option<Credential> {
    let result: GqlResult<Credential> = async {
        let (svc, p) = caller(ctx)?;
        let mut body = input.into_body();
        let result = svc.put_credential(p, &org, &name, &body, promote).await;
        crate::vault::record::zeroize_json(&mut body);
        let (meta, _) = result.gql()?;
        Ok(Credential(meta))
    }
    .await;
    nullable(ctx, result)
}

/// `promoteCredential` / `rollbackCredential`.
pub(super) async fn promote_or_rollback(
    ctx: &Context<'_>,
    org: ID,
    name: String,
    promote: bool,
) -> Option<Credential> {
    let result: GqlResult<Credential> = async {
        let (svc, p) = caller(ctx)?;
        let meta = if promote {
            svc.promote_credential(p, &org, &name).await
        } else {
            svc.rollback_credential(p, &org, &name).await
        }
        .gql()?;
        Ok(Credential(meta))
    }
    .await;
    nullable(ctx, result)
}
