//! Native tests of the connector logic: a scripted NVD through `MockTransport`, time
//! through `ManualClock`, the `state` space through `MemoryKeyValue`.

use std::path::PathBuf;

use portcullis_sdk::http::{HttpError, Request, Response};
use portcullis_sdk::testing::{self, ManualClock, MockTransport};

use super::*;
use crate::budget::MemoryKeyValue;
use crate::engine::{Cursor, PollOutcome};

const NOW: &str = "2024-12-31T00:00:00Z";

fn cfg(doc: Value) -> Config {
    Config::parse(&doc).unwrap_or_else(|e| panic!("config: {e}"))
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn cve(id: &str, last_modified: &str) -> Value {
    json!({
        "id": id,
        "published": "2020-01-01T00:00:00.000",
        "lastModified": last_modified,
        "vulnStatus": "Analyzed",
        "descriptions": [{"lang": "en", "value": format!("about {id}")}],
        "metrics": {},
        "references": []
    })
}

fn query<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An NVD double serving `cves`: the lastMod range, startIndex and resultsPerPage
/// as documented.
fn nvd(cves: Vec<Value>) -> MockTransport {
    MockTransport::with_handler(move |r| {
        let range = match (query(r, "lastModStartDate"), query(r, "lastModEndDate")) {
            (Some(a), Some(b)) => Some((ts(a), ts(b))),
            (None, None) => None,
            _ => return Ok(Response::new(404, r.url.clone(), "").with_header("message", "both")),
        };
        let matching: Vec<&Value> = cves
            .iter()
            .filter(|c| {
                range.is_none_or(|(a, b)| {
                    let t = ts(c["lastModified"].as_str().unwrap_or_default());
                    t >= a && t <= b
                })
            })
            .collect();
        let start: usize = query(r, "startIndex")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let per: usize = query(r, "resultsPerPage")
            .and_then(|s| s.parse().ok())
            .unwrap_or(2000);
        let page: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(per)
            .map(|c| json!({"cve": c}))
            .collect();
        Ok(ok_page(&r.url, matching.len(), start, page))
    })
}

fn ok_page(url: &str, total: usize, start: usize, items: Vec<Value>) -> Response {
    Response::new(
        200,
        url,
        json!({
            "resultsPerPage": items.len(),
            "startIndex": start,
            "totalResults": total,
            "format": "NVD_CVE",
            "version": "2.0",
            "timestamp": "2024-12-31T00:00:00.000",
            "vulnerabilities": items,
        })
        .to_string(),
    )
}

struct Rig {
    clock: ManualClock,
    store: MemoryKeyValue,
}

impl Rig {
    fn new() -> Self {
        Rig {
            clock: ManualClock::at(NOW, 3),
            store: MemoryKeyValue::default(),
        }
    }

    fn env<'a>(&'a self, t: &'a MockTransport) -> Env<'a> {
        Env {
            transport: t,
            clock: &self.clock,
            store: &self.store,
        }
    }

    fn poll(&self, c: &Config, cursor: Option<&str>, t: &MockTransport) -> Result<PollOutcome> {
        engine::poll(c, cursor, self.env(t))
    }

    fn ok(&self, c: &Config, cursor: Option<&str>, t: &MockTransport) -> PollOutcome {
        self.poll(c, cursor, t)
            .unwrap_or_else(|e| panic!("poll: {e}"))
    }

    /// Polls while `more`, returning every outcome.
    fn follow(
        &self,
        c: &Config,
        mut cursor: Option<String>,
        t: &MockTransport,
    ) -> Vec<PollOutcome> {
        let mut out = Vec::new();
        for _ in 0..100 {
            let o = self.ok(c, cursor.as_deref(), t);
            cursor = o.batch.cursor.clone();
            let more = o.batch.more;
            out.push(o);
            if !more {
                return out;
            }
        }
        panic!("did not finish in 100 polls")
    }
}

fn cursor_of(o: &PollOutcome) -> Cursor {
    testing::batch_cursor(&o.batch)
}

fn cursor_text_of(o: &PollOutcome) -> String {
    o.batch
        .cursor
        .clone()
        .unwrap_or_else(|| panic!("no cursor"))
}

fn big_budget() -> Value {
    json!({"requests": 1000, "window_secs": 30})
}

fn rate_limited(r: Result<PollOutcome>) -> (Option<u64>, String) {
    match r {
        Err(Error::RateLimited {
            retry_after_secs,
            message,
        }) => (retry_after_secs, message),
        other => panic!("expected rate-limited, got {other:?}"),
    }
}

#[test]
fn manifest_matches_the_schema_and_contract() {
    let m = manifest();
    assert_eq!(m.id, "nvd-cve");
    assert_eq!(m.category, Category::Vulnerability);
    assert_eq!(m.hosts, ["https://services.nvd.nist.gov", "*://*:*"]);
    assert!(m.accepts_push);
    assert_eq!(m.credential_slots.len(), 1);
    assert_eq!(m.credential_slots[0].name, "api-key");
    assert_eq!(m.credential_slots[0].kinds, [CredentialKind::ApiKey]);
    assert!(!m.credential_slots[0].required);
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.config_schema, schema);
    let mut props: Vec<&str> = schema["properties"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    props.sort_unstable();
    assert_eq!(
        props,
        [
            "base_url",
            "rate_limit",
            "results_per_page",
            "start",
            "use_api_key",
            "window_days"
        ]
    );
}

#[test]
fn full_download_then_catch_up_window() {
    let rig = Rig::new();
    let cves: Vec<Value> = (1..=7)
        .map(|i| cve(&format!("CVE-2020-{i:04}"), "2021-01-01T00:00:00.000"))
        .collect();
    let t = nvd(cves);
    let c = cfg(
        json!({"base_url": "https://nvd.test", "results_per_page": 3, "rate_limit": big_budget()}),
    );
    let outs = rig.follow(&c, None, &t);
    // 3 pages of the full download, then one catch-up window from when it started.
    assert_eq!(outs.len(), 4);
    let urls = t.requested_urls();
    assert_eq!(
        urls[..3],
        [
            "https://nvd.test/rest/json/cves/2.0?resultsPerPage=3&startIndex=0",
            "https://nvd.test/rest/json/cves/2.0?resultsPerPage=3&startIndex=3",
            "https://nvd.test/rest/json/cves/2.0?resultsPerPage=3&startIndex=6",
        ]
    );
    assert_eq!(
        cursor_of(&outs[0]),
        Cursor::Full {
            started: "2024-12-31T00:00:00Z".into(),
            next: 3,
            total: Some(7),
            page_size: None
        }
    );
    assert_eq!(
        cursor_of(&outs[2]),
        Cursor::Idle {
            since: "2024-12-31T00:00:00Z".into()
        }
    );
    assert!(outs[2].batch.more, "the catch-up window is ready at once");
    let ids: Vec<&str> = outs
        .iter()
        .flat_map(|o| o.batch.events.iter().map(|e| e.id.as_str()))
        .collect();
    assert_eq!(ids.len(), 7);
    assert_eq!(ids[0], "CVE-2020-0001@2021-01-01T00:00:00.000Z");
    // The clock has not moved, so the catch-up window is empty... and costs no request.
    assert_eq!(urls.len(), 3);
    assert!(outs[3].batch.events.is_empty());
    assert!(!outs[3].batch.more);

    // Later: one window from the end of the download to now.
    rig.clock.advance(3_600_000);
    let later = rig.ok(&c, outs[3].batch.cursor.as_deref(), &t);
    assert_eq!(
        t.requested_urls()[3],
        "https://nvd.test/rest/json/cves/2.0?lastModStartDate=2024-12-31T00%3A00%3A00.000%2B00%3A00&lastModEndDate=2024-12-31T01%3A00%3A00.000%2B00%3A00&resultsPerPage=3&startIndex=0"
    );
    assert!(!later.batch.more);
    assert_eq!(
        cursor_of(&later),
        Cursor::Idle {
            since: "2024-12-31T01:00:00Z".into()
        }
    );
}

#[test]
fn backfill_is_cut_into_contiguous_windows_of_at_most_120_days() {
    let rig = Rig::new();
    let t = nvd(vec![
        cve("CVE-2024-0001", "2024-02-01T00:00:00.000"),
        cve("CVE-2024-0002", "2024-06-01T00:00:00.000"),
        cve("CVE-2024-0003", "2024-06-02T00:00:00.000"),
        cve("CVE-2024-0004", "2024-12-30T00:00:00.000"),
    ]);
    let c = cfg(
        json!({"base_url": "https://nvd.test", "start": "2024-01-01T00:00:00Z", "results_per_page": 1, "rate_limit": big_budget()}),
    );
    let outs = rig.follow(&c, None, &t);
    let reqs = t.requests();
    let ranges: Vec<(Timestamp, Timestamp, u64)> = reqs
        .iter()
        .map(|r| {
            (
                ts(query(r, "lastModStartDate").unwrap_or_default()),
                ts(query(r, "lastModEndDate").unwrap_or_default()),
                query(r, "startIndex")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(99),
            )
        })
        .collect();
    let mut windows: Vec<(Timestamp, Timestamp)> =
        ranges.iter().map(|(a, b, _)| (*a, *b)).collect();
    windows.dedup();
    assert_eq!(
        windows,
        [
            (ts("2024-01-01T00:00:00Z"), ts("2024-04-30T00:00:00Z")),
            (ts("2024-04-30T00:00:00Z"), ts("2024-08-28T00:00:00Z")),
            (ts("2024-08-28T00:00:00Z"), ts("2024-12-26T00:00:00Z")),
            (ts("2024-12-26T00:00:00Z"), ts("2024-12-31T00:00:00Z")),
        ]
    );
    // Window 2 has two records at one per page: startIndex 0 then 1.
    let second: Vec<u64> = ranges
        .iter()
        .filter(|(a, _, _)| *a == ts("2024-04-30T00:00:00Z"))
        .map(|(_, _, i)| *i)
        .collect();
    assert_eq!(second, [0, 1]);
    assert_eq!(reqs.len(), 5);
    let ids: Vec<&str> = outs
        .iter()
        .flat_map(|o| o.batch.events.iter().map(|e| e.id.as_str()))
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(outs.last().is_some_and(|o| !o.batch.more));
    assert_eq!(
        outs.last().map(cursor_of),
        Some(Cursor::Idle {
            since: "2024-12-31T00:00:00Z".into()
        })
    );
    assert_eq!(
        query(&reqs[0], "lastModStartDate"),
        Some("2024-01-01T00:00:00.000+00:00"),
        "extended ISO 8601 with an explicit offset"
    );
}

#[test]
fn restart_continues_mid_window_and_rereads_after_shrink() {
    let rig = Rig::new();
    let t = MockTransport::new().respond(ok_page(
        "u",
        10,
        4,
        vec![json!({"cve": cve("CVE-1-5", "2024-12-01T00:00:00.000")})],
    ));
    let c = cfg(
        json!({"base_url": "https://nvd.test", "results_per_page": 1, "rate_limit": big_budget()}),
    );
    let saved = json!({"phase": "window", "from": "2024-11-01T00:00:00Z", "to": "2024-12-30T00:00:00Z", "next": 4, "total": 10}).to_string();
    let first = rig.ok(&c, Some(&saved), &t);
    let r = &t.requests()[0];
    assert_eq!(query(r, "startIndex"), Some("4"));
    assert_eq!(
        query(r, "lastModStartDate"),
        Some("2024-11-01T00:00:00.000+00:00")
    );
    assert_eq!(
        query(r, "lastModEndDate"),
        Some("2024-12-30T00:00:00.000+00:00")
    );
    assert_eq!(
        cursor_of(&first),
        Cursor::Window {
            from: "2024-11-01T00:00:00Z".into(),
            to: "2024-12-30T00:00:00Z".into(),
            next: 5,
            total: Some(10),
            page_size: None
        }
    );
    // Two records left the window while paging (total 10 -> 8): the records after
    // them moved down two places, so the next page is read from 5 - 2 = 3.
    let shrunk = cursor_text_of(&first);
    let t2 = MockTransport::new().respond(ok_page(
        "u",
        8,
        5,
        vec![json!({"cve": cve("CVE-1-8", "2024-12-01T00:00:00.000")})],
    ));
    let second = rig.ok(&c, Some(&shrunk), &t2);
    assert_eq!(
        cursor_of(&second),
        Cursor::Window {
            from: "2024-11-01T00:00:00Z".into(),
            to: "2024-12-30T00:00:00Z".into(),
            next: 3,
            total: Some(8),
            page_size: None
        }
    );
    assert!(
        second.warnings.entries()[0]
            .0
            .contains("2 records left the window")
    );
}

#[test]
fn a_window_that_shrank_below_the_saved_index_is_read_again() {
    let rig = Rig::new();
    let c = cfg(json!({"results_per_page": 5, "window_days": 30, "rate_limit": big_budget()}));
    // 38 records when paging started, 10 left now: startIndex 15 is past the end.
    let t = MockTransport::new().respond(ok_page("u", 10, 15, vec![]));
    let saved = json!({"phase": "window", "from": "2024-09-01T00:00:00Z", "to": "2024-12-30T00:00:00Z", "next": 15, "total": 38}).to_string();
    let o = rig.ok(&c, Some(&saved), &t);
    assert!(o.batch.more, "not the end of the window");
    assert_eq!(
        cursor_of(&o),
        Cursor::Window {
            from: "2024-09-01T00:00:00Z".into(),
            to: "2024-12-30T00:00:00Z".into(),
            next: 0,
            total: Some(10),
            page_size: None
        },
        "a 120-day window saved before window_days became 30 is still used"
    );
}

#[test]
fn unusable_cursors_start_over() {
    let rig = Rig::new();
    let c = cfg(
        json!({"base_url": "https://nvd.test", "start": "2024-12-01T00:00:00Z", "rate_limit": big_budget()}),
    );
    for bad in [
        "not json",
        r#"{"phase": "window", "from": "2020-01-01T00:00:00Z", "to": "2024-01-01T00:00:00Z", "next": 0}"#,
        r#"{"phase": "idle", "since": "whenever"}"#,
    ] {
        let t = nvd(vec![]);
        let o = rig.ok(&c, Some(bad), &t);
        assert_eq!(
            query(&t.requests()[0], "lastModStartDate"),
            Some("2024-12-01T00:00:00.000+00:00"),
            "{bad}"
        );
        assert!(
            o.warnings.entries()[0]
                .0
                .starts_with("saved cursor is unusable"),
            "{bad}"
        );
    }
}

#[test]
fn idle_in_the_future_sends_nothing() {
    let rig = Rig::new();
    let t = nvd(vec![]);
    let c = cfg(json!({"start": "2025-06-01T00:00:00Z"}));
    let o = rig.ok(&c, None, &t);
    assert!(t.requests().is_empty());
    assert!(!o.batch.more);
    assert_eq!(
        cursor_of(&o),
        Cursor::Idle {
            since: "2025-06-01T00:00:00Z".into()
        }
    );
}

#[test]
fn default_budget_without_a_key_is_5_per_30_s() {
    let rig = Rig::new();
    let t = nvd((1..=20)
        .map(|i| cve(&format!("CVE-1-{i}"), "2024-01-01T00:00:00.000"))
        .collect());
    let c = cfg(json!({"results_per_page": 1}));
    let mut cursor = None;
    for _ in 0..5 {
        let o = rig.ok(&c, cursor.as_deref(), &t);
        cursor = o.batch.cursor;
    }
    let (retry, message) = rate_limited(rig.poll(&c, cursor.as_deref(), &t));
    assert_eq!(retry, Some(30));
    assert!(message.contains("5 requests per rolling 30 s"), "{message}");
    assert_eq!(t.requests().len(), 5, "the refused poll sent nothing");
    rig.clock.advance(30_000);
    assert!(rig.poll(&c, cursor.as_deref(), &t).is_ok());
    // With a key: 50.
    let keyed = cfg(json!({"results_per_page": 1, "use_api_key": true}));
    let rig = Rig::new();
    let t = nvd(vec![cve("CVE-1-1", "2024-01-01T00:00:00.000")]);
    for _ in 0..50 {
        assert!(rig.poll(&keyed, None, &t).is_ok());
    }
    assert!(matches!(
        rig.poll(&keyed, None, &t),
        Err(Error::RateLimited { .. })
    ));
    assert!(
        t.requests()
            .iter()
            .all(|r| r.credential.as_deref() == Some("api-key"))
    );
}

#[test]
fn status_mapping() {
    let c = cfg(json!({"use_api_key": true, "rate_limit": big_budget()}));
    let rig = Rig::new();
    let invalid = MockTransport::new()
        .respond(Response::new(404, "u", "").with_header("message", "Invalid apiKey."));
    match rig.poll(&c, None, &invalid) {
        Err(Error::Auth(m)) => assert!(
            m.contains("Invalid apiKey.") && m.contains("api-key"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    let bad_param = MockTransport::new().respond(
        Response::new(404, "u", "").with_header("message", "Invalid lastModStartDate parameter"),
    );
    assert_eq!(
        rig.poll(&c, None, &bad_param).err(),
        Some(Error::upstream(
            Some(404),
            "HTTP 404: Invalid lastModStartDate parameter"
        ))
    );
    let down = MockTransport::new().respond(Response::new(503, "u", ""));
    assert_eq!(
        rig.poll(&c, None, &down).err(),
        Some(Error::upstream(Some(503), "HTTP 503"))
    );
    let cred = MockTransport::new().fail(HttpError::Credential("no credential is bound".into()));
    assert!(matches!(rig.poll(&c, None, &cred), Err(Error::Auth(_))));
    let proxy =
        MockTransport::new().respond(Response::new(429, "u", "").with_header("Retry-After", "7"));
    assert_eq!(rate_limited(rig.poll(&c, None, &proxy)).0, Some(7));
    // The 429 blocked the budget for 7 s.
    let idle = nvd(vec![]);
    assert_eq!(rate_limited(rig.poll(&c, None, &idle)).0, Some(7));
    assert!(idle.requests().is_empty());
}

#[test]
fn throttling_403_blocks_following_polls() {
    let rig = Rig::new();
    let c = cfg(
        json!({"rate_limit": {"requests": 100, "window_secs": 30, "throttle_backoff_secs": 45}}),
    );
    let t = MockTransport::new().respond(Response::new(
        403,
        "u",
        "Request forbidden by administrative rules.",
    ));
    let (retry, message) = rate_limited(rig.poll(&c, None, &t));
    assert_eq!(retry, Some(45));
    assert!(message.contains("HTTP 403: Request forbidden"), "{message}");
    let t2 = nvd(vec![]);
    rig.clock.advance(44_000);
    assert_eq!(rate_limited(rig.poll(&c, None, &t2)).0, Some(1));
    assert!(t2.requests().is_empty());
    rig.clock.advance(1_000);
    assert!(rig.poll(&c, None, &t2).is_ok());
}

#[test]
fn response_problems() {
    let rig = Rig::new();
    let c = cfg(json!({"rate_limit": big_budget(), "results_per_page": 2}));
    let not_json = MockTransport::new().respond(Response::new(200, "u", "<html>"));
    assert!(
        matches!(rig.poll(&c, None, &not_json), Err(Error::Parse(m)) if m.contains("not valid JSON"))
    );
    let no_list = MockTransport::new().respond(Response::new(200, "u", r#"{"totalResults": 1}"#));
    assert!(
        matches!(rig.poll(&c, None, &no_list), Err(Error::Parse(m)) if m.contains("no `vulnerabilities`"))
    );
    // Bad entries are skipped with their index; no totalResults: page until short.
    let odd = MockTransport::new().respond(Response::new(
        200,
        "u",
        json!({"vulnerabilities": [{"nope": 1}, {"cve": cve("CVE-1-1", "2024-01-01T00:00:00.000")}]}).to_string(),
    ));
    let o = rig.ok(&c, None, &odd);
    assert_eq!(o.batch.events.len(), 1);
    assert!(o.batch.more, "a full page without totalResults");
    let texts: Vec<&str> = o
        .warnings
        .entries()
        .iter()
        .map(|(m, _)| m.as_str())
        .collect();
    assert!(
        texts.contains(&"vulnerabilities[0] skipped: no `cve` object"),
        "{texts:?}"
    );
}

#[test]
fn connection_test() {
    let rig = Rig::new();
    let c = cfg(json!({"base_url": "https://nvd.test", "use_api_key": true}));
    let t = nvd(vec![
        cve("CVE-2024-3400", "2024-04-13T01:00:01.407"),
        cve("CVE-1-2", "2024-01-01T00:00:00.000"),
    ]);
    let report = engine::test_connection(&c, rig.env(&t)).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.stages.len(), 2);
    assert!(report.stages[0].message.contains("accepted the API key"));
    assert!(
        report.stages[1]
            .message
            .starts_with("2 CVE records available"),
        "{:?}",
        report.stages[1]
    );
    assert_eq!(report.sample.len(), 1);
    assert_eq!(
        t.requested_urls(),
        ["https://nvd.test/rest/json/cves/2.0?resultsPerPage=1&startIndex=0"]
    );
    assert_eq!(t.requests()[0].credential.as_deref(), Some("api-key"));

    let invalid = MockTransport::new()
        .respond(Response::new(404, "u", "").with_header("message", "Invalid apiKey."));
    let report = engine::test_connection(&c, rig.env(&invalid)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.stages[0].ok);
    assert!(report.stages[0].message.contains("Invalid apiKey."));
    assert!(!report.stages[1].ok);

    let unbound = MockTransport::new().fail(HttpError::Credential(
        "no credential is bound to slot".into(),
    ));
    let report = engine::test_connection(&c, rig.env(&unbound)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.stages[0].ok && report.stages[0].message.contains("use_api_key"));

    let keyless = cfg(json!({}));
    let gated = MockTransport::new().respond(Response::new(401, "u", ""));
    let report =
        engine::test_connection(&keyless, rig.env(&gated)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.stages[0].ok && report.stages[0].message.contains("requires authentication"));

    let throttled = MockTransport::new().respond(Response::new(403, "u", ""));
    assert!(matches!(
        engine::test_connection(&c, rig.env(&throttled)),
        Err(Error::RateLimited {
            retry_after_secs: Some(60),
            ..
        })
    ));
}

#[test]
fn pushed_input() {
    let now = ts(NOW);
    let page = json!({"vulnerabilities": [{"cve": cve("CVE-1-1", "2024-01-01T00:00:00.000")}, {"cve": 3}]}).to_string();
    let (events, w) = engine::normalize(&page, now).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 1);
    assert_eq!(w.entries().len(), 1);
    let wrapped = json!({"cve": cve("CVE-1-2", "2024-01-01T00:00:00.000")}).to_string();
    assert_eq!(
        engine::normalize(&wrapped, now).map(|(e, _)| e.len()).ok(),
        Some(1)
    );
    let bare = cve("CVE-1-3", "2024-01-01T00:00:00.000").to_string();
    assert_eq!(
        engine::normalize(&bare, now)
            .map(|(e, _)| e[0].attributes["cve_id"].clone())
            .ok(),
        Some(json!("CVE-1-3"))
    );
    assert!(
        matches!(engine::normalize("{\"a\": ", now), Err(Error::Parse(m)) if m.contains("line 1 column"))
    );
    assert!(matches!(engine::normalize("{}", now), Err(Error::Parse(m)) if m.contains("no `id`")));
}

/// Every real record of the shared conformance data normalises without a skip.
#[test]
fn real_records_normalise() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/nvd");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 11);
    let mut count = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{e}"));
        let (events, w) =
            engine::normalize(&text, ts(NOW)).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(w.is_empty(), "{}: {w:?}", f.display());
        for e in &events {
            assert_eq!(e.kind, EventKind::Vulnerability);
            assert!(e.time.ends_with('Z'));
            let cve_id = e.attributes["cve_id"].as_str().unwrap_or_default();
            assert!(e.id.starts_with(&format!("{cve_id}@")));
            assert!(
                e.observables
                    .iter()
                    .any(|o| o.kind == ObservableKind::Cve && o.value == cve_id)
            );
            // Every criteria parsed into its 11 components.
            for m in e.attributes["cpe_matches"].as_array().into_iter().flatten() {
                assert!(m["cpe"].is_object(), "{}: {m}", e.id);
            }
        }
        count += events.len();
    }
    assert_eq!(count, 38 + 1 + 9);
}

#[test]
fn heavy_pages_are_split_and_the_page_size_adapts() {
    let rig = Rig::new();
    // ~600 KB per record: the 4 MiB text budget takes 6 (the 7th would cross it).
    let heavy = |i: usize| {
        let mut c = cve(&format!("CVE-2024-{i:04}"), "2024-01-01T00:00:00.000");
        c["padding"] = json!("x".repeat(600_000));
        c
    };
    let t = nvd((0..20).map(heavy).collect());
    let c = cfg(json!({"results_per_page": 20, "rate_limit": big_budget()}));
    let first = rig.ok(&c, None, &t);
    assert_eq!(first.batch.events.len(), 6);
    assert!(first.batch.more);
    let Cursor::Full {
        next,
        page_size,
        total,
        ..
    } = cursor_of(&first)
    else {
        panic!("{:?}", cursor_of(&first))
    };
    assert_eq!((next, page_size, total), (6, Some(6), Some(20)));
    assert!(
        first.warnings.entries()[0]
            .0
            .contains("6 of 20 records mapped")
    );
    // The next request asks for 6 from index 6; nothing is lost or repeated.
    let rest = rig.follow(&c, first.batch.cursor.clone(), &t);
    let r = &t.requests()[1];
    assert_eq!(
        (query(r, "startIndex"), query(r, "resultsPerPage")),
        (Some("6"), Some("6"))
    );
    let mut ids: Vec<String> = first.batch.events.iter().map(|e| e.id.clone()).collect();
    ids.extend(
        rest.iter()
            .flat_map(|o| o.batch.events.iter().map(|e| e.id.clone())),
    );
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (20, 20));

    // Light pages grow the size back towards the configured one.
    let light = nvd((0..40)
        .map(|i| cve(&format!("CVE-2024-{i:04}"), "2024-01-01T00:00:00.000"))
        .collect());
    let saved = json!({"phase": "full", "started": NOW, "next": 0, "page_size": 5}).to_string();
    let o = rig.ok(&c, Some(&saved), &light);
    assert_eq!(query(&light.requests()[0], "resultsPerPage"), Some("5"));
    let Cursor::Full {
        page_size, next, ..
    } = cursor_of(&o)
    else {
        panic!()
    };
    assert_eq!((next, page_size), (5, Some(10)));
    let o = rig.ok(&c, o.batch.cursor.as_deref(), &light);
    let Cursor::Full { page_size, .. } = cursor_of(&o) else {
        panic!()
    };
    assert_eq!(page_size, None, "back to the configured 20");
}

#[test]
fn a_page_over_the_response_cap_is_asked_for_in_halves() {
    let rig = Rig::new();
    let c = cfg(
        json!({"results_per_page": 2000, "start": "2024-12-01T00:00:00Z", "rate_limit": big_budget()}),
    );
    let t = MockTransport::new()
        .fail(HttpError::TooLarge(16 * 1024 * 1024))
        .respond(ok_page(
            "u",
            1,
            0,
            vec![json!({"cve": cve("CVE-1-1", "2024-12-02T00:00:00.000")})],
        ));
    let first = rig.ok(&c, None, &t);
    assert!(first.batch.events.is_empty());
    assert!(first.batch.more);
    assert_eq!(
        cursor_of(&first),
        Cursor::Window {
            from: "2024-12-01T00:00:00Z".into(),
            to: NOW.into(),
            next: 0,
            total: None,
            page_size: Some(1000)
        }
    );
    let second = rig.ok(&c, first.batch.cursor.as_deref(), &t);
    assert_eq!(query(&t.requests()[1], "resultsPerPage"), Some("1000"));
    assert_eq!(
        query(&t.requests()[1], "lastModStartDate"),
        query(&t.requests()[0], "lastModStartDate")
    );
    assert_eq!(second.batch.events.len(), 1);
    // A single record over the cap cannot be split: an upstream error.
    let one = cfg(json!({"results_per_page": 1, "rate_limit": big_budget()}));
    let t = MockTransport::new().fail(HttpError::TooLarge(10));
    assert!(matches!(
        rig.poll(&one, None, &t),
        Err(Error::Upstream { status: None, .. })
    ));
}
