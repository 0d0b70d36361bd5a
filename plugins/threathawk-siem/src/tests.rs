//! Native tests of the connector logic: scripted upstream responses through
//! `MockTransport`, time through `ManualClock`.

use portcullis_sdk::http::{HttpError, Response};
use portcullis_sdk::testing::{self, ManualClock, MockTransport};
use serde_json::json;

use super::*;
use crate::engine::{Cursor, PollOutcome, Seen};

const NOW: &str = "2025-03-01T12:00:00Z";
const URL: &str = "https://th.test/v1/alerts";

fn cfg(doc: Value) -> Config {
    Config::parse(&doc).unwrap_or_else(|e| panic!("config: {e}"))
}

fn base_cfg() -> Config {
    cfg(json!({"base_url": "https://th.test/v1", "page_size": 2}))
}

fn clock() -> ManualClock {
    ManualClock::at(NOW, 5)
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn run_poll(c: &Config, cursor: Option<&str>, mock: &MockTransport) -> PollOutcome {
    engine::poll(c, cursor, mock, &clock()).unwrap_or_else(|e| panic!("poll: {e}"))
}

fn poll_err(c: &Config, cursor: Option<&str>, mock: &MockTransport) -> Error {
    match engine::poll(c, cursor, mock, &clock()) {
        Ok(out) => panic!("expected an error, got {out:?}"),
        Err(e) => e,
    }
}

fn cursor_of(out: &PollOutcome) -> Cursor {
    testing::batch_cursor(&out.batch)
}

fn text_of(c: &Cursor) -> String {
    serde_json::to_string(c).unwrap_or_else(|e| panic!("{e}"))
}

fn ids(out: &PollOutcome) -> Vec<&str> {
    testing::event_ids(&out.batch)
}

fn alert(id: &str, created_at: &str) -> Value {
    json!({"id": id, "title": format!("Alert {id}"), "severity": "high", "status": "open", "created_at": created_at})
}

fn page(alerts: Vec<Value>, next: Option<&str>) -> Response {
    let body = json!({
        "data": alerts,
        "pagination": {"limit": 2, "has_more": next.is_some(), "next_cursor": next}
    });
    Response::new(200, URL, body.to_string()).with_header("Content-Type", "application/json")
}

fn query_of(mock: &MockTransport, index: usize) -> Vec<(String, String)> {
    let urls = mock.requested_urls();
    let url = url::Url::parse(&urls[index]).unwrap_or_else(|e| panic!("{e}"));
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(q: &[(String, String)], name: &str) -> Option<String> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn full_alert() -> Value {
    json!({
        "id": "alrt-000042",
        "title": "Password spraying against VPN gateway",
        "description": "12 accounts failed from one source within 5 minutes",
        "severity": "critical",
        "status": "open",
        "created_at": "2025-02-10T08:15:00+01:00",
        "updated_at": "2025-02-10T07:20:00Z",
        "source": "vpn-gateway",
        "matched_rules": [
            {"id": "rule-0007", "name": "Password spraying", "severity": "critical"},
            "Impossible travel"
        ],
        "affected_assets": [
            {"asset_id": "asset-0042", "hostname": "VPN-GW-01.corp.example", "ip": "10.20.0.42", "type": "gateway", "owner": "netops"},
            "ws-0007.corp.example"
        ],
        "raw_event_ids": ["evt-000421", 422],
        "mitre_attack": [
            {"tactic_id": "TA0006", "tactic": "Credential Access", "technique_id": "T1110", "subtechnique_id": "T1110.003", "technique": "Password Spraying"},
            "t1078"
        ],
        "raw_event": {
            "src_ip": "203.0.113.7",
            "dest_ip": "2001:DB8::1",
            "user": {"name": "jdoe", "domain": "CORP"},
            "target_users": ["asmith", "mlopez"],
            "process": {"name": "vpnd", "sha256": "A3F1C2B4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F80"},
            "file_md5": "0123456789abcdef0123456789abcdef",
            "session_id": "fedcba9876543210fedcba9876543210"
        },
        "custom_fields": {"virustotal_hits": 12}
    })
}

fn has(e: &Event, kind: ObservableKind, value: &str) -> bool {
    e.observables
        .iter()
        .any(|o| o.kind == kind && o.value == value)
}

// --------------------------------------------------------------------------
// Manifest and configuration

#[test]
fn manifest_declares_siem_oauth_slot_and_schema() {
    let m = manifest();
    assert_eq!(m.id, "threathawk-siem");
    assert_eq!(m.category, Category::Siem);
    assert!(!m.accepts_push);
    assert_eq!(
        m.hosts,
        ["https://api.threathawk.cybersilo.tech", "*://*:*"]
    );
    assert_eq!(m.credential_slots.len(), 1);
    let slot = &m.credential_slots[0];
    assert_eq!(slot.name, "api");
    assert!(slot.required);
    assert_eq!(slot.kinds, [CredentialKind::Oauth2ClientCredentials]);
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.config_schema, schema);
    let mut props: Vec<&str> = schema["properties"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    props.sort_unstable();
    let mut keys = config::KEYS.to_vec();
    keys.sort_unstable();
    assert_eq!(props, keys);
    assert_eq!(
        schema["properties"]["base_url"]["default"],
        config::DEFAULT_BASE_URL
    );
    assert_eq!(
        schema["properties"]["severity"]["enum"],
        json!(config::SEVERITIES)
    );
}

#[test]
fn empty_config_uses_the_documented_defaults() {
    let c = cfg(json!({}));
    assert_eq!(
        c.base_url.as_str(),
        "https://api.threathawk.cybersilo.tech/v1"
    );
    assert_eq!(
        c.alerts_url.as_str(),
        "https://api.threathawk.cybersilo.tech/v1/alerts"
    );
    assert_eq!(c.page_size, 100);
    assert_eq!(c.overlap_ms, 1000);
    assert_eq!(
        (c.status, c.severity, c.initial_created_after),
        (None, None, None)
    );
    // A trailing slash does not double up.
    let c = cfg(json!({"base_url": "http://127.0.0.1:8080/v1/"}));
    assert_eq!(c.alerts_url.as_str(), "http://127.0.0.1:8080/v1/alerts");
}

#[test]
fn config_reports_every_problem_with_its_path() {
    let err = Config::parse(&json!({
        "base_url": "ftp://th.test",
        "status": "open now",
        "severity": "urgent",
        "initial_created_after": "yesterday",
        "page_size": 0,
        "overlap_secs": -1,
        "token": "x"
    }));
    let Err(Error::Config(list)) = err else {
        panic!("expected config errors, got {err:?}")
    };
    let mut paths: Vec<&str> = list.iter().map(|e| e.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/base_url",
            "/initial_created_after",
            "/overlap_secs",
            "/page_size",
            "/severity",
            "/status",
            "/token"
        ]
    );
    let sev = list
        .iter()
        .find(|e| e.path == "/severity")
        .map(|e| e.message.clone());
    assert!(sev.is_some_and(|m| m.contains("info, low, medium, high, critical")));
    assert!(matches!(
        Config::parse(&json!(["x"])),
        Err(Error::Config(l)) if l[0].path.is_empty()
    ));
    for bad in [
        json!({"base_url": "https://user:pw@th.test/v1"}),
        json!({"base_url": "https://th.test/v1?x=1"}),
        json!({"base_url": 5}),
        json!({"page_size": 1001}),
        json!({"page_size": "10"}),
        json!({"severity": "Critical"}),
    ] {
        assert!(Config::parse(&bad).is_err(), "{bad} accepted");
    }
    let ok = cfg(json!({"status": "investigating", "severity": "info",
        "initial_created_after": "2025-02-10T00:00:00+02:00", "overlap_secs": 0, "page_size": 1000}));
    assert_eq!(ok.initial_created_after, Some(ts("2025-02-09T22:00:00Z")));
    assert_eq!(ok.overlap_ms, 0);
}

// --------------------------------------------------------------------------
// Mapping

#[test]
fn severities_map_to_ocsf() {
    let table = [
        ("info", Severity::Informational, 1),
        ("informational", Severity::Informational, 1),
        ("low", Severity::Low, 2),
        ("Medium", Severity::Medium, 3),
        ("HIGH", Severity::High, 4),
        ("critical", Severity::Critical, 5),
    ];
    for (label, sev, id) in table {
        assert_eq!(mapping::severity(label), Some(sev), "{label}");
        assert_eq!(sev.id(), id);
    }
    assert_eq!(mapping::severity("p1"), None);
    assert_eq!(mapping::severity(""), None);
}

#[test]
fn attack_ids_are_checked_and_normalised() {
    assert_eq!(mapping::technique_id("T1110").as_deref(), Some("T1110"));
    assert_eq!(
        mapping::technique_id(" t1059.001 ").as_deref(),
        Some("T1059.001")
    );
    for bad in ["T111", "T11100", "T1110.01", "TA0006", "1110", "T1110-001"] {
        assert_eq!(mapping::technique_id(bad), None, "{bad}");
    }
    assert_eq!(mapping::tactic_id("ta0006").as_deref(), Some("TA0006"));
    assert_eq!(mapping::tactic_id("T1110"), None);
}

#[test]
fn alert_becomes_an_alert_event() {
    let mut w = Warnings::default();
    let a = full_alert();
    let (e, time) = mapping::map_alert(&a, ts(NOW), &mut w).unwrap_or_else(|r| panic!("{r}"));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(e.id, "alrt-000042");
    assert_eq!(time, Some(ts("2025-02-10T07:15:00Z")));
    assert_eq!(e.time, "2025-02-10T07:15:00Z");
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.severity, Severity::Critical);
    assert_eq!(e.title, "Password spraying against VPN gateway");
    assert_eq!(e.raw, a.to_string());

    use ObservableKind as K;
    for (kind, value) in [
        (K::MitreTechnique, "T1110"),
        (K::MitreTechnique, "T1110.003"),
        (K::MitreTechnique, "T1078"),
        (K::EventId, "evt-000421"),
        (K::EventId, "422"),
        (K::Ip, "10.20.0.42"),
        (K::Ip, "203.0.113.7"),
        (K::Ip, "2001:db8::1"),
        (K::Hostname, "vpn-gw-01.corp.example"),
        (K::Hostname, "ws-0007.corp.example"),
        (K::User, "jdoe"),
        (K::User, "asmith"),
        (K::User, "mlopez"),
        (K::User, "netops"),
        (
            K::Sha256,
            "a3f1c2b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80",
        ),
        (K::Md5, "0123456789abcdef0123456789abcdef"),
    ] {
        assert!(
            has(&e, kind, value),
            "{kind} {value} missing: {:?}",
            e.observables
        );
    }
    // Only hash-named fields give hashes (a 32-hex session id is no MD5); rule ids,
    // process names and asset or alert ids are not entities.
    assert_eq!(e.observables.iter().filter(|o| o.kind == K::Md5).count(), 1);
    assert!(!e.observables.iter().any(|o| o.value == "rule-0007"
        || o.value == "fedcba9876543210fedcba9876543210"
        || o.value == "asset-0042"
        || o.value == "vpnd"
        || o.value == "alrt-000042"));

    let attrs = Value::Object(e.attributes.clone());
    assert_eq!(attrs["alert_id"], "alrt-000042");
    assert_eq!(attrs["status"], "open");
    assert_eq!(attrs["threathawk_severity"], "critical");
    assert_eq!(attrs["source"], "vpn-gateway");
    assert_eq!(attrs["rule_ids"], json!(["rule-0007"]));
    assert_eq!(
        attrs["rule_names"],
        json!(["Password spraying", "Impossible travel"])
    );
    assert_eq!(
        attrs["mitre_technique_ids"],
        json!(["T1110", "T1110.003", "T1078"])
    );
    assert_eq!(attrs["mitre_tactic_ids"], json!(["TA0006"]));
    assert_eq!(attrs["raw_event_ids"], json!(["evt-000421", "422"]));
    assert_eq!(attrs["affected_assets"], a["affected_assets"]);
    assert_eq!(attrs["matched_rules"], a["matched_rules"]);
    assert_eq!(attrs["custom_fields"]["virustotal_hits"], 12);
}

#[test]
fn odd_alerts_are_mapped_or_skipped_with_a_reason() {
    let mut w = Warnings::default();
    let now = ts(NOW);
    let (e, time) = mapping::map_alert(&json!({"id": 7, "severity": "p1"}), now, &mut w)
        .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(e.id, "7");
    assert_eq!(time, None);
    assert_eq!(e.time, NOW);
    assert_eq!(e.severity, Severity::Unknown);
    assert_eq!(e.title, "ThreatHawk alert 7");
    assert!(w.mentions("created_at"));
    assert!(w.mentions("severity"));

    for (bad, why) in [
        (json!({"title": "no id"}), "no `id`"),
        (json!({"id": ""}), "not a non-empty string"),
        (json!({"id": {"x": 1}}), "an object"),
        (json!("alrt-1"), "not an object"),
    ] {
        match mapping::map_alert(&bad, now, &mut w) {
            Err(reason) => assert!(reason.contains(why), "{reason}"),
            Ok(e) => panic!("{bad} mapped: {e:?}"),
        }
    }

    let mut w = Warnings::default();
    let (e, _) = mapping::map_alert(
        &json!({"id": "a", "severity": "low", "created_at": "2025-01-01T00:00:00Z",
                "mitre_attack": ["T1486", "not-an-id", 5], "raw_event_ids": "evt-1"}),
        now,
        &mut w,
    )
    .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(e.severity, Severity::Low);
    assert!(has(&e, ObservableKind::MitreTechnique, "T1486"));
    assert!(has(&e, ObservableKind::EventId, "evt-1"));
    assert_eq!(w.entries().len(), 2, "{w:?}");
}

#[test]
fn observables_are_capped() {
    let ips: Vec<String> = (0..1000)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
        .collect();
    let a = json!({"id": "big", "severity": "low", "created_at": NOW, "raw_event": {"ips": ips}});
    let mut w = Warnings::default();
    let (e, _) = mapping::map_alert(&a, ts(NOW), &mut w).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(e.observables.len(), mapping::MAX_OBSERVABLES);
}

// --------------------------------------------------------------------------
// Polling

#[test]
fn first_page_sends_filters_limit_and_credential() {
    let c = cfg(
        json!({"base_url": "https://th.test/v1", "status": "open", "severity": "critical",
        "initial_created_after": "2025-02-10T00:00:00Z", "page_size": 2}),
    );
    let mock = MockTransport::new().respond(page(
        vec![
            alert("a1", "2025-02-10T01:00:00Z"),
            alert("a2", "2025-02-10T02:00:00Z"),
        ],
        Some("c2"),
    ));
    let out = run_poll(&c, None, &mock);
    assert_eq!(ids(&out), ["a1", "a2"]);
    assert!(out.batch.more);
    let cur = cursor_of(&out);
    assert_eq!(cur.page.as_deref(), Some("c2"));
    assert_eq!(cur.created_after.as_deref(), Some("2025-02-10T00:00:00Z"));
    assert_eq!(cur.newest.as_deref(), Some("2025-02-10T02:00:00Z"));

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].credential.as_deref(), Some("api"));
    assert_eq!(reqs[0].headers.get("accept"), Some("application/json"));
    assert!(reqs[0].headers.get("authorization").is_none());
    assert!(mock.requested_urls()[0].starts_with("https://th.test/v1/alerts?"));
    let q = query_of(&mock, 0);
    assert_eq!(param(&q, "limit").as_deref(), Some("2"));
    assert_eq!(param(&q, "status").as_deref(), Some("open"));
    assert_eq!(param(&q, "severity").as_deref(), Some("critical"));
    assert_eq!(
        param(&q, "created_after").as_deref(),
        Some("2025-02-10T00:00:00Z")
    );
    assert_eq!(param(&q, "cursor"), None);
}

#[test]
fn windows_follow_cursors_then_restart_from_the_newest_alert() {
    let c = base_cfg();
    // Window 1: two pages. No initial bound: no `created_after` at all.
    let mock = MockTransport::new()
        .respond(page(
            vec![
                alert("a1", "2025-02-10T00:00:00Z"),
                alert("a2", "2025-02-10T00:01:00Z"),
            ],
            Some("p2"),
        ))
        .respond(page(
            vec![
                alert("a3", "2025-02-10T00:02:00Z"),
                alert("a4", "2025-02-10T00:02:00.500Z"),
            ],
            None,
        ));
    let first = run_poll(&c, None, &mock);
    let second = run_poll(&c, first.batch.cursor.as_deref(), &mock);
    assert_eq!(ids(&second), ["a3", "a4"]);
    assert!(!second.batch.more);
    let q0 = query_of(&mock, 0);
    let q1 = query_of(&mock, 1);
    assert_eq!(param(&q0, "created_after"), None);
    assert_eq!(param(&q1, "cursor").as_deref(), Some("p2"));
    assert_eq!(param(&q1, "created_after"), None);

    // The next window starts one second (the overlap) before the newest alert, and
    // remembers both alerts of that second.
    let cur = cursor_of(&second);
    assert_eq!(
        cur.created_after.as_deref(),
        Some("2025-02-10T00:01:59.500Z")
    );
    assert_eq!(cur.page, None);
    assert_eq!(cur.newest, None);
    assert_eq!(cur.skip, ["a3", "a4"]);

    // Window 2: the upstream returns a4 again plus a late a5 with the same timestamp
    // and a new a6. Only a5 and a6 are emitted.
    let mock = MockTransport::new().respond(page(
        vec![
            alert("a4", "2025-02-10T00:02:00.500Z"),
            alert("a5", "2025-02-10T00:02:00.500Z"),
            alert("a6", "2025-02-10T00:05:00Z"),
        ],
        None,
    ));
    let third = run_poll(&c, second.batch.cursor.as_deref(), &mock);
    assert_eq!(ids(&third), ["a5", "a6"]);
    assert_eq!(third.repeated, 1);
    assert_eq!(
        param(&query_of(&mock, 0), "created_after").as_deref(),
        Some("2025-02-10T00:01:59.500Z")
    );
    let cur = cursor_of(&third);
    assert_eq!(cur.created_after.as_deref(), Some("2025-02-10T00:04:59Z"));
    assert_eq!(cur.skip, ["a6"]);

    // Window 3: nothing new keeps the bound and the skip list.
    let mock = MockTransport::new().respond(page(vec![], None));
    let fourth = run_poll(&c, third.batch.cursor.as_deref(), &mock);
    assert!(fourth.batch.events.is_empty());
    assert_eq!(cursor_of(&fourth), cur);
}

#[test]
fn the_lower_bound_never_moves_back() {
    let c = cfg(
        json!({"base_url": "https://th.test/v1", "overlap_secs": 3600,
        "initial_created_after": "2025-02-10T00:00:00Z"}),
    );
    let mock = MockTransport::new().respond(page(vec![alert("a1", "2025-02-10T00:10:00Z")], None));
    let out = run_poll(&c, None, &mock);
    let cur = cursor_of(&out);
    assert_eq!(cur.created_after.as_deref(), Some("2025-02-10T00:00:00Z"));
    assert_eq!(cur.skip, ["a1"]);
}

#[test]
fn replayed_alerts_outside_the_overlap_are_emitted_again() {
    // A misbehaving upstream that ignores `created_after` hands back alerts from long
    // before the window: the plugin emits them (dedup is the pipeline's job) and
    // only suppresses what it can prove it already sent within the overlap.
    let c = base_cfg();
    let replay = || {
        page(
            vec![
                alert("r1", "2025-02-10T00:00:00Z"),
                alert("r2", "2025-02-10T00:10:00Z"),
            ],
            None,
        )
    };
    let mock = MockTransport::new().respond(replay()).respond(replay());
    let first = run_poll(&c, None, &mock);
    let second = run_poll(&c, first.batch.cursor.as_deref(), &mock);
    assert_eq!(ids(&first), ["r1", "r2"]);
    assert_eq!(ids(&second), ["r1"]);
    assert_eq!(second.repeated, 1);
}

#[test]
fn tracked_ids_are_bounded() {
    let c = base_cfg();
    let many: Vec<Value> = (0..150)
        .map(|i| alert(&format!("same-{i:03}"), "2025-02-10T00:00:00Z"))
        .collect();
    let mock = MockTransport::new().respond(page(many, None));
    let out = run_poll(&c, None, &mock);
    assert_eq!(out.batch.events.len(), 150);
    assert_eq!(cursor_of(&out).skip.len(), engine::MAX_TRACKED);
    assert!(out.warnings.mentions("emitted again"));
    assert!(
        out.batch
            .cursor
            .as_deref()
            .is_some_and(|c| c.len() < 64 * 1024)
    );
}

#[test]
fn mid_window_cursor_keeps_the_overlap_state() {
    let c = base_cfg();
    let saved = Cursor {
        created_after: Some("2025-02-10T00:00:00Z".into()),
        page: Some("p9".into()),
        skip: vec!["old".into()],
        newest: Some("2025-02-10T00:30:00Z".into()),
        recent: vec![Seen {
            id: "mid".into(),
            at: "2025-02-10T00:30:00Z".into(),
        }],
    };
    let mock = MockTransport::new().respond(page(
        vec![
            alert("old", "2025-02-10T00:00:01Z"),
            alert("mid", "2025-02-10T00:30:00Z"),
            alert("new", "2025-02-10T00:30:00.200Z"),
        ],
        None,
    ));
    let out = run_poll(&c, Some(&text_of(&saved)), &mock);
    assert_eq!(ids(&out), ["new"]);
    assert_eq!(out.repeated, 2);
    let q = query_of(&mock, 0);
    assert_eq!(param(&q, "cursor").as_deref(), Some("p9"));
    assert_eq!(
        param(&q, "created_after").as_deref(),
        Some("2025-02-10T00:00:00Z")
    );
    let cur = cursor_of(&out);
    assert_eq!(
        cur.created_after.as_deref(),
        Some("2025-02-10T00:29:59.200Z")
    );
    assert_eq!(cur.skip, ["mid", "new"]);
}

#[test]
fn unreadable_cursor_starts_from_the_configuration() {
    let c = cfg(
        json!({"base_url": "https://th.test/v1", "initial_created_after": "2025-01-01T00:00:00Z"}),
    );
    for bad in ["not json", r#"{"created_after": "someday"}"#] {
        let mock = MockTransport::new().respond(page(vec![], None));
        let out = run_poll(&c, Some(bad), &mock);
        assert!(
            out.warnings.mentions("starting from the configuration"),
            "{bad}"
        );
        assert_eq!(
            param(&query_of(&mock, 0), "created_after").as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
    }
}

#[test]
fn window_ends_on_has_more_false_a_repeated_token_or_an_empty_page() {
    let c = base_cfg();
    let body =
        json!({"data": [alert("a", NOW)], "pagination": {"has_more": false, "next_cursor": "x"}});
    let mock = MockTransport::new().respond(Response::new(200, URL, body.to_string()));
    let out = run_poll(&c, None, &mock);
    assert!(!out.batch.more);
    assert_eq!(cursor_of(&out).page, None);

    let saved = text_of(&Cursor {
        page: Some("same".into()),
        ..Cursor::default()
    });
    let mock = MockTransport::new().respond(page(vec![alert("b", NOW)], Some("same")));
    let out = run_poll(&c, Some(&saved), &mock);
    assert!(!out.batch.more);
    assert!(out.warnings.mentions("same page cursor"));

    let mock = MockTransport::new().respond(page(vec![], Some("more")));
    let out = run_poll(&c, None, &mock);
    assert!(!out.batch.more);

    // Top-level `next_cursor` (no `pagination` object) is understood too.
    let body = json!({"data": [alert("a", NOW)], "next_cursor": "n2"});
    let mock = MockTransport::new().respond(Response::new(200, URL, body.to_string()));
    let out = run_poll(&c, None, &mock);
    assert!(out.batch.more);
    assert_eq!(cursor_of(&out).page.as_deref(), Some("n2"));
}

#[test]
fn spent_rate_budget_pauses_the_window() {
    let c = base_cfg();
    let mock = MockTransport::new().respond(
        page(vec![alert("a", NOW)], Some("p2"))
            .with_header("X-RateLimit-Limit", "60")
            .with_header("X-RateLimit-Remaining", "0")
            .with_header("X-RateLimit-Reset", "1740830430"),
    );
    let out = run_poll(&c, None, &mock);
    assert!(!out.batch.more, "no more requests now");
    assert_eq!(cursor_of(&out).page.as_deref(), Some("p2"), "position kept");
    assert_eq!(out.notes.len(), 1);
    assert!(
        out.notes[0].contains("0 requests left of 60, window resets in 30 s"),
        "{:?}",
        out.notes
    );
}

#[test]
fn rate_limited_with_retry_after_or_reset() {
    let c = base_cfg();
    let mock = MockTransport::new().respond(
        Response::new(
            429,
            URL,
            r#"{"error":"rate_limited","message":"Too many requests"}"#,
        )
        .with_header("Retry-After", "17")
        .with_header("X-RateLimit-Reset", "1740830430"),
    );
    assert_eq!(
        poll_err(&c, None, &mock),
        Error::rate_limited(Some(17), "Too many requests")
    );
    // No Retry-After: the reset time (Unix seconds) against the clock, or a delay.
    for (reset, expected) in [("1740830430", 30), ("45", 45)] {
        let mock = MockTransport::new()
            .respond(Response::new(429, URL, "").with_header("X-RateLimit-Reset", reset));
        assert!(matches!(
            poll_err(&c, None, &mock),
            Error::RateLimited { retry_after_secs: Some(s), .. } if s == expected
        ));
    }
}

#[test]
fn auth_failures_are_auth_errors() {
    let c = base_cfg();
    let mock = MockTransport::new().respond(
        Response::new(401, URL, r#"{"error":"unauthorized","message":"The access token expired"}"#)
            .with_header(
                "WWW-Authenticate",
                r#"Bearer realm="ThreatHawk", error="invalid_token", error_description="The access token expired""#,
            ),
    );
    assert_eq!(
        poll_err(&c, None, &mock),
        Error::auth("HTTP 401: The access token expired (invalid_token)")
    );
    let mock = MockTransport::new().respond(Response::new(
        403,
        URL,
        r#"{"message":"insufficient scope"}"#,
    ));
    assert!(matches!(poll_err(&c, None, &mock), Error::Auth(m) if m.contains("403")));
    let mock = MockTransport::new().fail(HttpError::Credential("invalid_client".into()));
    assert!(matches!(poll_err(&c, None, &mock), Error::Auth(m) if m.contains("invalid_client")));
    let mock =
        MockTransport::new().respond(Response::new(503, URL, r#"{"message":"maintenance"}"#));
    assert_eq!(
        poll_err(&c, None, &mock),
        Error::upstream(Some(503), "maintenance")
    );
}

#[test]
fn validation_errors_carry_the_fields() {
    let c = cfg(
        json!({"base_url": "https://th.test/v1", "status": "pending",
        "initial_created_after": "2025-01-01T00:00:00Z"}),
    );
    let r422 =
        |body: Value| MockTransport::new().respond(Response::new(422, URL, body.to_string()));

    // Fields that come from the configuration: config errors at those keys.
    let e = poll_err(
        &c,
        None,
        &r422(json!({"error": "unprocessable_entity",
        "message": "status: must be one of open, investigating, resolved, closed", "fields": ["status"]})),
    );
    let Error::Config(list) = e else {
        panic!("expected config error, got {e:?}")
    };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].path, "/status");
    assert!(list[0].message.contains("HTTP 422"));
    assert!(list[0].message.contains("must be one of open"));

    let body = json!({"message": "invalid query", "fields": [
        {"field": "limit", "message": "must be at most 500"},
        {"name": "created_after", "reason": "not ISO 8601"}]});
    let mock = MockTransport::new().respond(Response::new(400, URL, body.to_string()));
    let Error::Config(list) = poll_err(&c, None, &mock) else {
        panic!()
    };
    let got: Vec<(&str, bool)> = list
        .iter()
        .map(|f| {
            (
                f.path.as_str(),
                f.message.contains("must be at most 500") || f.message.contains("not ISO 8601"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("/page_size", true), ("/initial_created_after", true)]
    );

    // `created_after` from a saved cursor is not the configuration's fault.
    let saved = text_of(&Cursor {
        created_after: Some("2025-02-01T00:00:00Z".into()),
        ..Cursor::default()
    });
    let mock = r422(json!({"message": "created_after too old", "fields": ["created_after"]}));
    assert_eq!(
        poll_err(&c, Some(&saved), &mock),
        Error::upstream(Some(422), "created_after too old (fields: created_after)")
    );
    let mock = r422(json!({"message": "bad", "fields": ["status", "tenant"]}));
    assert_eq!(
        poll_err(&c, None, &mock),
        Error::upstream(Some(422), "bad (fields: status, tenant)")
    );
    let mock = MockTransport::new().respond(Response::new(400, URL, r#"{"message":"malformed"}"#));
    assert_eq!(
        poll_err(&c, None, &mock),
        Error::upstream(Some(400), "malformed")
    );
    // `fields` as an object of messages.
    let mock = r422(json!({"message": "bad", "fields": {"severity": "unknown level"}}));
    assert!(
        matches!(poll_err(&c, None, &mock), Error::Config(l) if l[0].path == "/severity" && l[0].message.contains("unknown level"))
    );
}

#[test]
fn rejected_page_cursor_restarts_the_window() {
    let c = base_cfg();
    let saved = Cursor {
        created_after: Some("2025-02-10T00:00:00Z".into()),
        page: Some("stale".into()),
        skip: vec!["s".into()],
        newest: Some("2025-02-10T00:30:00Z".into()),
        recent: vec![Seen {
            id: "m".into(),
            at: "2025-02-10T00:30:00Z".into(),
        }],
    };
    let mock = MockTransport::new().respond(Response::new(
        422,
        URL,
        r#"{"message":"cursor expired","fields":["cursor"]}"#,
    ));
    let out = run_poll(&c, Some(&text_of(&saved)), &mock);
    assert!(out.batch.events.is_empty());
    assert!(out.batch.more);
    assert!(out.warnings.mentions("cursor expired"));
    let cur = cursor_of(&out);
    assert_eq!(
        cur,
        Cursor {
            page: None,
            ..saved.clone()
        }
    );
    // The restarted window still recognises what it had already emitted.
    let mock = MockTransport::new().respond(page(
        vec![
            alert("m", "2025-02-10T00:30:00Z"),
            alert("n", "2025-02-10T00:30:00Z"),
        ],
        None,
    ));
    let next = run_poll(&c, out.batch.cursor.as_deref(), &mock);
    assert_eq!(ids(&next), ["n"]);
    assert_eq!(param(&query_of(&mock, 0), "cursor"), None);
    // Without a page cursor in the request, `cursor` in `fields` is just an error.
    let fresh = Cursor {
        page: None,
        ..saved
    };
    let mock = MockTransport::new().respond(Response::new(
        400,
        URL,
        r#"{"message":"bad cursor","fields":["cursor"]}"#,
    ));
    assert!(matches!(
        poll_err(&c, Some(&text_of(&fresh)), &mock),
        Error::Upstream {
            status: Some(400),
            ..
        }
    ));
}

#[test]
fn bad_bodies_are_parse_errors() {
    let c = base_cfg();
    for (body, why) in [
        ("<html>", "not valid JSON"),
        ("[]", "not an object"),
        (r#"{"alerts": []}"#, "no `data` array"),
        (r#"{"data": {}}"#, "not an array"),
        (
            r#"{"data": [], "pagination": {"next_cursor": 5}}"#,
            "not a string",
        ),
    ] {
        let mock = MockTransport::new().respond(Response::new(200, URL, body));
        match poll_err(&c, None, &mock) {
            Error::Parse(m) => assert!(m.contains(why), "{body}: {m}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    // Bad records are skipped, the rest of the page comes through.
    let mock = MockTransport::new().respond(page(vec![json!({"x": 1}), alert("ok", NOW)], None));
    let out = run_poll(&c, None, &mock);
    assert_eq!(ids(&out), ["ok"]);
    assert!(out.warnings.mentions("no `id`"));
}

// --------------------------------------------------------------------------
// Connection test

#[test]
fn connection_test_asks_for_one_alert() {
    let c = cfg(json!({"base_url": "https://th.test/v1", "severity": "high", "page_size": 50}));
    let mock = MockTransport::new().respond(
        page(vec![full_alert()], Some("n"))
            .with_header("X-RateLimit-Limit", "10000")
            .with_header("X-RateLimit-Remaining", "9999"),
    );
    let report = engine::test_connection(&c, &mock, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.ok(), "{report:?}");
    let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["auth", "sample", "rate-limit"]);
    assert_eq!(report.stages[0].latency_ms, Some(5));
    assert!(report.stages[1].message.contains("1 alert(s)"));
    assert!(
        report.stages[2]
            .message
            .contains("9999 requests left of 10000")
    );
    assert_eq!(report.sample.len(), 1);
    let q = query_of(&mock, 0);
    assert_eq!(param(&q, "limit").as_deref(), Some("1"));
    assert_eq!(param(&q, "severity").as_deref(), Some("high"));
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(mock.requests()[0].credential.as_deref(), Some("api"));
}

#[test]
fn connection_test_reports_failed_stages() {
    let c = base_cfg();
    let run = |mock: MockTransport| {
        engine::test_connection(&c, &mock, &clock()).unwrap_or_else(|e| panic!("{e}"))
    };
    let report = run(MockTransport::new().fail(HttpError::Credential(
        "token endpoint refused the request: invalid_client".into(),
    )));
    assert!(!report.stages[0].ok);
    assert!(report.stages[0].message.contains("invalid_client"));
    assert!(!report.stages[1].ok && report.stages[1].message.starts_with("not run"));

    let report = run(MockTransport::new().respond(Response::new(
        403,
        URL,
        r#"{"message":"insufficient scope"}"#,
    )));
    assert!(!report.stages[0].ok);
    assert!(report.stages[0].message.contains("HTTP 403"));

    let report = run(MockTransport::new().fail(HttpError::Transport("connection refused".into())));
    assert!(!report.stages[0].ok && report.stages[0].message.contains("connection refused"));

    let report = run(MockTransport::new().respond(Response::new(
        422,
        URL,
        r#"{"message":"status: unknown","fields":["status"]}"#,
    )));
    assert!(report.stages[0].ok, "the token was accepted");
    assert!(!report.stages[1].ok);
    assert!(
        report.stages[1].message.contains("/status"),
        "{}",
        report.stages[1].message
    );

    let report = run(MockTransport::new().respond(Response::new(200, URL, "{}")));
    assert!(!report.stages[1].ok);

    let mock =
        MockTransport::new().respond(Response::new(429, URL, "").with_header("Retry-After", "3"));
    assert!(matches!(
        engine::test_connection(&c, &mock, &clock()),
        Err(Error::RateLimited {
            retry_after_secs: Some(3),
            ..
        })
    ));
}
