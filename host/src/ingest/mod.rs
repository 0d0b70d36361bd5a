//! Ingestion: what moves events from connectors (pull via `poll`, push via syslog and
//! webhooks through `normalize`) through dedup into the org's sinks, committing the
//! connector's cursor only after every sink acknowledged the batch.
//!
//! - [`sink`] — the [`sink::EventSink`] contract every sink implements.
//! - [`delivery`] — the [`delivery::Pipeline`]: dedup, every sink of the org, then the
//!   cursor and dedup marks in one atomic commit; per-connector gates; bounded queue.
//! - [`scheduler`] — the [`scheduler::ConnectorScheduler`]: polls every enabled connector
//!   on its schedule, starts and stops with enable/disable.
//! - [`event_store`] — the embedded event store sink (sled), listing and retention.
//! - [`state`] — the persistent `state` import of a connector.
//! - [`observe`] — what ingestion reports to health.
//! - [`sinks`] — NDJSON and HTTP forward sinks, per-org sink configuration, [`sinks::SinkRegistry`].
//! - [`syslog`] — the syslog receiver (UDP/TCP, RFC 5424/3164, RFC 6587 framing).
//! - [`push`] — pushed input (syslog, webhooks) through `normalize` into the pipeline.
//! - [`webhook`] — webhook secrets and request authentication (token, HMAC signature).

pub mod delivery;
pub mod event_store;
mod health_bridge;
pub mod observe;
pub mod push;
pub mod scheduler;
pub mod sink;
pub mod sinks;
pub mod state;
pub mod syslog;
pub mod webhook;

use std::sync::Arc;

/// The running ingestion of a server: its pipeline (with the event store) and scheduler.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// Dedup, sinks, commit.
    pub pipeline: Arc<delivery::Pipeline>,
    /// Poll loops.
    pub scheduler: Arc<scheduler::ConnectorScheduler>,
    /// Push ingestion (syslog receiver, webhooks) and the org sink registry.
    pub push: Arc<push::PushIngest>,
}
