//! Sinks: the HTTP forward sink against the ThreatHawk simulator's `POST /v1/events`
//! (gzip, `Idempotency-Key` per batch, OAuth client credentials, backoff on 429 with
//! `Retry-After` and on 503, no duplicate acceptance on retry or redelivery, 4xx
//! rejected), a slow forward sink holding the delivery pipeline instead of queueing, the
//! per-org sink API (validation, event-store default, write-only secrets) and NDJSON
//! files written through a running host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use portcullis::broker::ip_policy::IpPolicy;
use portcullis::broker::oauth::OAuthTokenCache;
use portcullis::event::Event;
use portcullis::ingest::delivery::{Pipeline, PipelineConfig, StaticSinks};
use portcullis::ingest::event_store::{EventStore, Retention};
use portcullis::ingest::sink::{EventSink, SinkBatch, SinkError};
use portcullis::ingest::sinks::http_forward::{
    BodyFormat, ForwardAuth, ForwardSettings, HttpForwardSink, RetryPolicy,
};
use portcullis::management::model::ConnectorRecord;
use portcullis::store::{KvStore, SledStore};
use portcullis_e2e::simulators::{
    EVENTS_SCOPE, Failure, OAuthConfig, ThreatHawkConfig, ThreatHawkServer,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::app::{ADMIN, call, call_as};

fn threathawk() -> ThreatHawkServer {
    let oauth = OAuthConfig {
        scopes: vec!["alerts:read".into(), EVENTS_SCOPE.into()],
        ..OAuthConfig::default()
    };
    ThreatHawkServer::start(ThreatHawkConfig {
        oauth,
        ..ThreatHawkConfig::default()
    })
    .unwrap()
}

fn sink(sim: &ThreatHawkServer, batch_max_events: usize, max_attempts: u32) -> HttpForwardSink {
    HttpForwardSink::new(
        ForwardSettings {
            name: "threathawk".into(),
            url: url::Url::parse(&sim.events_url()).unwrap(),
            format: BodyFormat::ThreatHawk,
            batch_max_events,
            gzip: true,
            timeout: Duration::from_secs(10),
            auth: ForwardAuth::OAuth2 {
                token_url: url::Url::parse(&sim.token_url()).unwrap(),
                client_id: sim.oauth().client_id(),
                client_secret: SecretString::from(sim.oauth().client_secret()),
                scopes: vec![EVENTS_SCOPE.into()],
            },
            retry: RetryPolicy {
                max_attempts,
                ..RetryPolicy::default()
            },
        },
        IpPolicy {
            allow_private_networks: true,
        },
        Arc::new(OAuthTokenCache::new()),
    )
    .unwrap()
}

fn event(prefix: &str, i: usize) -> Event {
    serde_json::from_value(json!({
        "id": format!("{prefix}-{i}"),
        "time": "2025-02-10T00:00:00Z",
        "kind": "alert",
        "severity_id": 4,
        "severity": "High",
        "title": format!("alert {i}"),
        "source": "con_fw",
        "observables": [{"type": "ip", "value": "203.0.113.9"}],
        "attributes": {"n": i},
        "raw": "{}",
    }))
    .unwrap()
}

fn batch(id: &str, n: usize) -> SinkBatch {
    SinkBatch {
        org: "acme".into(),
        connector_id: "con_fw".into(),
        batch_id: id.into(),
        events: (0..n).map(|i| event(id, i)).collect(),
    }
}

#[tokio::test]
async fn forward_posts_gzip_batches_with_idempotency_keys_and_redelivery_is_not_accepted_twice() {
    let sim = threathawk();
    let sink = sink(&sim, 2, 3);
    sink.deliver(&batch("b1", 5)).await.unwrap();
    let reqs = sim.ingest_requests();
    assert_eq!(reqs.len(), 3, "5 events in requests of at most 2");
    let keys: Vec<&str> = reqs
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(keys, vec!["b1-0", "b1-1", "b1-2"]);
    for r in &reqs {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(&r.body[..2], &[0x1f, 0x8b], "gzip magic");
        assert!(r.header("authorization").unwrap().starts_with("Bearer "));
    }
    let got = sim.ingested_events();
    assert_eq!(got.len(), 5);
    assert_eq!(got[0]["timestamp"], "2025-02-10T00:00:00Z");
    assert_eq!(got[0]["source"], "con_fw");
    assert_eq!(got[0]["event_type"], "alert");
    assert_eq!(got[0]["payload"]["id"], "b1-0");
    assert_eq!(got[4]["payload"]["observables"][0]["value"], "203.0.113.9");
    // The pipeline redelivers the same batch after a crash: same keys, nothing new.
    sink.deliver(&batch("b1", 5)).await.unwrap();
    assert_eq!(sim.ingested_events().len(), 5);
    assert_eq!(sim.idempotent_replays(), 3);
    assert_eq!(sim.oauth().tokens_issued(), 1, "the access token is cached");
}

#[tokio::test]
async fn forward_backs_off_on_429_honouring_retry_after_and_on_503_without_duplicates() {
    let sim = threathawk();
    let sink = sink(&sim, 100, 5);
    sim.fail_next(Failure::RateLimited {
        retry_after_secs: 2,
    });
    sim.fail_next(Failure::Status {
        status: 503,
        body: json!({"error": "unavailable", "message": "maintenance"}).to_string(),
    });
    let started = Instant::now();
    sink.deliver(&batch("b2", 3)).await.unwrap();
    // Retry-After: 2 was honoured (a lower bound of a sleep, not a speed claim).
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let reqs = sim.ingest_requests();
    assert_eq!(reqs.len(), 3, "429, 503, then 202");
    assert!(
        reqs.iter()
            .all(|r| r.header("idempotency-key") == Some("b2"))
    );
    assert!(
        reqs.windows(2).all(|w| w[0].body == w[1].body),
        "the same body on every retry"
    );
    assert_eq!(sim.ingested_events().len(), 3);
}

#[tokio::test]
async fn forward_rejects_4xx_and_reports_unavailable_after_max_attempts() {
    let sim = threathawk();
    let sink = sink(&sim, 100, 2);
    sim.fail_next(Failure::Status {
        status: 400,
        body: json!({"error": "bad_request", "message": "bad", "fields": ["[0].payload"]})
            .to_string(),
    });
    let e = sink.deliver(&batch("b3", 1)).await.unwrap_err();
    assert!(matches!(e, SinkError::Rejected { .. }), "{e}");
    assert_eq!(sim.ingest_requests().len(), 1, "a 4xx is not retried");
    sim.fail_next(Failure::ServerError);
    sim.fail_next(Failure::ServerError);
    let e = sink.deliver(&batch("b4", 1)).await.unwrap_err();
    assert!(matches!(e, SinkError::Unavailable { .. }), "{e}");
    assert_eq!(sim.ingest_requests().len(), 3);
    assert!(sim.ingested_events().is_empty());
    // The simulator's own checks: a body without the required fields is a 400.
    let plain = HttpForwardSink::new(
        ForwardSettings {
            name: "plain".into(),
            url: url::Url::parse(&sim.events_url()).unwrap(),
            format: BodyFormat::Unified,
            batch_max_events: 10,
            gzip: false,
            timeout: Duration::from_secs(5),
            auth: ForwardAuth::Bearer(SecretString::from("not-a-token".to_string())),
            retry: RetryPolicy::default(),
        },
        IpPolicy {
            allow_private_networks: true,
        },
        Arc::new(OAuthTokenCache::new()),
    )
    .unwrap();
    let e = plain.deliver(&batch("b5", 1)).await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
}

#[tokio::test]
async fn forward_refuses_private_targets_unless_allowed() {
    let sim = threathawk();
    let e = HttpForwardSink::new(
        ForwardSettings {
            name: "x".into(),
            url: url::Url::parse(&sim.events_url()).unwrap(),
            format: BodyFormat::Unified,
            batch_max_events: 10,
            gzip: false,
            timeout: Duration::from_secs(5),
            auth: ForwardAuth::None,
            retry: RetryPolicy::default(),
        },
        IpPolicy::default(),
        Arc::new(OAuthTokenCache::new()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
}

fn record(id: &str) -> ConnectorRecord {
    serde_json::from_value(json!({
        "id": id, "org": "acme", "name": id,
        "plugin": {"id": "cef-leef", "version": "1"},
        "config": {}, "credentials": {}, "grants": [], "schedule": "PT1M",
        "enabled": true,
        "health": {"state": "healthy", "reasons": [], "since": "2025-01-01T00:00:00Z"},
        "revision": 1,
        "created_at": "2025-01-01T00:00:00Z", "created_by": "t",
        "updated_at": "2025-01-01T00:00:00Z", "updated_by": "t"
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_forward_sink_holds_deliveries_instead_of_queueing_them() {
    let sim = threathawk();
    sim.set_ingest_delay(Duration::from_millis(400));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let es = Arc::new(EventStore::open(store.clone(), Retention::default()).unwrap());
    let pipeline = Arc::new(Pipeline::new(
        store,
        es,
        PipelineConfig {
            max_inflight_batches: 1,
            ..PipelineConfig::default()
        },
    ));
    let forward: Arc<dyn EventSink> = Arc::new(sink(&sim, 1000, 3));
    pipeline.set_sink_resolver(Arc::new(StaticSinks(vec![forward])));
    let connectors: Vec<String> = (0..4).map(|i| format!("con_{i}")).collect();
    for c in &connectors {
        pipeline.open_gate("acme", c).await;
    }
    let mut tasks = Vec::new();
    for c in &connectors {
        let (p, rec) = (pipeline.clone(), record(c));
        let events: Vec<Event> = (0..50).map(|i| event(c, i)).collect();
        tasks.push(tokio::spawn(
            async move { p.deliver_pushed(&rec, events).await },
        ));
    }
    // While the SIEM is slow, one batch is in the sink and the others wait for a slot:
    // their producers are paused, nothing piles up inside the sink.
    let mut saw_waiting = false;
    for _ in 0..200 {
        let s = pipeline.stats();
        assert!(s.inflight_batches <= 1, "{s:?}");
        if s.waiting_batches >= 1 && sim.ingest_requests().len() < 4 {
            saw_waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_waiting, "{:?}", pipeline.stats());
    for t in tasks {
        let report = t.await.unwrap().unwrap();
        assert_eq!(report.accepted, 50);
    }
    let s = pipeline.stats();
    assert!(s.max_waiting_batches <= 3, "{s:?}");
    assert_eq!(sim.ingested_events().len(), 200, "every batch once");
    assert_eq!(sim.ingest_requests().len(), 4);
}

// ---------------------------------------------------------------------------
// The per-org sink API and NDJSON through a running host.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_configuration_api() {
    let dir = tempfile::tempdir().unwrap();
    let state = crate::app::app(dir.path()).await;
    for org in ["acme", "other"] {
        let r = call(
            &state,
            "POST",
            "/v1/orgs",
            Some(ADMIN),
            Some(json!({"id": org, "name": org})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = call_as(&state, "GET", "/v1/orgs/acme/sinks", ADMIN).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"event_store": true, "sinks": []}));

    // Field errors with paths.
    let bad = json!({"sinks": [
        {"type": "ndjson", "name": "Bad Name", "max_file_mib": 0},
        {"type": "http-forward", "name": "siem", "url": "ftp://x", "batch_max_events": 20000,
         "auth": {"kind": "bearer"}},
        {"type": "http-forward", "name": "siem", "url": "http://169.254.169.254/latest", "format": "xml"}
    ]});
    let r = call(&state, "PUT", "/v1/orgs/acme/sinks", Some(ADMIN), Some(bad)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    let paths: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for p in [
        "/sinks/0/name",
        "/sinks/0/max_file_mib",
        "/sinks/1/url",
        "/sinks/1/batch_max_events",
        "/sinks/1/auth/token",
        "/sinks/2/name",
        "/sinks/2/url",
        "/sinks/2/format",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    let r = call(
        &state,
        "PUT",
        "/v1/orgs/acme/sinks",
        Some(ADMIN),
        Some(json!({"sinks": [{"type": "kafka", "name": "k"}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Valid; the token is write-only and kept when left out.
    let good = json!({"sinks": [
        {"type": "ndjson", "name": "archive", "max_file_mib": 1, "keep_files": 2},
        {"type": "http-forward", "name": "siem", "url": "http://127.0.0.1:9/v1/events",
         "format": "threathawk", "auth": {"kind": "bearer", "token": "forward-secret-token"}}
    ]});
    let r = call(
        &state,
        "PUT",
        "/v1/orgs/acme/sinks",
        Some(ADMIN),
        Some(good),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["event_store"], true, "left out means kept on");
    assert!(!r.body.to_string().contains("forward-secret-token"));
    assert_eq!(r.body["sinks"][1]["auth"]["secret_set"], true);
    let mut again = r.body.clone();
    again["sinks"][1]["batch_max_events"] = json!(50);
    let r = call(
        &state,
        "PUT",
        "/v1/orgs/acme/sinks",
        Some(ADMIN),
        Some(again),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = call_as(&state, "GET", "/v1/orgs/acme/sinks", ADMIN).await;
    assert_eq!(r.body["sinks"][1]["batch_max_events"], 50);
    assert_eq!(r.body["sinks"][1]["auth"]["secret_set"], true);
    assert!(!r.body.to_string().contains("forward-secret-token"));
    let audit = call_as(&state, "GET", "/v1/orgs/acme/audit", ADMIN).await;
    assert!(audit.body.to_string().contains("sinks.update"));
    assert!(!audit.body.to_string().contains("forward-secret-token"));
    // Sealed at rest.
    let stored = state.service().store().get("sinks/acme").unwrap().unwrap();
    let stored = String::from_utf8(stored).unwrap();
    assert!(
        !stored.contains("forward-secret-token") && stored.contains("sealed:1:"),
        "{stored}"
    );

    // Only an explicit false turns the event store off.
    let r = call(
        &state,
        "PUT",
        "/v1/orgs/other/sinks",
        Some(ADMIN),
        Some(json!({"event_store": false})),
    )
    .await;
    assert_eq!(r.body, json!({"event_store": false, "sinks": []}));

    // Roles and tenancy.
    let t = call(
        &state,
        "POST",
        "/v1/orgs/acme/tokens",
        Some(ADMIN),
        Some(json!({"name": "v", "role": "viewer"})),
    )
    .await;
    let viewer = t.body["token"].as_str().unwrap().to_string();
    let t = call(
        &state,
        "POST",
        "/v1/orgs/other/tokens",
        Some(ADMIN),
        Some(json!({"name": "a", "role": "admin"})),
    )
    .await;
    let stranger = t.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        call_as(&state, "GET", "/v1/orgs/acme/sinks", &viewer)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &state,
            "PUT",
            "/v1/orgs/acme/sinks",
            Some(&viewer),
            Some(json!({}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call_as(&state, "GET", "/v1/orgs/acme/sinks", &stranger)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_events_reach_the_event_store_an_ndjson_file_and_a_forward_sink() {
    let dir = tempfile::tempdir().unwrap();
    let (state, id) = crate::push::host_with_push_connector(dir.path()).await;
    let sim = threathawk();
    let sinks = json!({"sinks": [
        {"type": "ndjson", "name": "archive"},
        {"type": "http-forward", "name": "siem", "url": sim.events_url(), "format": "threathawk",
         "auth": {"kind": "oauth2-client-credentials", "token_url": sim.token_url(),
                  "client_id": sim.oauth().client_id(), "client_secret": sim.oauth().client_secret(),
                  "scopes": [EVENTS_SCOPE]}}
    ]});
    let r = call(
        &state,
        "PUT",
        "/v1/orgs/acme/sinks",
        Some(ADMIN),
        Some(sinks),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = crate::push::rotate(&state, "acme", &id, ADMIN).await;
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let lines = crate::push::cef_samples();
    let r = crate::push::post(
        &state,
        &id,
        &[("x-portcullis-token", secret)],
        "text/plain",
        &lines[..4].join("\n"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let file = dir.path().join("data/sinks/acme/archive.ndjson");
    let text = std::fs::read_to_string(&file).unwrap();
    let written: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), 4);
    assert!(written.iter().all(|e| e["source"] == id.as_str()));
    assert_eq!(crate::push::stored_events(&state, &id).await.len(), 4);
    // The forward sink (its OAuth client secret sealed at rest, opened to build it).
    let got = sim.ingested_events();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|e| e["source"] == id.as_str()));
    assert_eq!(
        sim.ingest_requests()[0]
            .header("idempotency-key")
            .map(str::len),
        Some(32)
    );
}
