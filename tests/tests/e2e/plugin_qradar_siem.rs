//! `qradar-siem`, built from source, in the real host against the QRadar console
//! simulator: Range / Content-Range paging over several pages, the incremental
//! `last_updated_time` filter on a second poll, an offense updated while its window
//! is being paged, the SEC header injected by the host (never visible to the plugin),
//! the Version header, error mapping, the OAuth gateway case, the connection test and
//! configuration validation.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use crate::common::*;
use portcullis::CallError;
use portcullis::runtime::PluginError;
use portcullis_e2e::artifacts::QRADAR_SIEM;
use portcullis_e2e::simulators::qradar::{
    LOCAL_DESTINATION_ADDRESSES_PATH, OFFENSES_PATH, RULES_PATH, SOURCE_ADDRESSES_PATH,
    generated_destination_address_ids, generated_destination_ip, generated_rule,
    generated_source_address_id, generated_source_ip,
};
use portcullis_e2e::simulators::{
    OAuthConfig, QRadarAuth, QRadarConfig, QRadarDataset, QRadarFailure, QRadarServer,
};
use serde_json::{Value, json};

const TOKEN: &str = "7c1e4b2a-93d5-4f80-b6aa-0e2f5d9c3b17";

fn console(n: u64) -> QRadarServer {
    QRadarServer::start(QRadarConfig {
        auth: QRadarAuth::Sec(TOKEN.into()),
        dataset: QRadarDataset::generate(n),
        ..QRadarConfig::default()
    })
    .unwrap()
}

fn sec_creds(base: &str, token: &str) -> Value {
    json!({"api": {"kind": "api-key", "key": token, "header": "SEC", "hosts": [base]}})
}

fn config(base: &str, page_size: u64) -> Value {
    json!({
        "base_url": base,
        "insecure_http": true,
        "api_version": "16.0",
        "page_size": page_size,
        "settle_seconds": 0
    })
}

fn offense_id(e: &portcullis::event::Event) -> u64 {
    e.attributes["offense_id"].as_u64().unwrap()
}

fn plugin_error(r: Result<portcullis::runtime::Batch, CallError>) -> PluginError {
    match r {
        Err(CallError::Plugin(e)) => e,
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_offenses_with_range_and_content_range() {
    let q = console(23);
    let base = q.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, QRADAR_SIEM).await;
    let b = bind(
        &plugin,
        "qradar",
        &[&base],
        credentials(sec_creds(&base, TOKEN)),
    );

    let (events, cursor, batches) = poll_follow(&b.sandbox, &config(&base, 5), None, 20).await;

    assert_eq!(batches, 5, "23 offenses at 5 per page");
    assert_eq!(events.len(), 23);
    let ids: HashSet<u64> = events.iter().map(offense_id).collect();
    assert_eq!(ids, (1..=23).collect::<HashSet<u64>>(), "each offense once");
    let cursor: Value = serde_json::from_str(&cursor.unwrap()).unwrap();
    assert!(
        cursor["since"].is_i64() && cursor["window"].is_null(),
        "{cursor}"
    );

    // One Range page per poll, each after the first overlapping the previous page by
    // one item; every response answered with Content-Range.
    let pages = q.offense_requests();
    let ranges: Vec<&str> = pages.iter().map(|r| r.header("range").unwrap()).collect();
    assert_eq!(
        ranges,
        [
            "items=0-4",
            "items=4-9",
            "items=9-14",
            "items=14-19",
            "items=19-24"
        ]
    );
    let upper = cursor["since"].as_i64().unwrap();
    for p in &pages {
        assert_eq!(p.header("version"), Some("16.0"));
        assert_eq!(
            p.query_param("sort").as_deref(),
            Some("+last_updated_time,+id")
        );
        assert_eq!(
            p.query_param("filter"),
            Some(format!("last_updated_time <= {upper}")),
            "one window, fixed bounds"
        );
    }

    // Offense 6: magnitude 7 → High; addresses and rule names resolved.
    let e = events.iter().find(|e| offense_id(e) == 6).unwrap();
    let o6 = &q.offenses()[5];
    assert_eq!(
        e.id,
        format!("6:{}", o6["last_updated_time"].as_i64().unwrap())
    );
    assert_eq!(e.kind, portcullis::event::EventKind::Alert);
    assert_eq!((e.severity_id, e.severity.as_str()), (4, "High"));
    assert_eq!(
        e.title,
        format!(
            "{} preceded by Login Failures Followed By Success containing Failure Audit: An account failed to log on",
            generated_rule(6).1
        )
    );
    let src = generated_source_ip(generated_source_address_id(6));
    let dsts: Vec<String> = generated_destination_address_ids(6)
        .into_iter()
        .map(generated_destination_ip)
        .collect();
    assert_eq!(e.attributes["source_ips"], json!([src]));
    assert_eq!(e.attributes["destination_ips"], json!(dsts));
    assert_eq!(e.attributes["rule_names"], json!([generated_rule(6).1]));
    assert_eq!(e.attributes["offense_type_name"], json!("Hostname"));
    let ips: Vec<&str> = e
        .observables
        .iter()
        .filter(|o| o.kind == "ip")
        .map(|o| o.value.as_str())
        .collect();
    assert!(ips.contains(&src.as_str()) && dsts.iter().all(|d| ips.contains(&d.as_str())));
    assert!(
        e.observables
            .iter()
            .any(|o| o.kind == "hostname" && o.value == "ws-6.corp.example")
    );
    // Offense 7 is CLOSED, magnitude 8; offense 9 magnitude 10 → Critical.
    let e9 = events.iter().find(|e| offense_id(e) == 9).unwrap();
    assert_eq!(e9.severity, "Critical");
    let e7 = events.iter().find(|e| offense_id(e) == 7).unwrap();
    assert_eq!(e7.attributes["status"], "CLOSED");

    // Lookups: one request per page and endpoint, by `id in (...)`.
    for path in [
        SOURCE_ADDRESSES_PATH,
        LOCAL_DESTINATION_ADDRESSES_PATH,
        RULES_PATH,
    ] {
        let reqs = q.log().requests_to(path);
        assert_eq!(reqs.len(), 5, "{path}");
        assert!(
            reqs.iter()
                .all(|r| r.query_param("filter").unwrap().starts_with("id in ("))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn second_poll_takes_only_new_and_updated_offenses() {
    let q = console(8);
    let base = q.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, QRADAR_SIEM).await;
    let b = bind(
        &plugin,
        "qradar",
        &[&base],
        credentials(sec_creds(&base, TOKEN)),
    );
    let cfg = config(&base, 50);

    let (first, cursor, batches) = poll_follow(&b.sandbox, &cfg, None, 10).await;
    assert_eq!((first.len(), batches), (8, 1));
    let upper1: Value = serde_json::from_str(cursor.as_deref().unwrap()).unwrap();
    let upper1 = upper1["since"].as_i64().unwrap();

    // New offenses arrive and offense 2 gets new events.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let added = q.add_generated(3);
    assert!(q.touch_offense(2));
    q.log().clear();

    let (second, _, _) = poll_follow(&b.sandbox, &cfg, cursor, 10).await;
    let mut got: Vec<u64> = second.iter().map(offense_id).collect();
    got.sort_unstable();
    let mut expected = added.clone();
    expected.push(2);
    expected.sort_unstable();
    assert_eq!(got, expected, "only what changed since the first window");
    let updated = second.iter().find(|e| offense_id(e) == 2).unwrap();
    let before = first.iter().find(|e| offense_id(e) == 2).unwrap();
    assert_ne!(updated.id, before.id, "an offense update is a new event");
    assert_eq!(updated.attributes["event_count"], json!(13));

    let filter = q.offense_requests()[0].query_param("filter").unwrap();
    assert!(
        filter.starts_with(&format!(
            "last_updated_time > {upper1} and last_updated_time <= "
        )),
        "{filter}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offense_updated_while_paging_is_not_skipped() {
    let q = console(12);
    let base = q.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, QRADAR_SIEM).await;
    let b = bind(
        &plugin,
        "qradar",
        &[&base],
        credentials(sec_creds(&base, TOKEN)),
    );
    let cfg = config(&base, 4);

    let page1 = b.sandbox.poll(&cfg, None).await.unwrap();
    assert!(page1.more);
    // Offense 2 (already emitted) is updated: it leaves this window, and every later
    // offense moves one position down.
    assert!(q.touch_offense(2));
    let (rest, cursor, _) = poll_follow(&b.sandbox, &cfg, page1.cursor.clone(), 20).await;
    let mut window: Vec<u64> = page1.events.iter().chain(&rest).map(offense_id).collect();
    window.sort_unstable();
    assert_eq!(
        window,
        (1..=12).collect::<Vec<_>>(),
        "nothing skipped, nothing twice"
    );
    let rebases = b
        .logs
        .lines()
        .iter()
        .filter(|l| {
            l.message
                .contains("re-reading it from the last offense emitted")
        })
        .count();
    assert_eq!(rebases, 1, "the shift was noticed, once");
    // After the re-base the window was read from offense 4's update time on,
    // leaving out offense 4 itself.
    let t4 = q.offenses()[3]["last_updated_time"].as_i64().unwrap();
    let filters: Vec<String> = q
        .offense_requests()
        .iter()
        .map(|r| r.query_param("filter").unwrap())
        .collect();
    assert!(
        filters
            .iter()
            .any(|f| f.starts_with(&format!("last_updated_time >= {t4} and id not in (4) and "))),
        "{filters:?}"
    );
    // The update itself comes with the next window.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let (next, _, _) = poll_follow(&b.sandbox, &cfg, cursor, 5).await;
    assert_eq!(next.iter().map(offense_id).collect::<Vec<_>>(), [2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_adds_the_sec_header_and_the_plugin_never_sees_it() {
    let q = QRadarServer::start(QRadarConfig {
        auth: QRadarAuth::Sec(TOKEN.into()),
        dataset: QRadarDataset::generate(6),
        echo_sec: true,
        ..QRadarConfig::default()
    })
    .unwrap();
    let base = q.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, QRADAR_SIEM).await;
    let good = bind(
        &plugin,
        "qradar",
        &[&base],
        credentials(sec_creds(&base, TOKEN)),
    );
    let (events, cursor, _) = poll_follow(&good.sandbox, &config(&base, 4), None, 10).await;
    assert_eq!(events.len(), 6);
    // Every request (offenses and lookups) carried exactly one SEC header with the
    // token, so the plugin did not add one of its own.
    let all = q.log().requests();
    assert!(all.len() >= 8);
    for r in &all {
        assert_eq!(r.header_values("sec"), [TOKEN], "{}", r.path_and_query);
        assert_eq!(r.header("version"), Some("16.0"));
        assert!(r.header("authorization").is_none());
    }
    // The console echoed the token back (X-Sim-Echo-SEC); nothing the plugin produced
    // contains it.
    let produced = format!("{events:?} {cursor:?}");
    assert!(!produced.contains(TOKEN));
    assert!(good.logs.lines().iter().all(|l| !l.message.contains(TOKEN)));

    // A wrong token that the console quotes in its 401: the plugin reports an auth
    // error in which the host has redacted the secret.
    let wrong = "0000dead-beef-4000-8000-badbadbadbad";
    let bad = bind(
        &plugin,
        "qradar",
        &[&base],
        credentials(sec_creds(&base, wrong)),
    );
    match plugin_error(bad.sandbox.poll(&config(&base, 4), None).await) {
        PluginError::Auth { message } => {
            assert!(message.starts_with("HTTP 401"), "{message}");
            assert!(message.contains("[REDACTED]"), "{message}");
            assert!(!message.contains(wrong), "{message}");
        }
        other => panic!("expected auth, got {other:?}"),
    }
    assert_eq!(
        q.offense_requests().last().unwrap().header_values("sec"),
        [wrong]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn qradar_errors_come_back_typed() {
    let q = console(5);
    let base = q.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, QRADAR_SIEM).await;
    let b = bind(
        &plugin,
        "qradar",
        &[&base],
        credentials(sec_creds(&base, TOKEN)),
    );
    let cfg = config(&base, 10);

    // 422 for a filter QRadar refuses, in QRadar's words.
    let mut bad_filter = cfg.clone();
    bad_filter["filter"] = json!("no_such_field = 1");
    match plugin_error(b.sandbox.poll(&bad_filter, None).await) {
        PluginError::Upstream {
            status: Some(422),
            message,
        } => {
            assert!(message.contains("no_such_field"), "{message}");
            assert!(
                message.contains("The filter parameter is not valid."),
                "{message}"
            );
            assert!(message.contains("QRadar error code 1010"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // An API version the console does not support.
    let mut old = cfg.clone();
    old["api_version"] = json!("9.0");
    match plugin_error(b.sandbox.poll(&old, None).await) {
        PluginError::Upstream {
            status: Some(422),
            message,
        } => assert!(message.contains("has been removed"), "{message}"),
        other => panic!("{other:?}"),
    }

    q.fail_next(QRadarFailure::conflict());
    assert!(matches!(
        plugin_error(b.sandbox.poll(&cfg, None).await),
        PluginError::Upstream { status: Some(409), message } if message.contains("state of the offense")
    ));
    q.fail_next(QRadarFailure::service_unavailable());
    assert!(matches!(
        plugin_error(b.sandbox.poll(&cfg, None).await),
        PluginError::Upstream { status: Some(503), message } if message.contains("currently unavailable")
    ));
    q.fail_next(QRadarFailure::TooManyRequests {
        retry_after_secs: 9,
    });
    assert!(matches!(
        plugin_error(b.sandbox.poll(&cfg, None).await),
        PluginError::RateLimited {
            retry_after_secs: Some(9),
            ..
        }
    ));
    q.fail_next(QRadarFailure::server_error());
    assert!(matches!(
        plugin_error(b.sandbox.poll(&cfg, None).await),
        PluginError::Upstream {
            status: Some(500),
            ..
        }
    ));
    // A token without the capability for one endpoint.
    q.set_forbidden_paths(&[OFFENSES_PATH]);
    match plugin_error(b.sandbox.poll(&cfg, None).await) {
        PluginError::Auth { message } => {
            assert!(message.contains("insufficient capabilities"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // ... or only for the rules lookup: ingestion carries on without rule names.
    q.set_forbidden_paths(&[RULES_PATH]);
    let batch = b.sandbox.poll(&cfg, None).await.unwrap();
    assert_eq!(batch.events.len(), 5);
    assert!(
        batch
            .events
            .iter()
            .all(|e| e.attributes.get("rule_names").is_none()
                && e.attributes.get("source_ips").is_some())
    );
    assert!(
        b.logs
            .lines()
            .iter()
            .any(|l| l.message.contains("/api/analytics/rules refused (HTTP 403"))
    );
    // After all that, nothing was lost: a fresh poll still starts at the beginning.
    q.set_forbidden_paths(&[]);
    let batch = b.sandbox.poll(&cfg, None).await.unwrap();
    assert_eq!(batch.events.len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn works_behind_an_oauth_gateway() {
    let oauth = portcullis_e2e::oauth_server(OAuthConfig::default());
    let q = QRadarServer::start(QRadarConfig {
        auth: QRadarAuth::OAuthGateway(oauth.tokens()),
        dataset: QRadarDataset::generate(7),
        ..QRadarConfig::default()
    })
    .unwrap();
    let base = q.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, QRADAR_SIEM).await;
    let creds = json!({"api": {
        "kind": "oauth2-client-credentials",
        "token_url": oauth.token_url(),
        "client_id": oauth.client_id(),
        "client_secret": oauth.client_secret(),
        "hosts": [base]
    }});
    let b = bind(&plugin, "qradar-gw", &[&base], credentials(creds));
    let (events, _, batches) = poll_follow(&b.sandbox, &config(&base, 3), None, 10).await;
    assert_eq!((events.len(), batches), (7, 3));
    assert_eq!(oauth.token_requests(), 1, "one token for every request");
    let token = oauth.last_token().unwrap();
    for r in q.log().requests() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {token}").as_str())
        );
        assert!(r.header("sec").is_none());
    }
    assert!(b.logs.lines().iter().all(|l| !l.message.contains(&token)));
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_test_reports_auth_and_sample() {
    let q = console(9);
    let base = q.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, QRADAR_SIEM).await;
    let good = bind(
        &plugin,
        "qradar",
        &[&base],
        credentials(sec_creds(&base, TOKEN)),
    );
    let report = good
        .sandbox
        .test_connection(&config(&base, 50))
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    let stages: HashMap<&str, &portcullis::runtime::TestStage> =
        report.stages.iter().map(|s| (s.name.as_str(), s)).collect();
    assert!(stages["auth"].ok && stages["sample"].ok);
    assert!(
        stages["sample"].message.starts_with("9 offenses visible"),
        "{}",
        stages["sample"].message
    );
    assert_eq!(report.sample.len(), 1);
    assert_eq!(
        offense_id(&report.sample[0]),
        9,
        "the most recently updated"
    );
    let reqs = q.log().requests();
    assert_eq!(reqs.len(), 1, "one request");
    assert_eq!(reqs[0].path(), OFFENSES_PATH);
    assert_eq!(reqs[0].header("range"), Some("items=0-0"));
    assert_eq!(reqs[0].header_values("sec"), [TOKEN]);

    let bad = bind(
        &plugin,
        "qradar",
        &[&base],
        credentials(sec_creds(&base, "not-the-token")),
    );
    let report = bad
        .sandbox
        .test_connection(&config(&base, 50))
        .await
        .unwrap();
    assert!(!report.ok);
    let auth = report.stages.iter().find(|s| s.name == "auth").unwrap();
    assert!(
        !auth.ok && auth.message.starts_with("HTTP 401"),
        "{}",
        auth.message
    );
    let sample = report.stages.iter().find(|s| s.name == "sample").unwrap();
    assert!(!sample.ok && sample.message.starts_with("not run"));
    assert!(report.sample.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_reports_every_bad_field_with_its_path() {
    let rt = runtime(true);
    let plugin = load(&rt, QRADAR_SIEM).await;
    let b = bind(&plugin, "qradar", &[], Default::default());

    // Schema level.
    let errors = b
        .sandbox
        .validate_config(&json!({"page_size": "ten", "severity_from": "loud"}))
        .await
        .unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"/page_size"), "{errors:?}");
    assert!(paths.contains(&"/severity_from"), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.message.contains("base_url")),
        "{errors:?}"
    );

    // The plugin's own checks: clear-text http, a console URL ending in /api, an
    // unbalanced filter, an unparseable start time.
    let errors = b
        .sandbox
        .validate_config(&json!({
            "base_url": "http://qradar.example.com/api",
            "filter": "(status = OPEN",
            "start_time": "last tuesday"
        }))
        .await
        .unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/base_url", "/start_time", "/filter"], "{errors:?}");
    assert!(errors[0].message.contains("https"));

    let ok = b
        .sandbox
        .validate_config(&json!({"base_url": "https://qradar.example.com"}))
        .await
        .unwrap();
    assert!(ok.is_empty(), "{ok:?}");
}
