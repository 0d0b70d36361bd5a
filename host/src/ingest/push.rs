//! Push ingestion: pushed input (syslog messages, webhook bodies) of one connector through
//! its plugin's `normalize` into the delivery pipeline (`Pipeline::deliver_pushed`: dedup,
//! every sink of the org), with health observations (`PushAccepted`, `PushMalformed`,
//! `PluginTrapped`).
//!
//! Only an enabled connector whose plugin manifest says `accepts_push` takes pushed
//! input. An input the plugin cannot normalise is counted as malformed (and a sample of
//! the error is reported to health); the other inputs of the batch go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::delivery::{DeliveryError, Pipeline};
use super::sinks::SinkRegistry;
use crate::health::Observation;
use crate::management::ManagementService;
use crate::management::model::ConnectorRecord;
use crate::runtime::CallError;

/// Why pushed input was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The connector is disabled.
    #[error("connector {0} is disabled")]
    Disabled(String),
    /// Its plugin does not accept pushed input.
    #[error("plugin {plugin} of connector {connector} does not accept pushed input")]
    NotPushable {
        /// Connector id.
        connector: String,
        /// Plugin id.
        plugin: String,
    },
    /// Its plugin version is not installed or does not load.
    #[error("connector {connector}: {message}")]
    Unavailable {
        /// Connector id.
        connector: String,
        /// What is wrong.
        message: String,
    },
    /// Delivery failed (a sink refused, the store failed, the connector stopped).
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

/// What happened to one batch of pushed input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PushOutcome {
    /// Inputs received.
    pub received: usize,
    /// New events delivered to every sink.
    pub accepted: usize,
    /// Events dropped as already delivered.
    pub duplicates: usize,
    /// Inputs the plugin could not normalise.
    pub malformed: usize,
    /// Up to 5 error messages of malformed inputs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Host-wide push counters.
#[derive(Debug, Default)]
pub struct PushCounters {
    /// Inputs handed to `normalize`.
    pub inputs: AtomicU64,
    /// Events delivered.
    pub accepted: AtomicU64,
    /// Duplicates dropped.
    pub duplicates: AtomicU64,
    /// Inputs the plugin refused (or that trapped it).
    pub malformed: AtomicU64,
    /// Batches refused (connector disabled, not push-capable, delivery failed).
    pub refused_batches: AtomicU64,
}

/// Push ingestion of a server.
pub struct PushIngest {
    service: Arc<ManagementService>,
    pipeline: Arc<Pipeline>,
    sinks: Arc<SinkRegistry>,
    counters: PushCounters,
    /// The syslog listeners, once started.
    pub(crate) syslog: std::sync::OnceLock<super::syslog::Receiver>,
    /// Recently seen webhook signatures (replay protection).
    pub(crate) webhook_replays: super::webhook::ReplayGuard,
}

impl std::fmt::Debug for PushIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushIngest").finish_non_exhaustive()
    }
}

fn sample(message: &str) -> String {
    message.chars().take(200).collect()
}

impl PushIngest {
    /// Push ingestion over the service (connector records, sandboxes, health) and the
    /// delivery pipeline.
    pub fn new(
        service: Arc<ManagementService>,
        pipeline: Arc<Pipeline>,
        sinks: Arc<SinkRegistry>,
    ) -> Self {
        PushIngest {
            service,
            pipeline,
            sinks,
            counters: PushCounters::default(),
            syslog: std::sync::OnceLock::new(),
            webhook_replays: super::webhook::ReplayGuard::default(),
        }
    }

    /// The management service.
    pub fn service(&self) -> &Arc<ManagementService> {
        &self.service
    }

    /// The org sink registry.
    pub fn sinks(&self) -> &Arc<SinkRegistry> {
        &self.sinks
    }

    /// Host-wide counters.
    pub fn counters(&self) -> &PushCounters {
        &self.counters
    }

    /// The syslog receiver, when listeners are configured.
    pub fn syslog(&self) -> Option<&super::syslog::Receiver> {
        self.syslog.get()
    }

    /// Report malformed input of a connector that never reached `normalize` (syslog
    /// framing or header errors).
    pub fn report_malformed(&self, org: &str, connector: &str, message: &str) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        self.service.health().observe(
            org,
            connector,
            Observation::PushMalformed {
                sample: sample(message),
            },
        );
    }

    /// Normalise `inputs` with `rec`'s plugin and deliver the events.
    pub async fn push(
        &self,
        rec: &ConnectorRecord,
        inputs: &[String],
    ) -> Result<PushOutcome, PushError> {
        let refused = |e: PushError| {
            self.counters
                .refused_batches
                .fetch_add(1, Ordering::Relaxed);
            Err(e)
        };
        if !rec.enabled {
            return refused(PushError::Disabled(rec.id.clone()));
        }
        let sandbox = match self.service.connector_sandbox(rec) {
            Ok(s) => s,
            Err(e) => {
                return refused(PushError::Unavailable {
                    connector: rec.id.clone(),
                    message: e.to_string(),
                });
            }
        };
        if !sandbox.plugin().manifest().accepts_push {
            return refused(PushError::NotPushable {
                connector: rec.id.clone(),
                plugin: rec.spec.plugin.id.clone(),
            });
        }
        let span = tracing::info_span!("push", org = %rec.org, connector = %rec.id, plugin = %rec.spec.plugin.id, inputs = inputs.len());
        let _ = &span;
        self.counters
            .inputs
            .fetch_add(inputs.len() as u64, Ordering::Relaxed);
        let results = tracing::Instrument::instrument(
            sandbox.normalize(&rec.spec.config, inputs),
            span.clone(),
        )
        .await;
        let mut out = PushOutcome {
            received: inputs.len(),
            ..PushOutcome::default()
        };
        let mut events = Vec::new();
        let health = self.service.health();
        for r in results {
            match r {
                Ok(evs) => events.extend(evs),
                Err(e) => {
                    out.malformed += 1;
                    let message = e.to_string();
                    if out.errors.len() < 5 {
                        out.errors.push(sample(&message));
                    }
                    let obs = match &e {
                        CallError::Trap(_)
                        | CallError::MemoryLimit { .. }
                        | CallError::Timeout(_) => Observation::PluginTrapped {
                            message: sample(&message),
                        },
                        _ => Observation::PushMalformed {
                            sample: sample(&message),
                        },
                    };
                    health.observe(&rec.org, &rec.id, obs);
                }
            }
        }
        self.counters
            .malformed
            .fetch_add(out.malformed as u64, Ordering::Relaxed);
        if !events.is_empty() {
            match self.pipeline.deliver_pushed(rec, events).await {
                Ok(report) => {
                    out.accepted = report.accepted;
                    out.duplicates = report.duplicates;
                }
                Err(e) => return refused(e.into()),
            }
        }
        self.counters
            .accepted
            .fetch_add(out.accepted as u64, Ordering::Relaxed);
        self.counters
            .duplicates
            .fetch_add(out.duplicates as u64, Ordering::Relaxed);
        if out.accepted + out.duplicates > 0 {
            health.observe(
                &rec.org,
                &rec.id,
                Observation::PushAccepted {
                    events: out.accepted as u64,
                    duplicates: out.duplicates as u64,
                },
            );
        }
        Ok(out)
    }
}

/// Build the org sink registry (the event store first, then each org's configured sinks)
/// and hand it to `pipeline` as its sink resolver, then push ingestion with the syslog
/// listeners of `syslog` (none configured: no receiver).
pub async fn attach(
    syslog: &super::syslog::config::SyslogConfig,
    files_dir: std::path::PathBuf,
    policy: crate::broker::ip_policy::IpPolicy,
    service: Arc<ManagementService>,
    pipeline: &Arc<Pipeline>,
) -> Result<Arc<PushIngest>, super::syslog::ReceiverError> {
    let sinks = Arc::new(SinkRegistry::new(pipeline.store().clone()));
    sinks.configure(files_dir, policy);
    sinks.set_vault(service.vault().clone());
    sinks.set_event_store(pipeline.event_store().clone());
    pipeline.set_sink_resolver(sinks.clone());
    let push = Arc::new(PushIngest::new(service, pipeline.clone(), sinks));
    if !syslog.listeners.is_empty() {
        let receiver = super::syslog::start(syslog, &push).await?;
        let _ = push.syslog.set(receiver);
    }
    Ok(push)
}
