//! The per-connector health state machine and hold-off policy. Pure: time comes in as a
//! [`Tick`], so the unit tests drive it without sleeping.
//!
//! Rules:
//! - A failed call is classified into one fault ([`Fault`]): host evidence first (the
//!   plugin trapped or ran out of time; the last upstream response was 429, 401/403, 5xx
//!   or timed out), then the plugin's own error kind.
//! - `AUTH_FAILED` (→ `failing`) and `RATE_LIMITED{until}` (→ `degraded`) apply at once:
//!   they are the upstream's explicit word, not noise. Other faults need
//!   `degrade_after_failures` consecutive failures to degrade and `fail_after_failures`
//!   to fail; a fault clears after `recover_after_successes` consecutive successes (a rate
//!   limit clears on the first success). That is the hysteresis: one bad poll among good
//!   ones changes nothing, and one good poll among bad ones neither.
//! - Holds: `Retry-After`, else `X-RateLimit-Reset` on a 429 or when the remaining quota
//!   is 0; exponential backoff with jitter (×0.5–1.0) after 5xx, timeouts, traps and parse
//!   failures; `auth_retry_secs` doubling after 401/403 (no retry storm).
//! - Conditions over a sliding window degrade: `DUPLICATE_FLOOD{ratio}` (duplicates /
//!   (new + duplicates) at or above the threshold with enough events; clears below 80% of
//!   it; per poll, `duplicate_overlap_allowance` duplicates are window overlap, not flood), `PARSE_ERRORS{rate}` (failed parses / outcomes; clears below half of it).
//! - `STALE{since}`: no event for `stale_factor` × the connector's observed mean interval
//!   between events (EWMA), and at least `stale_min_secs`, once enough intervals were seen.
//! - `BACKPRESSURED` while any sink pushes back.
//! - Crash loop: `crash_loop_failures` consecutive plugin faults (or any failures, if so
//!   configured) within `crash_loop_window_secs` report once until re-enabled.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use super::config::{HealthConfig, secs};
use super::upstream::{UpstreamFailure, UpstreamResponse};
use super::{HealthReason, HealthSnapshot, Observation, rfc3339, truncate};
use crate::management::model::HealthState;

/// A moment: monotonic for arithmetic, wall clock for what is shown.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Monotonic.
    pub mono: Instant,
    /// Wall clock at the same moment.
    pub wall: SystemTime,
}

impl Tick {
    /// The wall-clock time of monotonic instant `i`.
    pub fn wall_of(&self, i: Instant) -> SystemTime {
        if i >= self.mono {
            self.wall + (i - self.mono)
        } else {
            self.wall - (self.mono - i)
        }
    }

    /// This tick advanced by `d`.
    pub fn after(&self, d: Duration) -> Tick {
        Tick {
            mono: self.mono + d,
            wall: self.wall + d,
        }
    }
}

/// What a failed call is blamed on.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 401/403 or a plugin `auth` error.
    Auth(Option<u16>),
    /// 429 or a plugin `rate-limited` error; hold until.
    RateLimited(Instant),
    /// 5xx or another upstream error.
    Upstream(Option<u16>),
    /// Upstream request timed out or the plugin call ran past its deadline.
    Timeout,
    /// Trap, memory limit, invalid output, cannot instantiate.
    Trap(String),
    /// Unparseable upstream body.
    Parse(String),
}

impl Fault {
    fn reason(&self, t: Tick) -> HealthReason {
        match self {
            Fault::Auth(status) => HealthReason::AuthFailed { status: *status },
            Fault::RateLimited(until) => HealthReason::RateLimited {
                until: rfc3339(t.wall_of(*until)),
            },
            Fault::Upstream(status) => HealthReason::UpstreamError { status: *status },
            Fault::Timeout => HealthReason::Timeout,
            Fault::Trap(m) => HealthReason::PluginTrap { message: m.clone() },
            // The rate is filled in from the window; a parse fault alone is 100%.
            Fault::Parse(sample) => HealthReason::ParseErrors {
                rate: 1.0,
                sample: sample.clone(),
            },
        }
    }

    /// A fault of the plugin itself (counts towards a crash loop by default).
    fn is_plugin_fault(&self) -> bool {
        matches!(self, Fault::Trap(_))
    }

    /// Error-counter label.
    pub fn code(&self) -> &'static str {
        match self {
            Fault::Auth(_) => "AUTH_FAILED",
            Fault::RateLimited(_) => "RATE_LIMITED",
            Fault::Upstream(_) => "UPSTREAM_ERROR",
            Fault::Timeout => "TIMEOUT",
            Fault::Trap(_) => "PLUGIN_TRAP",
            Fault::Parse(_) => "PARSE_ERRORS",
        }
    }
}

const SAMPLE_BYTES: usize = 300;

/// Classify a failed call (see the module docs for the order).
pub fn classify(
    code: &str,
    message: &str,
    status: Option<u16>,
    retry_after: Option<Duration>,
    upstream: &[UpstreamResponse],
    cfg: &HealthConfig,
    now: Instant,
) -> Fault {
    match code {
        "trap" | "memory-limit" | "bad-output" | "instantiate" => {
            return Fault::Trap(truncate(message, SAMPLE_BYTES));
        }
        "timeout" => return Fault::Timeout,
        _ => {}
    }
    let rate_limited = |resp: Option<&UpstreamResponse>| {
        let hold = resp
            .and_then(UpstreamResponse::hold_until)
            .or_else(|| retry_after.map(|d| now + d))
            .unwrap_or(now + secs(cfg.rate_limit_default_secs));
        Fault::RateLimited(hold.min(now + secs(cfg.rate_limit_max_secs)))
    };
    if let Some(last) = upstream.last() {
        match (last.status, last.failure) {
            (_, Some(UpstreamFailure::Timeout)) => return Fault::Timeout,
            (429, _) => return rate_limited(Some(last)),
            (s @ (401 | 403), _) => return Fault::Auth(Some(s)),
            (s, _) if s >= 500 => return Fault::Upstream(Some(s)),
            _ => {}
        }
    }
    match (code, status) {
        ("auth", s) => Fault::Auth(s.or_else(|| upstream.last().map(|r| r.status))),
        ("rate-limited", _) | (_, Some(429)) => rate_limited(upstream.last()),
        (_, Some(s @ (401 | 403))) => Fault::Auth(Some(s)),
        ("parse", _) => Fault::Parse(truncate(message, SAMPLE_BYTES)),
        (_, s) => Fault::Upstream(s.or_else(|| {
            upstream
                .last()
                .filter(|r| r.status >= 400)
                .map(|r| r.status)
        })),
    }
}

/// A published change of state or reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Before.
    pub from: HealthState,
    /// After.
    pub to: HealthState,
    /// Reasons after.
    pub details: Vec<HealthReason>,
    /// When (RFC 3339).
    pub at: String,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    new: u64,
    duplicates: u64,
    outcomes: u64,
    parse_errors: u64,
}

/// Running totals of the samples in the window (O(1) per observation).
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    new: u64,
    duplicates: u64,
    outcomes: u64,
    parse_errors: u64,
}

impl Sums {
    fn add(&mut self, s: &Sample) {
        self.new = self.new.saturating_add(s.new);
        self.duplicates = self.duplicates.saturating_add(s.duplicates);
        self.outcomes = self.outcomes.saturating_add(s.outcomes);
        self.parse_errors = self.parse_errors.saturating_add(s.parse_errors);
    }

    fn remove(&mut self, s: &Sample) {
        self.new = self.new.saturating_sub(s.new);
        self.duplicates = self.duplicates.saturating_sub(s.duplicates);
        self.outcomes = self.outcomes.saturating_sub(s.outcomes);
        self.parse_errors = self.parse_errors.saturating_sub(s.parse_errors);
    }
}

/// Samples kept per connector whatever the window length (memory bound).
const MAX_WINDOW_SAMPLES: usize = 4096;

/// One connector's health.
#[derive(Debug, Clone)]
pub struct Tracker {
    enabled: bool,
    state: HealthState,
    details: Vec<HealthReason>,
    since: SystemTime,
    observed: bool,
    /// The state shown before the first observation (`unknown`, or the persisted one).
    baseline: HealthState,
    consecutive_failures: u32,
    consecutive_successes: u32,
    /// The active fault and whether it has reached `failing`.
    fault: Option<(Fault, HealthState)>,
    backoff_attempt: u32,
    backoff_until: Option<Instant>,
    auth_attempt: u32,
    auth_until: Option<Instant>,
    rate_until: Option<Instant>,
    crash: VecDeque<Instant>,
    crash_reported: bool,
    window: VecDeque<Sample>,
    sums: Sums,
    parse_sample: Option<String>,
    parse_rate: Option<f64>,
    flood_active: bool,
    parse_active: bool,
    last_event: Option<Instant>,
    cadence_secs: Option<f64>,
    cadence_samples: u32,
    backpressured: BTreeSet<String>,
}

/// EWMA weight of a new interval in the cadence.
const CADENCE_ALPHA: f64 = 0.3;
/// Intervals shorter than this are one burst (a `more` chain), not cadence.
const CADENCE_MIN_INTERVAL: Duration = Duration::from_secs(1);

impl Tracker {
    /// A connector first seen at `t`.
    pub fn new(enabled: bool, t: Tick) -> Self {
        Tracker {
            enabled,
            state: if enabled {
                HealthState::Unknown
            } else {
                HealthState::Disabled
            },
            details: Vec::new(),
            since: t.wall,
            observed: false,
            baseline: HealthState::Unknown,
            consecutive_failures: 0,
            consecutive_successes: 0,
            fault: None,
            backoff_attempt: 0,
            backoff_until: None,
            auth_attempt: 0,
            auth_until: None,
            rate_until: None,
            crash: VecDeque::new(),
            crash_reported: false,
            window: VecDeque::new(),
            sums: Sums::default(),
            parse_sample: None,
            parse_rate: None,
            flood_active: false,
            parse_active: false,
            last_event: None,
            cadence_secs: None,
            cadence_samples: 0,
            backpressured: BTreeSet::new(),
        }
    }

    /// Start from the persisted state (server restart): shown until the first
    /// observation decides otherwise.
    pub fn seed(&mut self, state: HealthState, details: Vec<HealthReason>) {
        if self.enabled && state != HealthState::Disabled {
            self.state = state;
            self.baseline = state;
            self.details = details;
        }
    }

    /// Enabled?
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Current state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Current reasons.
    pub fn details(&self) -> &[HealthReason] {
        &self.details
    }

    /// Until when polling is held (may be in the past).
    pub fn hold_until(&self) -> Option<Instant> {
        [self.backoff_until, self.auth_until, self.rate_until]
            .into_iter()
            .flatten()
            .max()
    }

    /// The view the API shows.
    pub fn snapshot(&self, t: Tick) -> HealthSnapshot {
        HealthSnapshot {
            state: self.state,
            details: self.details.clone(),
            since: rfc3339(self.since),
            hold_until: self
                .hold_until()
                .filter(|h| *h > t.mono)
                .map(|h| rfc3339(t.wall_of(h))),
            consecutive_failures: self.consecutive_failures,
        }
    }

    /// Enable (clean slate) or disable.
    pub fn set_enabled(&mut self, enabled: bool, _cfg: &HealthConfig, t: Tick) -> Option<Change> {
        if enabled == self.enabled {
            return None;
        }
        let (from, cadence) = (self.state, (self.cadence_secs, self.cadence_samples));
        *self = Tracker::new(enabled, t);
        (self.cadence_secs, self.cadence_samples) = cadence;
        Some(Change {
            from,
            to: self.state,
            details: Vec::new(),
            at: rfc3339(t.wall),
        })
    }

    /// Apply one observation. Returns the state change, if any, and a crash-loop trip.
    pub fn observe(
        &mut self,
        obs: &Observation,
        cfg: &HealthConfig,
        t: Tick,
    ) -> (Option<Change>, Option<(u32, String)>) {
        if !self.enabled {
            // Late results of an in-flight call after a disable change nothing.
            return (None, None);
        }
        let mut crash = None;
        match obs {
            Observation::PollSucceeded {
                events,
                duplicates,
                upstream,
                ..
            } => {
                self.proactive_hold(upstream);
                self.success(cfg);
                let excess = duplicates.saturating_sub(cfg.duplicate_overlap_allowance);
                self.sample(t, *events, excess, 0);
                if *events > 0 {
                    self.event_arrived(t.mono);
                }
            }
            Observation::PushAccepted { events, duplicates } => {
                self.sample(t, *events, *duplicates, 0);
                if *events > 0 {
                    self.event_arrived(t.mono);
                }
            }
            Observation::PushMalformed { sample } => {
                self.parse_sample = Some(truncate(sample, SAMPLE_BYTES));
                self.sample(t, 0, 0, 1);
            }
            Observation::PollFailed {
                code,
                message,
                status,
                retry_after,
                upstream,
                ..
            } => {
                self.proactive_hold(upstream);
                let fault = classify(code, message, *status, *retry_after, upstream, cfg, t.mono);
                if let Fault::Parse(s) = &fault {
                    self.parse_sample = Some(s.clone());
                    self.sample(t, 0, 0, 1);
                } else {
                    self.sample(t, 0, 0, 0);
                }
                crash = self.failure(fault, message, cfg, t);
            }
            Observation::PluginTrapped { message } => {
                crash = self.failure(
                    Fault::Trap(truncate(message, SAMPLE_BYTES)),
                    message,
                    cfg,
                    t,
                );
            }
            Observation::ConnectionProbe {
                ok,
                message,
                upstream,
                ..
            } => {
                self.proactive_hold(upstream);
                if *ok {
                    // A passing probe vouches for auth and reachability, not for polls.
                    if matches!(
                        self.fault,
                        Some((
                            Fault::Auth(_)
                                | Fault::Upstream(_)
                                | Fault::Timeout
                                | Fault::RateLimited(_),
                            _
                        ))
                    ) {
                        self.success(cfg);
                    }
                } else {
                    let message = message.clone().unwrap_or_default();
                    let fault = classify("other", &message, None, None, upstream, cfg, t.mono);
                    // Probe failures do not count towards a crash loop.
                    self.failure_state(fault, cfg, t);
                }
            }
            Observation::SinkBackpressure { sink, active } => {
                if *active {
                    self.backpressured.insert(sink.clone());
                } else {
                    self.backpressured.remove(sink);
                }
            }
            Observation::EventsDelivered { .. } => {}
        }
        (self.evaluate(cfg, t), crash)
    }

    /// Re-evaluate time-driven conditions.
    pub fn tick(&mut self, cfg: &HealthConfig, t: Tick) -> Option<Change> {
        if !self.enabled {
            return None;
        }
        self.trim_window(cfg, t.mono);
        self.evaluate(cfg, t)
    }

    fn proactive_hold(&mut self, upstream: &[UpstreamResponse]) {
        // An empty quota (or Retry-After on any response) holds even a successful call.
        if let Some(h) = upstream
            .iter()
            .filter_map(UpstreamResponse::hold_until)
            .max()
        {
            self.rate_until = Some(self.rate_until.map_or(h, |r| r.max(h)));
        }
    }

    fn success(&mut self, cfg: &HealthConfig) {
        self.observed = true;
        self.consecutive_failures = 0;
        self.consecutive_successes = self.consecutive_successes.saturating_add(1);
        self.backoff_attempt = 0;
        self.backoff_until = None;
        self.auth_attempt = 0;
        self.auth_until = None;
        self.crash.clear();
        match &self.fault {
            Some((Fault::RateLimited(_), _)) => self.fault = None,
            Some(_) if self.consecutive_successes >= cfg.recover_after_successes => {
                self.fault = None
            }
            _ => {}
        }
    }

    fn failure(
        &mut self,
        fault: Fault,
        message: &str,
        cfg: &HealthConfig,
        t: Tick,
    ) -> Option<(u32, String)> {
        let counts = fault.is_plugin_fault()
            || (cfg.crash_loop_counts_upstream && !matches!(fault, Fault::RateLimited(_)));
        self.failure_state(fault, cfg, t);
        if !counts {
            return None;
        }
        let window = secs(cfg.crash_loop_window_secs);
        self.crash.push_back(t.mono);
        while let Some(first) = self.crash.front() {
            if t.mono.duration_since(*first) > window {
                self.crash.pop_front();
            } else {
                break;
            }
        }
        let n = self.crash.len() as u32;
        if n >= cfg.crash_loop_failures && !self.crash_reported {
            self.crash_reported = true;
            return Some((n, truncate(message, SAMPLE_BYTES)));
        }
        None
    }

    fn failure_state(&mut self, fault: Fault, cfg: &HealthConfig, t: Tick) {
        self.observed = true;
        self.consecutive_successes = 0;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let n = self.consecutive_failures;
        match &fault {
            Fault::RateLimited(until) => {
                self.rate_until = Some(self.rate_until.map_or(*until, |r| r.max(*until)));
                self.fault = Some((fault, HealthState::Degraded));
                return;
            }
            Fault::Auth(_) => {
                self.auth_attempt = self.auth_attempt.saturating_add(1);
                let d = doubling(
                    cfg.auth_retry_secs,
                    self.auth_attempt,
                    cfg.auth_retry_max_secs,
                );
                self.auth_until = Some(t.mono + d);
                self.fault = Some((fault, HealthState::Failing));
                return;
            }
            _ => {
                self.backoff_attempt = self.backoff_attempt.saturating_add(1);
                let d = doubling(
                    cfg.backoff_base_secs,
                    self.backoff_attempt,
                    cfg.backoff_max_secs,
                );
                self.backoff_until = Some(t.mono + d.mul_f64(jitter_factor()));
            }
        }
        if n >= cfg.fail_after_failures {
            self.fault = Some((fault, HealthState::Failing));
        } else if n >= cfg.degrade_after_failures {
            let level = match &self.fault {
                Some((_, HealthState::Failing)) => HealthState::Failing,
                _ => HealthState::Degraded,
            };
            self.fault = Some((fault, level));
        } else if let Some((_, level)) = &self.fault {
            // Already faulty (a success did not yet clear it): keep the level, update why.
            let level = *level;
            self.fault = Some((fault, level));
        }
    }

    fn sample(&mut self, t: Tick, new: u64, duplicates: u64, parse_errors: u64) {
        let s = Sample {
            at: t.mono,
            new,
            duplicates,
            outcomes: 1,
            parse_errors,
        };
        self.sums.add(&s);
        self.window.push_back(s);
        // Bound memory regardless of the window length.
        if self.window.len() > MAX_WINDOW_SAMPLES {
            self.pop_sample();
        }
    }

    fn pop_sample(&mut self) {
        if let Some(s) = self.window.pop_front() {
            self.sums.remove(&s);
        }
    }

    fn trim_window(&mut self, cfg: &HealthConfig, now: Instant) {
        let w = secs(cfg.window_secs);
        while let Some(s) = self.window.front() {
            if now.duration_since(s.at) > w {
                self.pop_sample();
            } else {
                break;
            }
        }
    }

    fn event_arrived(&mut self, now: Instant) {
        if let Some(prev) = self.last_event {
            let gap = now.duration_since(prev);
            if gap < CADENCE_MIN_INTERVAL {
                self.last_event = Some(now);
                return;
            }
            let g = gap.as_secs_f64();
            self.cadence_secs = Some(match self.cadence_secs {
                None => g,
                Some(c) => c + CADENCE_ALPHA * (g - c),
            });
            self.cadence_samples = self.cadence_samples.saturating_add(1);
        }
        self.last_event = Some(now);
    }

    /// Conditions over the window, with their own hysteresis.
    fn conditions(&mut self, cfg: &HealthConfig, t: Tick) -> Vec<HealthReason> {
        self.trim_window(cfg, t.mono);
        let mut out = Vec::new();
        let Sums {
            new,
            duplicates: dups,
            outcomes,
            parse_errors: parse,
        } = self.sums;
        let total = new + dups;
        let ratio = if total == 0 {
            0.0
        } else {
            dups as f64 / total as f64
        };
        self.flood_active = total >= cfg.duplicate_min_events
            && if self.flood_active {
                ratio >= cfg.duplicate_flood_ratio * 0.8
            } else {
                ratio >= cfg.duplicate_flood_ratio
            };
        if self.flood_active {
            out.push(HealthReason::DuplicateFlood {
                ratio: round3(ratio),
            });
        }
        let rate = if outcomes == 0 {
            0.0
        } else {
            parse as f64 / outcomes as f64
        };
        self.parse_rate = (outcomes > 0).then_some(round3(rate));
        self.parse_active = outcomes >= cfg.parse_min_samples
            && parse > 0
            && if self.parse_active {
                rate >= cfg.parse_error_rate * 0.5
            } else {
                rate >= cfg.parse_error_rate
            };
        if self.parse_active {
            out.push(HealthReason::ParseErrors {
                rate: round3(rate),
                sample: self.parse_sample.clone().unwrap_or_default(),
            });
        }
        if let (Some(last), Some(cadence)) = (self.last_event, self.cadence_secs)
            && self.cadence_samples >= cfg.stale_min_samples
        {
            let limit = (cadence * cfg.stale_factor).max(cfg.stale_min_secs);
            if t.mono.duration_since(last).as_secs_f64() > limit {
                out.push(HealthReason::Stale {
                    since: rfc3339(t.wall_of(last)),
                    cadence_secs: round3(cadence),
                });
            }
        }
        if !self.backpressured.is_empty() {
            out.push(HealthReason::Backpressured {
                sinks: self.backpressured.iter().cloned().collect(),
            });
        }
        out
    }

    fn evaluate(&mut self, cfg: &HealthConfig, t: Tick) -> Option<Change> {
        let (state, details) = if !self.enabled {
            let details = if self.crash_reported {
                self.details
                    .iter()
                    .filter(|d| matches!(d, HealthReason::CrashLoop { .. }))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            (HealthState::Disabled, details)
        } else {
            let mut details = Vec::new();
            let mut state = if self.observed {
                HealthState::Healthy
            } else {
                self.baseline
            };
            let conditions = self.conditions(cfg, t);
            if let Some((fault, level)) = &self.fault {
                let reason = match (fault, self.parse_rate) {
                    // The fault carries the windowed rate, not a bare 100%.
                    (Fault::Parse(sample), Some(rate)) => HealthReason::ParseErrors {
                        rate,
                        sample: sample.clone(),
                    },
                    _ => fault.reason(t),
                };
                details.push(reason);
                state = *level;
            }
            if !self.observed && self.fault.is_none() && conditions.is_empty() {
                // Nothing seen yet: keep showing the baseline (persisted) health.
                return None;
            }
            if !conditions.is_empty() {
                if matches!(state, HealthState::Healthy | HealthState::Unknown) {
                    state = HealthState::Degraded;
                }
                for c in conditions {
                    if let HealthReason::ParseErrors { .. } = c {
                        details.retain(|d| !matches!(d, HealthReason::ParseErrors { .. }));
                    }
                    details.push(c);
                }
            }
            (state, details)
        };
        let same_codes = state == self.state
            && details.len() == self.details.len()
            && details
                .iter()
                .zip(&self.details)
                .all(|(a, b)| a.code() == b.code());
        // Fields (a ratio, an `until`) move without being a transition; keep them fresh.
        let from = self.state;
        self.details = details;
        if same_codes {
            return None;
        }
        self.state = state;
        self.since = t.wall;
        Some(Change {
            from,
            to: state,
            details: self.details.clone(),
            at: rfc3339(t.wall),
        })
    }

    /// Mark the crash-loop disable (the worker calls this after disabling).
    pub fn crash_disabled(&mut self, failures: u32, last_error: String, t: Tick) -> Option<Change> {
        self.enabled = false;
        let from = self.state;
        self.state = HealthState::Disabled;
        self.details = vec![HealthReason::CrashLoop {
            failures,
            last_error,
        }];
        self.since = t.wall;
        Some(Change {
            from,
            to: HealthState::Disabled,
            details: self.details.clone(),
            at: rfc3339(t.wall),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `base × 2^(attempt-1)`, capped.
fn doubling(base_secs: f64, attempt: u32, max_secs: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    secs((base_secs * f64::from(1u32 << exp)).min(max_secs))
}

/// Equal jitter: a factor in [0.5, 1.0).
fn jitter_factor() -> f64 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 0.75;
    }
    0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
