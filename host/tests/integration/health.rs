//! Health, host-side upstream behaviour and metrics in the real host (scheduler, pipeline,
//! health monitor and worker) with the real `rest-generic` plugin against the `PagedApi`
//! simulator, and the `trap` guest for crash loops:
//!
//! - upstream faults on one connector — `429` with `Retry-After` and `X-RateLimit-*`, a
//!   `503` burst, timeouts, `401`, malformed JSON — each turn up as the right reason code,
//!   the connector recovers once the fault is gone, and a second connector polling its own
//!   upstream meanwhile stays healthy and keeps delivering;
//! - no retry storm while rate limited or refused;
//! - the transition history over REST and GraphQL, `/metrics` checked by the Prometheus
//!   project's own parser, per-connector figures;
//! - the crash-loop policy: auto-disable (audited with the reason), or only reported when
//!   an admin switched it to `ignore`.
//!
//! Waiting is by polling the API for a state with a generous upper bound; nothing asserts
//! how long anything took.

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use portcullis::api::AppState;
use portcullis::server::{ServerConfig, start};
use portcullis_e2e::artifacts::{REST_GENERIC, TRAP};
use portcullis_e2e::simulators::{Auth, Failure, PagedApi, PagedApiConfig, RateLimit};
use serde_json::{Value, json};

use crate::app::{self, ADMIN, call, call_as};
use crate::pytools;

const ORG: &str = "acme";
/// Upper bound for any one wait (the machine may be loaded by other tests).
const PATIENCE: Duration = Duration::from_secs(120);

/// Fast schedules (`PT10S` → 100 ms) and short holds so faults come and go quickly.
fn config(dir: &Path) -> ServerConfig {
    let plugins = dir.join("bundled");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(REST_GENERIC, plugins.join("rest-generic.wasm")).unwrap();
    std::fs::copy(TRAP, plugins.join("trap.wasm")).unwrap();
    let mut c = ServerConfig {
        data_dir: dir.join("data"),
        plugin_dir: plugins,
        allow_private_networks: true,
        ..ServerConfig::default()
    };
    c.ingest.schedule_scale = 0.01;
    c.limits.call_timeout_secs = 1;
    c.health.backoff_base_secs = 0.05;
    c.health.backoff_max_secs = 0.4;
    c.health.auth_retry_secs = 0.3;
    c.health.auth_retry_max_secs = 1.0;
    c.health.window_secs = 3.0;
    c.health.probe_interval_secs = 0.0;
    c
}

fn feed_config(base: &str) -> Value {
    json!({
        "base_url": base,
        "path": "/alerts",
        "records": "",
        "id": "/id",
        "time": "/created_at",
        "pagination": {"type": "link-header"},
        "page_size": 50,
        "page_size_param": "per_page",
        "window": {"param": "since", "initial": "2023-12-01T00:00:00Z"}
    })
}

/// A `PagedApi` that reports `X-RateLimit-*` on every answer (never enforcing a limit
/// itself: the test injects the `429`s).
fn upstream() -> PagedApi {
    portcullis_e2e::paged_api(PagedApiConfig {
        rate_limit: Some(RateLimit {
            limit: 1_000_000,
            window: Duration::from_secs(60),
            enforce: false,
        }),
        ..PagedApiConfig::default()
    })
}

async fn create_org(state: &AppState) {
    let r = call(
        state,
        "POST",
        "/v1/orgs",
        Some(ADMIN),
        Some(json!({"id": ORG, "name": ORG})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

async fn create(state: &AppState, body: Value) -> String {
    let r = call(
        state,
        "POST",
        &format!("/v1/orgs/{ORG}/connectors"),
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn feed(state: &AppState, name: &str, api: &PagedApi) -> String {
    create(
        state,
        json!({
            "name": name,
            "plugin": "rest-generic",
            "config": feed_config(&api.base_url()),
            "grants": [api.base_url()],
            "schedule": "PT10S",
            "enabled": true,
        }),
    )
    .await
}

async fn health(state: &AppState, id: &str) -> Value {
    let r = call_as(
        state,
        "GET",
        &format!("/v1/orgs/{ORG}/connectors/{id}/health?limit=200"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn stored(state: &AppState, id: &str) -> usize {
    let r = call_as(
        state,
        "GET",
        &format!("/v1/orgs/{ORG}/events?connector={id}&limit=1000"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().unwrap().len()
}

/// Wait until the connector's health has `state` and (if given) the reason `code`;
/// returns the health view.
async fn wait_health(state: &AppState, id: &str, want: &str, code: Option<&str>) -> Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let h = health(state, id).await;
        let reasons: Vec<&str> = h["health"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        if h["health"]["state"] == want && code.is_none_or(|c| reasons.contains(&c)) {
            return h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {want}/{code:?}: {h:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn detail<'a>(h: &'a Value, code: &str) -> &'a Value {
    h["health"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {h:#}"))
}

fn alerts(api: &PagedApi) -> usize {
    api.log().requests_to("/alerts").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_faults_show_the_right_reason_recover_and_leave_others_alone() {
    let tmp = portcullis_e2e::temp_dir();
    let started = start(&config(tmp.path()), Some(ADMIN)).await.unwrap();
    let state = started.state.clone();
    create_org(&state).await;
    let faulty_api = upstream();
    let steady_api = upstream();
    let faulty = feed(&state, "faulty", &faulty_api).await;
    let steady = feed(&state, "steady", &steady_api).await;
    wait_health(&state, &faulty, "healthy", None).await;
    wait_health(&state, &steady, "healthy", None).await;
    wait_until("the first 100 records of both", || async {
        stored(&state, &faulty).await == 100 && stored(&state, &steady).await == 100
    })
    .await;

    // 429 with Retry-After (and X-RateLimit-*): RATE_LIMITED at once, with `until`; the
    // scheduler holds off until then (at most the one poll that ends the hold).
    faulty_api.fail_next(Failure::RateLimited {
        retry_after_secs: 2,
    });
    let h = wait_health(&state, &faulty, "degraded", Some("RATE_LIMITED")).await;
    let until = detail(&h, "RATE_LIMITED")["until"].as_str().unwrap();
    assert!(until.ends_with('Z'), "{until}");
    let at_429 = alerts(&faulty_api);
    wait_health(&state, &faulty, "healthy", None).await;
    assert!(
        alerts(&faulty_api) <= at_429 + 2,
        "polled {} times while rate limited",
        alerts(&faulty_api) - at_429
    );

    // A 503 burst: one 503 changes nothing visible (hysteresis), a burst degrades with
    // the status, and it recovers after the burst.
    faulty_api.fail_next_n(
        4,
        Failure::Status {
            status: 503,
            body: r#"{"message": "Service Unavailable"}"#.into(),
        },
    );
    let h = wait_health(&state, &faulty, "degraded", Some("UPSTREAM_ERROR")).await;
    assert_eq!(detail(&h, "UPSTREAM_ERROR")["status"], 503);
    wait_until("the burst served", || async {
        faulty_api.pending_failures() == 0
    })
    .await;
    wait_health(&state, &faulty, "healthy", None).await;

    // Timeouts: the upstream answers after the call's deadline.
    faulty_api.fail_next_n(3, Failure::Delay(Duration::from_secs(3)));
    wait_health(&state, &faulty, "degraded", Some("TIMEOUT")).await;
    wait_until("the slow answers served", || async {
        faulty_api.pending_failures() == 0
    })
    .await;
    wait_health(&state, &faulty, "healthy", None).await;

    // 401: AUTH_FAILED at once (failing), held off with a growing wait rather than
    // hammered; recovers once the upstream accepts requests again.
    faulty_api.set_auth(Auth::Bearer("a-token-the-connector-does-not-have".into()));
    let h = wait_health(&state, &faulty, "failing", Some("AUTH_FAILED")).await;
    assert_eq!(detail(&h, "AUTH_FAILED")["status"], 401);
    let refused_from = alerts(&faulty_api);
    wait_until("two more refused attempts", || async {
        alerts(&faulty_api) >= refused_from + 2
    })
    .await;
    let h = health(&state, &faulty).await;
    assert_eq!(h["health"]["state"], "failing");
    assert!(h["consecutive_failures"].as_u64().unwrap() >= 3, "{h:#}");
    faulty_api.set_auth(Auth::None);
    wait_health(&state, &faulty, "healthy", None).await;

    // Malformed JSON from the upstream: PARSE_ERRORS with the rate and a sample.
    faulty_api.fail_next_n(
        4,
        Failure::Status {
            status: 200,
            body: "{\"records\": [ oops".into(),
        },
    );
    let h = wait_health(&state, &faulty, "degraded", Some("PARSE_ERRORS")).await;
    let parse = detail(&h, "PARSE_ERRORS");
    assert!(
        parse["sample"].as_str().unwrap().contains("not valid JSON"),
        "{parse}"
    );
    let rate = parse["rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 1.0, "{parse}");
    wait_until("the malformed answers served", || async {
        faulty_api.pending_failures() == 0
    })
    .await;
    // Recovery: back to healthy once the window no longer holds enough parse failures.
    wait_health(&state, &faulty, "healthy", None).await;

    // New records still flow into the faulty connector after everything.
    faulty_api.append_generated(5);
    wait_until("the 5 new records", || async {
        stored(&state, &faulty).await == 105
    })
    .await;

    // Every fault is in the history, newest first, each followed by a recovery.
    let h = health(&state, &faulty).await;
    let transitions = h["transitions"].as_array().unwrap();
    let seen: Vec<String> = transitions
        .iter()
        .rev()
        .map(|t| {
            format!(
                "{}:{}",
                t["to"].as_str().unwrap(),
                t["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join("+")
            )
        })
        .collect();
    for needle in [
        "degraded:RATE_LIMITED",
        "degraded:UPSTREAM_ERROR",
        "degraded:TIMEOUT",
        "failing:AUTH_FAILED",
        "degraded:PARSE_ERRORS",
    ] {
        assert!(seen.iter().any(|s| s == needle), "{needle} not in {seen:?}");
    }
    assert_eq!(seen.last().unwrap(), "healthy:", "{seen:?}");
    assert!(
        transitions
            .windows(2)
            .all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str()),
        "newest first"
    );

    // The other connector never noticed: healthy since its first poll, still delivering.
    let h = health(&state, &steady).await;
    assert_eq!(h["health"]["state"], "healthy", "{h:#}");
    let steady_states: Vec<&str> = h["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(steady_states, ["healthy"], "{h:#}");
    steady_api.append_generated(7);
    wait_until("the steady connector's 7 new records", || async {
        stored(&state, &steady).await == 107
    })
    .await;

    // The same through GraphQL.
    let q = format!(
        r#"{{ connector(org: "{ORG}", id: "{faulty}") {{
            health {{ state reasons details {{ code fields }} }}
            healthHistory(limit: 100) {{ from to reasons }}
            metrics {{ eventsPerMinute lastEvent pollLatencyP50Ms pollLatencyP99Ms errors }}
            crashLoopPolicy
        }} }}"#
    );
    let r = call(
        &state,
        "POST",
        "/graphql",
        Some(ADMIN),
        Some(json!({ "query": q })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("errors").is_none(), "{}", r.body);
    let c = &r.body["data"]["connector"];
    assert_eq!(c["health"]["state"], "HEALTHY");
    assert_eq!(c["crashLoopPolicy"], "DISABLE");
    let history = c["healthHistory"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|t| t["to"] == "FAILING" && t["reasons"][0] == "AUTH_FAILED"),
        "{history:?}"
    );
    assert!(c["metrics"]["lastEvent"].is_string(), "{c}");
    assert!(
        c["metrics"]["eventsPerMinute"].as_f64().unwrap() > 0.0,
        "{c}"
    );
    let errors = &c["metrics"]["errors"];
    for code in [
        "RATE_LIMITED",
        "UPSTREAM_ERROR",
        "TIMEOUT",
        "AUTH_FAILED",
        "PARSE_ERRORS",
    ] {
        assert!(errors[code].as_u64().unwrap_or(0) >= 1, "{code}: {errors}");
    }

    // Per-connector figures over REST.
    let r = call_as(
        &state,
        "GET",
        &format!("/v1/orgs/{ORG}/connectors/{steady}/metrics"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let m = &r.body;
    assert_eq!(m["events_out"], 107, "{m}");
    // In: what the plugin returned, the window's re-served boundary record included.
    assert_eq!(
        m["events_in"].as_u64().unwrap(),
        107 + m["duplicates_dropped"].as_u64().unwrap(),
        "{m}"
    );
    assert!(m["events_per_minute"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["last_event"].is_string(), "{m}");
    let lat = &m["poll_latency_ms"];
    assert!(lat["samples"].as_u64().unwrap() >= 2, "{m}");
    assert!(
        lat["p50"].as_f64().unwrap() <= lat["p99"].as_f64().unwrap(),
        "{m}"
    );
    assert!(m["errors"].as_object().unwrap().is_empty(), "{m}");

    // /metrics: valid Prometheus text (the Prometheus client's own parser), labelled by
    // org, connector and plugin, covering exactly the configured connectors.
    let text = metrics_text(&state, ADMIN).await;
    let samples = prometheus_samples(&text);
    let value = |name: &str, connector: &str, extra: Option<(&str, &str)>| -> f64 {
        samples
            .iter()
            .find(|s| {
                s["name"] == name
                    && s["labels"]["connector"] == connector
                    && extra.is_none_or(|(k, v)| s["labels"][k] == v)
            })
            .unwrap_or_else(|| panic!("no {name} for {connector}"))["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(value("portcullis_events_out_total", &steady, None), 107.0);
    assert!(value("portcullis_duplicates_dropped_total", &steady, None) >= 0.0);
    assert!(
        value(
            "portcullis_errors_total",
            &faulty,
            Some(("reason", "AUTH_FAILED"))
        ) >= 1.0
    );
    assert_eq!(
        value(
            "portcullis_connector_health",
            &faulty,
            Some(("state", "healthy"))
        ),
        1.0
    );
    assert!(value("portcullis_poll_duration_seconds_count", &faulty, None) >= 10.0);
    assert!(value("portcullis_last_event_timestamp_seconds", &steady, None) > 1.7e9);
    let connectors: std::collections::BTreeSet<&str> = samples
        .iter()
        .filter_map(|s| s["labels"]["connector"].as_str())
        .collect();
    assert_eq!(
        connectors,
        [faulty.as_str(), steady.as_str()].into_iter().collect()
    );
    assert!(
        samples
            .iter()
            .filter(|s| s["labels"]["connector"].is_string())
            .all(|s| s["labels"]["org"] == ORG && s["labels"]["plugin"] == "rest-generic")
    );
}

async fn metrics_text(state: &AppState, token: &str) -> String {
    let r = call_as(state, "GET", "/metrics", token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.content_type.starts_with("text/plain"),
        "{}",
        r.content_type
    );
    r.body.as_str().unwrap().to_string()
}

/// Every sample, as the Prometheus client library parses the text.
fn prometheus_samples(text: &str) -> Vec<Value> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let out = pytools::run_tool("check_prometheus.py", &[file.path().as_os_str()]);
    serde_json::from_str::<Vec<Value>>(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_loop_disables_the_connector_unless_an_admin_switched_the_policy_off() {
    let tmp = portcullis_e2e::temp_dir();
    let started = start(&config(tmp.path()), Some(ADMIN)).await.unwrap();
    let state = started.state.clone();
    create_org(&state).await;
    let body = |name: &str, enabled: bool| json!({"name": name, "plugin": "trap", "schedule": "PT10S", "enabled": enabled});
    // Switched to `ignore` before it runs: only reported.
    let tolerated = create(&state, body("tolerated", false)).await;
    let r = call(
        &state,
        "PATCH",
        &format!("/v1/orgs/{ORG}/connectors/{tolerated}"),
        Some(ADMIN),
        Some(json!({"crash_loop_policy": "ignore"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["crash_loop_policy"], "ignore");
    assert_eq!(r.body["revision"], 1, "not a configuration revision");
    let r = call(
        &state,
        "PATCH",
        &format!("/v1/orgs/{ORG}/connectors/{tolerated}"),
        Some(ADMIN),
        Some(json!({"crash_loop_policy": "sometimes"})),
    )
    .await;
    assert_eq!(r.status.as_u16() / 100, 4, "{}", r.body);
    let r = call_as(
        &state,
        "POST",
        &format!("/v1/orgs/{ORG}/connectors/{tolerated}/enable"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let looping = create(&state, body("looping", true)).await;
    let h = wait_health(&state, &looping, "disabled", Some("CRASH_LOOP")).await;
    let crash = detail(&h, "CRASH_LOOP");
    assert!(crash["failures"].as_u64().unwrap() >= 5, "{crash}");
    assert!(
        crash["last_error"].as_str().unwrap().contains("trap"),
        "{crash}"
    );
    let r = call_as(
        &state,
        "GET",
        &format!("/v1/orgs/{ORG}/connectors/{looping}"),
        ADMIN,
    )
    .await;
    assert_eq!(r.body["enabled"], false, "{}", r.body);
    // Audited with the reason, by the health monitor.
    let r = call_as(&state, "GET", &format!("/v1/orgs/{ORG}/audit"), ADMIN).await;
    let audit = r.body["items"].as_array().unwrap();
    let disable = audit
        .iter()
        .find(|a| {
            a["action"] == "connector.disable" && a["target"] == format!("connector/{looping}")
        })
        .unwrap_or_else(|| panic!("no disable record: {audit:?}"));
    assert!(
        disable["actor"]
            .as_str()
            .unwrap()
            .contains("health monitor"),
        "{disable}"
    );
    assert_eq!(disable["detail"]["reason"], "crash loop", "{disable}");
    assert!(
        disable["detail"]["last_error"]
            .as_str()
            .unwrap()
            .contains("trap")
    );

    // The tolerated one keeps running, failing with PLUGIN_TRAP, its loop only audited.
    wait_health(&state, &tolerated, "failing", Some("PLUGIN_TRAP")).await;
    wait_until("the ignored crash loop audited", || async {
        let r = call_as(&state, "GET", &format!("/v1/orgs/{ORG}/audit"), ADMIN).await;
        r.body["items"].as_array().unwrap().iter().any(|a| {
            a["action"] == "connector.crash_loop" && a["target"] == format!("connector/{tolerated}")
        })
    })
    .await;
    let r = call_as(
        &state,
        "GET",
        &format!("/v1/orgs/{ORG}/connectors/{tolerated}"),
        ADMIN,
    )
    .await;
    assert_eq!(r.body["enabled"], true, "{}", r.body);

    // Re-enabling starts from a clean slate.
    let r = call_as(
        &state,
        "POST",
        &format!("/v1/orgs/{ORG}/connectors/{looping}/enable"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["health"]["state"], "unknown", "{}", r.body);

    // An org token sees only its org's series on /metrics; another org's token none of them.
    let r = call(
        &state,
        "POST",
        "/v1/orgs",
        Some(ADMIN),
        Some(json!({"id": "other", "name": "other"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = call(
        &state,
        "POST",
        "/v1/orgs/other/tokens",
        Some(ADMIN),
        Some(json!({"name": "viewer", "role": "viewer"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let other_token = r.body["token"].as_str().unwrap().to_string();
    let text = metrics_text(&state, &other_token).await;
    assert!(!text.contains(&looping) && !text.contains(ORG), "{text}");
    let r = call(&state, "GET", "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_its_history_survive_a_restart() {
    let tmp = portcullis_e2e::temp_dir();
    let cfg = config(tmp.path());
    let api = upstream();
    let host = app::serve_config(&cfg).await;
    create_org(&host.state).await;
    let id = feed(&host.state, "feed", &api).await;
    wait_health(&host.state, &id, "healthy", None).await;
    api.set_auth(Auth::Bearer("not-the-connectors".into()));
    wait_health(&host.state, &id, "failing", Some("AUTH_FAILED")).await;
    let before = health(&host.state, &id).await["transitions"].clone();
    host.stop().await;

    // The same data directory in a fresh host: the persisted health shows at once, the
    // history is intact, and the still-refused polls do not add a transition.
    let host = app::serve_config(&cfg).await;
    let h = health(&host.state, &id).await;
    assert_eq!(h["health"]["state"], "failing", "{h:#}");
    assert_eq!(h["health"]["reasons"][0], "AUTH_FAILED", "{h:#}");
    assert_eq!(h["transitions"], before);
    let polled = alerts(&api);
    wait_until("refused polls after the restart", || async {
        alerts(&api) > polled
    })
    .await;
    let h = health(&host.state, &id).await;
    assert_eq!(h["transitions"], before, "no news, no transition");
    api.set_auth(Auth::None);
    wait_health(&host.state, &id, "healthy", None).await;
    let h = health(&host.state, &id).await;
    assert_eq!(
        h["transitions"].as_array().unwrap().len(),
        before.as_array().unwrap().len() + 1
    );
    host.stop().await;
}
