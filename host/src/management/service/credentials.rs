//! Credential operations of [`ManagementService`]: authorization (operator+ writes, viewer
//! reads, another org's credentials are "not found"), validation with field paths, one
//! atomic store batch per action with its audit record (never a value), and rotation
//! (pending versions tested against the bound connectors, promoted, rolled back). The
//! secrets and keys themselves are the vault's ([`crate::vault`]).
//!
//! Every method here is what the REST API, GraphQL and the admin panel call.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::manifest::CredentialSlot;
use crate::vault::record::{
    ConnectorCredentialTest, CredentialInput, CredentialMetadata, CredentialTestReport,
    ExpiringCredential, StoredCredential, StoredVersion, VersionTest, secret_field,
};
use crate::vault::{CredentialVault, RotationReport, credential_key};

fn not_found(name: &str) -> ServiceError {
    ServiceError::NotFound {
        kind: "credential",
        id: name.to_string(),
    }
}

/// The RFC 6749 §5.2 code in an `AUTH_FAILED: token endpoint refused the request: <code>`
/// message.
fn auth_failure(stages: &[crate::runtime::TestStage]) -> Option<(String, Option<String>)> {
    stages.iter().filter(|s| !s.ok).find_map(|s| {
        let at = s.message.find("AUTH_FAILED")?;
        let rest = &s.message[at..];
        let code = rest
            .split("refused the request: ")
            .nth(1)
            .map(|r| {
                r.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|c| !c.is_empty());
        Some(("AUTH_FAILED".to_string(), code))
    })
}

impl ManagementService {
    /// The credential vault (keys, sealed secrets, the broker's credential source).
    pub fn vault(&self) -> &CredentialVault {
        &self.vault
    }

    /// Why binding credential `name` of `org` to `slot` is not allowed, if it is not.
    pub(super) fn binding_problem(
        &self,
        org: &str,
        slot: Option<&CredentialSlot>,
        name: &str,
    ) -> Result<Option<String>> {
        let stored = self
            .vault
            .stored(org, name)
            .map_err(|e| ServiceError::Store(StoreError::Backend(e.to_string())))?;
        let Some(cred) = stored else {
            return Ok(Some(format!(
                "no credential named {name:?} in this organisation; create it first (PUT /v1/orgs/{org}/credentials/{name})"
            )));
        };
        if let Some(slot) = slot
            && !slot.kinds.contains(&cred.kind)
        {
            return Ok(Some(format!(
                "credential {name:?} is of kind {}, but slot {:?} accepts {}",
                cred.kind,
                slot.name,
                slot.kinds
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(None)
    }

    fn vault_err(e: crate::vault::VaultError) -> ServiceError {
        ServiceError::Store(StoreError::Backend(e.to_string()))
    }

    /// Connectors of `org` bound to each credential name.
    fn bindings_by_credential(&self, org: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, c) in self
            .store
            .scan_json::<ConnectorRecord>(&format!("conn/{org}/"))?
        {
            for name in c.spec.credentials.values() {
                let v = out.entry(name.clone()).or_default();
                if !v.contains(&c.id) {
                    v.push(c.id.clone());
                }
            }
        }
        Ok(out)
    }

    fn metadata(&self, c: &StoredCredential, bound: Vec<String>) -> CredentialMetadata {
        c.metadata(self.vault.last_used(&c.org, &c.name), bound)
    }

    fn stored_credential(&self, org: &str, name: &str) -> Result<StoredCredential> {
        self.vault
            .stored(org, name)
            .map_err(Self::vault_err)?
            .ok_or_else(|| not_found(name))
    }

    /// Create a credential or write a new version of it (operator). A new credential's
    /// version 1 is promoted at once; a later write becomes the pending version (replacing
    /// any earlier pending one) unless `promote` is set. The secret may be omitted on
    /// later writes (the promoted secret is kept: e.g. to change hosts or `expires_at`).
    /// Returns the metadata and whether the credential was created.
    pub async fn put_credential(
        &self,
        p: &Principal,
        org: &str,
        name: &str,
        body: &serde_json::Value,
        promote: bool,
    ) -> Result<(CredentialMetadata, bool)> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "writing credentials")?;
        if !valid_slug(name) {
            return Err(ServiceError::invalid(
                "/name",
                "credential names match [a-z0-9][a-z0-9-]{0,62}",
            ));
        }
        let input = CredentialInput::parse(body).map_err(|fields| ServiceError::Invalid {
            message: format!("{} invalid field(s)", fields.len()),
            fields,
        })?;
        let _g = self.write.lock().await;
        let existing = self.vault.stored(org, name).map_err(Self::vault_err)?;
        let at = now();
        let actor = p.actor();
        let (mut cred, created) = match existing {
            Some(c) => {
                if c.kind != input.kind {
                    return Err(ServiceError::Conflict(format!(
                        "credential {name:?} is of kind {}; delete it and create a new one to change the kind",
                        c.kind
                    )));
                }
                (c, false)
            }
            None => {
                if input.secret.is_none() {
                    return Err(ServiceError::invalid(
                        &format!("/{}", secret_field(input.kind)),
                        "required when creating a credential",
                    ));
                }
                (
                    StoredCredential {
                        name: name.to_string(),
                        org: org.to_string(),
                        kind: input.kind,
                        created_at: at.clone(),
                        created_by: actor.clone(),
                        updated_at: at.clone(),
                        updated_by: actor.clone(),
                        promoted: 0,
                        previous: None,
                        pending: None,
                        latest: 0,
                        versions: Vec::new(),
                    },
                    true,
                )
            }
        };
        let version = cred.latest + 1;
        let secret = match input.secret {
            Some(s) => s,
            None => {
                let cur = cred.version(cred.promoted).ok_or_else(|| {
                    ServiceError::Conflict(format!("credential {name:?} has no promoted version"))
                })?;
                self.vault
                    .open_secret(org, name, cur)
                    .map_err(Self::vault_err)?
            }
        };
        let (sealed, fingerprint) = self
            .vault
            .seal(org, name, version, input.kind, &secret)
            .map_err(Self::vault_err)?;
        drop(secret);
        cred.versions.push(StoredVersion {
            version,
            created_at: at.clone(),
            created_by: actor.clone(),
            public: input.public,
            hosts: input.hosts,
            expires_at: input.expires_at,
            fingerprint: fingerprint.clone(),
            sealed,
            last_test: None,
        });
        cred.latest = version;
        cred.updated_at = at;
        cred.updated_by = actor.clone();
        let mut forget = Vec::new();
        let state = if created {
            cred.promoted = version;
            "promoted"
        } else if promote {
            if let Some(old) = cred.version(cred.promoted) {
                forget.push(old.clone());
            }
            if let Some(pend) = cred.pending.take().and_then(|v| cred.version(v).cloned()) {
                forget.push(pend);
            }
            cred.previous = Some(cred.promoted);
            cred.promoted = version;
            "promoted"
        } else {
            if let Some(pend) = cred.pending.and_then(|v| cred.version(v).cloned()) {
                forget.push(pend);
            }
            cred.pending = Some(version);
            "pending"
        };
        cred.prune();
        let audit = self.audit_op(
            &actor,
            Some(org),
            if created {
                "credential.create"
            } else {
                "credential.update"
            },
            &format!("credential/{name}"),
            "ok",
            serde_json::json!({"kind": cred.kind, "version": version, "state": state, "fingerprint": fingerprint}),
        )?;
        self.store.apply(vec![
            WriteOp::put_json(credential_key(org, name), &cred)?,
            audit,
        ])?;
        for v in &forget {
            self.vault.forget_version(org, name, v);
        }
        Ok((self.bound_metadata(org, name, &cred)?, created))
    }

    /// Credentials of an org (viewer): metadata only.
    pub fn list_credentials(&self, p: &Principal, org: &str) -> Result<Vec<CredentialMetadata>> {
        self.scope(p, org)?;
        Self::require(p, Role::Viewer, "reading credentials")?;
        let mut bound = self.bindings_by_credential(org)?;
        Ok(self
            .vault
            .stored_all(org)
            .map_err(Self::vault_err)?
            .iter()
            .map(|c| self.metadata(c, bound.remove(&c.name).unwrap_or_default()))
            .collect())
    }

    /// One credential (viewer): metadata only.
    pub fn get_credential(
        &self,
        p: &Principal,
        org: &str,
        name: &str,
    ) -> Result<CredentialMetadata> {
        self.scope(p, org)?;
        Self::require(p, Role::Viewer, "reading credentials")?;
        let c = self.stored_credential(org, name)?;
        self.bound_metadata(org, name, &c)
    }

    /// Delete a credential with every version (operator). Refused while connectors are
    /// bound to it unless `force` (their requests then fail until they are rebound).
    pub async fn delete_credential(
        &self,
        p: &Principal,
        org: &str,
        name: &str,
        force: bool,
    ) -> Result<()> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "deleting credentials")?;
        let _g = self.write.lock().await;
        let c = self.stored_credential(org, name)?;
        let bound = self
            .bindings_by_credential(org)?
            .remove(name)
            .unwrap_or_default();
        if !bound.is_empty() && !force {
            self.store.apply(vec![self.audit_op(
                &p.actor(),
                Some(org),
                "credential.delete",
                &format!("credential/{name}"),
                "refused: bound",
                serde_json::json!({"connectors": bound}),
            )?])?;
            return Err(ServiceError::Conflict(format!(
                "credential {name:?} is bound to {} connector(s) ({}); rebind them, or pass ?force=true",
                bound.len(),
                bound.join(", ")
            )));
        }
        let mut ops = CredentialVault::delete_ops(org, name);
        ops.push(self.audit_op(
            &p.actor(),
            Some(org),
            "credential.delete",
            &format!("credential/{name}"),
            "ok",
            serde_json::json!({"forced": force, "bound_connectors": bound}),
        )?);
        self.store.apply(ops)?;
        for v in &c.versions {
            self.vault.forget_version(org, name, v);
        }
        Ok(())
    }

    /// Run `test-connection` of every connector bound to `name` with version `version`
    /// (default: the pending version, else the promoted one), without promoting it
    /// (operator). The result is kept on the version.
    pub async fn test_credential(
        &self,
        p: &Principal,
        org: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<CredentialTestReport> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "testing credentials")?;
        let c = self.stored_credential(org, name)?;
        let version = version.or(c.pending).unwrap_or(c.promoted);
        if c.version(version).is_none() {
            return Err(ServiceError::invalid(
                "/version",
                format!("credential {name:?} has no version {version}"),
            ));
        }
        let connectors: Vec<ConnectorRecord> = self
            .store
            .scan_json::<ConnectorRecord>(&format!("conn/{org}/"))?
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| c.spec.credentials.values().any(|n| n == name))
            .collect();
        if connectors.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "no connector is bound to credential {name:?}; bind one to test the credential against"
            )));
        }
        let mut results = Vec::new();
        for rec in connectors {
            let span = tracing::info_span!("credential_test", org = %org, credential = %name, version, connector = %rec.id, plugin = %rec.spec.plugin.id);
            let plugin = self.loaded(&rec.spec.plugin.id, &rec.spec.plugin.version)?;
            let env = self.connector_env_pinned(&rec, Some((name.to_string(), version)));
            let sandbox = plugin
                .bind(env)
                .map_err(|e| ServiceError::Conflict(e.to_string()))?;
            let report = match tracing::Instrument::instrument(
                sandbox.test_connection(&rec.spec.config),
                span,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => plugin_failure_report(&e),
            };
            let failure = if report.ok {
                None
            } else {
                auth_failure(&report.stages)
            };
            results.push(ConnectorCredentialTest {
                connector: rec.id.clone(),
                connector_name: rec.spec.name.clone(),
                ok: report.ok,
                latency_ms: report.latency_ms,
                stages: report.stages,
                reason: failure.as_ref().map(|f| f.0.clone()),
                auth_error: failure.and_then(|f| f.1),
            });
        }
        let ok = results.iter().all(|r| r.ok);
        let _g = self.write.lock().await;
        let mut ops = vec![self.audit_op(
            &p.actor(),
            Some(org),
            "credential.test",
            &format!("credential/{name}"),
            if ok { "ok" } else { "failed" },
            serde_json::json!({"version": version, "connectors": results.iter().map(|r| serde_json::json!({"connector": r.connector, "ok": r.ok, "reason": r.reason, "auth_error": r.auth_error})).collect::<Vec<_>>()}),
        )?];
        if let Ok(Some(mut cur)) = self.vault.stored(org, name)
            && let Some(v) = cur.versions.iter_mut().find(|v| v.version == version)
        {
            v.last_test = Some(VersionTest { at: now(), ok });
            ops.push(WriteOp::put_json(credential_key(org, name), &cur)?);
        }
        self.store.apply(ops)?;
        Ok(CredentialTestReport {
            name: name.to_string(),
            version,
            ok,
            connectors: results,
        })
    }

    /// Promote the pending version (operator): the next request of every bound connector
    /// uses it; the replaced version is kept for rollback and its OAuth token dropped.
    pub async fn promote_credential(
        &self,
        p: &Principal,
        org: &str,
        name: &str,
    ) -> Result<CredentialMetadata> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "promoting credentials")?;
        let _g = self.write.lock().await;
        let mut c = self.stored_credential(org, name)?;
        let Some(pending) = c.pending.take() else {
            return Err(ServiceError::Conflict(format!(
                "credential {name:?} has no pending version to promote; write a new version first"
            )));
        };
        let old = c.version(c.promoted).cloned();
        c.previous = Some(c.promoted);
        c.promoted = pending;
        let detail = serde_json::json!({"version": pending, "previous": c.previous});
        self.store_version_change(p, org, name, &mut c, "credential.promote", detail, old)?;
        tracing::info!(
            org,
            credential = name,
            version = pending,
            "credential version promoted"
        );
        self.bound_metadata(org, name, &c)
    }

    /// Return to the previous version (operator); the rolled-back version is dropped with
    /// its OAuth token. A pending version stays pending.
    pub async fn rollback_credential(
        &self,
        p: &Principal,
        org: &str,
        name: &str,
    ) -> Result<CredentialMetadata> {
        self.scope(p, org)?;
        Self::require(p, Role::Operator, "rolling back credentials")?;
        let _g = self.write.lock().await;
        let mut c = self.stored_credential(org, name)?;
        let Some(prev) = c.previous.take() else {
            return Err(ServiceError::Conflict(format!(
                "credential {name:?} has no previous version to roll back to"
            )));
        };
        let dropped = c.version(c.promoted).cloned();
        let from = c.promoted;
        c.promoted = prev;
        let detail = serde_json::json!({"from": from, "to": prev});
        self.store_version_change(p, org, name, &mut c, "credential.rollback", detail, dropped)?;
        tracing::info!(
            org,
            credential = name,
            version = prev,
            "credential rolled back"
        );
        self.bound_metadata(org, name, &c)
    }

    /// Stamp, prune and store a credential whose promoted version changed, with its audit
    /// record `action` (carrying `detail`) in one batch; then forget the key material of
    /// the replaced version `dropped` (its OAuth token).
    #[allow(clippy::too_many_arguments)]
    fn store_version_change(
        &self,
        p: &Principal,
        org: &str,
        name: &str,
        c: &mut StoredCredential,
        action: &str,
        detail: serde_json::Value,
        dropped: Option<StoredVersion>,
    ) -> Result<()> {
        c.updated_at = now();
        c.updated_by = p.actor();
        c.prune();
        let audit = self.audit_op(
            &p.actor(),
            Some(org),
            action,
            &format!("credential/{name}"),
            "ok",
            detail,
        )?;
        self.store.apply(vec![
            WriteOp::put_json(credential_key(org, name), &*c)?,
            audit,
        ])?;
        if let Some(d) = dropped {
            self.vault.forget_version(org, name, &d);
        }
        Ok(())
    }

    /// The metadata of credential `name` with the connectors bound to it.
    fn bound_metadata(
        &self,
        org: &str,
        name: &str,
        c: &StoredCredential,
    ) -> Result<CredentialMetadata> {
        let bound = self
            .bindings_by_credential(org)?
            .remove(name)
            .unwrap_or_default();
        Ok(self.metadata(c, bound))
    }

    /// Promoted credentials of `org` expiring within `within` (or expired), for health
    /// warnings; no principal (the health checks call it).
    pub fn credentials_expiring(
        &self,
        org: &str,
        within: Duration,
    ) -> Result<Vec<ExpiringCredential>> {
        self.vault.expiring(org, within).map_err(Self::vault_err)
    }

    /// Credentials bound to `rec` that expire within `[vault] expiry_warning_days` (or
    /// have expired): the `CREDENTIAL_EXPIRING` warnings of its health view.
    pub fn credential_warnings(&self, rec: &ConnectorRecord) -> Vec<ExpiringCredential> {
        let days = u64::from(self.vault.config().expiry_warning_days);
        match self
            .vault
            .expiring(&rec.org, Duration::from_secs(days * 86_400))
        {
            Ok(v) => v
                .into_iter()
                .filter(|c| rec.spec.credentials.values().any(|n| n == &c.name))
                .collect(),
            Err(e) => {
                tracing::warn!(org = %rec.org, connector = %rec.id, error = %e, "cannot read credential expiry");
                Vec::new()
            }
        }
    }

    /// Re-wrap every data key under a new master key, online (platform admin). Without
    /// `new_key_file` a fresh key replaces the current key file; with it, the key in that
    /// file (created if missing) is used and the configuration must point at it.
    pub async fn rotate_master_key(
        &self,
        p: &Principal,
        new_key_file: Option<&std::path::Path>,
    ) -> Result<RotationReport> {
        Self::require_platform_admin(p, "rotating the master key")?;
        let _g = self.write.lock().await;
        let result = self.vault.rotate_master_key_with_file(new_key_file).await;
        let (outcome, detail) = match &result {
            Ok(r) => (
                "ok".to_string(),
                serde_json::json!({"from": r.previous_master_key_id, "to": r.master_key_id, "rewrapped_data_keys": r.rewrapped_data_keys}),
            ),
            Err(e) => (format!("failed: {e}"), serde_json::Value::Null),
        };
        self.store.apply(vec![self.audit_op(
            &p.actor(),
            None,
            "vault.rotate_master_key",
            "vault/master-key",
            &outcome,
            detail,
        )?])?;
        result.map_err(|e| match e {
            crate::vault::VaultError::MasterKey(m) => ServiceError::Conflict(m),
            other => Self::vault_err(other),
        })
    }
}
