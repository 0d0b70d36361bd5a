//! Native tests of the connector logic: scripted QRadar responses through
//! `MockTransport`, time through `ManualClock`.

use portcullis_sdk::http::{HttpError, Request, Response};
use portcullis_sdk::testing::{self, ManualClock, MockTransport};
use serde_json::json;

use super::*;
use crate::api::{ContentRange, Lower};
use crate::config::SeverityBasis;
use crate::engine::{Cursor, PollOutcome};
use crate::mapping::Lookups;

const BASE: &str = "https://qradar.example.com";
/// 2024-06-01T12:00:00Z
const NOW_MS: u64 = 1_717_243_200_000;

fn cfg(doc: Value) -> Config {
    Config::parse(&doc).unwrap_or_else(|e| panic!("config: {e}"))
}

fn base_cfg() -> Config {
    cfg(json!({
        "base_url": BASE,
        "page_size": 2,
        "settle_seconds": 0,
        "resolve_addresses": false,
        "resolve_rule_names": false
    }))
}

fn clock() -> ManualClock {
    ManualClock::new(NOW_MS, 5)
}

fn offense(id: u64, t: i64) -> Value {
    json!({
        "id": id,
        "description": format!("Offense {id}\n preceded by something\n"),
        "offense_type": 0,
        "offense_source": "10.0.0.1",
        "magnitude": 5,
        "severity": 8,
        "credibility": 3,
        "relevance": 4,
        "status": "OPEN",
        "categories": ["Misc Exploit"],
        "rules": [{"id": 100, "type": "CRE_RULE"}],
        "source_address_ids": [1],
        "local_destination_address_ids": [7],
        "start_time": t - 60_000,
        "last_updated_time": t,
        "event_count": 3,
        "flow_count": 0
    })
}

fn page(records: &[Value], content_range: &str) -> Response {
    Response::new(
        200,
        format!("{BASE}/api/siem/offenses"),
        Value::Array(records.to_vec()).to_string(),
    )
    .with_header("Content-Type", "application/json")
    .with_header("Content-Range", content_range)
}

fn qradar_error(status: u16, code: i64, http_message: &str, message: &str) -> Response {
    Response::new(
        status,
        format!("{BASE}/api/siem/offenses"),
        json!({
            "http_response": {"code": status, "message": http_message},
            "code": code,
            "description": "",
            "details": {},
            "message": message
        })
        .to_string(),
    )
}

fn run_poll(c: &Config, cursor: Option<&str>, mock: &MockTransport) -> PollOutcome {
    engine::poll(c, cursor, mock, &clock()).unwrap_or_else(|e| panic!("poll: {e}"))
}

fn cursor_of(out: &PollOutcome) -> Cursor {
    testing::batch_cursor(&out.batch)
}

fn ids(out: &PollOutcome) -> Vec<&str> {
    testing::event_ids(&out.batch)
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

// ---------------------------------------------------------------------------
// Manifest and configuration

#[test]
fn manifest_declares_siem_any_https_host_and_sec_or_oauth_slot() {
    let m = manifest();
    assert_eq!(m.id, "qradar-siem");
    assert_eq!(m.category, Category::Siem);
    assert!(m.hosts.iter().any(|h| h == "https://*:*"));
    assert!(!m.accepts_push);
    assert_eq!(m.credential_slots.len(), 1);
    let slot = &m.credential_slots[0];
    assert_eq!(slot.name, "api");
    assert!(slot.required);
    assert_eq!(
        slot.kinds,
        [
            CredentialKind::ApiKey,
            CredentialKind::Oauth2ClientCredentials
        ]
    );
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.config_schema, schema);
    let mut props: Vec<&str> = schema["properties"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    props.sort_unstable();
    let mut expected = vec![
        "base_url",
        "insecure_http",
        "api_version",
        "page_size",
        "start_time",
        "filter",
        "settle_seconds",
        "severity_from",
        "resolve_addresses",
        "resolve_rule_names",
    ];
    expected.sort_unstable();
    assert_eq!(props, expected);
    assert_eq!(schema["required"], json!(["base_url"]));
}

#[test]
fn config_defaults() {
    let c = cfg(json!({"base_url": "https://qradar.example.com/"}));
    assert_eq!(c.api_version, "16.0");
    assert_eq!(c.page_size, 50);
    assert_eq!(c.settle_ms, 60_000);
    assert_eq!(c.start_time_ms, None);
    assert_eq!(c.filter, None);
    assert_eq!(c.severity_basis, SeverityBasis::Magnitude);
    assert!(c.resolve_addresses && c.resolve_rule_names);
    assert_eq!(
        c.endpoint("/api/siem/offenses"),
        "https://qradar.example.com/api/siem/offenses"
    );
    // A gateway path prefix is kept.
    let g = cfg(
        json!({"base_url": "https://gw.example.com/qradar", "start_time": 1_700_000_000_000_i64}),
    );
    assert_eq!(
        g.endpoint("/api/siem/offenses"),
        "https://gw.example.com/qradar/api/siem/offenses"
    );
    assert_eq!(g.start_time_ms, Some(1_700_000_000_000));
    let t = cfg(
        json!({"base_url": BASE, "start_time": "2024-01-01T01:00:00+01:00", "severity_from": "severity"}),
    );
    assert_eq!(t.start_time_ms, Some(1_704_067_200_000));
    assert_eq!(t.severity_basis, SeverityBasis::Severity);
}

fn config_errors(doc: Value) -> Vec<(String, String)> {
    match Config::parse(&doc) {
        Err(Error::Config(list)) => list.into_iter().map(|e| (e.path, e.message)).collect(),
        other => panic!("expected config errors, got {other:?}"),
    }
}

#[test]
fn config_reports_every_problem_with_its_path() {
    let errors = config_errors(json!({
        "base_url": "http://qradar.example.com",
        "api_version": "latest",
        "page_size": 0,
        "start_time": "yesterday",
        "filter": "status = OPEN)",
        "settle_seconds": -1,
        "severity_from": "credibility",
        "resolve_addresses": "yes",
        "bogus": 1
    }));
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    for p in [
        "/base_url",
        "/api_version",
        "/page_size",
        "/start_time",
        "/filter",
        "/settle_seconds",
        "/severity_from",
        "/resolve_addresses",
        "/bogus",
    ] {
        assert!(paths.contains(&p), "{p} missing from {errors:?}");
    }
    let base = errors
        .iter()
        .find(|(p, _)| p == "/base_url")
        .map(|(_, m)| m.as_str());
    assert!(base.is_some_and(|m| m.contains("https")), "{base:?}");
    let filter = errors
        .iter()
        .find(|(p, _)| p == "/filter")
        .map(|(_, m)| m.as_str());
    assert_eq!(filter, Some("unmatched closing parenthesis at position 13"));
}

#[test]
fn config_base_url_rules() {
    let missing = config_errors(json!({}));
    assert_eq!(missing[0].0, "/base_url");
    assert!(missing[0].1.contains("on-premises"));
    for (url, why) in [
        ("ftp://q.example.com", "https"),
        ("https://q.example.com/api", "/api"),
        ("https://q.example.com/?x=1", "query"),
        ("https://admin:pw@q.example.com", "user information"),
        ("not a url", "valid URL"),
    ] {
        let e = config_errors(json!({"base_url": url}));
        assert_eq!(e[0].0, "/base_url", "{url}");
        assert!(e[0].1.contains(why), "{url}: {}", e[0].1);
    }
    // http only with insecure_http.
    let ok = cfg(json!({"base_url": "http://127.0.0.1:8080", "insecure_http": true}));
    assert_eq!(ok.base_url.as_str(), "http://127.0.0.1:8080/");
    let e = config_errors(json!({"base_url": BASE, "filter": "status = 'OPEN"}));
    assert_eq!(
        e,
        [(
            "/filter".to_string(),
            "unterminated quoted string at position 9".to_string()
        )]
    );
    let e = config_errors(json!({"base_url": BASE, "filter": "(a = 1"}));
    assert_eq!(e[0].1, "unclosed parenthesis at position 0");
    let e = config_errors(json!([1]));
    assert_eq!(e[0].0, "");
}

// ---------------------------------------------------------------------------
// Protocol helpers

#[test]
fn content_range_forms() {
    assert_eq!(
        api::parse_content_range("items 0-49/120"),
        Some(ContentRange {
            range: Some((0, 49)),
            total: 120
        })
    );
    assert_eq!(
        api::parse_content_range("items */3"),
        Some(ContentRange {
            range: None,
            total: 3
        })
    );
    assert_eq!(
        api::parse_content_range(" items  0-11/12 "),
        Some(ContentRange {
            range: Some((0, 11)),
            total: 12
        })
    );
    for bad in ["bytes 0-1/2", "items 5-2/9", "items 0-1", "items a-b/3", ""] {
        assert_eq!(api::parse_content_range(bad), None, "{bad}");
    }
    assert_eq!(api::range_header(50, 99), "items=50-99");
}

#[test]
fn window_filters() {
    assert_eq!(
        api::window_filter(None, &Lower::None, 99),
        "last_updated_time <= 99"
    );
    assert_eq!(
        api::window_filter(Some("status = OPEN"), &Lower::After(10), 99),
        "(status = OPEN) and last_updated_time > 10 and last_updated_time <= 99"
    );
    assert_eq!(
        api::window_filter(
            None,
            &Lower::From {
                t: 10,
                exclude: vec![4, 5]
            },
            99
        ),
        "last_updated_time >= 10 and id not in (4,5) and last_updated_time <= 99"
    );
    assert_eq!(api::ids_filter(&[1, 2, 3]), "id in (1,2,3)");
}

#[test]
fn qradar_errors_map_to_typed_errors_with_qradar_words() {
    let unauthorized = qradar_error(
        401,
        18,
        "You are unauthorized to access the requested resource.",
        "No SEC header present in request.",
    );
    assert_eq!(
        api::check_status(unauthorized).err(),
        Some(Error::auth(
            "HTTP 401: No SEC header present in request. — You are unauthorized to access the requested resource. (QRadar error code 18)"
        ))
    );
    let forbidden = qradar_error(
        403,
        26,
        "Your account is not authorized to access the requested resource",
        "User has insufficient capabilities to access this endpoint resource",
    );
    assert!(
        matches!(api::check_status(forbidden), Err(Error::Auth(m)) if m.starts_with("HTTP 403: User has insufficient"))
    );
    let bad_filter = Response::new(
        422,
        "u",
        json!({
            "http_response": {"code": 422, "message": "The request was well-formed but was unable to be followed due to semantic errors"},
            "code": 1010,
            "description": "The filter parameter is not valid.",
            "details": {},
            "message": "Unknown field \"nope\" in filter"
        })
        .to_string(),
    );
    match api::check_status(bad_filter) {
        Err(Error::Upstream {
            status: Some(422),
            message,
        }) => {
            assert!(
                message.starts_with(
                    "Unknown field \"nope\" in filter — The filter parameter is not valid."
                ),
                "{message}"
            );
            assert!(message.ends_with("(QRadar error code 1010)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let conflict = qradar_error(
        409,
        1008,
        "conflict",
        "Request cannot be completed due to the state of the offense.",
    );
    assert!(matches!(
        api::check_status(conflict),
        Err(Error::Upstream {
            status: Some(409),
            ..
        })
    ));
    let busy = Response::new(429, "u", "slow down").with_header("Retry-After", "12");
    assert_eq!(
        api::check_status(busy).err(),
        Some(Error::rate_limited(Some(12), "slow down"))
    );
    let down = qradar_error(503, 0, "The server is currently unavailable.", "");
    assert_eq!(
        api::check_status(down).err(),
        Some(Error::upstream(
            Some(503),
            "The server is currently unavailable. (QRadar error code 0)"
        ))
    );
    let html = Response::new(502, "u", "<html>bad gateway</html>");
    assert!(
        matches!(api::check_status(html), Err(Error::Upstream { status: Some(502), message }) if message.contains("bad gateway"))
    );
    assert_eq!(api::error_message(&Response::new(500, "u", "")), "HTTP 500");
}

// ---------------------------------------------------------------------------
// Mapping

#[test]
fn severity_bands() {
    let s = |v: Value| mapping::ocsf_severity(Some(&v));
    assert_eq!(s(json!(0)), Severity::Informational);
    for v in 1..=3 {
        assert_eq!(s(json!(v)), Severity::Low);
    }
    for v in 4..=6 {
        assert_eq!(s(json!(v)), Severity::Medium);
    }
    for v in 7..=8 {
        assert_eq!(s(json!(v)), Severity::High);
    }
    for v in 9..=10 {
        assert_eq!(s(json!(v)), Severity::Critical);
    }
    assert_eq!(s(json!(11)), Severity::Unknown);
    assert_eq!(s(json!(-1)), Severity::Unknown);
    assert_eq!(s(json!("high")), Severity::Unknown);
    assert_eq!(mapping::ocsf_severity(None), Severity::Unknown);
}

#[test]
fn offense_becomes_alert_event() {
    let mut o = offense(42, 1_717_000_000_123);
    o["log_sources"] =
        json!([{"id": 65, "name": "Firewall @ fw1", "type_id": 4, "type_name": "Cisco ASA"}]);
    o["rules"] =
        json!([{"id": 100, "type": "CRE_RULE"}, {"id": 101, "type": "BUILDING_BLOCK_RULE"}]);
    o["source_address_ids"] = json!([1, 2]);
    o["unknown_new_field"] = json!({"x": 1});
    let lookups = Lookups {
        source_ips: [(1, "10.0.0.1".to_string()), (2, "198.51.100.7".to_string())].into(),
        destination_ips: [(7, "192.168.1.20".to_string())].into(),
        rule_names: [(100, "Excessive Firewall Denies".to_string())].into(),
    };
    let e = mapping::map_offense(
        &o,
        42,
        1_717_000_000_123,
        SeverityBasis::Magnitude,
        &lookups,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.id, "42:1717000000123");
    assert_eq!(e.time, "2024-05-29T16:26:40.123Z");
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.severity, Severity::Medium, "magnitude 5");
    assert_eq!(e.title, "Offense 42 preceded by something");
    let obs: Vec<(ObservableKind, &str)> = e
        .observables
        .iter()
        .map(|o| (o.kind, o.value.as_str()))
        .collect();
    assert_eq!(
        obs,
        [
            (ObservableKind::Ip, "10.0.0.1"),
            (ObservableKind::Ip, "198.51.100.7"),
            (ObservableKind::Ip, "192.168.1.20"),
        ],
        "offense_source 10.0.0.1 is not repeated"
    );
    let a = &e.attributes;
    assert_eq!(a["offense_id"], json!(42));
    assert_eq!(a["offense_type"], json!(0));
    assert_eq!(a["offense_type_name"], json!("Source IP"));
    assert_eq!(a["source_ips"], json!(["10.0.0.1", "198.51.100.7"]));
    assert_eq!(a["destination_ips"], json!(["192.168.1.20"]));
    assert_eq!(a["categories"], json!(["Misc Exploit"]));
    assert_eq!(
        a["rules"],
        json!([{"id": 100, "type": "CRE_RULE", "name": "Excessive Firewall Denies"}, {"id": 101, "type": "BUILDING_BLOCK_RULE"}])
    );
    assert_eq!(a["rule_names"], json!(["Excessive Firewall Denies"]));
    assert_eq!(a["start_time"], json!("2024-05-29T16:25:40.123Z"));
    assert_eq!(a["last_updated_time"], json!("2024-05-29T16:26:40.123Z"));
    assert_eq!(a["log_source_names"], json!(["Firewall @ fw1"]));
    assert_eq!(a["severity_basis"], json!("magnitude"));
    assert_eq!(a["credibility"], json!(3));
    assert!(!a.contains_key("unknown_new_field"));
    // The raw offense is kept whole, unknown fields included.
    let raw: Value = serde_json::from_str(&e.raw).unwrap_or_default();
    assert_eq!(raw["unknown_new_field"], json!({"x": 1}));

    // Severity from `severity` instead; a username offense source; no description.
    let mut u = offense(43, 1_717_000_000_000);
    u["offense_type"] = json!(3);
    u["offense_source"] = json!("alice");
    u["description"] = json!("  ");
    let e = mapping::map_offense(
        &u,
        43,
        1_717_000_000_000,
        SeverityBasis::Severity,
        &Lookups::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.severity, Severity::High, "severity 8");
    assert_eq!(e.title, "QRadar offense 43");
    assert_eq!(
        e.observables,
        [Observable::new(ObservableKind::User, "alice")]
    );
    assert_eq!(e.attributes["offense_type_name"], json!("Username"));
    assert!(!e.attributes.contains_key("source_ips"));
}

#[test]
fn offense_keys() {
    assert_eq!(mapping::offense_key(&offense(1, 5)), Ok((1, 5)));
    assert!(mapping::offense_key(&json!({"id": "1", "last_updated_time": 5})).is_err());
    assert!(mapping::offense_key(&json!({"id": -1, "last_updated_time": 5})).is_err());
    assert!(mapping::offense_key(&json!({"id": 1})).is_err());
    assert!(mapping::offense_key(&json!({"id": 1, "last_updated_time": "x"})).is_err());
    assert!(mapping::offense_key(&json!({"last_updated_time": 5})).is_err());
}

// ---------------------------------------------------------------------------
// Polling

#[test]
fn pages_a_window_with_range_and_content_range() {
    let c = base_cfg();
    let upper = NOW_MS as i64;
    let all: Vec<Value> = (1..=5).map(|i| offense(i, 1_000 + i as i64)).collect();

    // Page 1: items 0-1 of 5.
    let mock = MockTransport::new().respond(page(&all[0..2], "items 0-1/5"));
    let p1 = run_poll(&c, None, &mock);
    assert_eq!(ids(&p1), ["1:1001", "2:1002"]);
    assert!(p1.batch.more);
    let req = &mock.requests()[0];
    assert_eq!(req.url, format!("{BASE}/api/siem/offenses"));
    assert_eq!(req.headers.get("range"), Some("items=0-1"));
    assert_eq!(req.headers.get("version"), Some("16.0"));
    assert_eq!(req.headers.get("accept"), Some("application/json"));
    assert_eq!(req.credential.as_deref(), Some("api"));
    assert!(
        !req.headers.contains("sec"),
        "the plugin never sets SEC itself"
    );
    assert_eq!(
        query(req, "sort").as_deref(),
        Some("+last_updated_time,+id")
    );
    assert_eq!(
        query(req, "filter"),
        Some(format!("last_updated_time <= {upper}"))
    );
    assert!(query(req, "fields").is_some_and(|f| f.starts_with("id,description,")));
    let c1 = cursor_of(&p1);
    assert_eq!(c1.since, None);
    let win = c1.window.clone().unwrap_or_else(|| panic!("window"));
    assert_eq!((win.upper, win.offset), (upper, 2));

    // Page 2: one item of overlap (offense 2 at index 1), then items 2-3.
    let mock = MockTransport::new().respond(page(&all[1..4], "items 1-3/5"));
    let p2 = run_poll(&c, p1.batch.cursor.as_deref(), &mock);
    assert_eq!(ids(&p2), ["3:1003", "4:1004"]);
    assert!(p2.batch.more);
    assert_eq!(mock.requests()[0].headers.get("range"), Some("items=1-3"));
    assert_eq!(
        query(&mock.requests()[0], "filter"),
        Some(format!("last_updated_time <= {upper}")),
        "the window's bounds do not move while paging"
    );

    // Page 3: the last offense; the window closes at its upper bound.
    let mock = MockTransport::new().respond(page(&all[3..5], "items 3-4/5"));
    let p3 = run_poll(&c, p2.batch.cursor.as_deref(), &mock);
    assert_eq!(ids(&p3), ["5:1005"]);
    assert!(!p3.batch.more);
    assert_eq!(mock.requests()[0].headers.get("range"), Some("items=3-5"));
    let c3 = cursor_of(&p3);
    assert_eq!(
        c3,
        Cursor {
            since: Some(upper),
            window: None
        }
    );

    // The next window starts strictly after the previous upper bound.
    let later = ManualClock::new(NOW_MS + 120_000, 5);
    let mock = MockTransport::new().respond(page(&[], "items */0"));
    let p4 = engine::poll(&c, p3.batch.cursor.as_deref(), &mock, &later)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(p4.batch.events.is_empty() && !p4.batch.more);
    assert_eq!(
        query(&mock.requests()[0], "filter"),
        Some(format!(
            "last_updated_time > {upper} and last_updated_time <= {}",
            upper + 120_000
        ))
    );
    assert_eq!(cursor_of(&p4).since, Some(upper + 120_000));
}

#[test]
fn a_shift_under_the_window_re_bases_it_without_skipping() {
    let c = base_cfg();
    let upper = NOW_MS as i64;
    // Offenses 1..5 at 1001..1005; 3 and 4 share a millisecond.
    let o = |id: u64, t: i64| offense(id, t);
    let mock = MockTransport::new().respond(page(&[o(1, 1001), o(2, 1003)], "items 0-1/5"));
    let p1 = run_poll(&c, None, &mock);
    // Offense 1 was updated meanwhile (it left the window): position 1 now holds
    // offense 3, so the overlap check fails and the window is re-read from t=1003
    // inclusive, leaving out offense 2 (already emitted at 1003).
    let mock = MockTransport::new()
        .respond(page(&[o(3, 1003), o(4, 1003), o(5, 1005)], "items 1-3/4"))
        .respond(page(&[o(3, 1003), o(4, 1003)], "items 0-1/3"));
    let p2 = run_poll(&c, p1.batch.cursor.as_deref(), &mock);
    assert_eq!(ids(&p2), ["3:1003", "4:1003"]);
    assert!(p2.batch.more);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].headers.get("range"), Some("items=0-1"));
    assert_eq!(
        query(&reqs[1], "filter"),
        Some(format!(
            "last_updated_time >= 1003 and id not in (2) and last_updated_time <= {upper}"
        ))
    );
    assert!(
        p2.warnings
            .entries()
            .iter()
            .any(|(m, _)| m.contains("re-reading"))
    );
    let win = cursor_of(&p2).window.unwrap_or_else(|| panic!("window"));
    assert_eq!(
        win.floor,
        Some(engine::Floor {
            t: 1003,
            exclude: vec![2]
        })
    );
    assert_eq!(win.newest_ids, [2, 3, 4]);
    // The next page pages on from the re-based position with the same filter, so
    // positions stay comparable.
    let mock = MockTransport::new().respond(page(&[o(4, 1003), o(5, 1005)], "items 1-2/3"));
    let p3 = run_poll(&c, p2.batch.cursor.as_deref(), &mock);
    assert_eq!(ids(&p3), ["5:1005"]);
    assert!(!p3.batch.more);
    assert!(p3.warnings.is_empty(), "{:?}", p3.warnings);
    assert_eq!(mock.requests()[0].headers.get("range"), Some("items=1-3"));
    assert_eq!(
        query(&mock.requests()[0], "filter"),
        query(&reqs[1], "filter")
    );
    // A later re-base excludes every id emitted at the newest time.
    let shifted = MockTransport::new()
        .respond(page(&[o(5, 1005)], "items 1-1/2"))
        .respond(page(&[], "items */0"));
    let _ = run_poll(&c, p2.batch.cursor.as_deref(), &shifted);
    assert_eq!(
        query(&shifted.requests()[1], "filter"),
        Some(format!(
            "last_updated_time >= 1003 and id not in (2,3,4) and last_updated_time <= {upper}"
        ))
    );
}

#[test]
fn start_time_settle_and_nothing_new() {
    let c = cfg(json!({
        "base_url": BASE,
        "start_time": "2024-06-01T11:00:00Z",
        "settle_seconds": 90,
        "filter": "status = OPEN",
        "resolve_addresses": false,
        "resolve_rule_names": false
    }));
    let mock = MockTransport::new().respond(page(&[], "items */0"));
    let out = run_poll(&c, None, &mock);
    let upper = NOW_MS as i64 - 90_000;
    assert_eq!(
        query(&mock.requests()[0], "filter"),
        Some(format!(
            "(status = OPEN) and last_updated_time > 1717239600000 and last_updated_time <= {upper}"
        ))
    );
    assert_eq!(mock.requests()[0].headers.get("range"), Some("items=0-49"));
    assert_eq!(cursor_of(&out).since, Some(upper));
    // Polled again at once: nothing can have settled, so no request at all.
    let mock = MockTransport::new();
    let again = run_poll(&c, out.batch.cursor.as_deref(), &mock);
    assert!(mock.requests().is_empty());
    assert!(!again.batch.more);
    assert_eq!(again.batch.cursor, out.batch.cursor);
}

#[test]
fn unreadable_cursor_and_bad_records_are_reported_not_fatal() {
    let c = base_cfg();
    let bad = json!({"id": "x", "last_updated_time": 1});
    let mock = MockTransport::new().respond(page(&[bad, offense(2, 1002)], "items 0-1/2"));
    let out = run_poll(&c, Some("{not json"), &mock);
    assert_eq!(ids(&out), ["2:1002"]);
    assert!(!out.batch.more);
    let warnings: Vec<&str> = out
        .warnings
        .entries()
        .iter()
        .map(|(m, _)| m.as_str())
        .collect();
    assert!(
        warnings.iter().any(|m| m.contains("cursor is unreadable")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|m| m.contains("offense skipped: offense id is a string")),
        "{warnings:?}"
    );
}

#[test]
fn paging_without_content_range_uses_page_fullness() {
    let c = base_cfg();
    let full = Response::new(200, "u", json!([offense(1, 1), offense(2, 2)]).to_string());
    let mock = MockTransport::new().respond(full);
    assert!(run_poll(&c, None, &mock).batch.more);
    let short = Response::new(200, "u", json!([offense(1, 1)]).to_string());
    let mock = MockTransport::new().respond(short);
    assert!(!run_poll(&c, None, &mock).batch.more);
}

#[test]
fn poll_errors_are_typed() {
    let c = base_cfg();
    type Check = fn(&Error) -> bool;
    let cases: Vec<(Response, Check)> = vec![
        (
            qradar_error(
                401,
                18,
                "You are unauthorized to access the requested resource.",
                "No SEC header present in request.",
            ),
            |e| matches!(e, Error::Auth(_)),
        ),
        (
            qradar_error(
                422,
                1010,
                "semantic errors",
                "The filter parameter is not valid.",
            ),
            |e| matches!(e, Error::Upstream { status: Some(422), message } if message.contains("filter parameter is not valid")),
        ),
        (
            Response::new(429, "u", "").with_header("Retry-After", "30"),
            |e| {
                matches!(
                    e,
                    Error::RateLimited {
                        retry_after_secs: Some(30),
                        ..
                    }
                )
            },
        ),
        (
            qradar_error(503, 0, "The server is currently unavailable.", ""),
            |e| {
                matches!(
                    e,
                    Error::Upstream {
                        status: Some(503),
                        ..
                    }
                )
            },
        ),
        (
            Response::new(200, "u", "{\"not\": \"a list\"}"),
            |e| matches!(e, Error::Parse(m) if m.contains("expected a JSON array")),
        ),
    ];
    for (resp, check) in cases {
        let status = resp.status;
        let mock = MockTransport::new().respond(resp);
        let err = engine::poll(&c, None, &mock, &clock()).err();
        assert!(err.as_ref().is_some_and(check), "HTTP {status}: {err:?}");
    }
    let mock = MockTransport::new().fail(HttpError::Timeout);
    assert_eq!(
        engine::poll(&c, None, &mock, &clock()).err(),
        Some(Error::upstream(None, "request timed out"))
    );
}

fn lookup_response(items: Value, range: &str) -> Response {
    Response::new(200, "u", items.to_string()).with_header("Content-Range", range)
}

#[test]
fn lookups_resolve_ips_and_rule_names() {
    let c = cfg(json!({"base_url": BASE, "page_size": 2, "settle_seconds": 0}));
    let mut o2 = offense(2, 1002);
    o2["source_address_ids"] = json!([1, 3]);
    o2["rules"] = json!([{"id": 100, "type": "CRE_RULE"}, {"id": 101, "type": "CRE_RULE"}]);
    let mock = MockTransport::new()
        .respond(page(&[offense(1, 1001), o2], "items 0-1/2"))
        .respond(lookup_response(
            json!([{"id": 1, "source_ip": "10.0.0.1"}, {"id": 3, "source_ip": "2001:db8::3"}]),
            "items 0-1/2",
        ))
        .respond(lookup_response(
            json!([{"id": 7, "local_destination_ip": "192.168.1.20"}]),
            "items 0-0/1",
        ))
        .respond(lookup_response(
            json!([{"id": 100, "name": "Login Failures"}, {"id": 101, "name": "Port Scan"}]),
            "items 0-1/2",
        ));
    let out = run_poll(&c, None, &mock);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[1].url, format!("{BASE}/api/siem/source_addresses"));
    assert_eq!(query(&reqs[1], "filter").as_deref(), Some("id in (1,3)"));
    assert_eq!(query(&reqs[1], "fields").as_deref(), Some("id,source_ip"));
    assert_eq!(reqs[1].headers.get("range"), Some("items=0-1"));
    assert_eq!(
        reqs[2].url,
        format!("{BASE}/api/siem/local_destination_addresses")
    );
    assert_eq!(query(&reqs[2], "filter").as_deref(), Some("id in (7)"));
    assert_eq!(reqs[3].url, format!("{BASE}/api/analytics/rules"));
    assert_eq!(
        query(&reqs[3], "filter").as_deref(),
        Some("id in (100,101)")
    );
    assert_eq!(query(&reqs[3], "fields").as_deref(), Some("id,name"));
    for r in &reqs {
        assert_eq!(r.headers.get("version"), Some("16.0"));
        assert_eq!(r.credential.as_deref(), Some("api"));
    }
    let e2 = &out.batch.events[1];
    assert_eq!(
        e2.attributes["source_ips"],
        json!(["10.0.0.1", "2001:db8::3"])
    );
    assert_eq!(e2.attributes["destination_ips"], json!(["192.168.1.20"]));
    assert_eq!(
        e2.attributes["rule_names"],
        json!(["Login Failures", "Port Scan"])
    );
    assert!(e2.observables.iter().any(|o| o.value == "2001:db8::3"));
}

#[test]
fn lookup_refusals_degrade_but_outages_fail() {
    let c = cfg(
        json!({"base_url": BASE, "page_size": 2, "settle_seconds": 0, "resolve_addresses": false}),
    );
    let forbidden = qradar_error(
        403,
        26,
        "Your account is not authorized",
        "User has insufficient capabilities to access this endpoint resource",
    );
    let mock = MockTransport::new()
        .respond(page(&[offense(1, 1001)], "items 0-0/1"))
        .respond(forbidden);
    let out = run_poll(&c, None, &mock);
    assert_eq!(ids(&out), ["1:1001"]);
    assert!(!out.batch.events[0].attributes.contains_key("rule_names"));
    assert!(
        out.warnings
            .entries()
            .iter()
            .any(|(m, _)| m.contains("/api/analytics/rules refused (HTTP 403"))
    );

    let mock = MockTransport::new()
        .respond(page(&[offense(1, 1001)], "items 0-0/1"))
        .respond(qradar_error(
            500,
            1020,
            "Unexpected internal server error.",
            "An error occurred",
        ));
    assert!(matches!(
        engine::poll(&c, None, &mock, &clock()),
        Err(Error::Upstream {
            status: Some(500),
            ..
        })
    ));
}

// ---------------------------------------------------------------------------
// Connection test

#[test]
fn connection_test_is_one_request_for_one_item() {
    let c = cfg(json!({"base_url": BASE, "filter": "status = OPEN"}));
    let mock = MockTransport::new().respond(page(&[offense(9, 1_717_000_000_000)], "items 0-0/37"));
    let report = engine::test_connection(&c, &mock, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.ok(), "{report:?}");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1, "no lookups in the connection test");
    assert_eq!(reqs[0].headers.get("range"), Some("items=0-0"));
    assert_eq!(reqs[0].headers.get("version"), Some("16.0"));
    assert_eq!(query(&reqs[0], "filter").as_deref(), Some("status = OPEN"));
    assert_eq!(
        query(&reqs[0], "sort").as_deref(),
        Some("-last_updated_time")
    );
    let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["auth", "sample"]);
    assert!(
        report.stages[1].message.starts_with("37 offenses visible"),
        "{}",
        report.stages[1].message
    );
    assert_eq!(report.sample.len(), 1);
    assert_eq!(report.sample[0].id, "9:1717000000000");
    assert!(report.stages.iter().all(|s| s.latency_ms.is_some()));

    let denied = MockTransport::new().respond(qradar_error(
        401,
        18,
        "You are unauthorized to access the requested resource.",
        "No SEC header present in request.",
    ));
    let report = engine::test_connection(&c, &denied, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.ok());
    assert!(
        !report.stages[0].ok
            && report.stages[0]
                .message
                .starts_with("HTTP 401: No SEC header")
    );
    assert!(!report.stages[1].ok && report.stages[1].message.starts_with("not run"));

    let bad_filter = MockTransport::new().respond(qradar_error(
        422,
        1010,
        "semantic errors",
        "The filter parameter is not valid.",
    ));
    let report =
        engine::test_connection(&c, &bad_filter, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.stages[0].ok);
    assert!(
        !report.stages[1].ok
            && report.stages[1]
                .message
                .contains("filter parameter is not valid")
    );

    let unbound = MockTransport::new().fail(HttpError::Credential(
        "no credential is bound to slot \"api\"".into(),
    ));
    let report = engine::test_connection(&c, &unbound, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !report.stages[0].ok
            && report.stages[0]
                .message
                .contains("could not apply the credential")
    );

    let busy =
        MockTransport::new().respond(Response::new(429, "u", "").with_header("Retry-After", "5"));
    assert!(matches!(
        engine::test_connection(&c, &busy, &clock()),
        Err(Error::RateLimited {
            retry_after_secs: Some(5),
            ..
        })
    ));
}
