//! Unit tests of the health state machine: hysteresis, immediate auth/rate-limit
//! reasons, holds, duplicate flood ratio, parse-error rate, staleness against the
//! connector's own cadence, backpressure and crash loops. Time is driven through
//! [`Tick`]s; nothing sleeps.

use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::health::upstream::UpstreamResponse;

fn cfg() -> HealthConfig {
    HealthConfig::default()
}

fn start() -> Tick {
    Tick {
        mono: Instant::now(),
        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    }
}

fn ok(events: u64, duplicates: u64) -> Observation {
    Observation::PollSucceeded {
        events,
        duplicates,
        latency: Duration::from_millis(20),
        upstream: Vec::new(),
    }
}

fn failed(code: &str, upstream: Vec<UpstreamResponse>) -> Observation {
    Observation::PollFailed {
        code: code.into(),
        message: format!("{code} happened"),
        status: None,
        retry_after: None,
        latency: Duration::from_millis(20),
        upstream,
    }
}

fn codes(t: &Tracker) -> Vec<&'static str> {
    t.details().iter().map(HealthReason::code).collect()
}

/// Feed `obs` at `t`, returning the state after.
fn feed(tr: &mut Tracker, obs: &Observation, t: Tick) -> HealthState {
    tr.observe(obs, &cfg(), t);
    tr.state()
}

#[test]
fn one_bad_poll_among_good_ones_changes_nothing() {
    let mut t = start();
    let mut tr = Tracker::new(true, t);
    assert_eq!(tr.state(), HealthState::Unknown);
    assert_eq!(feed(&mut tr, &ok(3, 0), t), HealthState::Healthy);
    let s503 = vec![UpstreamResponse::status(503, t.mono)];
    t = t.after(Duration::from_secs(60));
    assert_eq!(
        feed(&mut tr, &failed("upstream", s503.clone()), t),
        HealthState::Healthy
    );
    t = t.after(Duration::from_secs(60));
    assert_eq!(feed(&mut tr, &ok(1, 0), t), HealthState::Healthy);
    // Two in a row degrade (degrade_after_failures = 2), five fail.
    for i in 0..5 {
        t = t.after(Duration::from_secs(60));
        let s = feed(&mut tr, &failed("upstream", s503.clone()), t);
        match i {
            0 => assert_eq!(s, HealthState::Healthy),
            1..=3 => assert_eq!(s, HealthState::Degraded),
            _ => assert_eq!(s, HealthState::Failing),
        }
    }
    assert_eq!(codes(&tr), ["UPSTREAM_ERROR"]);
    assert_eq!(
        tr.details()[0],
        HealthReason::UpstreamError { status: Some(503) }
    );
    // One good poll does not recover (recover_after_successes = 2); two do.
    t = t.after(Duration::from_secs(60));
    assert_eq!(feed(&mut tr, &ok(1, 0), t), HealthState::Failing);
    t = t.after(Duration::from_secs(60));
    assert_eq!(feed(&mut tr, &ok(1, 0), t), HealthState::Healthy);
    assert!(tr.details().is_empty());
}

#[test]
fn a_failure_during_recovery_keeps_the_level() {
    let mut t = start();
    let mut tr = Tracker::new(true, t);
    for _ in 0..2 {
        t = t.after(Duration::from_secs(10));
        feed(&mut tr, &failed("timeout", vec![]), t);
    }
    assert_eq!(tr.state(), HealthState::Degraded);
    assert_eq!(codes(&tr), ["TIMEOUT"]);
    t = t.after(Duration::from_secs(10));
    feed(&mut tr, &ok(0, 0), t);
    t = t.after(Duration::from_secs(10));
    // A different single failure: still degraded, reason updated, no flap to healthy.
    feed(
        &mut tr,
        &failed("upstream", vec![UpstreamResponse::status(502, t.mono)]),
        t,
    );
    assert_eq!(tr.state(), HealthState::Degraded);
    assert_eq!(codes(&tr), ["UPSTREAM_ERROR"]);
}

#[test]
fn auth_failure_is_immediate_and_holds_off_with_doubling() {
    let mut t = start();
    let c = cfg();
    let mut tr = Tracker::new(true, t);
    feed(&mut tr, &ok(1, 0), t);
    let r401 = vec![UpstreamResponse::status(401, t.mono)];
    assert_eq!(
        feed(&mut tr, &failed("auth", r401), t),
        HealthState::Failing
    );
    assert_eq!(
        tr.details(),
        [HealthReason::AuthFailed { status: Some(401) }]
    );
    let first = tr.hold_until().unwrap() - t.mono;
    assert_eq!(first, Duration::from_secs_f64(c.auth_retry_secs));
    t = t.after(first);
    // 403 seen by the host even though the plugin called it "other".
    feed(
        &mut tr,
        &failed("other", vec![UpstreamResponse::status(403, t.mono)]),
        t,
    );
    assert_eq!(
        tr.details(),
        [HealthReason::AuthFailed { status: Some(403) }]
    );
    assert_eq!(
        tr.hold_until().unwrap() - t.mono,
        Duration::from_secs_f64(c.auth_retry_secs * 2.0)
    );
    // Capped.
    for _ in 0..10 {
        feed(&mut tr, &failed("auth", vec![]), t);
    }
    assert_eq!(
        tr.hold_until().unwrap() - t.mono,
        Duration::from_secs_f64(c.auth_retry_max_secs)
    );
}

#[test]
fn rate_limit_holds_until_retry_after_and_clears_on_first_success() {
    let mut t = start();
    let mut tr = Tracker::new(true, t);
    feed(&mut tr, &ok(1, 0), t);
    let mut r = UpstreamResponse::status(429, t.mono);
    r.retry_after = Some(Duration::from_secs(30));
    r.rate_limit_reset = Some(Duration::from_secs(90));
    assert_eq!(
        feed(&mut tr, &failed("rate-limited", vec![r]), t),
        HealthState::Degraded
    );
    assert_eq!(tr.hold_until(), Some(t.mono + Duration::from_secs(30)));
    let until = match &tr.details()[0] {
        HealthReason::RateLimited { until } => until.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(until, "2027-01-15T08:00:30.000Z");
    // Without Retry-After, the reset applies.
    let mut tr2 = Tracker::new(true, t);
    let mut r = UpstreamResponse::status(429, t.mono);
    r.rate_limit_reset = Some(Duration::from_secs(90));
    feed(&mut tr2, &failed("upstream", vec![r]), t);
    assert_eq!(tr2.hold_until(), Some(t.mono + Duration::from_secs(90)));
    // Neither: the plugin's retry-after, else the default.
    let mut tr3 = Tracker::new(true, t);
    let obs = Observation::PollFailed {
        code: "rate-limited".into(),
        message: "slow down".into(),
        status: Some(429),
        retry_after: Some(Duration::from_secs(7)),
        latency: Duration::ZERO,
        upstream: vec![],
    };
    feed(&mut tr3, &obs, t);
    assert_eq!(tr3.hold_until(), Some(t.mono + Duration::from_secs(7)));
    // After the hold, one success clears it.
    t = t.after(Duration::from_secs(31));
    assert_eq!(feed(&mut tr, &ok(1, 0), t), HealthState::Healthy);
    assert!(tr.details().is_empty());
}

#[test]
fn an_empty_quota_holds_without_degrading() {
    let t = start();
    let mut tr = Tracker::new(true, t);
    let mut r = UpstreamResponse::status(200, t.mono);
    r.rate_limit_limit = Some(100);
    r.rate_limit_remaining = Some(0);
    r.rate_limit_reset = Some(Duration::from_secs(42));
    let obs = Observation::PollSucceeded {
        events: 5,
        duplicates: 0,
        latency: Duration::ZERO,
        upstream: vec![r],
    };
    assert_eq!(feed(&mut tr, &obs, t), HealthState::Healthy);
    assert_eq!(tr.hold_until(), Some(t.mono + Duration::from_secs(42)));
}

#[test]
fn backoff_grows_exponentially_with_jitter_and_resets_on_success() {
    let mut t = start();
    let c = cfg();
    let mut tr = Tracker::new(true, t);
    let mut prev_max = 0.0;
    for attempt in 1..=12u32 {
        feed(&mut tr, &failed("timeout", vec![]), t);
        let d = (tr.hold_until().unwrap() - t.mono).as_secs_f64();
        let full = (c.backoff_base_secs * 2f64.powi(attempt as i32 - 1)).min(c.backoff_max_secs);
        assert!(
            d >= full * 0.5 - 1e-6 && d <= full + 1e-6,
            "attempt {attempt}: {d} vs {full}"
        );
        assert!(full >= prev_max);
        prev_max = full;
        t = t.after(Duration::from_secs(1));
    }
    feed(&mut tr, &ok(0, 0), t);
    assert_eq!(tr.hold_until(), None);
}

#[test]
fn duplicate_flood_by_ratio_in_the_window_with_hysteresis() {
    let mut t = start();
    let c = cfg();
    let mut tr = Tracker::new(true, t);
    // Few events: never a flood, whatever the ratio.
    feed(&mut tr, &ok(1, 10), t);
    assert_eq!(tr.state(), HealthState::Healthy);
    // One duplicate per poll is window overlap: 10 new + 30 duplicates -> 0.75.
    t = t.after(Duration::from_secs(60));
    feed(&mut tr, &ok(9, 22), t);
    assert_eq!(tr.state(), HealthState::Degraded);
    assert_eq!(tr.details(), [HealthReason::DuplicateFlood { ratio: 0.75 }]);
    // Ratio falls to 30/70 = 0.43: above 80% of the threshold (0.4), still a flood.
    t = t.after(Duration::from_secs(60));
    feed(&mut tr, &ok(30, 0), t);
    assert_eq!(codes(&tr), ["DUPLICATE_FLOOD"]);
    // 30/80 = 0.375 < 0.4: clears.
    t = t.after(Duration::from_secs(60));
    feed(&mut tr, &ok(10, 0), t);
    assert_eq!(tr.state(), HealthState::Healthy);
    // The window forgets: a flood long ago does not count.
    t = t.after(Duration::from_secs(60));
    feed(&mut tr, &ok(0, 101), t);
    assert_eq!(codes(&tr), ["DUPLICATE_FLOOD"]);
    t = t.after(Duration::from_secs_f64(c.window_secs + 1.0));
    feed(&mut tr, &ok(30, 0), t);
    assert_eq!(tr.state(), HealthState::Healthy);
}

#[test]
fn one_duplicate_per_poll_is_window_overlap_not_a_flood() {
    let mut t = start();
    let mut tr = Tracker::new(true, t);
    for _ in 0..500 {
        feed(&mut tr, &ok(0, 1), t);
        t = t.after(Duration::from_millis(100));
    }
    assert_eq!(tr.state(), HealthState::Healthy);
    // Two per poll is not.
    for _ in 0..20 {
        feed(&mut tr, &ok(0, 2), t);
        t = t.after(Duration::from_millis(100));
    }
    assert_eq!(codes(&tr), ["DUPLICATE_FLOOD"]);
}

#[test]
fn pushed_duplicates_count_too() {
    let t = start();
    let mut tr = Tracker::new(true, t);
    tr.observe(
        &Observation::PushAccepted {
            events: 2,
            duplicates: 40,
        },
        &cfg(),
        t,
    );
    assert_eq!(tr.state(), HealthState::Degraded);
    assert_eq!(codes(&tr), ["DUPLICATE_FLOOD"]);
}

#[test]
fn parse_errors_by_rate_with_a_sample() {
    let mut t = start();
    let mut tr = Tracker::new(true, t);
    for _ in 0..8 {
        t = t.after(Duration::from_secs(10));
        feed(&mut tr, &ok(1, 0), t);
    }
    t = t.after(Duration::from_secs(10));
    let obs = Observation::PollFailed {
        code: "parse".into(),
        message: "parse error: expected value at line 1 column 1".into(),
        status: None,
        retry_after: None,
        latency: Duration::ZERO,
        upstream: vec![UpstreamResponse::status(200, t.mono)],
    };
    // 1 of 9 (0.11) is below 0.2 and a single failure: still healthy.
    feed(&mut tr, &obs, t);
    assert_eq!(tr.state(), HealthState::Healthy);
    // 2 of 10 = 0.2 and two consecutive failures: degraded, one PARSE_ERRORS reason.
    t = t.after(Duration::from_secs(10));
    feed(&mut tr, &obs, t);
    assert_eq!(tr.state(), HealthState::Degraded);
    assert_eq!(
        tr.details(),
        [HealthReason::ParseErrors {
            rate: 0.2,
            sample: "parse error: expected value at line 1 column 1".into()
        }]
    );
    // Malformed pushes count as parse errors.
    let mut tr2 = Tracker::new(true, t);
    for _ in 0..3 {
        tr2.observe(
            &Observation::PushMalformed {
                sample: "line 1: not RFC 5424".into(),
            },
            &cfg(),
            t,
        );
    }
    assert_eq!(tr2.state(), HealthState::Degraded);
    assert_eq!(codes(&tr2), ["PARSE_ERRORS"]);
}

#[test]
fn stale_is_judged_against_the_connectors_own_cadence() {
    let c = HealthConfig {
        stale_min_secs: 60.0,
        ..cfg()
    };
    let mut t = start();
    // A connector with events every 10 minutes.
    let mut slow = Tracker::new(true, t);
    // One with events every 30 seconds.
    let mut fast = Tracker::new(true, t);
    for i in 0..=100 {
        if i > 0 {
            t = t.after(Duration::from_secs(30));
        }
        fast.observe(&ok(1, 0), &c, t);
        if i % 20 == 0 {
            slow.observe(&ok(1, 0), &c, t);
        }
    }
    // 10 minutes of silence: stale for the fast one (5 x 30 s = 150 s, floored at 60 s),
    // normal for the slow one (5 x 600 s).
    t = t.after(Duration::from_secs(600));
    fast.tick(&c, t);
    slow.tick(&c, t);
    assert_eq!(fast.state(), HealthState::Degraded);
    assert!(
        matches!(&fast.details()[0], HealthReason::Stale { cadence_secs, .. } if (*cadence_secs - 30.0).abs() < 1.0)
    );
    assert_eq!(slow.state(), HealthState::Healthy);
    // The slow one goes stale past 5 x its own cadence.
    t = t.after(Duration::from_secs(2500));
    slow.tick(&c, t);
    assert_eq!(codes(&slow), ["STALE"]);
    // Events again: fresh.
    slow.observe(&ok(2, 0), &c, t);
    assert_eq!(slow.state(), HealthState::Healthy);
}

#[test]
fn stale_needs_enough_observed_intervals() {
    let mut t = start();
    let c = cfg();
    let mut tr = Tracker::new(true, t);
    tr.observe(&ok(1, 0), &c, t);
    t = t.after(Duration::from_secs(30));
    tr.observe(&ok(1, 0), &c, t);
    t = t.after(Duration::from_secs(100_000));
    tr.tick(&c, t);
    assert_eq!(tr.state(), HealthState::Healthy);
}

#[test]
fn backpressure_degrades_while_any_sink_pushes_back() {
    let t = start();
    let c = cfg();
    let mut tr = Tracker::new(true, t);
    tr.observe(&ok(1, 0), &c, t);
    let bp = |sink: &str, active| Observation::SinkBackpressure {
        sink: sink.into(),
        active,
    };
    tr.observe(&bp("http-forward", true), &c, t);
    tr.observe(&bp("ndjson", true), &c, t);
    assert_eq!(
        tr.details(),
        [HealthReason::Backpressured {
            sinks: vec!["http-forward".into(), "ndjson".into()]
        }]
    );
    tr.observe(&bp("http-forward", false), &c, t);
    assert_eq!(tr.state(), HealthState::Degraded);
    tr.observe(&bp("ndjson", false), &c, t);
    assert_eq!(tr.state(), HealthState::Healthy);
}

#[test]
fn crash_loop_trips_once_after_consecutive_traps_within_the_window() {
    let mut t = start();
    let c = cfg();
    let mut tr = Tracker::new(true, t);
    let trap = failed("trap", vec![]);
    let mut trips = Vec::new();
    for i in 0..(c.crash_loop_failures + 3) {
        let (_, crash) = tr.observe(&trap, &c, t);
        if let Some(x) = crash {
            trips.push((i, x));
        }
        t = t.after(Duration::from_secs(1));
    }
    assert_eq!(trips.len(), 1, "{trips:?}");
    assert_eq!(trips[0].0, c.crash_loop_failures - 1);
    assert_eq!(trips[0].1.0, c.crash_loop_failures);
    assert!(trips[0].1.1.contains("trap happened"));
    assert_eq!(codes(&tr), ["PLUGIN_TRAP"]);
    assert_eq!(tr.state(), HealthState::Failing);
    let change = tr.crash_disabled(5, "boom".into(), t).unwrap();
    assert_eq!(change.to, HealthState::Disabled);
    assert_eq!(codes(&tr), ["CRASH_LOOP"]);
    // Late results after the disable change nothing.
    assert_eq!(tr.observe(&ok(1, 0), &c, t), (None, None));
}

#[test]
fn crash_loop_needs_consecutive_failures_within_the_window() {
    let mut t = start();
    let c = cfg();
    let mut tr = Tracker::new(true, t);
    let trap = failed("memory-limit", vec![]);
    // A success in between resets the count.
    for _ in 0..(c.crash_loop_failures - 1) {
        assert_eq!(tr.observe(&trap, &c, t).1, None);
    }
    tr.observe(&ok(0, 0), &c, t);
    for _ in 0..(c.crash_loop_failures - 1) {
        assert_eq!(tr.observe(&trap, &c, t).1, None);
    }
    // Failures spread wider than the window do not trip it.
    let mut tr = Tracker::new(true, t);
    let gap = Duration::from_secs_f64(c.crash_loop_window_secs / 2.0 + 1.0);
    for _ in 0..(c.crash_loop_failures * 3) {
        assert_eq!(tr.observe(&trap, &c, t).1, None);
        t = t.after(gap);
    }
    // Upstream failures do not count unless configured.
    let mut tr = Tracker::new(true, t);
    let s503 = failed("upstream", vec![UpstreamResponse::status(503, t.mono)]);
    for _ in 0..(c.crash_loop_failures * 2) {
        assert_eq!(tr.observe(&s503, &c, t).1, None);
    }
    let any = HealthConfig {
        crash_loop_counts_upstream: true,
        ..cfg()
    };
    let mut tr = Tracker::new(true, t);
    let trips = (0..any.crash_loop_failures)
        .filter_map(|_| tr.observe(&s503, &any, t).1)
        .count();
    assert_eq!(trips, 1);
}

#[test]
fn disable_and_enable_reset_the_slate() {
    let mut t = start();
    let c = cfg();
    let mut tr = Tracker::new(true, t);
    for _ in 0..3 {
        tr.observe(&failed("timeout", vec![]), &c, t);
    }
    assert_eq!(tr.state(), HealthState::Degraded);
    let ch = tr.set_enabled(false, &c, t).unwrap();
    assert_eq!(
        (ch.from, ch.to),
        (HealthState::Degraded, HealthState::Disabled)
    );
    assert!(tr.details().is_empty());
    t = t.after(Duration::from_secs(5));
    let ch = tr.set_enabled(true, &c, t).unwrap();
    assert_eq!(ch.to, HealthState::Unknown);
    assert_eq!(tr.hold_until(), None);
    assert_eq!(feed(&mut tr, &ok(1, 0), t), HealthState::Healthy);
}

#[test]
fn host_evidence_comes_before_the_plugins_word() {
    let c = cfg();
    let now = Instant::now();
    let up = |s| vec![UpstreamResponse::status(s, now)];
    let f = |code: &str, status, u: Vec<UpstreamResponse>| {
        classify(code, "m", status, None, &u, &c, now)
    };
    assert_eq!(f("trap", None, up(503)), Fault::Trap("m".into()));
    assert_eq!(f("timeout", None, up(200)), Fault::Timeout);
    assert_eq!(f("other", None, up(503)), Fault::Upstream(Some(503)));
    assert_eq!(f("parse", None, up(401)), Fault::Auth(Some(401)));
    assert_eq!(f("parse", None, up(200)), Fault::Parse("m".into()));
    assert_eq!(f("upstream", Some(500), vec![]), Fault::Upstream(Some(500)));
    assert_eq!(f("upstream", Some(403), vec![]), Fault::Auth(Some(403)));
    assert_eq!(f("auth", None, vec![]), Fault::Auth(None));
    assert_eq!(f("other", None, vec![]), Fault::Upstream(None));
    let timed_out = vec![UpstreamResponse::failed(
        crate::health::UpstreamFailure::Timeout,
        now,
    )];
    assert_eq!(f("upstream", None, timed_out), Fault::Timeout);
    assert!(matches!(
        f("upstream", Some(429), vec![]),
        Fault::RateLimited(_)
    ));
}
