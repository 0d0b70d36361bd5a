//! Ingestion in the real host with the real `rest-generic` plugin against the `PagedApi`
//! simulator: polling on schedule, resuming from the saved cursor after a restart, dedup
//! across restarts, disable → silence before the call returns, a slow sink pausing
//! polling (bounded queue), the events API, and kill -9 of the real server process during
//! ingestion (no loss, no duplicate).
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use portcullis::api::AppState;
use portcullis::event::Event;
use portcullis::ingest::delivery::StaticSinks;
use portcullis::ingest::observe::{IngestObservation, IngestObserver};
use portcullis::ingest::sink::{EventSink, SinkBatch, SinkError};
use portcullis::server::ServerConfig;
use portcullis_e2e::simulators::PagedApiConfig;
use serde_json::{Value, json};

use crate::app::{self, ADMIN, call, call_as};

const ORG: &str = "acme";

/// `app::config` with schedules scaled so `PT10S` polls every `scale * 10` seconds.
fn ingest_config(dir: &Path, scale: f64) -> ServerConfig {
    let mut c = app::config(dir);
    c.ingest.schedule_scale = scale;
    c
}

/// rest-generic over the simulator's Link-header endpoint, incremental window.
fn feed_config(base: &str, page_size: usize) -> Value {
    json!({
        "base_url": base,
        "path": "/alerts",
        "records": "",
        "id": "/id",
        "time": "/created_at",
        "title": "/title",
        "pagination": {"type": "link-header"},
        "page_size": page_size,
        "page_size_param": "per_page",
        "kind": "alert",
        "severity": {"pointer": "/severity", "map": {"low": "low", "medium": "medium", "high": "high", "critical": "critical"}, "default": "unknown"},
        "observables": [{"kind": "ip", "pointer": "/src_ip"}],
        "window": {"param": "since", "initial": "2023-12-01T00:00:00Z"}
    })
}

async fn create_org(state: &AppState, org: &str) {
    let r = call(
        state,
        "POST",
        "/v1/orgs",
        Some(ADMIN),
        Some(json!({"id": org, "name": org})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

async fn create_connector(
    state: &AppState,
    name: &str,
    base: &str,
    page_size: usize,
    enabled: bool,
) -> String {
    let r = call(
        state,
        "POST",
        &format!("/v1/orgs/{ORG}/connectors"),
        Some(ADMIN),
        Some(json!({
            "name": name,
            "plugin": "rest-generic",
            "config": feed_config(base, page_size),
            "grants": [base],
            "schedule": "PT10S",
            "enabled": enabled,
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn toggle(state: &AppState, id: &str, on: bool) {
    let action = if on { "enable" } else { "disable" };
    let r = call_as(
        state,
        "POST",
        &format!("/v1/orgs/{ORG}/connectors/{id}/{action}"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// Every event of the org through the API, paging with the cursor.
async fn all_events(state: &AppState, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut uri = format!("/v1/orgs/{ORG}/events?limit=1000{query}");
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let r = call_as(state, "GET", &uri, ADMIN).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        out.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1500 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn stored(state: &AppState) -> u64 {
    state
        .ingest()
        .unwrap()
        .pipeline
        .event_store()
        .stats()
        .events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_on_schedule_and_resumes_from_the_cursor_after_a_restart() {
    let tmp = portcullis_e2e::temp_dir();
    let api = portcullis_e2e::paged_api(PagedApiConfig::default());
    let base = api.base_url();
    let cfg = ingest_config(tmp.path(), 0.01);

    let host = app::serve_config(&cfg).await;
    create_org(&host.state, ORG).await;
    let id = create_connector(&host.state, "feed", &base, 20, true).await;
    wait_for("the 100 records", || async { stored(&host.state) == 100 }).await;
    // It keeps polling on its schedule once caught up.
    let polled = api.log().requests_to("/alerts").len();
    wait_for("two more scheduled polls", || async {
        api.log().requests_to("/alerts").len() >= polled + 2
    })
    .await;
    let cursor = host
        .state
        .ingest()
        .unwrap()
        .pipeline
        .cursor(ORG, &id)
        .unwrap()
        .unwrap();
    assert!(cursor.contains("since"), "{cursor}");
    host.stop().await;

    // Ten new upstream records while the host is down.
    api.append_generated(10);
    api.log().clear();
    let host = app::serve_config(&cfg).await;
    wait_for("the 10 new records", || async {
        stored(&host.state) == 110
    })
    .await;
    let first = &api.log().requests_to("/alerts")[0];
    let since = first.query_param("since").unwrap();
    assert!(
        since.starts_with("2024-01-0"),
        "the first poll after the restart starts from the saved cursor, not the initial window: since={since}"
    );
    let events = all_events(&host.state, "").await;
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(events.len(), 110);
    assert_eq!(ids.len(), 110, "no event stored twice");
    // The window re-serves the newest record seen; the dedup marks written before the
    // restart drop it.
    wait_for("a duplicate dropped by persistent dedup", || async {
        host.state.ingest().unwrap().pipeline.stats().duplicates >= 1
    })
    .await;
    assert_eq!(stored(&host.state), 110);
    host.stop().await;
}

/// Records when batches arrive and whether that was after a disable call returned.
#[derive(Default)]
struct ArrivalSink {
    closed: AtomicBool,
    arrivals: AtomicU64,
    late: parking_lot::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl EventSink for ArrivalSink {
    fn name(&self) -> &str {
        "arrivals"
    }

    async fn deliver(&self, batch: &SinkBatch) -> Result<(), SinkError> {
        if self.closed.load(Ordering::SeqCst) {
            self.late
                .lock()
                .extend(batch.events.iter().map(|e: &Event| e.id.clone()));
        }
        self.arrivals.fetch_add(1, Ordering::SeqCst);
        // Acknowledge a little later, so disables often land mid-delivery.
        tokio::time::sleep(Duration::from_millis(u64::from(
            batch.events.len() as u8 % 4,
        )))
        .await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_reaches_a_sink_after_disable_returned() {
    let tmp = portcullis_e2e::temp_dir();
    let api = portcullis_e2e::paged_api(PagedApiConfig {
        records: Vec::new(),
        ..PagedApiConfig::default()
    });
    let base = api.base_url();
    // PT10S → 10 ms.
    let host = app::serve_config(&ingest_config(tmp.path(), 0.001)).await;
    let pipeline = host.state.ingest().unwrap().pipeline.clone();
    let sink = Arc::new(ArrivalSink::default());
    pipeline.set_sink_resolver(Arc::new(StaticSinks(vec![
        pipeline.event_store().clone() as Arc<dyn EventSink>,
        sink.clone(),
    ])));
    create_org(&host.state, ORG).await;
    let id = create_connector(&host.state, "flood", &base, 5, false).await;

    // The upstream never stops producing.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = stop.clone();
        let api_records = Arc::new(api);
        let api2 = api_records.clone();
        let t = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                api2.append_generated(3);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        (t, api_records)
    };

    for round in 0..25 {
        sink.closed.store(false, Ordering::SeqCst);
        let before = sink.arrivals.load(Ordering::SeqCst);
        toggle(&host.state, &id, true).await;
        wait_for("deliveries after enable", || async {
            sink.arrivals.load(Ordering::SeqCst) >= before + 1 + (round % 3)
        })
        .await;
        toggle(&host.state, &id, false).await;
        sink.closed.store(true, Ordering::SeqCst);
        // Give a stray poll loop or delivery every chance to show up.
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(
            sink.late.lock().is_empty(),
            "round {round}: events reached a sink after disable returned: {:?}",
            sink.late.lock()
        );
    }
    stop.store(true, Ordering::Relaxed);
    producer.0.join().unwrap();
    // What was delivered was delivered once: the store's ids are unique and contiguous
    // from the first record on (nothing skipped across the 25 stop/starts).
    let events = all_events(&host.state, "&order=asc").await;
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len());
    let n = events.len();
    assert!(n > 25);
    host.stop().await;
}

/// A sink that holds every batch until released.
struct GatedSink {
    permits: tokio::sync::Semaphore,
    calls: AtomicU64,
}

#[async_trait::async_trait]
impl EventSink for GatedSink {
    fn name(&self) -> &str {
        "gated"
    }

    async fn deliver(&self, _batch: &SinkBatch) -> Result<(), SinkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.permits.acquire().await.unwrap().forget();
        Ok(())
    }
}

#[derive(Default)]
struct BackpressureLog {
    on: AtomicU64,
    off: AtomicU64,
}

impl IngestObserver for BackpressureLog {
    fn observe(&self, _org: &str, _connector: &str, obs: IngestObservation) {
        if let IngestObservation::Backpressure(active) = obs {
            if active { &self.on } else { &self.off }.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_pauses_polling_instead_of_queueing() {
    let tmp = portcullis_e2e::temp_dir();
    let api = portcullis_e2e::paged_api(PagedApiConfig::default());
    let base = api.base_url();
    let mut cfg = ingest_config(tmp.path(), 0.001);
    cfg.ingest.max_inflight_batches = 1;
    let host = app::serve_config(&cfg).await;
    let pipeline = host.state.ingest().unwrap().pipeline.clone();
    let sink = Arc::new(GatedSink {
        permits: tokio::sync::Semaphore::new(0),
        calls: AtomicU64::new(0),
    });
    pipeline.set_sink_resolver(Arc::new(StaticSinks(vec![
        pipeline.event_store().clone() as Arc<dyn EventSink>,
        sink.clone(),
    ])));
    let log = Arc::new(BackpressureLog::default());
    pipeline.set_observer(log.clone());
    create_org(&host.state, ORG).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(create_connector(&host.state, &format!("feed {i}"), &base, 10, true).await);
    }

    // One batch sits in the blocked sink; every other connector's first batch waits for
    // the single delivery slot, and none of them polls again meanwhile.
    wait_for("three batches queued behind the blocked sink", || async {
        pipeline.stats().waiting_batches == 3
    })
    .await;
    let stats = pipeline.stats();
    assert_eq!(stats.inflight_batches, 1);
    assert_eq!(sink.calls.load(Ordering::SeqCst), 1);
    assert!(log.on.load(Ordering::SeqCst) >= 3, "backpressure reported");
    let polls = api.log().requests_to("/alerts").len();
    assert_eq!(polls, 4, "one poll per connector, then polling paused");
    let scheduler = host.state.ingest().unwrap().scheduler.clone();
    let cycles = scheduler.stats().polls;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        api.log().requests_to("/alerts").len(),
        polls,
        "no poll while blocked"
    );
    assert_eq!(scheduler.stats().polls, cycles);
    assert!(
        pipeline.stats().max_waiting_batches <= 3,
        "at most one batch per connector"
    );

    // Release the sink: everything flows, backpressure clears, each record stored once per
    // connector.
    sink.permits.add_permits(1_000_000);
    wait_for("all records of the 4 connectors", || async {
        stored(&host.state) == 400
    })
    .await;
    assert!(log.off.load(Ordering::SeqCst) >= 3);
    assert_eq!(pipeline.stats().waiting_batches, 0);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_api_filters_pages_and_keeps_orgs_apart() {
    let tmp = portcullis_e2e::temp_dir();
    let api = portcullis_e2e::paged_api(PagedApiConfig::default());
    let base = api.base_url();
    let host = app::serve_config(&ingest_config(tmp.path(), 0.01)).await;
    let state = &host.state;
    create_org(state, ORG).await;
    create_org(state, "other").await;
    let id = create_connector(state, "feed", &base, 50, true).await;
    wait_for("100 events", || async { stored(state) == 100 }).await;

    // Pages of 30, newest first, then the rest.
    let r = call_as(
        state,
        "GET",
        &format!("/v1/orgs/{ORG}/events?limit=30"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 30);
    assert_eq!(items[0]["id"], "rec-000100");
    assert_eq!(items[0]["source"], id.as_str());
    assert!(items[0]["ingested_at"].is_string());
    let times: Vec<&str> = items.iter().map(|e| e["time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    assert_eq!(all_events(state, "").await.len(), 100);

    let high = all_events(state, "&severity=high").await;
    assert_eq!(high.len(), 25);
    assert!(high.iter().all(|e| e["severity_id"] == 4));
    assert_eq!(all_events(state, "&severity=4").await.len(), 25);
    let ip = all_events(state, "&observable=198.51.100.2").await;
    assert_eq!(ip.len(), 1);
    assert_eq!(ip[0]["id"], "rec-000001");
    assert_eq!(all_events(state, "&kind=alert").await.len(), 100);
    assert_eq!(all_events(state, "&kind=log").await.len(), 0);
    assert_eq!(
        all_events(state, &format!("&connector={id}")).await.len(),
        100
    );
    assert_eq!(all_events(state, "&connector=con_nope").await.len(), 0);
    let first = all_events(state, "&order=asc").await;
    let t1 = first[1]["time"].as_str().unwrap().to_string();
    let t3 = first[3]["time"].as_str().unwrap().to_string();
    let window = all_events(state, &format!("&since={t1}&until={t3}")).await;
    let got: Vec<&str> = window.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got, ["rec-000003", "rec-000002"]);

    // Bad filters are 422 naming the field; unknown parameters 400.
    for (q, path) in [
        ("severity=loud", "/severity"),
        ("kind=gossip", "/kind"),
        ("since=yesterday", "/since"),
        ("limit=0", "/limit"),
        ("order=up", "/order"),
        ("cursor=bm9wZQ", "/cursor"),
    ] {
        let r = call_as(state, "GET", &format!("/v1/orgs/{ORG}/events?{q}"), ADMIN).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {:?}",
            r.body
        );
        assert_eq!(r.content_type, "application/problem+json");
        assert_eq!(r.body["errors"][0]["path"], path, "{q}");
    }
    let r = call_as(
        state,
        "GET",
        &format!("/v1/orgs/{ORG}/events?colour=red"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Another org's token: 404, like an org that does not exist; its own org is empty.
    let r = call(
        state,
        "POST",
        "/v1/orgs/other/tokens",
        Some(ADMIN),
        Some(json!({"name": "v", "role": "viewer"})),
    )
    .await;
    let other = r.body["token"].as_str().unwrap().to_string();
    let r = call_as(state, "GET", &format!("/v1/orgs/{ORG}/events"), &other).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call_as(state, "GET", "/v1/orgs/nope/events", ADMIN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call_as(state, "GET", "/v1/orgs/other/events", &other).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"], json!([]));
    let r = call(state, "GET", &format!("/v1/orgs/{ORG}/events"), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    host.stop().await;
}

// ----- kill -9 ----------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Process {
    child: std::process::Child,
    base: String,
}

fn spawn_server(dir: &Path, port: u16) -> Process {
    let cfg = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\nplugin_dir = {:?}\nallow_private_networks = true\n\n[ingest]\nschedule_scale = 0.005\n",
        dir.join("data"),
        dir.join("bundled"),
    );
    let file = dir.join("portcullis.toml");
    std::fs::write(&file, cfg).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .env("PORTCULLIS_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Process {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(p: &mut Process, client: &reqwest::Client) {
    for _ in 0..300 {
        if let Some(status) = p.child.try_wait().unwrap() {
            panic!("server exited early: {status}");
        }
        if let Ok(r) = client.get(format!("{}/readyz", p.base)).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not become ready");
}

async fn remote_events(p: &Process, client: &reqwest::Client) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/orgs/{ORG}/events?limit=1000&order=asc", p.base);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let body: Value = client
            .get(url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        out.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingestion_loses_nothing_and_duplicates_nothing() {
    let tmp = portcullis_e2e::temp_dir();
    let _ = app::config(tmp.path()); // copies the bundled rest-generic plugin
    let api = Arc::new(portcullis_e2e::paged_api(PagedApiConfig {
        records: Vec::new(),
        ..PagedApiConfig::default()
    }));
    let base = api.base_url();
    let client = reqwest::Client::new();
    let port = free_port();

    let mut p = spawn_server(tmp.path(), port);
    wait_ready(&mut p, &client).await;
    let r = client
        .post(format!("{}/v1/orgs", p.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(json!({"id": ORG, "name": ORG}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{}/v1/orgs/{ORG}/connectors", p.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(
            json!({
                "name": "crashy",
                "plugin": "rest-generic",
                "config": feed_config(&base, 7),
                "grants": [base],
                "schedule": "PT10S",
                "enabled": true,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // The upstream keeps producing while the server is killed at several points.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (stop, api) = (stop.clone(), api.clone());
        std::thread::spawn(move || {
            for _ in 0..400 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                api.append_generated(5);
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let mut kills = 0;
    let mut seen_before_kill = Vec::new();
    for delay_ms in [150u64, 420, 90, 700, 260, 33] {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        seen_before_kill.push(remote_events(&p, &client).await.len());
        p.child.kill().unwrap(); // SIGKILL
        p.child.wait().unwrap();
        kills += 1;
        p = spawn_server(tmp.path(), port);
        wait_ready(&mut p, &client).await;
    }
    producer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let served: HashSet<String> = api
        .records()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(served.len(), 2000);
    // The kills happened while events were flowing in.
    assert!(
        seen_before_kill
            .iter()
            .filter(|n| **n > 0 && **n < 2000)
            .count()
            >= 3,
        "{seen_before_kill:?}"
    );

    let mut last = Vec::new();
    for _ in 0..600 {
        last = remote_events(&p, &client).await;
        if last.len() >= served.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &last {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates after {kills} kills: {dups:?}");
    let stored: HashSet<String> = last.iter().cloned().collect();
    let missing: Vec<_> = served.difference(&stored).take(10).collect();
    assert!(missing.is_empty(), "lost after {kills} kills: {missing:?}");
    assert_eq!(stored, served);
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}
