//! `threathawk-siem`, built from source, in the real host against the ThreatHawk
//! simulator: OAuth 2.0 client credentials done by the host (one token for many polls),
//! several windows of cursor pages with `created_after` from the saved cursor, the
//! `status`/`severity` filters, the `X-RateLimit-*` budget and `429` + `Retry-After`,
//! `400`/`422` bodies with `fields`, auth failures, an expired page cursor, replay mode
//! (the duplicate-flood story) and the connection test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::common::*;
use portcullis::broker::BrokerConfig;
use portcullis::broker::ip_policy::IpPolicy;
use portcullis::event::{Event, EventKind};
use portcullis::runtime::PluginError;
use portcullis::{CallError, Runtime, RuntimeConfig};
use portcullis_e2e::artifacts::THREATHAWK_SIEM;
use portcullis_e2e::simulators::{
    Failure, RateLimit, RecordedRequest, ThreatHawkConfig, ThreatHawkServer, threathawk_alerts,
};
use serde_json::{Value, json};

fn start(config: ThreatHawkConfig) -> ThreatHawkServer {
    ThreatHawkServer::start(config).unwrap()
}

fn with_alerts(n: usize) -> ThreatHawkConfig {
    ThreatHawkConfig {
        alerts: threathawk_alerts(n),
        ..ThreatHawkConfig::default()
    }
}

/// The OAuth client bound to the `api` slot, for the API's origin only.
fn creds_with(sim: &ThreatHawkServer, secret: &str, scopes: &[&str]) -> Value {
    json!({"api": {
        "kind": "oauth2-client-credentials",
        "token_url": sim.token_url(),
        "client_id": sim.oauth().client_id(),
        "client_secret": secret,
        "scopes": scopes,
        "hosts": [sim.base_url()]
    }})
}

fn creds(sim: &ThreatHawkServer) -> Value {
    creds_with(sim, &sim.oauth().client_secret(), &["alerts:read"])
}

fn bound(plugin: &portcullis::LoadedPlugin, sim: &ThreatHawkServer, creds: Value) -> Bound {
    bind(plugin, "threathawk", &[&sim.base_url()], credentials(creds))
}

/// A connector in a runtime of its own, for tests that bind several OAuth clients: the
/// harness's file credentials key the host's token cache by slot name only
/// (`file:api`), so two bindings of the `api` slot in one runtime would share a token.
/// The runtimes share `cache` (precompiled components), so each load is cheap.
async fn isolated(cache: &Path, sim: &ThreatHawkServer, creds: Value) -> Bound {
    let rt = Runtime::new(RuntimeConfig {
        broker: BrokerConfig {
            ip_policy: IpPolicy {
                allow_private_networks: true,
            },
            ..BrokerConfig::default()
        },
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = load(&rt, THREATHAWK_SIEM).await;
    bound(&plugin, sim, creds)
}

fn config(sim: &ThreatHawkServer, extra: Value) -> Value {
    let mut c = json!({
        "base_url": sim.api_url(),
        "initial_created_after": "2025-01-01T00:00:00Z",
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

fn has(e: &Event, kind: &str, value: &str) -> bool {
    e.observables
        .iter()
        .any(|o| o.kind == kind && o.value == value)
}

fn plugin_error(r: Result<portcullis::runtime::Batch, CallError>) -> PluginError {
    match r {
        Err(CallError::Plugin(e)) => e,
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

fn param(r: &RecordedRequest, name: &str) -> Option<String> {
    r.query_param(name)
}

fn ocsf(severity: &str) -> u8 {
    match severity {
        "info" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        "critical" => 5,
        other => panic!("unexpected severity {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ingests_every_alert_over_pages_and_windows_with_one_token() {
    let sim = start(ThreatHawkConfig::default());
    let rt = runtime(true);
    let plugin = load(&rt, THREATHAWK_SIEM).await;
    let b = bound(&plugin, &sim, creds(&sim));
    let cfg = config(&sim, json!({"page_size": 25}));

    // Window 1: 120 alerts in 5 pages.
    let (events, cursor, batches) = poll_follow(&b.sandbox, &cfg, None, 20).await;
    assert_eq!(batches, 5, "25 + 25 + 25 + 25 + 20");
    assert_eq!(events.len(), 120);
    let expected: Vec<String> = sim
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let got: HashSet<&str> = ids(&events).into_iter().collect();
    assert_eq!(got.len(), 120, "no duplicates");
    assert!(expected.iter().all(|id| got.contains(id.as_str())));

    // The mapping of one alert, field by field against what the simulator served.
    let raw = sim.alerts()[0].clone();
    let e = events.iter().find(|e| e.id == "alrt-000001").unwrap();
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.source, "threathawk");
    assert_eq!(e.time, "2025-02-10T00:00:00Z");
    assert_eq!(e.title, raw["title"].as_str().unwrap());
    assert_eq!((e.severity_id, e.severity.as_str()), (2, "Low"));
    assert_eq!(serde_json::from_str::<Value>(&e.raw).unwrap(), raw);
    for (kind, value) in [
        ("mitre-technique", "T1059.001"),
        ("event-id", "evt-00000011"),
        ("event-id", "evt-00000012"),
        ("ip", "10.20.0.2"),
        ("ip", "203.0.113.2"),
        ("hostname", "ws-0002.corp.example"),
        ("user", "asmith"),
        (
            "sha256",
            raw["raw_event"]["process"]["sha256"].as_str().unwrap(),
        ),
    ] {
        assert!(has(e, kind, value), "{kind} {value}: {:?}", e.observables);
    }
    assert_eq!(e.attributes["status"], "open");
    assert_eq!(e.attributes["threathawk_severity"], "low");
    assert_eq!(e.attributes["rule_ids"], json!(["rule-0002"]));
    assert_eq!(
        e.attributes["rule_names"],
        json!([raw["matched_rules"][0]["name"]])
    );
    assert_eq!(e.attributes["mitre_technique_ids"], json!(["T1059.001"]));
    assert_eq!(e.attributes["mitre_tactic_ids"], json!(["TA0002"]));
    assert_eq!(e.attributes["affected_assets"], raw["affected_assets"]);
    // Every alert's severity maps to its OCSF id.
    for e in &events {
        let raw: Value = serde_json::from_str(&e.raw).unwrap();
        assert_eq!(
            e.severity_id,
            ocsf(raw["severity"].as_str().unwrap()),
            "{}",
            e.id
        );
    }

    // The pages: filters repeated, cursor from the second page on, all with the token.
    let reqs = sim.alert_requests();
    assert_eq!(reqs.len(), 5);
    assert!(param(&reqs[0], "cursor").is_none());
    assert!(reqs[1..].iter().all(|r| param(r, "cursor").is_some()));
    for r in &reqs {
        assert_eq!(param(r, "limit").as_deref(), Some("25"));
        assert_eq!(
            param(r, "created_after").as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
    }
    let token = sim.oauth().last_token().unwrap();
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization") == Some(format!("Bearer {token}").as_str()))
    );

    // Window 2 starts from the saved cursor: the newest alert (120, at 00:59:00) minus
    // the one-second overlap; only the 10 new alerts come out.
    sim.append_generated(10);
    let (second, cursor, _) = poll_follow(&b.sandbox, &cfg, cursor, 20).await;
    assert_eq!(
        ids(&second),
        (121..=130)
            .map(|i| format!("alrt-{i:06}"))
            .collect::<Vec<_>>()
    );
    let first_of_window = &sim.alert_requests()[5];
    assert_eq!(
        param(first_of_window, "created_after").as_deref(),
        Some("2025-02-10T00:58:59Z")
    );
    assert!(param(first_of_window, "cursor").is_none());

    // Window 3: nothing new. Window 4: five more.
    let (third, cursor, _) = poll_follow(&b.sandbox, &cfg, cursor, 20).await;
    assert!(third.is_empty(), "{:?}", ids(&third));
    sim.append_generated(5);
    let (fourth, _, _) = poll_follow(&b.sandbox, &cfg, cursor, 20).await;
    assert_eq!(fourth.len(), 5);

    // One token for every poll (valid 3600 s), fetched with the client credentials grant.
    assert_eq!(sim.oauth().token_requests(), 1);
    let token_req = &sim.oauth().log().requests()[0];
    assert!(
        token_req
            .form()
            .iter()
            .any(|(k, v)| k == "grant_type" && v == "client_credentials")
    );
    assert_eq!(sim.oauth().issued_tokens()[0].expires_in, 3600);
    // The plugin never saw the token.
    assert!(b.logs.lines().iter().all(|l| !l.message.contains(&token)));
}

#[tokio::test(flavor = "multi_thread")]
async fn passes_status_and_severity_filters_from_config() {
    let sim = start(ThreatHawkConfig::default());
    let rt = runtime(true);
    let plugin = load(&rt, THREATHAWK_SIEM).await;
    let b = bound(&plugin, &sim, creds(&sim));
    let cfg = config(
        &sim,
        json!({"status": "open", "severity": "critical", "page_size": 3}),
    );

    let (events, _, batches) = poll_follow(&b.sandbox, &cfg, None, 20).await;
    let expected: Vec<String> = sim
        .alerts()
        .iter()
        .filter(|a| a["status"] == "open" && a["severity"] == "critical")
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert!(expected.len() >= 5, "the dataset has open critical alerts");
    assert_eq!(ids(&events), expected);
    assert_eq!(batches, expected.len().div_ceil(3));
    assert!(events.iter().all(|e| e.severity_id == 5));
    assert!(events.iter().all(|e| e.attributes["status"] == "open"));
    for r in sim.alert_requests() {
        assert_eq!(param(&r, "status").as_deref(), Some("open"));
        assert_eq!(param(&r, "severity").as_deref(), Some("critical"));
        assert_eq!(param(&r, "limit").as_deref(), Some("3"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spent_budget_pauses_and_429_carries_retry_after() {
    let sim = start(ThreatHawkConfig {
        rate_limit: RateLimit {
            limit: 3,
            window: Duration::from_secs(60),
            enforce: true,
        },
        ..ThreatHawkConfig::default()
    });
    let rt = runtime(true);
    let plugin = load(&rt, THREATHAWK_SIEM).await;
    let b = bound(&plugin, &sim, creds(&sim));
    let cfg = config(&sim, json!({"page_size": 10}));

    // Requests 1 and 2 leave budget; after request 3 `X-RateLimit-Remaining: 0`, so
    // the plugin stops asking for more although the window has more pages.
    let mut cursor = None;
    let mut delivered = Vec::new();
    for expect_more in [true, true, false] {
        let batch = b.sandbox.poll(&cfg, cursor.as_deref()).await.unwrap();
        assert_eq!(batch.more, expect_more);
        delivered.extend(batch.events);
        cursor = batch.cursor;
    }
    assert_eq!(delivered.len(), 30);
    let info: Vec<String> = b.logs.lines().iter().map(|l| l.message.clone()).collect();
    assert!(
        info.iter().any(|m| m.contains("rate limit budget spent")),
        "{info:?}"
    );

    // Polling anyway: 429 with Retry-After (seconds to the window's end).
    match plugin_error(b.sandbox.poll(&cfg, cursor.as_deref()).await) {
        PluginError::RateLimited {
            retry_after_secs: Some(s),
            message,
        } => {
            assert!((1..=60).contains(&s), "{s}");
            assert!(message.contains("Rate limit of 3 requests"), "{message}");
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }

    // The saved position survives: with budget again the window finishes, nothing lost.
    sim.set_rate_limit(RateLimit {
        limit: 1000,
        window: Duration::from_secs(60),
        enforce: true,
    });
    let (rest, _, _) = poll_follow(&b.sandbox, &cfg, cursor, 20).await;
    delivered.extend(rest);
    let unique: HashSet<&str> = ids(&delivered).into_iter().collect();
    assert_eq!((delivered.len(), unique.len()), (120, 120));

    // An upstream 429 with an explicit Retry-After is passed on as is.
    sim.fail_next(Failure::RateLimited {
        retry_after_secs: 7,
    });
    match plugin_error(b.sandbox.poll(&cfg, None).await) {
        PluginError::RateLimited {
            retry_after_secs, ..
        } => assert_eq!(retry_after_secs, Some(7)),
        other => panic!("expected rate-limited, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_errors_carry_the_fields_from_the_body() {
    let sim = start(with_alerts(20));
    let rt = runtime(true);
    let plugin = load(&rt, THREATHAWK_SIEM).await;
    let b = bound(&plugin, &sim, creds(&sim));

    // `pending` is a well-formed status name, so the plugin lets ThreatHawk judge it;
    // its 422 names `status`, which comes back at the configuration key.
    let cfg = config(&sim, json!({"status": "pending"}));
    assert!(b.sandbox.validate_config(&cfg).await.unwrap().is_empty());
    match plugin_error(b.sandbox.poll(&cfg, None).await) {
        PluginError::Config { fields } => {
            assert_eq!(fields.len(), 1, "{fields:?}");
            assert_eq!(fields[0].path, "/status");
            assert!(fields[0].message.contains("HTTP 422"), "{fields:?}");
            assert!(
                fields[0].message.contains("`pending` is not one of"),
                "{fields:?}"
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }

    // A 400 whose fields are not configuration keys is an upstream error naming them.
    let cfg = config(&sim, json!({}));
    sim.fail_next(Failure::Status {
        status: 400,
        body: json!({"error": "bad_request", "message": "missing required fields", "fields": ["tenant_id", "region"]})
            .to_string(),
    });
    match plugin_error(b.sandbox.poll(&cfg, None).await) {
        PluginError::Upstream { status, message } => {
            assert_eq!(status, Some(400));
            assert!(message.contains("missing required fields"), "{message}");
            assert!(message.contains("tenant_id, region"), "{message}");
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
    // The same configuration works once the upstream does.
    assert_eq!(b.sandbox.poll(&cfg, None).await.unwrap().events.len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_page_cursor_restarts_the_window() {
    let sim = start(with_alerts(40));
    let rt = runtime(true);
    let plugin = load(&rt, THREATHAWK_SIEM).await;
    let b = bound(&plugin, &sim, creds(&sim));
    let cfg = config(&sim, json!({"page_size": 10}));

    let first = b.sandbox.poll(&cfg, None).await.unwrap();
    assert!(first.more);
    sim.expire_cursors();
    let restarted = b.sandbox.poll(&cfg, first.cursor.as_deref()).await.unwrap();
    assert!(restarted.events.is_empty());
    assert!(restarted.more, "try again at once from the window's start");
    let (rest, _, _) = poll_follow(&b.sandbox, &cfg, restarted.cursor, 20).await;
    let all: HashSet<&str> = ids(&first.events).into_iter().chain(ids(&rest)).collect();
    assert_eq!(all.len(), 40, "nothing lost");
    // The first page comes again, except alerts 9 and 10: they share the newest
    // timestamp of what the window had seen, and are recognised by id.
    assert_eq!(rest.len(), 38);
    assert!(!ids(&rest).contains(&"alrt-000010"));
    let reqs = sim.alert_requests();
    assert!(param(&reqs[2], "cursor").is_none(), "the window restarted");
    assert!(
        b.logs
            .lines()
            .iter()
            .any(|l| l.message.contains("cursor expired")),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_failures_are_auth_errors() {
    let sim = start(with_alerts(10));
    let cache = portcullis_e2e::temp_dir();
    let cfg = config(&sim, json!({}));

    // Wrong client secret: the token endpoint refuses, no API request is made.
    let b = isolated(
        cache.path(),
        &sim,
        creds_with(&sim, "wrong-secret", &["alerts:read"]),
    )
    .await;
    match plugin_error(b.sandbox.poll(&cfg, None).await) {
        PluginError::Auth { message } => {
            assert!(message.contains("invalid_client"), "{message}")
        }
        other => panic!("expected auth, got {other:?}"),
    }
    assert!(sim.alert_requests().is_empty());

    // A key without read access to alerts: 403 insufficient_scope.
    let b = isolated(
        cache.path(),
        &sim,
        creds_with(&sim, &sim.oauth().client_secret(), &["events:read"]),
    )
    .await;
    match plugin_error(b.sandbox.poll(&cfg, None).await) {
        PluginError::Auth { message } => {
            assert!(message.contains("403"), "{message}");
            assert!(message.contains("insufficient_scope"), "{message}");
        }
        other => panic!("expected auth, got {other:?}"),
    }

    // A revoked token is refreshed once by the host and the poll succeeds.
    let b = isolated(cache.path(), &sim, creds(&sim)).await;
    assert_eq!(b.sandbox.poll(&cfg, None).await.unwrap().events.len(), 10);
    let before = sim.oauth().token_requests();
    sim.oauth().revoke_all();
    assert_eq!(b.sandbox.poll(&cfg, None).await.unwrap().events.len(), 10);
    assert_eq!(sim.oauth().token_requests(), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_mode_serves_the_same_alert_ids_on_every_window() {
    // The duplicate-flood story: the SIEM ignores `created_after` and keeps serving the
    // same alerts. The plugin passes them on (dedup by id is the pipeline's job) and
    // only drops those it can prove it already emitted in the window overlap: here the
    // two alerts sharing the newest timestamp.
    let sim = start(ThreatHawkConfig {
        replay: true,
        ..with_alerts(30)
    });
    let rt = runtime(true);
    let plugin = load(&rt, THREATHAWK_SIEM).await;
    let b = bound(&plugin, &sim, creds(&sim));
    let cfg = config(&sim, json!({"page_size": 10}));

    let (first, mut cursor, _) = poll_follow(&b.sandbox, &cfg, None, 20).await;
    assert_eq!(first.len(), 30);
    let first_ids: HashSet<&str> = ids(&first).into_iter().collect();
    for window in 2..=3 {
        let (again, next, _) = poll_follow(&b.sandbox, &cfg, cursor, 20).await;
        cursor = next;
        assert_eq!(again.len(), 28, "window {window}");
        assert!(
            ids(&again).iter().all(|id| first_ids.contains(id)),
            "window {window}: only alert ids already seen"
        );
        assert!(!ids(&again).contains(&"alrt-000029") && !ids(&again).contains(&"alrt-000030"));
    }
    // Each window asked for alerts after the newest one (00:14:00) minus one second.
    let reqs = sim.alert_requests();
    assert_eq!(
        param(&reqs[3], "created_after").as_deref(),
        Some("2025-02-10T00:13:59Z")
    );

    // The SIEM recovers: nothing new, nothing repeated.
    sim.set_replay(false);
    let (after, _, _) = poll_follow(&b.sandbox, &cfg, cursor, 20).await;
    assert!(after.is_empty(), "{:?}", ids(&after));
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_test_reports_auth_and_sample_stages() {
    let sim = start(with_alerts(10));
    let cache = portcullis_e2e::temp_dir();
    let cfg = config(&sim, json!({"page_size": 50, "severity": "high"}));

    let good = isolated(cache.path(), &sim, creds(&sim)).await;
    let report = good.sandbox.test_connection(&cfg).await.unwrap();
    assert!(report.ok, "{report:?}");
    let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["auth", "sample", "rate-limit"]);
    assert!(
        report.stages[1].message.contains("1 alert(s)"),
        "{report:?}"
    );
    assert!(report.stages[2].message.contains("of 10000"), "{report:?}");
    assert_eq!(report.sample.len(), 1);
    assert_eq!(report.sample[0].severity_id, 4);
    let reqs = sim.alert_requests();
    assert_eq!(reqs.len(), 1, "one small sample query");
    assert_eq!(param(&reqs[0], "limit").as_deref(), Some("1"));
    assert_eq!(param(&reqs[0], "severity").as_deref(), Some("high"));
    assert_eq!(sim.oauth().token_requests(), 1);

    let bad = isolated(
        cache.path(),
        &sim,
        creds_with(&sim, "wrong-secret", &["alerts:read"]),
    )
    .await;
    let report = bad.sandbox.test_connection(&cfg).await.unwrap();
    assert!(!report.ok);
    assert!(!report.stages[0].ok);
    assert_eq!(report.stages[0].name, "auth");
    assert!(
        report.stages[0].message.contains("invalid_client"),
        "{report:?}"
    );
    assert!(!report.stages[1].ok && report.stages[1].message.starts_with("not run"));
    assert!(report.sample.is_empty());
    assert_eq!(
        sim.alert_requests().len(),
        1,
        "no API request without a token"
    );

    let scoped = isolated(
        cache.path(),
        &sim,
        creds_with(&sim, &sim.oauth().client_secret(), &["events:read"]),
    )
    .await;
    let report = scoped.sandbox.test_connection(&cfg).await.unwrap();
    assert!(!report.stages[0].ok);
    assert!(report.stages[0].message.contains("HTTP 403"), "{report:?}");

    // A filter ThreatHawk refuses: authenticated, but the sample stage fails with the field.
    let report = good
        .sandbox
        .test_connection(&config(&sim, json!({"status": "pending"})))
        .await
        .unwrap();
    assert!(report.stages[0].ok);
    assert!(!report.stages[1].ok);
    assert!(report.stages[1].message.contains("/status"), "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_errors_and_the_default_base_url() {
    let rt = runtime(true);
    let plugin = load(&rt, THREATHAWK_SIEM).await;
    let b = bind(&plugin, "threathawk", &[], Default::default());

    let errors = b
        .sandbox
        .validate_config(
            &json!({"base_url": "ftp://x", "severity": "urgent", "page_size": 0, "extra": 1}),
        )
        .await
        .unwrap();
    let paths: HashSet<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    for p in ["/base_url", "/severity", "/page_size"] {
        assert!(paths.contains(p), "{p} missing: {errors:?}");
    }
    let errors = b
        .sandbox
        .validate_config(&json!({"initial_created_after": "last tuesday"}))
        .await
        .unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "/initial_created_after");
    assert!(
        b.sandbox
            .validate_config(&json!({}))
            .await
            .unwrap()
            .is_empty()
    );

    // Without `base_url` the plugin goes to the real service, which this connector was
    // not granted: the host refuses before any network traffic.
    match plugin_error(b.sandbox.poll(&json!({}), None).await) {
        PluginError::Other { message } => {
            assert!(
                message.contains("https://api.threathawk.cybersilo.tech:443")
                    && message.contains("not granted"),
                "{message}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
