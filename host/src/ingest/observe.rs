//! What ingestion reports to health and metrics, and how health gates polling.
//!
//! The pipeline and the scheduler report every poll outcome, sink backpressure and
//! delivered batch through one [`IngestObserver`]; the health monitor implements it (and
//! answers [`IngestObserver::hold_until`] for rate-limit and backoff gating). Until one is
//! registered, [`NoObserver`] drops the reports.

use std::time::{Duration, Instant};

use crate::runtime::CallError;

/// One thing ingestion observed about a connector.
#[derive(Debug, Clone)]
pub enum IngestObservation {
    /// A `poll` call returned a batch (before dedup: `events` as returned).
    PollOk {
        /// Events the plugin returned.
        events: usize,
        /// Of those, already seen (dropped by dedup).
        duplicates: usize,
        /// Host-measured call latency.
        latency: Duration,
        /// The plugin reported more ready.
        more: bool,
    },
    /// A `poll` call failed (the error carries its code: `CallError::code`).
    PollFailed {
        /// What failed.
        error: CallError,
        /// Host-measured call latency.
        latency: Duration,
    },
    /// Delivery had to wait: every delivery slot was busy (a slow sink) — `true` when it
    /// started waiting, `false` once its batch got through.
    Backpressure(bool),
    /// A batch reached every sink and its cursor/dedup marks were committed.
    Delivered {
        /// New events delivered.
        events: usize,
        /// Duplicates dropped.
        duplicates: usize,
        /// Pushed input (`true`) or a poll (`false`).
        pushed: bool,
    },
    /// A sink failed a batch (it will be retried or re-polled).
    SinkFailed {
        /// Sink name.
        sink: String,
        /// What happened.
        message: String,
    },
}

/// Receives ingestion reports (the health monitor).
pub trait IngestObserver: Send + Sync {
    /// Record one observation of `connector` of `org`.
    fn observe(&self, org: &str, connector: &str, obs: IngestObservation);

    /// Do not poll `connector` before this instant (rate limited, backing off).
    fn hold_until(&self, org: &str, connector: &str) -> Option<Instant> {
        let _ = (org, connector);
        None
    }
}

/// Drops every report.
#[derive(Debug, Default)]
pub struct NoObserver;

impl IngestObserver for NoObserver {
    fn observe(&self, _org: &str, _connector: &str, _obs: IngestObservation) {}
}
