//! Health and metrics of connectors, and the host-side upstream behaviour (rate limits,
//! backoff, no retry storms).
//!
//! The delivery pipeline reports what happened to each connector as an [`Observation`]
//! to the shared [`HealthMonitor`] and asks it, before every poll, how long to hold off
//! ([`HealthMonitor::hold_until`]). The monitor keeps, per connector:
//!
//! - a health state machine ([`tracker`]): `unknown`, `healthy`, `degraded`, `failing`,
//!   `disabled` with structured reason codes ([`HealthReason`]), hysteresis, duplicate
//!   flood and parse-error rates over a sliding window, staleness against the connector's
//!   own cadence, crash-loop detection;
//! - the hold: `Retry-After` / `X-RateLimit-Reset` after a 429 or an empty quota,
//!   exponential backoff with jitter after 5xx, timeouts and traps, a long wait after
//!   401/403;
//! - metrics ([`metrics`]): counters, poll latency histogram and percentiles, last success
//!   and last event time, sink lag; rendered as Prometheus text by [`HealthMonitor::render_prometheus`].
//!
//! State changes (never every poll) queue up as [`HealthEvent`]s; the background
//! [`worker`] persists them on the connector record with a transition history, runs the
//! periodic `test-connection` probe and applies the crash-loop policy through the
//! management service (audited).
//!
//! Upstream responses reach the monitor without trusting the plugin: the broker records
//! every response into the [`upstream::UpstreamRecorder`] of the connector's env
//! (`ConnectorEnv::upstream`), and the pipeline passes `recorder.drain()` along in the
//! observation (see [`Observation::poll`]).

pub mod config;
pub mod metrics;
pub mod tracker;
pub mod upstream;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use config::HealthConfig;
pub use metrics::ConnectorMetricsView;
pub use upstream::{UpstreamFailure, UpstreamRecorder, UpstreamResponse};

use crate::management::model::HealthState;
use crate::runtime::CallError;
use metrics::ConnectorMetrics;
use tracker::{Tick, Tracker};

/// Something that happened to a connector, as the pipeline reports it.
#[derive(Debug, Clone)]
pub enum Observation {
    /// A `poll` returned a batch. `events`: new events (after dedup); `duplicates`: events
    /// dropped as already seen.
    PollSucceeded {
        /// New events.
        events: u64,
        /// Duplicates dropped.
        duplicates: u64,
        /// Host-measured latency of the call.
        latency: Duration,
        /// Upstream responses of the call (`UpstreamRecorder::drain`).
        upstream: Vec<UpstreamResponse>,
    },
    /// A `poll` failed.
    PollFailed {
        /// `CallError::code()`: `trap`, `timeout`, `memory-limit`, `bad-output`,
        /// `instantiate`, or the plugin error kind (`auth`, `upstream`, `rate-limited`,
        /// `parse`, `config`, `other`).
        code: String,
        /// The error message (kept as a sample; never contains secrets).
        message: String,
        /// HTTP status the plugin reported (`upstream` errors).
        status: Option<u16>,
        /// Delay the plugin reported (`rate-limited` errors).
        retry_after: Option<Duration>,
        /// Host-measured latency of the call.
        latency: Duration,
        /// Upstream responses of the call.
        upstream: Vec<UpstreamResponse>,
    },
    /// A plugin call outside `poll` trapped (e.g. `normalize` of pushed input).
    PluginTrapped {
        /// Trap message.
        message: String,
    },
    /// Pushed input (syslog, webhook) was normalised.
    PushAccepted {
        /// New events.
        events: u64,
        /// Duplicates dropped.
        duplicates: u64,
    },
    /// Pushed input could not be parsed/normalised.
    PushMalformed {
        /// A sample of the error (truncated).
        sample: String,
    },
    /// A sink of the org started (`active`) or stopped pushing back on this connector.
    SinkBackpressure {
        /// Sink name.
        sink: String,
        /// Backpressure on?
        active: bool,
    },
    /// Events of this connector acknowledged by every sink.
    EventsDelivered {
        /// How many.
        count: u64,
    },
    /// Result of a `test-connection` probe.
    ConnectionProbe {
        /// Every stage passed.
        ok: bool,
        /// Host-measured latency.
        latency: Duration,
        /// The failed stage's message, if any.
        message: Option<String>,
        /// Upstream responses of the probe.
        upstream: Vec<UpstreamResponse>,
    },
}

impl Observation {
    /// The observation for the outcome of one `poll` call.
    pub fn poll(
        result: Result<(u64, u64), &CallError>,
        latency: Duration,
        upstream: Vec<UpstreamResponse>,
    ) -> Self {
        match result {
            Ok((events, duplicates)) => Observation::PollSucceeded {
                events,
                duplicates,
                latency,
                upstream,
            },
            Err(e) => Observation::poll_failed(e, latency, upstream),
        }
    }

    /// The observation for a failed `poll`.
    pub fn poll_failed(e: &CallError, latency: Duration, upstream: Vec<UpstreamResponse>) -> Self {
        use crate::runtime::PluginError;
        let (status, retry_after) = match e {
            CallError::Plugin(PluginError::Upstream { status, .. }) => (*status, None),
            CallError::Plugin(PluginError::RateLimited {
                retry_after_secs, ..
            }) => (Some(429), retry_after_secs.map(Duration::from_secs)),
            _ => (None, None),
        };
        Observation::PollFailed {
            code: e.code().to_string(),
            message: e.to_string(),
            status,
            retry_after,
            latency,
            upstream,
        }
    }
}

/// A structured reason code. `reasons` on [`Health`](crate::management::model::Health)
/// carries the bare codes (`RATE_LIMITED`); `details` these with their fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthReason {
    /// The upstream refused the credentials (401/403 or a plugin `auth` error).
    AuthFailed {
        /// HTTP status, when seen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// Rate limited until `until` (RFC 3339).
    RateLimited {
        /// When the limit resets.
        until: String,
    },
    /// The upstream answered with an error status (`None`: no status known).
    UpstreamError {
        /// HTTP status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// Upstream requests or the plugin call ran out of time.
    Timeout,
    /// The plugin trapped (panic, memory limit, invalid output).
    PluginTrap {
        /// Trap message (truncated).
        message: String,
    },
    /// Share of unparseable upstream bodies / pushed messages in the window.
    ParseErrors {
        /// Failed parses / outcomes.
        rate: f64,
        /// A sample error (truncated).
        sample: String,
    },
    /// Share of duplicates in the window.
    DuplicateFlood {
        /// duplicates / (new + duplicates).
        ratio: f64,
    },
    /// No event for much longer than the connector's own cadence.
    Stale {
        /// Time of the last event (RFC 3339).
        since: String,
        /// Observed mean interval between events, seconds.
        cadence_secs: f64,
    },
    /// A sink is pushing back; polling is paused.
    Backpressured {
        /// Sinks pushing back.
        sinks: Vec<String>,
    },
    /// Disabled by the crash-loop policy.
    CrashLoop {
        /// Consecutive failures that tripped it.
        failures: u32,
        /// The last failure.
        last_error: String,
    },
}

impl HealthReason {
    /// The bare code (`RATE_LIMITED`).
    pub fn code(&self) -> &'static str {
        match self {
            HealthReason::AuthFailed { .. } => "AUTH_FAILED",
            HealthReason::RateLimited { .. } => "RATE_LIMITED",
            HealthReason::UpstreamError { .. } => "UPSTREAM_ERROR",
            HealthReason::Timeout => "TIMEOUT",
            HealthReason::PluginTrap { .. } => "PLUGIN_TRAP",
            HealthReason::ParseErrors { .. } => "PARSE_ERRORS",
            HealthReason::DuplicateFlood { .. } => "DUPLICATE_FLOOD",
            HealthReason::Stale { .. } => "STALE",
            HealthReason::Backpressured { .. } => "BACKPRESSURED",
            HealthReason::CrashLoop { .. } => "CRASH_LOOP",
        }
    }
}

/// The monitor's current view of one connector.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HealthSnapshot {
    /// State.
    pub state: HealthState,
    /// Reasons with their fields.
    pub details: Vec<HealthReason>,
    /// When the state was entered (RFC 3339).
    pub since: String,
    /// Until when polling is held off (RFC 3339), if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<String>,
    /// Consecutive failed calls.
    pub consecutive_failures: u32,
}

/// A change the background worker acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthEvent {
    /// The state or its reason codes changed.
    Transition {
        /// Org.
        org: String,
        /// Connector.
        connector: String,
        /// Previous state.
        from: HealthState,
        /// New state.
        to: HealthState,
        /// New reasons.
        details: Vec<HealthReason>,
        /// When (RFC 3339).
        at: String,
    },
    /// The crash-loop threshold was reached (the worker disables the connector if its
    /// policy says so).
    CrashLoop {
        /// Org.
        org: String,
        /// Connector.
        connector: String,
        /// Consecutive failures.
        failures: u32,
        /// Last error message.
        last_error: String,
    },
}

type Key = (String, String);

struct Entry {
    plugin: String,
    tracker: Tracker,
    metrics: ConnectorMetrics,
    recorder: Arc<UpstreamRecorder>,
}

/// Most queued [`HealthEvent`]s before the oldest are dropped (the worker also
/// reconciles persisted state with the monitor periodically).
const MAX_PENDING_EVENTS: usize = 10_000;

/// Health, hold-off and metrics of every configured connector. Share it via `Arc`.
pub struct HealthMonitor {
    config: parking_lot::RwLock<HealthConfig>,
    entries: parking_lot::RwLock<HashMap<Key, Arc<parking_lot::Mutex<Entry>>>>,
    pending: parking_lot::Mutex<Vec<HealthEvent>>,
    notify: tokio::sync::Notify,
}

impl std::fmt::Debug for HealthMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthMonitor")
            .field("connectors", &self.entries.read().len())
            .finish_non_exhaustive()
    }
}

impl Default for HealthMonitor {
    fn default() -> Self {
        Self::new(HealthConfig::default())
    }
}

fn now_tick() -> Tick {
    Tick {
        mono: Instant::now(),
        wall: SystemTime::now(),
    }
}

impl HealthMonitor {
    /// A monitor with `config`.
    pub fn new(config: HealthConfig) -> Self {
        HealthMonitor {
            config: parking_lot::RwLock::new(config),
            entries: parking_lot::RwLock::new(HashMap::new()),
            pending: parking_lot::Mutex::new(Vec::new()),
            notify: tokio::sync::Notify::new(),
        }
    }

    /// Replace the thresholds (server start).
    pub fn configure(&self, config: HealthConfig) {
        *self.config.write() = config;
    }

    /// The thresholds.
    pub fn config(&self) -> HealthConfig {
        self.config.read().clone()
    }

    /// Start tracking a configured connector (or update its plugin label / enabled flag).
    /// `persisted` seeds the state from the connector record at startup. Metrics labels
    /// exist only for registered connectors, which bounds their cardinality.
    pub fn register(
        &self,
        org: &str,
        connector: &str,
        plugin: &str,
        enabled: bool,
        persisted: Option<(HealthState, Vec<HealthReason>)>,
    ) {
        let key = (org.to_string(), connector.to_string());
        let t = now_tick();
        let mut map = self.entries.write();
        match map.get(&key) {
            Some(e) => {
                let mut e = e.lock();
                e.plugin = plugin.to_string();
                drop(e);
                drop(map);
                self.set_enabled(org, connector, enabled);
            }
            None => {
                let mut tracker = Tracker::new(enabled, t);
                if let Some((state, details)) = persisted {
                    tracker.seed(state, details);
                }
                map.insert(
                    key,
                    Arc::new(parking_lot::Mutex::new(Entry {
                        plugin: plugin.to_string(),
                        tracker,
                        metrics: ConnectorMetrics::new(),
                        recorder: Arc::new(UpstreamRecorder::new()),
                    })),
                );
            }
        }
    }

    /// Stop tracking a deleted connector (its metrics series disappear).
    pub fn forget(&self, org: &str, connector: &str) {
        self.entries
            .write()
            .remove(&(org.to_string(), connector.to_string()));
    }

    /// The connector was enabled or disabled: disabled connectors are `disabled`; enabling
    /// starts from `unknown` with a clean slate (holds, windows and counts reset).
    pub fn set_enabled(&self, org: &str, connector: &str, enabled: bool) {
        let cfg = self.config.read().clone();
        let Some(entry) = self.entry(org, connector) else {
            return;
        };
        let t = now_tick();
        let change = entry.lock().tracker.set_enabled(enabled, &cfg, t);
        self.publish(org, connector, change, None);
    }

    fn entry(&self, org: &str, connector: &str) -> Option<Arc<parking_lot::Mutex<Entry>>> {
        self.entries
            .read()
            .get(&(org.to_string(), connector.to_string()))
            .cloned()
    }

    fn entry_or_register(&self, org: &str, connector: &str) -> Arc<parking_lot::Mutex<Entry>> {
        loop {
            if let Some(e) = self.entry(org, connector) {
                return e;
            }
            self.register(org, connector, "unknown", true, None);
        }
    }

    /// The recorder the broker fills with this connector's upstream responses (put into
    /// its `ConnectorEnv` by `ManagementService::connector_env`). Observations of plugin
    /// calls take what it holds, so the pipeline need not pass `upstream` itself.
    pub fn recorder(&self, org: &str, connector: &str) -> Arc<UpstreamRecorder> {
        self.entry_or_register(org, connector)
            .lock()
            .recorder
            .clone()
    }

    /// Record what happened. Only registered connectors are tracked (the service
    /// registers every configured one and forgets deleted ones), so the report of a call
    /// still in flight when its connector was deleted is dropped and metrics series stay
    /// bounded to the configured connectors.
    pub fn observe(&self, org: &str, connector: &str, obs: Observation) {
        self.observe_at(org, connector, obs, now_tick());
    }

    fn observe_at(&self, org: &str, connector: &str, mut obs: Observation, t: Tick) {
        let cfg = self.config.read().clone();
        let Some(entry) = self.entry(org, connector) else {
            tracing::debug!(
                org,
                connector,
                "observation of an untracked connector dropped"
            );
            return;
        };
        let (change, crash) = {
            let mut e = entry.lock();
            if let Observation::PollSucceeded { upstream, .. }
            | Observation::PollFailed { upstream, .. }
            | Observation::ConnectionProbe { upstream, .. } = &mut obs
            {
                let mut recorded = e.recorder.drain();
                if !recorded.is_empty() {
                    recorded.append(upstream);
                    *upstream = recorded;
                }
            }
            e.metrics.observe(&obs, t);
            e.tracker.observe(&obs, &cfg, t)
        };
        self.publish(org, connector, change, crash);
    }

    /// The crash-loop policy disabled the connector (called by the service before the
    /// disable is written, so late results of its last call change nothing).
    pub fn crash_disabled(&self, org: &str, connector: &str, failures: u32, last_error: String) {
        let Some(entry) = self.entry(org, connector) else {
            return;
        };
        let change = entry
            .lock()
            .tracker
            .crash_disabled(failures, last_error, now_tick());
        self.publish(org, connector, change, None);
    }

    fn publish(
        &self,
        org: &str,
        connector: &str,
        change: Option<tracker::Change>,
        crash: Option<(u32, String)>,
    ) {
        if change.is_none() && crash.is_none() {
            return;
        }
        let mut pending = self.pending.lock();
        if let Some(c) = change {
            tracing::info!(org, connector, from = ?c.from, to = ?c.to,
                reasons = ?c.details.iter().map(HealthReason::code).collect::<Vec<_>>(),
                "connector health changed");
            pending.push(HealthEvent::Transition {
                org: org.to_string(),
                connector: connector.to_string(),
                from: c.from,
                to: c.to,
                details: c.details,
                at: c.at,
            });
        }
        if let Some((failures, last_error)) = crash {
            tracing::warn!(org, connector, failures, "connector is crash-looping");
            pending.push(HealthEvent::CrashLoop {
                org: org.to_string(),
                connector: connector.to_string(),
                failures,
                last_error,
            });
        }
        if pending.len() > MAX_PENDING_EVENTS {
            let excess = pending.len() - MAX_PENDING_EVENTS;
            pending.drain(..excess);
        }
        drop(pending);
        self.notify.notify_one();
    }

    /// Re-evaluate time-driven conditions (staleness, expired holds) of every connector;
    /// the worker calls this periodically.
    pub fn tick(&self) {
        let cfg = self.config.read().clone();
        let t = now_tick();
        let entries: Vec<(Key, Arc<parking_lot::Mutex<Entry>>)> = self
            .entries
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((org, connector), e) in entries {
            let change = e.lock().tracker.tick(&cfg, t);
            self.publish(&org, &connector, change, None);
        }
    }

    /// The scheduler must not poll this connector before this instant (rate-limit reset,
    /// `Retry-After`, backoff after 5xx/timeouts/traps, wait after 401/403). `None`: no hold.
    pub fn hold_until(&self, org: &str, connector: &str) -> Option<Instant> {
        let e = self.entry(org, connector)?;
        let now = Instant::now();
        e.lock().tracker.hold_until().filter(|h| *h > now)
    }

    /// Current health of a connector, if tracked.
    pub fn snapshot(&self, org: &str, connector: &str) -> Option<HealthSnapshot> {
        let e = self.entry(org, connector)?;
        let e = e.lock();
        Some(e.tracker.snapshot(now_tick()))
    }

    /// Per-connector figures (events/min, last event time, latency percentiles, ...).
    pub fn metrics(&self, org: &str, connector: &str) -> Option<ConnectorMetricsView> {
        let e = self.entry(org, connector)?;
        let e = e.lock();
        Some(e.metrics.view(now_tick()))
    }

    /// Queued health events (oldest first), emptying the queue.
    pub fn take_events(&self) -> Vec<HealthEvent> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Resolves when events were queued since the last call.
    pub async fn events_queued(&self) {
        self.notify.notified().await;
    }

    /// Every tracked connector: (org, connector, plugin).
    pub fn tracked(&self) -> Vec<(String, String, String)> {
        let entries: Vec<(Key, Arc<parking_lot::Mutex<Entry>>)> = self
            .entries
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        entries
            .into_iter()
            .map(|((o, c), e)| (o, c, e.lock().plugin.clone()))
            .collect()
    }

    /// Every tracked connector that is enabled: (org, connector).
    pub fn tracked_enabled(&self) -> Vec<(String, String)> {
        let entries: Vec<(Key, Arc<parking_lot::Mutex<Entry>>)> = self
            .entries
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        entries
            .into_iter()
            .filter(|(_, e)| e.lock().tracker.enabled())
            .map(|(k, _)| k)
            .collect()
    }

    /// `/metrics`: Prometheus text exposition format 0.0.4, of every org or only `org`.
    pub fn render_prometheus(&self, org: Option<&str>) -> String {
        let mut entries: Vec<(Key, Arc<parking_lot::Mutex<Entry>>)> = self
            .entries
            .read()
            .iter()
            .filter(|(k, _)| org.is_none_or(|o| k.0 == o))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let t = now_tick();
        let mut out = metrics::PrometheusWriter::new();
        let rows: Vec<metrics::Row> = entries
            .iter()
            .map(|((org, connector), e)| {
                let e = e.lock();
                metrics::Row {
                    org: org.clone(),
                    connector: connector.clone(),
                    plugin: e.plugin.clone(),
                    state: e.tracker.state(),
                    metrics: e.metrics.clone(),
                }
            })
            .collect();
        out.write_all(&rows, t);
        out.finish()
    }
}

/// Truncate `s` to at most `max` bytes on a char boundary (samples, trap messages).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// RFC 3339 (milliseconds, UTC) of a wall-clock time.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
