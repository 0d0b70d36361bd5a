//! Unit tests of the monitor: upstream responses taken from the connector's recorder,
//! holds, events queued for the worker, metrics figures and the Prometheus rendering
//! (escaping, org filter, series only for tracked connectors).

use std::time::Duration;

use super::*;

fn poll_ok(events: u64, duplicates: u64, ms: u64) -> Observation {
    Observation::PollSucceeded {
        events,
        duplicates,
        latency: Duration::from_millis(ms),
        upstream: Vec::new(),
    }
}

#[test]
fn the_recorder_feeds_observations_without_the_pipeline_passing_it() {
    let m = HealthMonitor::default();
    m.register("acme", "c1", "rest-generic", true, None);
    let rec = m.recorder("acme", "c1");
    let mut r = UpstreamResponse::status(429, Instant::now());
    r.retry_after = Some(Duration::from_secs(30));
    rec.record(r);
    m.observe(
        "acme",
        "c1",
        Observation::PollFailed {
            code: "other".into(),
            message: "try later".into(),
            status: None,
            retry_after: None,
            latency: Duration::from_millis(5),
            upstream: Vec::new(),
        },
    );
    assert!(rec.drain().is_empty(), "drained by the observation");
    let snap = m.snapshot("acme", "c1").unwrap();
    assert_eq!(snap.state, HealthState::Degraded);
    assert_eq!(snap.details[0].code(), "RATE_LIMITED");
    let hold = m.hold_until("acme", "c1").unwrap();
    assert!(hold > Instant::now() + Duration::from_secs(25));
    // Changes are queued for the worker: unknown -> degraded.
    let events = m.take_events();
    assert!(matches!(
        events.as_slice(),
        [HealthEvent::Transition {
            from: HealthState::Unknown,
            to: HealthState::Degraded,
            ..
        }]
    ));
    assert!(m.take_events().is_empty());
}

#[test]
fn persisted_health_shows_until_the_first_observation() {
    let m = HealthMonitor::default();
    let flood = vec![HealthReason::DuplicateFlood { ratio: 0.9 }];
    m.register(
        "acme",
        "c1",
        "p",
        true,
        Some((HealthState::Degraded, flood.clone())),
    );
    m.tick();
    let snap = m.snapshot("acme", "c1").unwrap();
    assert_eq!((snap.state, snap.details), (HealthState::Degraded, flood));
    assert!(m.take_events().is_empty(), "no transition without news");
    m.observe("acme", "c1", poll_ok(5, 0, 10));
    assert_eq!(
        m.snapshot("acme", "c1").unwrap().state,
        HealthState::Healthy
    );
}

#[test]
fn crash_loops_are_queued_once() {
    let m = HealthMonitor::default();
    m.register("acme", "c1", "trap", true, None);
    for _ in 0..8 {
        m.observe(
            "acme",
            "c1",
            Observation::PluginTrapped {
                message: "wasm trap: unreachable".into(),
            },
        );
    }
    let loops: Vec<_> = m
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, HealthEvent::CrashLoop { .. }))
        .collect();
    assert_eq!(loops.len(), 1, "{loops:?}");
    m.crash_disabled("acme", "c1", 5, "boom".into());
    assert_eq!(
        m.snapshot("acme", "c1").unwrap().state,
        HealthState::Disabled
    );
    assert!(m.tracked_enabled().is_empty());
}

#[test]
fn figures_percentiles_rate_and_sink_lag() {
    let m = HealthMonitor::default();
    m.register("acme", "c1", "p", true, None);
    for ms in 1..=100 {
        m.observe("acme", "c1", poll_ok(2, 1, ms));
    }
    let v = m.metrics("acme", "c1").unwrap();
    assert_eq!(v.polls_ok, 100);
    assert_eq!(v.events_in, 300);
    assert_eq!(v.duplicates_dropped, 100);
    assert_eq!(v.poll_latency_ms.p50, Some(50.0));
    assert_eq!(v.poll_latency_ms.p95, Some(95.0));
    assert_eq!(v.poll_latency_ms.p99, Some(99.0));
    // 200 new events within the first minute.
    assert_eq!(v.events_per_minute, 200.0);
    assert!(v.last_event.is_some() && v.last_success.is_some());
    assert_eq!(v.sink_pending_events, 200);
    m.observe("acme", "c1", Observation::EventsDelivered { count: 150 });
    assert_eq!(m.metrics("acme", "c1").unwrap().sink_pending_events, 50);
    m.observe("acme", "c1", Observation::EventsDelivered { count: 50 });
    let v = m.metrics("acme", "c1").unwrap();
    assert_eq!((v.sink_pending_events, v.sink_lag_secs), (0, 0.0));
    assert_eq!(v.events_out, 200);
}

#[test]
fn prometheus_text_is_escaped_filtered_and_bounded_to_tracked_connectors() {
    let m = HealthMonitor::default();
    m.register("acme", "c1", "rest-\"generic\"\\x", true, None);
    m.register("other", "c2", "p", true, None);
    m.observe("acme", "c1", poll_ok(1, 0, 20));
    let text = m.render_prometheus(None);
    assert!(
        text.contains(r#"plugin="rest-\"generic\"\\x""#),
        "label values escaped: {text}"
    );
    assert!(text.contains("# TYPE portcullis_poll_duration_seconds histogram"));
    assert!(text.contains(
        r#"portcullis_poll_duration_seconds_bucket{org="acme",connector="c1",plugin="rest-\"generic\"\\x",le="0.025"} 1"#
    ));
    assert!(text.contains(r#"connector="c2""#));
    let acme = m.render_prometheus(Some("acme"));
    assert!(!acme.contains("c2") && !acme.contains("other"), "{acme}");
    m.forget("acme", "c1");
    // A late report of a deleted connector does not bring its series back.
    m.observe("acme", "c1", poll_ok(1, 0, 20));
    assert!(!m.render_prometheus(None).contains(r#"connector="c1""#));
    // Every sample line is `name{labels} value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.ends_with('}'), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}
