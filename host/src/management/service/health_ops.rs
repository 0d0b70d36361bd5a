//! Health operations of the management service: seeding the monitor with every
//! configured connector, persisting state changes with a bounded transition history,
//! the crash-loop policy's audited automatic disable, and the health and metrics views.

use super::*;
use crate::health::{ConnectorMetricsView, HealthConfig, HealthEvent, HealthReason};

/// `GET /v1/orgs/{org}/connectors/{id}/health`: current health and recent transitions.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConnectorHealthView {
    /// Connector id.
    pub connector: String,
    /// Current health (as persisted on the connector record).
    pub health: Health,
    /// Until when polling is held off (rate limit reset, backoff), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<String>,
    /// Consecutive failed calls.
    pub consecutive_failures: u32,
    /// What a crash loop does to this connector.
    pub crash_loop_policy: CrashLoopPolicy,
    /// Recent transitions, newest first.
    pub transitions: Vec<HealthTransition>,
    /// Warnings (`CREDENTIAL_EXPIRING`): bound credentials whose admin-set `expires_at`
    /// is within `[vault] expiry_warning_days`, or past (`expired`).
    pub credential_warnings: Vec<crate::vault::record::ExpiringCredential>,
}

/// The principal automatic health actions are recorded under.
fn health_principal(org: &str) -> Principal {
    Principal {
        token_id: "health".into(),
        name: "health monitor".into(),
        org: Some(org.to_string()),
        role: Role::Operator,
    }
}

fn history_prefix(org: &str, id: &str) -> String {
    format!("health/{org}/{id}/")
}

impl ManagementService {
    /// Track every configured connector, starting from its persisted health.
    pub(super) fn register_health(&self) -> Result<()> {
        for (_, c) in self.store.scan_json::<ConnectorRecord>("conn/")? {
            self.health.register(
                &c.org,
                &c.id,
                &c.spec.plugin.id,
                c.enabled,
                Some((c.health.state, c.health.details.clone())),
            );
        }
        Ok(())
    }

    /// Apply `[health]` thresholds.
    pub fn configure_health(&self, config: HealthConfig) {
        self.health.configure(config);
    }

    /// Deletes of a connector's transition history (with the connector).
    pub(super) fn health_history_deletes(&self, org: &str, id: &str) -> Result<Vec<WriteOp>> {
        Ok(self
            .store
            .scan_prefix(&history_prefix(org, id))?
            .into_iter()
            .map(|(k, _)| WriteOp::Delete(k))
            .collect())
    }

    /// Save a changed crash-loop policy (no configuration revision), audited.
    pub(super) fn save_crash_loop_policy(
        &self,
        p: &Principal,
        rec: &ConnectorRecord,
        policy: CrashLoopPolicy,
    ) -> Result<()> {
        let audit = self.audit_op(
            &p.actor(),
            Some(&rec.org),
            "connector.crash_loop_policy",
            &format!("connector/{}", rec.id),
            "ok",
            serde_json::json!({ "crash_loop_policy": policy }),
        )?;
        self.store.apply(vec![
            WriteOp::put_json(Self::connector_key(&rec.org, &rec.id), rec)?,
            audit,
        ])?;
        Ok(())
    }

    /// Current health and recent transitions (viewer).
    pub fn connector_health(
        &self,
        p: &Principal,
        org: &str,
        id: &str,
        limit: usize,
    ) -> Result<ConnectorHealthView> {
        self.scope(p, org)?;
        let rec = self.get_connector_record(org, id)?;
        let mut transitions: Vec<HealthTransition> = self
            .store
            .scan_json::<HealthTransition>(&history_prefix(org, id))?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        transitions.reverse();
        transitions.truncate(limit.clamp(1, 1000));
        let snap = self.health.snapshot(org, id);
        let credential_warnings = self.credential_warnings(&rec);
        Ok(ConnectorHealthView {
            connector: rec.id,
            health: rec.health,
            hold_until: snap.as_ref().and_then(|s| s.hold_until.clone()),
            consecutive_failures: snap.map_or(0, |s| s.consecutive_failures),
            crash_loop_policy: rec.crash_loop_policy,
            transitions,
            credential_warnings,
        })
    }

    /// Per-connector figures (viewer): events in/out, duplicates, events/min, last event,
    /// poll latency percentiles, errors by reason, sink lag.
    pub fn connector_metrics(
        &self,
        p: &Principal,
        org: &str,
        id: &str,
    ) -> Result<ConnectorMetricsView> {
        self.scope(p, org)?;
        let rec = self.get_connector_record(org, id)?;
        if self.health.metrics(org, id).is_none() {
            self.health
                .register(org, id, &rec.spec.plugin.id, rec.enabled, None);
        }
        self.health
            .metrics(org, id)
            .ok_or_else(|| ServiceError::NotFound {
                kind: "connector",
                id: id.to_string(),
            })
    }

    /// The periodic health probe: `test-connection` of an enabled connector, reported to
    /// the monitor (not recorded as the connector's last test, not audited).
    pub async fn probe_connector(&self, org: &str, id: &str) -> Result<()> {
        let rec = self.get_connector_record(org, id)?;
        if !rec.enabled {
            return Ok(());
        }
        let plugin = self.loaded(&rec.spec.plugin.id, &rec.spec.plugin.version)?;
        let sandbox = plugin
            .bind(self.connector_env(&rec))
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let started = std::time::Instant::now();
        let obs = match sandbox.test_connection(&rec.spec.config).await {
            Ok(report) => crate::health::Observation::ConnectionProbe {
                ok: report.ok,
                latency: started.elapsed(),
                message: report
                    .stages
                    .iter()
                    .find(|s| !s.ok)
                    .map(|s| format!("{}: {}", s.name, s.message)),
                upstream: Vec::new(),
            },
            Err(e) => {
                // A trap or deadline in the probe is a plugin fault like any other call's.
                if matches!(
                    e,
                    crate::runtime::CallError::Trap(_)
                        | crate::runtime::CallError::MemoryLimit { .. }
                ) {
                    crate::health::Observation::PluginTrapped {
                        message: e.to_string(),
                    }
                } else {
                    crate::health::Observation::ConnectionProbe {
                        ok: false,
                        latency: started.elapsed(),
                        message: Some(e.to_string()),
                        upstream: Vec::new(),
                    }
                }
            }
        };
        self.health.observe(org, id, obs);
        Ok(())
    }

    /// `/metrics` text: every org for the platform admin, the caller's own org otherwise.
    pub fn prometheus_metrics(&self, p: &Principal) -> Result<String> {
        if p.is_platform_admin() {
            return Ok(self.health.render_prometheus(None));
        }
        match &p.org {
            Some(org) => Ok(self.health.render_prometheus(Some(org))),
            None => Err(ServiceError::Forbidden(
                "reading metrics needs the platform admin's token or an organisation token".into(),
            )),
        }
    }

    /// Act on one event of the health monitor: persist a transition on the record and in
    /// the history (one batch), or apply the crash-loop policy.
    pub async fn apply_health_event(&self, event: HealthEvent) -> Result<()> {
        match event {
            HealthEvent::Transition {
                org,
                connector,
                from,
                to,
                details,
                at,
            } => {
                self.persist_transition(&org, &connector, from, to, details, at)
                    .await
            }
            HealthEvent::CrashLoop {
                org,
                connector,
                failures,
                last_error,
            } => {
                self.crash_loop(&org, &connector, failures, last_error)
                    .await
            }
        }
    }

    async fn persist_transition(
        &self,
        org: &str,
        id: &str,
        from: HealthState,
        to: HealthState,
        details: Vec<HealthReason>,
        at: String,
    ) -> Result<()> {
        let _g = self.write.lock().await;
        let Some(mut rec) = self
            .store
            .get_json::<ConnectorRecord>(&Self::connector_key(org, id))?
        else {
            return Ok(()); // deleted meanwhile
        };
        // A late report for a connector disabled meanwhile must not resurrect it.
        if !rec.enabled && to != HealthState::Disabled {
            return Ok(());
        }
        let health = Health::with_reasons(to, at.clone(), details.clone());
        let transition = HealthTransition {
            at: at.clone(),
            from,
            to,
            reasons: health.reasons.clone(),
            details,
        };
        let mut ops = Vec::new();
        if rec.health != health {
            rec.health = health;
            ops.push(WriteOp::put_json(Self::connector_key(org, id), &rec)?);
        }
        let prefix = history_prefix(org, id);
        let existing = self.store.scan_prefix(&prefix)?;
        let keep = self.health.config().history_len.saturating_sub(1);
        if existing.len() > keep {
            for (k, _) in existing.iter().take(existing.len() - keep) {
                ops.push(WriteOp::Delete(k.clone()));
            }
        }
        ops.push(WriteOp::put_json(
            format!("{prefix}{at}-{}", random_id("", 4)?),
            &transition,
        )?);
        self.store.apply(ops)?;
        Ok(())
    }

    async fn crash_loop(
        &self,
        org: &str,
        id: &str,
        failures: u32,
        last_error: String,
    ) -> Result<()> {
        let rec = match self.get_connector_record(org, id) {
            Ok(r) => r,
            Err(ServiceError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !rec.enabled {
            return Ok(());
        }
        let detail = serde_json::json!({
            "reason": "crash loop",
            "failures": failures,
            "window_secs": self.health.config().crash_loop_window_secs,
            "last_error": last_error,
        });
        if rec.crash_loop_policy == CrashLoopPolicy::Ignore {
            let _g = self.write.lock().await;
            let audit = self.audit_op(
                &health_principal(org).actor(),
                Some(org),
                "connector.crash_loop",
                &format!("connector/{id}"),
                "ignored (crash_loop_policy = ignore)",
                detail,
            )?;
            self.store.apply(vec![audit])?;
            return Ok(());
        }
        let reason = HealthReason::CrashLoop {
            failures,
            last_error: last_error.clone(),
        };
        // The monitor first, so the late results of the last call change nothing.
        self.health.crash_disabled(org, id, failures, last_error);
        let health = Health::with_reasons(HealthState::Disabled, now(), vec![reason]);
        tracing::warn!(
            org,
            connector = id,
            failures,
            "crash-loop policy: disabling connector"
        );
        self.set_enabled_because(
            &health_principal(org),
            org,
            id,
            false,
            Some((health, detail)),
        )
        .await?;
        Ok(())
    }
}
