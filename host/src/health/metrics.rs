//! Per-connector metrics and their Prometheus text rendering.
//!
//! Counters: events in (from the plugin, before dedup), duplicates dropped, events out
//! (acknowledged by every sink), polls by outcome, errors by reason code. A poll latency
//! histogram (fixed buckets) for Prometheus and a reservoir of the last
//! [`LATENCY_RESERVOIR`] latencies for exact recent p50/p95/p99. Events per minute over
//! the last [`RATE_WINDOW_MINUTES`] minutes. Last success and last event time. Sink lag:
//! how long the oldest accepted-but-undelivered event has waited.
//!
//! Series exist only for connectors the monitor tracks (the configured ones), which
//! bounds label cardinality; label values are escaped per the exposition format.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use utoipa::ToSchema;

use super::Observation;
use super::tracker::{Tick, classify};
use crate::management::model::HealthState;

/// Upper bounds (seconds) of the poll latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Latencies kept for percentiles.
pub const LATENCY_RESERVOIR: usize = 512;
/// Minutes the events/min rate averages over.
pub const RATE_WINDOW_MINUTES: u64 = 5;

/// Counters and gauges of one connector.
#[derive(Debug, Clone)]
pub struct ConnectorMetrics {
    started: Instant,
    events_in: u64,
    duplicates: u64,
    events_out: u64,
    accepted: u64,
    polls_ok: u64,
    polls_failed: u64,
    pushes: u64,
    push_malformed: u64,
    errors: BTreeMap<&'static str, u64>,
    buckets: [u64; LATENCY_BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    reservoir: VecDeque<f64>,
    per_minute: VecDeque<(u64, u64)>,
    last_success: Option<SystemTime>,
    last_event: Option<SystemTime>,
    pending_since: Option<Instant>,
}

/// The per-connector figures the API serves.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConnectorMetricsView {
    /// Events the plugin produced (polls and pushes), before dedup.
    pub events_in: u64,
    /// Events dropped as duplicates.
    pub duplicates_dropped: u64,
    /// Events acknowledged by every sink.
    pub events_out: u64,
    /// New (deduplicated) events per minute over the last 5 minutes (or since tracking
    /// started, if sooner).
    pub events_per_minute: f64,
    /// Successful polls.
    pub polls_ok: u64,
    /// Failed polls.
    pub polls_failed: u64,
    /// Errors by reason code.
    pub errors: BTreeMap<String, u64>,
    /// Poll latency percentiles over the last 512 polls, milliseconds.
    pub poll_latency_ms: LatencyPercentiles,
    /// Last successful poll (RFC 3339).
    pub last_success: Option<String>,
    /// Last new event (RFC 3339).
    pub last_event: Option<String>,
    /// Accepted events not yet acknowledged by every sink.
    pub sink_pending_events: u64,
    /// How long the oldest of those has waited, seconds.
    pub sink_lag_secs: f64,
}

/// Latency percentiles (`None` before the first poll).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LatencyPercentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Polls the percentiles are over.
    pub samples: usize,
}

impl Default for ConnectorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectorMetrics {
    /// Zeroed.
    pub fn new() -> Self {
        ConnectorMetrics {
            started: Instant::now(),
            events_in: 0,
            duplicates: 0,
            events_out: 0,
            accepted: 0,
            polls_ok: 0,
            polls_failed: 0,
            pushes: 0,
            push_malformed: 0,
            errors: BTreeMap::new(),
            buckets: [0; LATENCY_BUCKETS.len()],
            latency_count: 0,
            latency_sum: 0.0,
            reservoir: VecDeque::new(),
            per_minute: VecDeque::new(),
            last_success: None,
            last_event: None,
            pending_since: None,
        }
    }

    fn latency(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if s <= *b {
                self.buckets[i] += 1;
            }
        }
        self.latency_count += 1;
        self.latency_sum += s;
        if self.reservoir.len() >= LATENCY_RESERVOIR {
            self.reservoir.pop_front();
        }
        self.reservoir.push_back(s);
    }

    fn minute(&self, t: Tick) -> u64 {
        t.mono.saturating_duration_since(self.started).as_secs() / 60
    }

    fn accepted_events(&mut self, new: u64, duplicates: u64, t: Tick) {
        self.events_in += new + duplicates;
        self.duplicates += duplicates;
        if new == 0 {
            return;
        }
        self.accepted += new;
        self.last_event = Some(t.wall);
        if self.pending_since.is_none() {
            self.pending_since = Some(t.mono);
        }
        let m = self.minute(t);
        match self.per_minute.back_mut() {
            Some((bm, c)) if *bm == m => *c += new,
            _ => self.per_minute.push_back((m, new)),
        }
        while self
            .per_minute
            .front()
            .is_some_and(|(bm, _)| *bm + RATE_WINDOW_MINUTES <= m)
        {
            self.per_minute.pop_front();
        }
    }

    /// Count an observation.
    pub fn observe(&mut self, obs: &Observation, t: Tick) {
        match obs {
            Observation::PollSucceeded {
                events,
                duplicates,
                latency,
                ..
            } => {
                self.polls_ok += 1;
                self.latency(*latency);
                self.last_success = Some(t.wall);
                self.accepted_events(*events, *duplicates, t);
            }
            Observation::PollFailed {
                code,
                message,
                status,
                retry_after,
                latency,
                upstream,
            } => {
                self.polls_failed += 1;
                self.latency(*latency);
                let cfg = super::HealthConfig::default();
                let fault = classify(code, message, *status, *retry_after, upstream, &cfg, t.mono);
                *self.errors.entry(fault.code()).or_default() += 1;
            }
            Observation::PluginTrapped { .. } => {
                *self.errors.entry("PLUGIN_TRAP").or_default() += 1;
            }
            Observation::PushAccepted { events, duplicates } => {
                self.pushes += 1;
                self.accepted_events(*events, *duplicates, t);
            }
            Observation::PushMalformed { .. } => {
                self.push_malformed += 1;
                *self.errors.entry("PARSE_ERRORS").or_default() += 1;
            }
            Observation::EventsDelivered { count } => {
                self.events_out += count;
                if self.events_out >= self.accepted {
                    self.pending_since = None;
                } else {
                    // Still behind: the lag restarts from now (the oldest waiting batch
                    // is at most this old; a conservative, cheap approximation).
                    self.pending_since = Some(t.mono);
                }
            }
            Observation::SinkBackpressure { .. } => {}
            Observation::ConnectionProbe { ok, .. } => {
                if !ok {
                    *self.errors.entry("PROBE_FAILED").or_default() += 1;
                }
            }
        }
    }

    fn pending(&self) -> u64 {
        self.accepted.saturating_sub(self.events_out)
    }

    fn lag(&self, t: Tick) -> f64 {
        match self.pending_since {
            Some(p) if self.pending() > 0 => t.mono.saturating_duration_since(p).as_secs_f64(),
            _ => 0.0,
        }
    }

    fn events_per_minute(&self, t: Tick) -> f64 {
        let m = self.minute(t);
        let sum: u64 = self
            .per_minute
            .iter()
            .filter(|(bm, _)| *bm + RATE_WINDOW_MINUTES > m)
            .map(|(_, c)| c)
            .sum();
        let elapsed_min = t.mono.saturating_duration_since(self.started).as_secs_f64() / 60.0;
        let span = elapsed_min.clamp(1.0, RATE_WINDOW_MINUTES as f64);
        (sum as f64 / span * 100.0).round() / 100.0
    }

    /// Recent percentiles (nearest rank), milliseconds.
    pub fn percentiles(&self) -> LatencyPercentiles {
        let mut v: Vec<f64> = self.reservoir.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let pick = |q: f64| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            Some((v[rank - 1] * 1000.0 * 1000.0).round() / 1000.0)
        };
        LatencyPercentiles {
            p50: pick(0.50),
            p95: pick(0.95),
            p99: pick(0.99),
            samples: v.len(),
        }
    }

    /// The API view.
    pub fn view(&self, t: Tick) -> ConnectorMetricsView {
        ConnectorMetricsView {
            events_in: self.events_in,
            duplicates_dropped: self.duplicates,
            events_out: self.events_out,
            events_per_minute: self.events_per_minute(t),
            polls_ok: self.polls_ok,
            polls_failed: self.polls_failed,
            errors: self
                .errors
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            poll_latency_ms: self.percentiles(),
            last_success: self.last_success.map(super::rfc3339),
            last_event: self.last_event.map(super::rfc3339),
            sink_pending_events: self.pending(),
            sink_lag_secs: (self.lag(t) * 1000.0).round() / 1000.0,
        }
    }
}

/// One connector's series.
pub struct Row {
    /// Org label.
    pub org: String,
    /// Connector label.
    pub connector: String,
    /// Plugin label.
    pub plugin: String,
    /// Health state.
    pub state: HealthState,
    /// Figures.
    pub metrics: ConnectorMetrics,
}

/// Escape a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Builds the exposition text, one metric family at a time.
pub struct PrometheusWriter {
    out: String,
}

impl Default for PrometheusWriter {
    fn default() -> Self {
        Self::new()
    }
}

const STATES: [(HealthState, &str); 5] = [
    (HealthState::Unknown, "unknown"),
    (HealthState::Healthy, "healthy"),
    (HealthState::Degraded, "degraded"),
    (HealthState::Failing, "failing"),
    (HealthState::Disabled, "disabled"),
];

impl PrometheusWriter {
    /// Empty.
    pub fn new() -> Self {
        PrometheusWriter { out: String::new() }
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, extra: &str, value: f64) {
        let sep = if labels.is_empty() || extra.is_empty() {
            ""
        } else {
            ","
        };
        let v = if value.is_finite() {
            format!("{value}")
        } else {
            "NaN".into()
        };
        let _ = writeln!(self.out, "{name}{{{labels}{sep}{extra}}} {v}");
    }

    /// Every family for `rows`.
    pub fn write_all(&mut self, rows: &[Row], t: Tick) {
        let labels: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "org=\"{}\",connector=\"{}\",plugin=\"{}\"",
                    escape(&r.org),
                    escape(&r.connector),
                    escape(&r.plugin)
                )
            })
            .collect();
        self.family(
            "portcullis_connectors",
            "gauge",
            "Configured connectors by health state.",
        );
        for (state, name) in STATES {
            let n = rows.iter().filter(|r| r.state == state).count();
            self.sample(
                "portcullis_connectors",
                "",
                &format!("state=\"{name}\""),
                n as f64,
            );
        }
        self.family(
            "portcullis_connector_health",
            "gauge",
            "1 for the connector's current health state.",
        );
        for (r, l) in rows.iter().zip(&labels) {
            for (state, name) in STATES {
                self.sample(
                    "portcullis_connector_health",
                    l,
                    &format!("state=\"{name}\""),
                    if r.state == state { 1.0 } else { 0.0 },
                );
            }
        }
        type Getter = fn(&ConnectorMetrics) -> u64;
        let counters: [(&str, &str, Getter); 5] = [
            (
                "portcullis_events_in_total",
                "Events produced by the connector's plugin (polls and pushes), before dedup.",
                |m| m.events_in,
            ),
            (
                "portcullis_duplicates_dropped_total",
                "Events dropped as duplicates.",
                |m| m.duplicates,
            ),
            (
                "portcullis_events_out_total",
                "Events acknowledged by every sink.",
                |m| m.events_out,
            ),
            (
                "portcullis_push_messages_total",
                "Pushed messages (syslog, webhook) normalised.",
                |m| m.pushes,
            ),
            (
                "portcullis_push_malformed_total",
                "Pushed messages that could not be normalised.",
                |m| m.push_malformed,
            ),
        ];
        for (name, help, get) in counters {
            self.family(name, "counter", help);
            for (r, l) in rows.iter().zip(&labels) {
                self.sample(name, l, "", get(&r.metrics) as f64);
            }
        }
        self.family("portcullis_polls_total", "counter", "Polls by outcome.");
        for (r, l) in rows.iter().zip(&labels) {
            self.sample(
                "portcullis_polls_total",
                l,
                "outcome=\"ok\"",
                r.metrics.polls_ok as f64,
            );
            self.sample(
                "portcullis_polls_total",
                l,
                "outcome=\"failed\"",
                r.metrics.polls_failed as f64,
            );
        }
        self.family(
            "portcullis_errors_total",
            "counter",
            "Errors by health reason code.",
        );
        for (r, l) in rows.iter().zip(&labels) {
            for (reason, n) in &r.metrics.errors {
                self.sample(
                    "portcullis_errors_total",
                    l,
                    &format!("reason=\"{reason}\""),
                    *n as f64,
                );
            }
        }
        self.family(
            "portcullis_poll_duration_seconds",
            "histogram",
            "Host-measured latency of poll calls.",
        );
        for (r, l) in rows.iter().zip(&labels) {
            let m = &r.metrics;
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                self.sample(
                    "portcullis_poll_duration_seconds_bucket",
                    l,
                    &format!("le=\"{b}\""),
                    m.buckets[i] as f64,
                );
            }
            self.sample(
                "portcullis_poll_duration_seconds_bucket",
                l,
                "le=\"+Inf\"",
                m.latency_count as f64,
            );
            self.sample("portcullis_poll_duration_seconds_sum", l, "", m.latency_sum);
            self.sample(
                "portcullis_poll_duration_seconds_count",
                l,
                "",
                m.latency_count as f64,
            );
        }
        type TimeGetter = fn(&ConnectorMetrics) -> Option<SystemTime>;
        let times: [(&str, &str, TimeGetter); 2] = [
            (
                "portcullis_last_success_timestamp_seconds",
                "Unix time of the last successful poll (absent before the first).",
                |m| m.last_success,
            ),
            (
                "portcullis_last_event_timestamp_seconds",
                "Unix time of the last new event (absent before the first).",
                |m| m.last_event,
            ),
        ];
        for (name, help, get) in times {
            self.family(name, "gauge", help);
            for (r, l) in rows.iter().zip(&labels) {
                if let Some(ts) = get(&r.metrics) {
                    self.sample(name, l, "", unix(ts));
                }
            }
        }
        self.family(
            "portcullis_sink_pending_events",
            "gauge",
            "Accepted events not yet acknowledged by every sink.",
        );
        for (r, l) in rows.iter().zip(&labels) {
            self.sample(
                "portcullis_sink_pending_events",
                l,
                "",
                r.metrics.pending() as f64,
            );
        }
        self.family(
            "portcullis_sink_lag_seconds",
            "gauge",
            "How long the oldest accepted-but-undelivered event has waited.",
        );
        for (r, l) in rows.iter().zip(&labels) {
            self.sample("portcullis_sink_lag_seconds", l, "", r.metrics.lag(t));
        }
        self.family(
            "portcullis_events_per_minute",
            "gauge",
            "New events per minute over the last 5 minutes.",
        );
        for (r, l) in rows.iter().zip(&labels) {
            self.sample(
                "portcullis_events_per_minute",
                l,
                "",
                r.metrics.events_per_minute(t),
            );
        }
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}
