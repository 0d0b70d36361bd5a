//! `rest-generic`, built from source, in the real host against local simulators: the three
//! pagination modes, OAuth client credentials handled by the host, incremental windows,
//! connection tests and configuration validation.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use crate::common::*;
use portcullis_e2e::artifacts::REST_GENERIC;
use portcullis_e2e::simulators::{Auth, LinkOptions, OAuthConfig, PagedApiConfig, RelativeNext};
use serde_json::{Value, json};

fn link_config(base: &str) -> Value {
    json!({
        "base_url": base,
        "path": "/alerts",
        "records": "",
        "id": "/id",
        "time": "/created_at",
        "title": "/title",
        "pagination": {"type": "link-header"},
        "page_size": 20,
        "page_size_param": "per_page",
        "credential": "api",
        "kind": "alert",
        "severity": {"pointer": "/severity", "map": {"low": "low", "medium": "medium", "high": "high", "critical": "critical"}, "default": "unknown"},
        "observables": [{"kind": "ip", "pointer": "/src_ip"}]
    })
}

fn oauth_creds(oauth: &portcullis_e2e::simulators::OAuthServer, api_base: &str) -> Value {
    json!({"api": {
        "kind": "oauth2-client-credentials",
        "token_url": oauth.token_url(),
        "client_id": oauth.client_id(),
        "client_secret": oauth.client_secret(),
        "scopes": ["alerts:read"],
        "hosts": [api_base]
    }})
}

fn link_api_options() -> PagedApiConfig {
    PagedApiConfig {
        link: LinkOptions {
            // Absolute and relative `next` references alternate; links split over two
            // `Link` header fields.
            relative_next: RelativeNext::EvenPages,
            split_header: true,
            ..LinkOptions::default()
        },
        ..PagedApiConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn walks_link_header_pages_with_one_oauth_token() {
    let (oauth, api) =
        portcullis_e2e::oauth_protected_api(OAuthConfig::default(), link_api_options());
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, REST_GENERIC).await;
    let b = bind(
        &plugin,
        "siem-a",
        &[&base],
        credentials(oauth_creds(&oauth, &base)),
    );

    let (events, cursor, batches) = poll_follow(&b.sandbox, &link_config(&base), None, 50).await;

    assert_eq!(batches, 5, "100 records at 20 per page");
    assert_eq!(events.len(), 100);
    let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 100, "no duplicates");
    assert!(cursor.is_some());
    let first = events.iter().find(|e| e.id == "rec-000001").unwrap();
    assert_eq!(first.time, "2024-01-01T00:00:00Z");
    assert_eq!(first.source, "siem-a");
    assert_eq!(first.title, "Simulated alert 1");
    assert_eq!(
        first.severity_id, 3,
        "rec 1 is `medium` in the simulator's cycle"
    );
    assert_eq!(first.severity, "Medium");
    assert!(
        first
            .observables
            .iter()
            .any(|o| o.kind == "ip" && o.value == "198.51.100.2")
    );

    // The host fetched the token once (client authentication by HTTP Basic) and put it on
    // every page request.
    assert_eq!(oauth.token_requests(), 1);
    let token_req = &oauth.log().requests()[0];
    assert!(
        token_req
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    assert!(
        token_req
            .form()
            .iter()
            .any(|(k, v)| k == "grant_type" && v == "client_credentials")
    );
    let token = oauth.last_token().unwrap();
    let pages = api.log().requests_to("/alerts");
    assert_eq!(pages.len(), 5);
    for p in &pages {
        assert_eq!(
            p.header("authorization"),
            Some(format!("Bearer {token}").as_str())
        );
    }
    // Relative and absolute `next` links were both followed: pages 1..=5 each once.
    let mut seen_pages: Vec<String> = pages
        .iter()
        .map(|p| p.query_param("page").unwrap_or("1".into()))
        .collect();
    seen_pages.sort();
    assert_eq!(seen_pages, vec!["1", "2", "3", "4", "5"]);
    // The plugin never saw the token: nothing it logged contains it.
    assert!(b.logs.lines().iter().all(|l| !l.message.contains(&token)));
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshes_the_token_exactly_once_after_invalid_token() {
    let (oauth, api) =
        portcullis_e2e::oauth_protected_api(OAuthConfig::default(), link_api_options());
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, REST_GENERIC).await;
    let b = bind(
        &plugin,
        "siem-a",
        &[&base],
        credentials(oauth_creds(&oauth, &base)),
    );
    let config = link_config(&base);

    let first = b.sandbox.poll(&config, None).await.unwrap();
    assert!(first.more);
    assert_eq!(oauth.token_requests(), 1);
    let old = oauth.last_token().unwrap();

    // The authorization server revokes the token: the next request gets 401
    // `WWW-Authenticate: Bearer error="invalid_token"`.
    oauth.revoke_all();
    let (rest, _, batches) = poll_follow(&b.sandbox, &config, first.cursor.clone(), 50).await;

    assert_eq!(first.events.len() + rest.len(), 100);
    assert_eq!(batches, 4);
    assert_eq!(oauth.token_requests(), 2, "exactly one refresh");
    let new = oauth.last_token().unwrap();
    assert_ne!(old, new);
    let pages = api.log().requests_to("/alerts");
    assert_eq!(
        pages.len(),
        6,
        "5 pages + the one rejected request, retried once"
    );
    let rejected: Vec<_> = pages
        .iter()
        .filter(|p| p.header("authorization") == Some(format!("Bearer {old}").as_str()))
        .collect();
    assert_eq!(
        rejected.len(),
        2,
        "page 1 and the rejected attempt at page 2"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn follows_cursor_pagination_with_a_bearer_token() {
    let api = portcullis_e2e::paged_api(PagedApiConfig {
        auth: Auth::Bearer("static-token-0123456789".into()),
        ..PagedApiConfig::default()
    });
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, REST_GENERIC).await;
    let creds = credentials(
        json!({"api": {"kind": "bearer", "token": "static-token-0123456789", "hosts": [base]}}),
    );
    let b = bind(&plugin, "feed", &[&base], creds);
    let config = json!({
        "base_url": base,
        "path": "/events",
        "records": "/data",
        "id": "/id",
        "time": "/created_at",
        "pagination": {"type": "cursor", "param": "cursor", "next": "/meta/next_cursor"},
        "page_size": 30,
        "page_size_param": "limit",
        "credential": "api",
        "kind": "indicator"
    });
    let (events, _, batches) = poll_follow(&b.sandbox, &config, None, 50).await;
    assert_eq!(events.len(), 100);
    assert_eq!(batches, 4, "30 + 30 + 30 + 10");
    assert!(
        events
            .iter()
            .all(|e| e.kind == portcullis::event::EventKind::Indicator)
    );
    let reqs = api.log().requests_to("/events");
    assert_eq!(reqs.len(), 4);
    assert!(reqs[0].query_param("cursor").is_none());
    assert!(reqs[1..].iter().all(|r| r.query_param("cursor").is_some()));
    assert!(
        reqs.iter()
            .all(|r| r.query_param("limit").as_deref() == Some("30"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_real_nvd_records_by_offset_with_an_api_key_header() {
    let api = portcullis_e2e::nvd_api(PagedApiConfig {
        auth: Auth::ApiKeyHeader {
            name: "apiKey".into(),
            value: "nvd-key-abcdef".into(),
        },
        ..PagedApiConfig::default()
    });
    let expected = portcullis_e2e::simulators::load_nvd_dir(&portcullis_e2e::nvd_dir()).unwrap();
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, REST_GENERIC).await;
    let creds = credentials(
        json!({"api": {"kind": "api-key", "key": "nvd-key-abcdef", "header": "apiKey", "hosts": [base]}}),
    );
    let b = bind(&plugin, "nvd", &[&base], creds);
    let config = json!({
        "base_url": base,
        "path": "/rest/json/cves/2.0",
        "records": "/vulnerabilities",
        "id": "/cve/id",
        "time": "/cve/lastModified",
        "pagination": {"type": "offset", "start_param": "startIndex", "size_param": "resultsPerPage", "total": "/totalResults"},
        "page_size": 4,
        "credential": "api",
        "kind": "vulnerability",
        "observables": [{"kind": "cve", "pointer": "/cve/id"}]
    });
    let (events, _, batches) = poll_follow(&b.sandbox, &config, None, 50).await;
    assert_eq!(events.len(), expected.len());
    assert_eq!(batches, expected.len().div_ceil(4));
    let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    for cve in &expected {
        assert!(ids.contains(cve["id"].as_str().unwrap()));
    }
    assert!(ids.contains("CVE-2024-3400"));
    let reqs = api.log().requests_to("/rest/json/cves/2.0");
    let starts: Vec<String> = reqs
        .iter()
        .map(|r| r.query_param("startIndex").unwrap())
        .collect();
    assert_eq!(starts[0], "0");
    assert_eq!(starts[1], "4");
    assert!(
        reqs.iter()
            .all(|r| r.header("apikey") == Some("nvd-key-abcdef"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn next_window_starts_from_the_saved_cursor() {
    let api = portcullis_e2e::paged_api(PagedApiConfig::default());
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, REST_GENERIC).await;
    let b = bind(&plugin, "feed", &[&base], Default::default());
    let mut config = link_config(&base);
    config.as_object_mut().unwrap().remove("credential");
    config["window"] = json!({"param": "since", "initial": "2023-12-01T00:00:00Z"});
    config["page_size"] = json!(50);

    let (first, cursor, _) = poll_follow(&b.sandbox, &config, None, 50).await;
    assert_eq!(first.len(), 100);
    let first_reqs = api.log().requests_to("/alerts");
    assert_eq!(
        first_reqs[0].query_param("since").as_deref(),
        Some("2023-12-01T00:00:00Z")
    );

    api.append_generated(10);
    api.log().clear();
    let (second, _, _) = poll_follow(&b.sandbox, &config, cursor, 50).await;
    let new_ids: HashSet<&str> = second.iter().map(|e| e.id.as_str()).collect();
    for i in 101..=110 {
        assert!(
            new_ids.contains(format!("rec-{i:06}").as_str()),
            "rec {i} missing"
        );
    }
    // The window starts at the newest record seen, so at most that one record repeats.
    assert!(second.len() <= 11, "got {} events", second.len());
    let since = api.log().requests_to("/alerts")[0]
        .query_param("since")
        .unwrap();
    assert!(since.starts_with("2024-01-0"), "since = {since}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_test_reports_auth_and_sample_stages() {
    let api = portcullis_e2e::paged_api(PagedApiConfig {
        auth: Auth::Bearer("good-token-xyz-0001".into()),
        ..PagedApiConfig::default()
    });
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, REST_GENERIC).await;
    let config = link_config(&base);

    let good = bind(
        &plugin,
        "c",
        &[&base],
        credentials(
            json!({"api": {"kind": "bearer", "token": "good-token-xyz-0001", "hosts": [base]}}),
        ),
    );
    let report = good.sandbox.test_connection(&config).await.unwrap();
    assert!(report.ok, "{report:?}");
    let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"auth") && names.contains(&"sample"),
        "{names:?}"
    );
    assert!(!report.sample.is_empty() && report.sample.len() <= 3);
    assert_eq!(
        api.log().requests_to("/alerts").len(),
        1,
        "one small sample query"
    );

    let bad = bind(
        &plugin,
        "c",
        &[&base],
        credentials(
            json!({"api": {"kind": "bearer", "token": "wrong-token-0000", "hosts": [base]}}),
        ),
    );
    let report = bad.sandbox.test_connection(&config).await.unwrap();
    assert!(!report.ok);
    let auth = report.stages.iter().find(|s| s.name == "auth").unwrap();
    assert!(!auth.ok);
    assert!(
        auth.message.contains("401") || auth.message.to_lowercase().contains("invalid"),
        "{}",
        auth.message
    );
    assert!(report.sample.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_reports_every_bad_field_with_its_path() {
    let rt = runtime(true);
    let plugin = load(&rt, REST_GENERIC).await;
    let b = bind(&plugin, "c", &[], Default::default());

    // Schema-level: wrong types and a missing required field.
    let errors = b
        .sandbox
        .validate_config(&json!({"path": 5, "page_size": "ten"}))
        .await
        .unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"/path"), "{errors:?}");
    assert!(paths.contains(&"/page_size"), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.message.contains("base_url")),
        "{errors:?}"
    );

    // Semantic: a JSON Pointer without its leading slash, an undeclared slot.
    let errors = b
        .sandbox
        .validate_config(&json!({
            "base_url": "https://api.example.com",
            "path": "/x",
            "records": "data",
            "id": "/id",
            "credential": "nope"
        }))
        .await
        .unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"/records"), "{errors:?}");
    assert!(paths.contains(&"/credential"), "{errors:?}");

    let ok = b
        .sandbox
        .validate_config(&link_config("https://api.example.com"))
        .await
        .unwrap();
    assert!(ok.is_empty(), "{ok:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_come_back_typed() {
    use portcullis::runtime::PluginError;
    use portcullis_e2e::simulators::Failure;
    let api = portcullis_e2e::paged_api(PagedApiConfig::default());
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, REST_GENERIC).await;
    let b = bind(&plugin, "c", &[&base], Default::default());
    let mut config = link_config(&base);
    config.as_object_mut().unwrap().remove("credential");

    api.fail_next(Failure::RateLimited {
        retry_after_secs: 7,
    });
    match b.sandbox.poll(&config, None).await {
        Err(portcullis::CallError::Plugin(PluginError::RateLimited {
            retry_after_secs, ..
        })) => {
            assert_eq!(retry_after_secs, Some(7))
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    api.fail_next(Failure::ServerError);
    match b.sandbox.poll(&config, None).await {
        Err(portcullis::CallError::Plugin(PluginError::Upstream { status, .. })) => {
            assert_eq!(status, Some(500))
        }
        other => panic!("expected upstream error, got {other:?}"),
    }
    api.fail_next(Failure::Status {
        status: 200,
        body: "this is not json".into(),
    });
    match b.sandbox.poll(&config, None).await {
        Err(portcullis::CallError::Plugin(PluginError::Parse { .. })) => {}
        other => panic!("expected parse error, got {other:?}"),
    }
    // Nothing was lost: the next poll starts the window from the beginning.
    let batch = b.sandbox.poll(&config, None).await.unwrap();
    assert_eq!(batch.events.len(), 20);
}
