//! Native tests of the connector logic: scripted upstream responses through
//! `MockTransport`, time through `ManualClock`.

use portcullis_sdk::http::{HttpError, Response};
use portcullis_sdk::testing::{self, ManualClock, MockTransport};
use serde_json::json;

use super::*;
use crate::engine::{Cursor, PollOutcome};

const NOW: &str = "2024-06-01T12:00:00Z";

fn cfg(doc: Value) -> Config {
    Config::parse(&doc).unwrap_or_else(|e| panic!("config: {e}"))
}

fn clock() -> ManualClock {
    ManualClock::at(NOW, 7)
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

fn ok_json(url: &str, body: Value) -> Response {
    Response::new(200, url, body.to_string()).with_header("Content-Type", "application/json")
}

#[test]
fn manifest_matches_contract() {
    let m = manifest();
    assert_eq!(m.id, "rest-generic");
    assert_eq!(m.category, Category::CustomApi);
    assert_eq!(m.hosts, ["*://*:*"]);
    assert!(m.accepts_push);
    assert_eq!(m.credential_slots.len(), 1);
    let slot = &m.credential_slots[0];
    assert_eq!(slot.name, "api");
    assert!(!slot.required);
    assert_eq!(slot.kinds, CredentialKind::ALL);
    // The schema is real JSON and lists exactly the fields the parser accepts.
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.config_schema, schema);
    let mut props: Vec<&str> = schema["properties"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    props.sort_unstable();
    let mut expected = vec![
        "base_url",
        "path",
        "query",
        "headers",
        "records",
        "id",
        "time",
        "title",
        "window",
        "pagination",
        "page_size",
        "page_size_param",
        "credential",
        "kind",
        "severity",
        "observables",
    ];
    expected.sort_unstable();
    assert_eq!(props, expected);
    assert_eq!(schema["required"], json!(["base_url", "path", "id"]));
    let severities = schema["$defs"]["severity"]["enum"].as_array().map(Vec::len);
    assert_eq!(severities, Some(7));
}

#[test]
fn link_header_pagination_over_a_window() {
    let c = cfg(json!({
        "base_url": "https://api.example.com",
        "path": "/v1/alerts",
        "query": {"status": "open"},
        "headers": {"Accept": "application/json"},
        "records": "/data",
        "id": "/id",
        "time": "/created_at",
        "window": {"param": "since", "initial": "2024-01-01T00:00:00Z", "end_param": "until"},
        "pagination": {"type": "link-header"},
        "page_size": 2,
        "page_size_param": "per_page",
        "credential": "api"
    }));
    let page1 = ok_json(
        "https://api.example.com/v1/alerts?status=open&since=2024-01-01T00%3A00%3A00Z&until=2024-06-01T12%3A00%3A00Z&per_page=2",
        json!({"data": [{"id": "a1", "created_at": "2024-05-01T00:00:00Z"}, {"id": "a2", "created_at": "2024-05-03T00:00:00Z"}]}),
    )
    .with_header("Link", "</v1/alerts?page=2&per_page=2>; rel=\"next\", </v1/alerts?page=3&per_page=2>; rel=\"last\"");
    let mock = MockTransport::new().respond(page1);
    let out1 = run_poll(&c, None, &mock);
    assert_eq!(ids(&out1), ["a1", "a2"]);
    assert!(out1.batch.more);
    let req = &mock.requests()[0];
    assert_eq!(req.credential.as_deref(), Some("api"));
    assert_eq!(req.headers.get("accept"), Some("application/json"));
    assert_eq!(
        mock.requested_urls(),
        [
            "https://api.example.com/v1/alerts?status=open&since=2024-01-01T00%3A00%3A00Z&until=2024-06-01T12%3A00%3A00Z&per_page=2"
        ]
    );
    let cur1 = cursor_of(&out1);
    assert_eq!(
        cur1,
        Cursor {
            since: Some("2024-01-01T00:00:00Z".into()),
            next: Some(json!("https://api.example.com/v1/alerts?page=2&per_page=2")),
            window_start: Some(NOW.into()),
            newest: Some("2024-05-03T00:00:00Z".into()),
        }
    );

    // Page 2: the next link is requested as is, later than the window start.
    let mock = MockTransport::new().respond(
        ok_json(
            "https://api.example.com/v1/alerts?page=2&per_page=2",
            json!({"data": [{"id": "a3", "created_at": "2024-05-02T00:00:00Z"}]}),
        )
        .with_header(
            "link",
            "<https://api.example.com/v1/alerts?page=1&per_page=2>; rel=\"prev\"",
        ),
    );
    let later = ManualClock::at("2024-06-01T12:05:00Z", 1);
    let out2 = engine::poll(&c, out1.batch.cursor.as_deref(), &mock, &later)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        mock.requested_urls(),
        ["https://api.example.com/v1/alerts?page=2&per_page=2"]
    );
    assert_eq!(mock.requests()[0].credential.as_deref(), Some("api"));
    assert_eq!(ids(&out2), ["a3"]);
    assert!(!out2.batch.more);
    // End of window: since = newest record time over the whole window.
    assert_eq!(
        cursor_of(&out2),
        Cursor {
            since: Some("2024-05-03T00:00:00Z".into()),
            next: None,
            window_start: None,
            newest: None
        }
    );

    // Next window starts from that bound, with a fresh upper bound.
    let mock = MockTransport::new().respond(ok_json(
        "https://api.example.com/v1/alerts",
        json!({"data": []}),
    ));
    let out3 = engine::poll(
        &c,
        out2.batch.cursor.as_deref(),
        &mock,
        &ManualClock::at("2024-06-02T00:00:00Z", 1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        mock.requested_urls(),
        [
            "https://api.example.com/v1/alerts?status=open&since=2024-05-03T00%3A00%3A00Z&until=2024-06-02T00%3A00%3A00Z&per_page=2"
        ]
    );
    assert!(out3.batch.events.is_empty() && !out3.batch.more);
    // No records: the window start becomes the bound.
    assert_eq!(
        cursor_of(&out3).since.as_deref(),
        Some("2024-06-02T00:00:00Z")
    );
}

#[test]
fn window_without_initial_omits_param_and_uses_window_start() {
    let c = cfg(json!({
        "base_url": "https://h.test", "path": "/events", "id": "/id",
        "window": {"param": "from"}
    }));
    let mock = MockTransport::new().respond(ok_json("https://h.test/events", json!([{"id": 1}])));
    let out = run_poll(&c, None, &mock);
    assert_eq!(mock.requested_urls(), ["https://h.test/events"]);
    assert_eq!(ids(&out), ["1"]);
    // Records without a time pointer do not move the bound: the window start does.
    assert_eq!(cursor_of(&out).since.as_deref(), Some(NOW));
    let mock = MockTransport::new().respond(ok_json("https://h.test/events", json!([])));
    run_poll(&c, out.batch.cursor.as_deref(), &mock);
    assert_eq!(
        mock.requested_urls(),
        ["https://h.test/events?from=2024-06-01T12%3A00%3A00Z"]
    );
}

#[test]
fn window_bound_never_moves_past_window_start_or_backwards() {
    let c = cfg(json!({
        "base_url": "https://h.test", "path": "/e", "id": "/id", "time": "/t",
        "window": {"param": "since"}
    }));
    // A record dated in the future does not push the bound past the window start.
    let mock = MockTransport::new().respond(ok_json(
        "https://h.test/e",
        json!([{"id": 1, "t": "2030-01-01T00:00:00Z"}]),
    ));
    let out = run_poll(&c, None, &mock);
    assert_eq!(cursor_of(&out).since.as_deref(), Some(NOW));
    // Records older than the saved bound (an upstream ignoring `since`) keep the bound.
    let saved = r#"{"since":"2024-05-01T00:00:00Z","next":null,"window_start":null}"#;
    let mock = MockTransport::new().respond(ok_json(
        "https://h.test/e",
        json!([{"id": 2, "t": "2023-01-01T00:00:00Z"}]),
    ));
    let out = run_poll(&c, Some(saved), &mock);
    assert_eq!(
        cursor_of(&out).since.as_deref(),
        Some("2024-05-01T00:00:00Z")
    );
}

#[test]
fn cursor_pagination() {
    let c = cfg(json!({
        "base_url": "https://h.test", "path": "/v2/logs", "records": "/items", "id": "/uuid",
        "pagination": {"type": "cursor", "param": "cursor", "next": "/meta/next_cursor"},
        "page_size": 50, "page_size_param": "limit"
    }));
    let mock = MockTransport::new().respond(ok_json(
        "https://h.test/v2/logs",
        json!({"items": [{"uuid": "u1"}], "meta": {"next_cursor": "abc"}}),
    ));
    let out = run_poll(&c, None, &mock);
    assert_eq!(mock.requested_urls(), ["https://h.test/v2/logs?limit=50"]);
    assert!(out.batch.more);
    assert_eq!(cursor_of(&out).next, Some(json!("abc")));

    let mock = MockTransport::new().respond(ok_json(
        "https://h.test/v2/logs",
        json!({"items": [{"uuid": "u2"}], "meta": {"next_cursor": 12345}}),
    ));
    let out = run_poll(&c, out.batch.cursor.as_deref(), &mock);
    assert_eq!(
        mock.requested_urls(),
        ["https://h.test/v2/logs?limit=50&cursor=abc"]
    );
    assert_eq!(
        cursor_of(&out).next,
        Some(json!("12345")),
        "numeric tokens are kept as text"
    );

    // Same token again: the loop is broken and the window ends.
    let mock = MockTransport::new().respond(ok_json(
        "https://h.test/v2/logs",
        json!({"items": [{"uuid": "u3"}], "meta": {"next_cursor": "12345"}}),
    ));
    let out = run_poll(&c, out.batch.cursor.as_deref(), &mock);
    assert!(!out.batch.more);
    assert!(!out.warnings.is_empty());

    // Missing or null token, or an empty page, ends the window.
    for body in [
        json!({"items": [{"uuid": "u4"}], "meta": {}}),
        json!({"items": [{"uuid": "u4"}], "meta": {"next_cursor": null}}),
        json!({"items": [{"uuid": "u4"}], "meta": {"next_cursor": ""}}),
        json!({"items": [], "meta": {"next_cursor": "more"}}),
    ] {
        let mock = MockTransport::new().respond(ok_json("https://h.test/v2/logs", body.clone()));
        let out = run_poll(&c, None, &mock);
        assert!(!out.batch.more, "{body}");
        assert_eq!(cursor_of(&out).next, None);
    }
}

#[test]
fn offset_pagination_with_total_like_nvd() {
    let c = cfg(json!({
        "base_url": "https://services.nvd.nist.gov", "path": "/rest/json/cves/2.0",
        "records": "/vulnerabilities", "id": "/cve/id", "time": "/cve/lastModified",
        "kind": "vulnerability",
        "pagination": {"type": "offset", "start_param": "startIndex", "size_param": "resultsPerPage", "total": "/totalResults"},
        "page_size": 2
    }));
    let page = |ids: &[&str]| {
        json!({
            "resultsPerPage": 2, "totalResults": 5,
            "vulnerabilities": ids.iter().map(|i| json!({"cve": {"id": i, "lastModified": "2024-04-12T08:15:06.230"}})).collect::<Vec<_>>()
        })
    };
    let url = "https://services.nvd.nist.gov/rest/json/cves/2.0";
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    let mut urls = Vec::new();
    for (i, chunk) in [&["CVE-1", "CVE-2"][..], &["CVE-3", "CVE-4"], &["CVE-5"]]
        .iter()
        .enumerate()
    {
        let mock = MockTransport::new().respond(ok_json(url, page(chunk)));
        let out = run_poll(&c, cursor.as_deref(), &mock);
        urls.extend(mock.requested_urls());
        seen.extend(ids(&out).into_iter().map(str::to_string));
        assert_eq!(out.batch.more, i < 2);
        cursor = out.batch.cursor;
    }
    assert_eq!(seen, ["CVE-1", "CVE-2", "CVE-3", "CVE-4", "CVE-5"]);
    assert_eq!(
        urls,
        [
            format!("{url}?resultsPerPage=2&startIndex=0"),
            format!("{url}?resultsPerPage=2&startIndex=2"),
            format!("{url}?resultsPerPage=2&startIndex=4"),
        ]
    );
}

#[test]
fn offset_pagination_without_total() {
    let c = cfg(json!({
        "base_url": "https://h.test", "path": "/x", "id": "/id",
        "pagination": {"type": "offset", "start_param": "offset", "size_param": "limit"},
        "page_size": 2
    }));
    let mock =
        MockTransport::new().respond(ok_json("https://h.test/x", json!([{"id": 1}, {"id": 2}])));
    let out = run_poll(&c, None, &mock);
    assert!(out.batch.more, "a full page may be followed by more");
    assert_eq!(cursor_of(&out).next, Some(json!(2)));
    let mock = MockTransport::new().respond(ok_json("https://h.test/x", json!([{"id": 3}])));
    let out = run_poll(&c, out.batch.cursor.as_deref(), &mock);
    assert_eq!(mock.requested_urls(), ["https://h.test/x?limit=2&offset=2"]);
    assert!(!out.batch.more, "a short page is the last");
}

#[test]
fn no_pagination_is_one_page() {
    let c = cfg(
        json!({"base_url": "https://h.test", "path": "/x", "id": "/id", "pagination": {"type": "none"}}),
    );
    let mock = MockTransport::new().respond(
        ok_json("https://h.test/x", json!([{"id": 1}]))
            .with_header("Link", "<https://h.test/x?p=2>; rel=next"),
    );
    let out = run_poll(&c, None, &mock);
    assert!(!out.batch.more);
    assert_eq!(cursor_of(&out).next, None);
}

#[test]
fn upstream_errors_map_to_typed_errors() {
    let c =
        cfg(json!({"base_url": "https://h.test", "path": "/x", "records": "/data", "id": "/id"}));
    let poll_with = |r: std::result::Result<Response, HttpError>| {
        let mock = match r {
            Ok(resp) => MockTransport::new().respond(resp),
            Err(e) => MockTransport::new().fail(e),
        };
        engine::poll(&c, None, &mock, &clock()).err()
    };
    assert_eq!(
        poll_with(Ok(Response::new(
            401,
            "https://h.test/x",
            r#"{"message":"Bad credentials"}"#
        ))),
        Some(Error::auth("HTTP 401: Bad credentials"))
    );
    assert_eq!(
        poll_with(Ok(Response::new(403, "https://h.test/x", ""))),
        Some(Error::auth("HTTP 403"))
    );
    assert_eq!(
        poll_with(Ok(
            Response::new(429, "https://h.test/x", "slow down").with_header("Retry-After", "30")
        )),
        Some(Error::rate_limited(Some(30), "slow down"))
    );
    assert_eq!(
        poll_with(Ok(Response::new(429, "https://h.test/x", ""))),
        Some(Error::rate_limited(None, "HTTP 429"))
    );
    assert_eq!(
        poll_with(Ok(Response::new(
            503,
            "https://h.test/x",
            r#"{"error":"maintenance"}"#
        ))),
        Some(Error::upstream(Some(503), "maintenance"))
    );
    assert_eq!(
        poll_with(Ok(Response::new(404, "https://h.test/x", "no such path"))),
        Some(Error::upstream(Some(404), "no such path"))
    );
    assert_eq!(
        poll_with(Err(HttpError::Timeout)),
        Some(Error::upstream(None, "request timed out"))
    );
    assert!(
        matches!(poll_with(Err(HttpError::Denied("not granted".into()))), Some(Error::Other(m)) if m.contains("not granted"))
    );
    assert!(matches!(
        poll_with(Ok(Response::new(200, "https://h.test/x", "<html>"))),
        Some(Error::Parse(m)) if m.contains("not valid JSON")
    ));
    assert_eq!(
        poll_with(Ok(ok_json("https://h.test/x", json!({"items": []})))),
        Some(Error::parse(
            "records pointer \"/data\" not found in the response"
        ))
    );
    assert_eq!(
        poll_with(Ok(ok_json("https://h.test/x", json!({"data": {"id": 1}})))),
        Some(Error::parse(
            "records pointer \"/data\" refers to an object, not an array"
        ))
    );
    // `null` records are an empty page.
    assert_eq!(
        poll_with(Ok(ok_json("https://h.test/x", json!({"data": null})))),
        None
    );
}

#[test]
fn bad_or_stale_cursors_restart_the_window() {
    let c = cfg(json!({
        "base_url": "https://h.test", "path": "/x", "id": "/id",
        "window": {"param": "since", "initial": "2024-01-01T00:00:00Z"},
        "pagination": {"type": "offset", "start_param": "start"}
    }));
    for saved in [
        "not json",
        r#"{"since": "garbage", "next": 5}"#,
        r#"{"since": null, "next": "https://h.test/x?page=2"}"#,
        r#"{"next": -3}"#,
    ] {
        let mock = MockTransport::new().respond(ok_json("https://h.test/x", json!([])));
        let out = run_poll(&c, Some(saved), &mock);
        assert!(!out.warnings.is_empty(), "{saved}: expected a warning");
        let url = mock.requested_urls().pop().unwrap_or_default();
        assert!(url.contains("since=2024-01-01"), "{saved}: {url}");
        if saved != r#"{"since": "garbage", "next": 5}"# {
            assert!(url.ends_with("start=0"), "{saved}: {url}");
        } else {
            assert!(url.ends_with("start=5"), "{saved}: {url}");
        }
    }
}

#[test]
fn record_mapping() {
    let c = cfg(json!({
        "base_url": "https://h.test", "path": "/x", "id": "/id", "time": "/ts", "title": "/name",
        "kind": {"pointer": "/type", "map": {"det": "alert"}, "default": "log"},
        "severity": {"pointer": "/sev", "map": {"P1": "critical", "3": "medium"}, "default": "unknown"},
        "observables": [
            {"kind": "ip", "pointer": "/src_ip"},
            {"kind": "sha256", "pointer": "/hashes"},
            {"kind": "domain", "pointer": "/missing"}
        ]
    }));
    let records = json!([
        {"id": "e1", "ts": "2024-05-01T10:00:00+02:00", "name": "Login", "type": "det", "sev": "P1",
         "src_ip": "203.0.113.7", "hashes": ["aa", "bb", 7]},
        {"id": 42, "ts": 1714550400, "type": "DET", "sev": 3},
        {"id": "e3", "ts": 1714550400123i64, "type": "indicator", "sev": "High"},
        {"id": "e4", "ts": "not a time", "type": "weird", "sev": "p1"},
        {"no_id": true},
        {"id": ""},
        {"id": {"nested": 1}}
    ]);
    let mock = MockTransport::new().respond(ok_json("https://h.test/x", records));
    let out = run_poll(&c, None, &mock);
    let ev = &out.batch.events;
    assert_eq!(ids(&out), ["e1", "42", "e3", "e4"]);
    assert_eq!(ev[0].time, "2024-05-01T08:00:00Z");
    assert_eq!(ev[0].title, "Login");
    assert_eq!(ev[0].kind, EventKind::Alert);
    assert_eq!(ev[0].severity, Severity::Critical);
    let obs: Vec<(ObservableKind, &str)> = ev[0]
        .observables
        .iter()
        .map(|o| (o.kind, o.value.as_str()))
        .collect();
    assert_eq!(
        obs,
        [
            (ObservableKind::Ip, "203.0.113.7"),
            (ObservableKind::Sha256, "aa"),
            (ObservableKind::Sha256, "bb"),
            (ObservableKind::Sha256, "7")
        ]
    );
    assert_eq!(ev[0].attributes.get("src_ip"), Some(&json!("203.0.113.7")));
    let raw: Value = serde_json::from_str(&ev[0].raw).unwrap_or_default();
    assert_eq!(raw["name"], "Login");
    // Epoch seconds, case-insensitive map key, numeric map key, default title.
    assert_eq!(ev[1].time, "2024-05-01T08:00:00Z");
    assert_eq!(ev[1].kind, EventKind::Alert);
    assert_eq!(ev[1].severity, Severity::Medium);
    assert_eq!(ev[1].title, "rest-generic record 42");
    // Epoch milliseconds; a value that is itself a name is used when no key matches.
    assert_eq!(ev[2].time, "2024-05-01T08:00:00.123Z");
    assert_eq!(ev[2].kind, EventKind::Indicator);
    assert_eq!(ev[2].severity, Severity::High);
    // Unparseable time: the current time; unknown values: the defaults.
    assert_eq!(ev[3].time, NOW);
    assert_eq!(ev[3].kind, EventKind::Log);
    assert_eq!(
        ev[3].severity,
        Severity::Critical,
        "map keys match case-insensitively"
    );
    let warnings: Vec<&str> = out
        .warnings
        .entries()
        .iter()
        .map(|(m, _)| m.as_str())
        .collect();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("no id at \"/id\"")));
    assert!(warnings.iter().any(|w| w.contains("unusable")));
}

#[test]
fn warnings_are_bounded() {
    let c = cfg(json!({"base_url": "https://h.test", "path": "/x", "id": "/id", "time": "/t"}));
    let records: Vec<Value> = (0..100)
        .map(|i| json!({"id": i, "t": format!("bad-{i}")}))
        .collect();
    let records2: Vec<Value> = (0..100).map(|i| json!({"id": [i]})).collect();
    let mut all = records;
    all.extend(records2);
    let (events, w) = engine::normalize(&c, &Value::Array(all).to_string(), Timestamp::UNIX_EPOCH)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 100);
    assert_eq!(w.entries().len(), 2, "{:?}", w.entries());
    assert_eq!(w.entries()[0].1, 100);
    assert_eq!(w.entries()[1].1, 100);

    let mut w = engine::Warnings::default();
    for i in 0..30 {
        w.add(format!("distinct {i}"));
    }
    w.add("distinct 0");
    assert_eq!(w.entries().len(), 21);
    assert_eq!(w.entries()[0], ("distinct 0".to_string(), 2));
    assert_eq!(
        w.entries()[20],
        ("further warnings not listed".to_string(), 10)
    );
}

#[test]
fn fixed_kind_and_severity() {
    let c = cfg(
        json!({"base_url": "https://h.test", "path": "/x", "id": "/id", "kind": "finding", "severity": "high"}),
    );
    let (events, w) = engine::normalize(&c, r#"{"id": "f1"}"#, Timestamp::UNIX_EPOCH)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(w.is_empty());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Finding);
    assert_eq!(events[0].severity, Severity::High);
    assert_eq!(events[0].time, "1970-01-01T00:00:00Z");
}

#[test]
fn normalize_single_record_or_array() {
    let c = cfg(json!({"base_url": "https://h.test", "path": "/x", "id": "/id", "time": "/t"}));
    let now = Timestamp::parse(NOW).unwrap_or(Timestamp::UNIX_EPOCH);
    let (one, _) = engine::normalize(&c, r#"{"id": "a", "t": "2024-01-01T00:00:00Z"}"#, now)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].time, "2024-01-01T00:00:00Z");
    let (many, w) = engine::normalize(&c, r#"[{"id": "a"}, {"id": "b"}, {"x": 1}]"#, now)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        many.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(many[0].time, NOW);
    assert_eq!(w.entries().len(), 2, "missing time and missing id");
    assert!(matches!(
        engine::normalize(&c, "<xml/>", now),
        Err(Error::Parse(_))
    ));
    // A scalar is a record without an id.
    let (none, w) = engine::normalize(&c, "5", now).unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty() && !w.is_empty());
}

fn test_cfg() -> Config {
    cfg(json!({
        "base_url": "https://h.test", "path": "/alerts", "records": "/data", "id": "/id",
        "window": {"param": "since", "initial": "2024-01-01T00:00:00Z"},
        "credential": "api"
    }))
}

#[test]
fn test_connection_success_with_sample_and_latency() {
    let body = json!({"data": [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}, {"nope": 0}]});
    let mock = MockTransport::new().respond(ok_json("https://h.test/alerts", body));
    let report =
        engine::test_connection(&test_cfg(), &mock, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        mock.requested_urls(),
        ["https://h.test/alerts?since=2024-01-01T00%3A00%3A00Z"]
    );
    assert_eq!(mock.requests()[0].credential.as_deref(), Some("api"));
    assert!(report.ok());
    assert_eq!(report.stages.len(), 2);
    assert_eq!(report.stages[0].name, "auth");
    assert_eq!(report.stages[0].latency_ms, Some(7));
    assert!(report.stages[0].message.contains("accepted (HTTP 200)"));
    assert_eq!(report.stages[1].name, "sample");
    assert_eq!(report.stages[1].latency_ms, Some(14));
    assert!(
        report.stages[1]
            .message
            .starts_with("5 records parsed, 4 mapped to events (1 skipped"),
        "{}",
        report.stages[1].message
    );
    assert_eq!(
        report
            .sample
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
}

#[test]
fn test_connection_auth_failures() {
    for status in [401u16, 403] {
        let mock = MockTransport::new().respond(Response::new(
            status,
            "https://h.test/alerts",
            r#"{"error_description":"token expired"}"#,
        ));
        let report =
            engine::test_connection(&test_cfg(), &mock, &clock()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!report.ok());
        assert_eq!(report.stages[0].name, "auth");
        assert!(!report.stages[0].ok);
        assert_eq!(
            report.stages[0].message,
            format!("HTTP {status}: token expired")
        );
        assert_eq!(report.stages[0].latency_ms, Some(7));
        assert_eq!(report.stages[1].name, "sample");
        assert!(!report.stages[1].ok);
        assert!(report.sample.is_empty());
    }
    let mock = MockTransport::new().fail(HttpError::Credential("slot api is not bound".into()));
    let report =
        engine::test_connection(&test_cfg(), &mock, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.stages[0].ok);
    assert!(report.stages[0].message.contains("slot api is not bound"));
    let mock = MockTransport::new().fail(HttpError::Denied("host not granted".into()));
    let report =
        engine::test_connection(&test_cfg(), &mock, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.stages[0].ok);
    assert!(report.stages[0].message.contains("host not granted"));
}

#[test]
fn test_connection_sample_failures() {
    let mock = MockTransport::new().respond(ok_json("https://h.test/alerts", json!({"items": []})));
    let report =
        engine::test_connection(&test_cfg(), &mock, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.stages[0].ok);
    assert!(!report.stages[1].ok);
    assert!(
        report.stages[1].message.contains("\"/data\""),
        "{}",
        report.stages[1].message
    );
    let mock = MockTransport::new().respond(Response::new(500, "https://h.test/alerts", "boom"));
    let report =
        engine::test_connection(&test_cfg(), &mock, &clock()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.stages[0].ok);
    assert!(!report.stages[1].ok);
    assert!(report.stages[1].message.contains("HTTP 500"));
    let mock = MockTransport::new()
        .respond(Response::new(429, "https://h.test/alerts", "").with_header("Retry-After", "9"));
    assert_eq!(
        engine::test_connection(&test_cfg(), &mock, &clock()).err(),
        Some(Error::rate_limited(Some(9), "HTTP 429"))
    );
}
