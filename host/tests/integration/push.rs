//! Push ingestion through the real host and the real `cef-leef` plugin: the syslog
//! receiver over UDP and TCP (octet counting and LF framing; RFC 5424 and RFC 3164
//! headers around real CEF/LEEF samples from the shared conformance data), malformed
//! input counted while the receiver keeps serving, many concurrent TCP clients; and the
//! webhook endpoint with valid, invalid, missing, replayed and stale credentials.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portcullis::api::AppState;
use portcullis::ingest::push::PushIngest;
use portcullis::ingest::syslog::config::SyslogConfig;
use portcullis::ingest::webhook::sign;
use portcullis::server::{ServerConfig, start};
use portcullis_e2e::artifacts::{CEF_LEEF, QRADAR_SIEM, REST_GENERIC};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::app::{ADMIN, Resp, call, call_as, raw};

fn config(dir: &Path) -> ServerConfig {
    let plugins = dir.join("bundled");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(REST_GENERIC, plugins.join("rest-generic.wasm")).unwrap();
    std::fs::copy(CEF_LEEF, plugins.join("cef-leef.wasm")).unwrap();
    std::fs::copy(QRADAR_SIEM, plugins.join("qradar-siem.wasm")).unwrap();
    ServerConfig {
        data_dir: dir.join("data"),
        plugin_dir: plugins,
        allow_private_networks: true,
        ..ServerConfig::default()
    }
}

/// A host with org `acme` and an enabled `cef-leef` connector; returns its id.
pub(crate) async fn host_with_push_connector(dir: &Path) -> (AppState, String) {
    let state = start(&config(dir), Some(ADMIN)).await.unwrap().state;
    let r = call(
        &state,
        "POST",
        "/v1/orgs",
        Some(ADMIN),
        Some(json!({"id": "acme", "name": "Acme"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = create_cef_connector(&state, "acme", true).await;
    (state, id)
}

async fn create_cef_connector(state: &AppState, org: &str, enabled: bool) -> String {
    let r = call(
        state,
        "POST",
        &format!("/v1/orgs/{org}/connectors"),
        Some(ADMIN),
        Some(json!({"name": "firewall syslog", "plugin": "cef-leef", "config": {}, "enabled": enabled})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// Every event of `connector` in `acme`'s store.
pub(crate) async fn stored_events(state: &AppState, connector: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut uri = format!("/v1/orgs/acme/events?connector={connector}&limit=1000");
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

async fn wait_for_events(state: &AppState, connector: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let evs = stored_events(state, connector).await;
        if evs.len() >= n {
            return evs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let evs = stored_events(state, connector).await;
    panic!("expected {n} events, the store has {}", evs.len());
}

/// Real CEF lines (Elastic's integration test log and beats' samples).
pub(crate) fn cef_samples() -> Vec<String> {
    let dir = portcullis_e2e::conformance_dir();
    let mut lines = Vec::new();
    for f in [
        "cef/elastic_integrations_cef_test-cef.log",
        "cef/beats_decode_cef_samples.log",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        lines.extend(
            text.lines()
                .filter(|l| l.starts_with("CEF:"))
                .map(str::to_string),
        );
    }
    assert!(lines.len() >= 10, "{} CEF samples", lines.len());
    lines
}

/// The real LEEF line as Zscaler NSS sends it over syslog (BSD header, no PRI).
fn zscaler_leef() -> String {
    let dir = portcullis_e2e::conformance_dir();
    std::fs::read_to_string(dir.join("leef/tenzir_integration_zscaler-nss_leef1_over_syslog.log"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

fn rfc5424(cef: &str, n: usize) -> String {
    format!(
        "<134>1 2025-02-10T00:00:{:02}.123Z fw-{n:02}.corp.example CEF - ID{n} [origin@32473 ip=\"10.0.0.{n}\"] \u{feff}{cef}",
        n % 60
    )
}

fn rfc3164(cef: &str, n: usize) -> String {
    format!("<134>Feb 10 00:00:{:02} fw-{n:02} cef[{n}]: {cef}", n % 60)
}

fn receiver_config(connector: &str) -> SyslogConfig {
    toml::from_str(&format!(
        r#"
        batch_max = 64
        [[listeners]]
        bind = "127.0.0.1:0"
        protocol = "udp"
        connector = "acme/{connector}"
        [[listeners]]
        bind = "127.0.0.1:0"
        protocol = "tcp"
        connector = "acme/{connector}"
        max_message_bytes = 4096
        "#
    ))
    .unwrap()
}

/// A host with a push connector, and a syslog receiver ([`receiver_config`]: UDP first,
/// TCP second) feeding its push pipeline.
async fn host_with_receiver(
    dir: &Path,
) -> (
    AppState,
    String,
    Arc<PushIngest>,
    portcullis::ingest::syslog::Receiver,
) {
    let (state, id) = host_with_push_connector(dir).await;
    let push = state.ingest().unwrap().push.clone();
    let receiver = portcullis::ingest::syslog::start(&receiver_config(&id), &push)
        .await
        .unwrap();
    (state, id, push, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_udp_and_tcp_with_both_framings_reaches_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (state, id, _push, receiver) = host_with_receiver(dir.path()).await;
    let udp_addr = receiver.listeners()[0].addr;
    let tcp_addr = receiver.listeners()[1].addr;
    let samples = cef_samples();

    // TCP, octet counting, RFC 5424 with structured data and BOM.
    let mut octet = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    let mut expected = 0;
    for (i, cef) in samples.iter().enumerate() {
        let msg = rfc5424(cef, i);
        octet
            .write_all(format!("{} {msg}", msg.len()).as_bytes())
            .await
            .unwrap();
        expected += 1;
    }
    octet.shutdown().await.unwrap();
    // TCP, LF framing, RFC 3164 (distinct lines: a different header per sample).
    let mut lf = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    for (i, cef) in samples.iter().enumerate() {
        lf.write_all(format!("{}\r\n", rfc3164(cef, i + 100)).as_bytes())
            .await
            .unwrap();
        expected += 1;
    }
    lf.shutdown().await.unwrap();
    // UDP: one message per datagram; RFC 3164 and the real Zscaler LEEF line.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for (i, cef) in samples.iter().take(5).enumerate() {
        udp.send_to(rfc3164(cef, i + 200).as_bytes(), udp_addr)
            .await
            .unwrap();
        expected += 1;
    }
    udp.send_to(zscaler_leef().as_bytes(), udp_addr)
        .await
        .unwrap();
    expected += 1;

    let events = wait_for_events(&state, &id, expected).await;
    assert_eq!(events.len(), expected, "every message once");
    let raws: HashSet<&str> = events.iter().map(|e| e["raw"].as_str().unwrap()).collect();
    assert!(raws.iter().any(|r| r.contains("LEEF:1.0|Zscaler|NSS-FW")));
    // The plugin saw the whole RFC 5424 message (its header mapped to attributes).
    let first = rfc5424(&samples[0], 0);
    let e = events
        .iter()
        .find(|e| e["raw"].as_str().unwrap().contains("fw-00.corp.example"))
        .unwrap_or_else(|| panic!("no event from {first}"));
    assert_eq!(e["source"], id);
    let stats = receiver.stats();
    assert_eq!(stats.malformed, 0, "{stats:?}");
    assert_eq!(stats.queued as usize, expected, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_counted_and_reported_and_the_receiver_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (state, id, push, receiver) = host_with_receiver(dir.path()).await;
    let udp_addr = receiver.listeners()[0].addr;
    let tcp_addr = receiver.listeners()[1].addr;
    let cef = &cef_samples()[0];

    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Bad PRI; bad RFC 5424 timestamp; not CEF/LEEF at all (the plugin refuses it).
    for bad in [
        "<999>Oct 11 22:14:15 host app: x".to_string(),
        format!("<34>1 2003-10-11 host app - - - {cef}"),
        "<13>Oct 11 22:14:15 host app: just a plain log line".to_string(),
    ] {
        udp.send_to(bad.as_bytes(), udp_addr).await.unwrap();
    }
    // TCP: an oversize frame (skipped), then a good one on the same connection.
    let mut tcp = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    let big = format!("<13>Oct 11 22:14:15 host app: {}", "x".repeat(5000));
    tcp.write_all(format!("{} {big}", big.len()).as_bytes())
        .await
        .unwrap();
    let good = rfc5424(cef, 1);
    tcp.write_all(format!("{} {good}", good.len()).as_bytes())
        .await
        .unwrap();
    // A broken octet count closes only that connection.
    tcp.write_all(b"12x <13>garbage").await.unwrap();
    tcp.shutdown().await.unwrap();
    // The receiver still serves: a new connection and UDP.
    let mut again = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    again
        .write_all(format!("{}\n", rfc3164(cef, 2)).as_bytes())
        .await
        .unwrap();
    again.shutdown().await.unwrap();
    udp.send_to(rfc3164(cef, 3).as_bytes(), udp_addr)
        .await
        .unwrap();

    let events = wait_for_events(&state, &id, 3).await;
    assert_eq!(events.len(), 3);
    // Wait for the plugin's refusal to be counted too (it is normalised in a batch).
    let mut counters = (0, 0);
    for _ in 0..100 {
        counters = (
            receiver.stats().malformed,
            push.counters()
                .malformed
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        if counters.0 >= 4 && counters.1 >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Receiver: bad PRI, bad timestamp, oversize frame, broken octet count.
    assert_eq!(counters.0, 4, "{:?}", receiver.stats());
    // Push: those four plus the line the plugin could not normalise.
    assert_eq!(counters.1, 5);
    // Health heard about every one of them (the connector's parse-error count).
    let r = call_as(
        &state,
        "GET",
        &format!("/v1/orgs/acme/connectors/{id}/metrics"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["errors"]["PARSE_ERRORS"], 5, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_tcp_clients_deliver_every_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let (state, id, _push, receiver) = host_with_receiver(dir.path()).await;
    let tcp_addr = receiver.listeners()[1].addr;
    let clients = 32;
    let per_client = 25;
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
            for m in 0..per_client {
                let cef = format!(
                    "CEF:0|Acme|Firewall|1.0|100|Blocked|5|src=10.1.{c}.{m} dst=192.0.2.1 cs1Label=client cs1={c}-{m}"
                );
                let msg = if c % 2 == 0 {
                    let m5424 = rfc5424(&cef, m);
                    format!("{} {m5424}", m5424.len())
                } else {
                    format!("{}\n", rfc3164(&cef, m))
                };
                s.write_all(msg.as_bytes()).await.unwrap();
            }
            s.shutdown().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = wait_for_events(&state, &id, clients * per_client).await;
    assert_eq!(events.len(), clients * per_client);
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), clients * per_client);
    assert_eq!(receiver.stats().connections as usize, clients);
}

// ---------------------------------------------------------------------------
// Webhooks

pub(crate) async fn rotate(state: &AppState, org: &str, id: &str, token: &str) -> Resp {
    call_as(
        state,
        "POST",
        &format!("/v1/orgs/{org}/connectors/{id}/webhook-secret"),
        token,
    )
    .await
}

pub(crate) async fn post(
    state: &AppState,
    id: &str,
    headers: &[(&str, String)],
    ctype: &str,
    body: &str,
) -> Resp {
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("/v1/ingest/{id}"))
        .header("content-type", ctype);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    raw(state, req.body(Body::from(body.to_string())).unwrap()).await
}

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_tokens_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let (state, id) = host_with_push_connector(dir.path()).await;
    let samples = cef_samples();
    let body = samples[..3].join("\n");

    // No secret yet: 404, as for an unknown connector.
    let r = post(
        &state,
        &id,
        &[("x-portcullis-token", "whsec_x".into())],
        "text/plain",
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post(&state, "con_nope", &[], "text/plain", &body).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.content_type, "application/problem+json");

    let r = rotate(&state, "acme", &id, ADMIN).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(r.body["ingest_path"], format!("/v1/ingest/{id}"));

    // Bearer token: 3 lines → 3 events.
    let r = post(
        &state,
        &id,
        &[("authorization", format!("Bearer {secret}"))],
        "text/plain",
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["duplicates"].as_u64()),
        (Some(3), Some(0))
    );
    // Same body again with X-Portcullis-Token: all duplicates.
    let r = post(
        &state,
        &id,
        &[("x-portcullis-token", secret.clone())],
        "text/plain",
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["duplicates"].as_u64()),
        (Some(0), Some(3))
    );

    // Wrong and missing credentials.
    for headers in [
        vec![("authorization", "Bearer whsec_wrong".to_string())],
        vec![("x-portcullis-token", format!("{secret}x"))],
        vec![],
        vec![("authorization", format!("Bearer {ADMIN}"))],
    ] {
        let r = post(&state, &id, &headers, "text/plain", &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{headers:?}: {:?}",
            r.body
        );
        assert_eq!(r.content_type, "application/problem+json");
    }

    // HMAC signature over "<timestamp>.<body>".
    let key = SecretString::from(secret.clone());
    let body2 = samples[3..5].join("\n");
    let ts = now();
    let sig = format!("sha256={}", sign(&key, &ts, body2.as_bytes()));
    let signed = vec![
        ("x-portcullis-timestamp", ts.clone()),
        ("x-portcullis-signature", sig.clone()),
    ];
    let r = post(&state, &id, &signed, "text/plain", &body2).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["accepted"].as_u64(), Some(2));
    // Replayed: refused.
    let r = post(&state, &id, &signed, "text/plain", &body2).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["detail"].as_str().unwrap().contains("replayed"),
        "{:?}",
        r.body
    );
    // Tampered body, signature without timestamp, wrong scheme, stale timestamp.
    let r = post(
        &state,
        &id,
        &signed,
        "text/plain",
        &format!("{body2}\n{}", samples[6]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post(
        &state,
        &id,
        &[("x-portcullis-signature", sig.clone())],
        "text/plain",
        &body2,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post(
        &state,
        &id,
        &[
            ("x-portcullis-timestamp", ts.clone()),
            ("x-portcullis-signature", sig.replace("sha256=", "md5=")),
        ],
        "text/plain",
        &body2,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let old = (chrono::Utc::now().timestamp() - 3600).to_string();
    let old_sig = format!("sha256={}", sign(&key, &old, body2.as_bytes()));
    let r = post(
        &state,
        &id,
        &[
            ("x-portcullis-timestamp", old),
            ("x-portcullis-signature", old_sig),
        ],
        "text/plain",
        &body2,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["detail"].as_str().unwrap().contains("server clock"),
        "{:?}",
        r.body
    );

    // Bad input: 4xx, never 5xx.
    let auth = vec![("x-portcullis-token", secret.clone())];
    let r = post(&state, &id, &auth, "application/json", "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = post(&state, &id, &auth, "application/octet-stream", "x").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = post(
        &state,
        &id,
        &auth,
        "text/plain",
        "not a CEF line\nneither this",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = post(&state, &id, &auth, "text/plain", "\n\n").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // JSON: an array gives one input per element; the plugin takes each string's text.
    let arr = json!([samples[7]]).to_string();
    let r = post(&state, &id, &auth, "application/json", &arr).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["accepted"].as_u64(), Some(1));
    let big = "x".repeat(5 * 1024 * 1024);
    let r = post(&state, &id, &auth, "text/plain", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Rotation: the old secret stops working.
    let r = rotate(&state, "acme", &id, ADMIN).await;
    assert_eq!(r.body["version"], 2);
    let new_secret = r.body["secret"].as_str().unwrap().to_string();
    let r = post(&state, &id, &auth, "text/plain", &samples[8]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post(
        &state,
        &id,
        &[("x-portcullis-token", new_secret.clone())],
        "text/plain",
        &samples[8],
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);

    // Disabled connector: 409; events stay out.
    let r = call_as(
        &state,
        "POST",
        &format!("/v1/orgs/acme/connectors/{id}/disable"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = post(
        &state,
        &id,
        &[("x-portcullis-token", new_secret.clone())],
        "text/plain",
        &samples[9],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(stored_events(&state, &id).await.len(), 7);

    // The audit log records rotations without the secret.
    let r = call_as(&state, "GET", "/v1/orgs/acme/audit", ADMIN).await;
    let text = r.body.to_string();
    assert!(text.contains("connector.webhook_secret"));
    assert!(!text.contains(&new_secret) && !text.contains(&secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_secrets_need_an_operator_of_the_org_and_a_push_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let (state, id) = host_with_push_connector(dir.path()).await;
    let r = call(
        &state,
        "POST",
        "/v1/orgs",
        Some(ADMIN),
        Some(json!({"id": "other", "name": "Other"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let token = |org: &str, role: &str| {
        let state = state.clone();
        let (org, role) = (org.to_string(), role.to_string());
        async move {
            let r = call(
                &state,
                "POST",
                &format!("/v1/orgs/{org}/tokens"),
                Some(ADMIN),
                Some(json!({"name": role, "role": role})),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.body["token"].as_str().unwrap().to_string()
        }
    };
    let viewer = token("acme", "viewer").await;
    let operator = token("acme", "operator").await;
    let stranger = token("other", "admin").await;
    assert_eq!(
        rotate(&state, "acme", &id, &viewer).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rotate(&state, "acme", &id, &stranger).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        rotate(&state, "other", &id, &stranger).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        rotate(&state, "acme", &id, &operator).await.status,
        StatusCode::CREATED
    );
    // A pull-only plugin (qradar-siem: `accepts-push` false) cannot have a webhook.
    let r = call(
        &state,
        "PUT",
        "/v1/orgs/acme/credentials/qradar-sec",
        Some(ADMIN),
        Some(json!({"kind": "api-key", "key": "sec-token-value", "header": "SEC", "hosts": ["https://qradar.example.com"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = call(
        &state,
        "POST",
        "/v1/orgs/acme/connectors",
        Some(ADMIN),
        Some(json!({"name": "qradar", "plugin": "qradar-siem", "config": {"base_url": "https://qradar.example.com"},
                    "credentials": {"api": "qradar-sec"}, "grants": ["https://qradar.example.com"], "enabled": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let pull = r.body["id"].as_str().unwrap().to_string();
    let r = rotate(&state, "acme", &pull, &operator).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // And pushed input (e.g. routed syslog) is refused for it.
    let rec = state.service().connector_record("acme", &pull).unwrap();
    let push = state.ingest().unwrap().push.clone();
    let e = push
        .push(&rec, &[cef_samples()[0].clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(e, portcullis::ingest::push::PushError::NotPushable { .. }),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// The real binary with `[[syslog.listeners]]` in portcullis.toml.

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ServerProcess {
    fn spawn(args: &[&str], token: &str, cache: &Path) -> Self {
        ServerProcess(
            std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .arg("serve")
                .args(args)
                .env("PORTCULLIS_ADMIN_TOKEN", token)
                .env("PORTCULLIS_CACHE_DIR", cache)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    async fn wait_ready(&mut self, base: &str) {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Some(status) = self.0.try_wait().unwrap() {
                panic!("server exited early: {status}");
            }
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server did not become ready");
    }

    fn terminate(mut self) {
        let pid = self.0.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let status = self.0.wait().unwrap();
        assert!(status.success(), "server exit: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_listeners_from_the_config_file_of_the_real_server() {
    let tmp = portcullis_e2e::temp_dir();
    let plugins = tmp.path().join("bundled");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(CEF_LEEF, plugins.join("cef-leef.wasm")).unwrap();
    let data = tmp.path().join("data");
    let cache = tmp.path().join("cache");
    let token = "push-admin-token-0123456789";
    let port = free_tcp_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let auth = format!("Bearer {token}");

    // First run: create the org and the push connector (its id names the route).
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ];
    let mut server = ServerProcess::spawn(&args, token, &cache);
    server.wait_ready(&base).await;
    let r = client
        .post(format!("{base}/v1/orgs"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(json!({"id": "acme", "name": "Acme"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let r = client
        .post(format!("{base}/v1/orgs/acme/connectors"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(
            json!({"name": "fw", "plugin": "cef-leef", "config": {}, "enabled": true}).to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let id = serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.terminate();

    // Second run: the listeners come from portcullis.toml.
    let (tcp_port, udp_port) = (free_tcp_port(), free_udp_port());
    let config = tmp.path().join("portcullis.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
data_dir = "{data}"
plugin_dir = "{plugins}"

[[syslog.listeners]]
bind = "127.0.0.1:{tcp_port}"
protocol = "tcp"
connector = "acme/{id}"

[[syslog.listeners]]
bind = "127.0.0.1:{udp_port}"
protocol = "udp"
[[syslog.listeners.routes]]
hostname = "fw-*"
connector = "acme/{id}"
"#,
            data = data.display(),
            plugins = plugins.display()
        ),
    )
    .unwrap();
    let mut server = ServerProcess::spawn(&["--config", config.to_str().unwrap()], token, &cache);
    server.wait_ready(&base).await;
    let samples = cef_samples();
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", tcp_port))
        .await
        .unwrap();
    let m = rfc5424(&samples[0], 1);
    tcp.write_all(format!("{} {m}", m.len()).as_bytes())
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Routed by hostname; an unrouted hostname is dropped.
    udp.send_to(rfc3164(&samples[1], 2).as_bytes(), ("127.0.0.1", udp_port))
        .await
        .unwrap();
    udp.send_to(
        format!("<134>Feb 10 00:00:03 web-01 cef: {}", samples[2]).as_bytes(),
        ("127.0.0.1", udp_port),
    )
    .await
    .unwrap();
    let mut count = 0;
    for _ in 0..200 {
        let r = client
            .get(format!("{base}/v1/orgs/acme/events?connector={id}"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        count = serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()["items"]
            .as_array()
            .map_or(0, Vec::len);
        if count >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count, 2);
    // The unrouted datagram never arrives (give it the time the others needed).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client
        .get(format!("{base}/v1/orgs/acme/events?connector={id}"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()["items"]
            .as_array()
            .map_or(0, Vec::len),
        2
    );
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_pipeline_drops_udp_counted_and_holds_tcp_back_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (state, id) = host_with_push_connector(dir.path()).await;
    // A slow SIEM behind a forward sink makes every delivery of the org slow.
    use portcullis_e2e::simulators::{
        EVENTS_SCOPE, OAuthConfig, ThreatHawkConfig, ThreatHawkServer,
    };
    let sim = ThreatHawkServer::start(ThreatHawkConfig {
        oauth: OAuthConfig {
            scopes: vec![EVENTS_SCOPE.into()],
            ..OAuthConfig::default()
        },
        ..ThreatHawkConfig::default()
    })
    .unwrap();
    sim.set_ingest_delay(Duration::from_millis(300));
    let sinks = json!({"sinks": [{
        "type": "http-forward", "name": "slow", "url": sim.events_url(), "gzip": false, "format": "threathawk",
        "auth": {"kind": "oauth2-client-credentials", "token_url": sim.token_url(),
                 "client_id": sim.oauth().client_id(), "client_secret": sim.oauth().client_secret(),
                 "scopes": [EVENTS_SCOPE]}
    }]});
    let r = call(
        &state,
        "PUT",
        "/v1/orgs/acme/sinks",
        Some(ADMIN),
        Some(sinks),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cfg: SyslogConfig = toml::from_str(&format!(
        r#"
        queue_per_connector = 4
        batch_max = 4
        [[listeners]]
        bind = "127.0.0.1:0"
        protocol = "udp"
        connector = "acme/{id}"
        [[listeners]]
        bind = "127.0.0.1:0"
        protocol = "tcp"
        connector = "acme/{id}"
        "#
    ))
    .unwrap();
    let push = state.ingest().unwrap().push.clone();
    let receiver = portcullis::ingest::syslog::start(&cfg, &push)
        .await
        .unwrap();
    let (udp_addr, tcp_addr) = (receiver.listeners()[0].addr, receiver.listeners()[1].addr);
    let line =
        |n: usize| format!("CEF:0|Acme|Firewall|1.0|100|Blocked|5|src=10.9.0.1 cs1Label=n cs1={n}");

    // UDP: far more than the queue holds while deliveries crawl → drops, counted.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for n in 0..200 {
        udp.send_to(rfc3164(&line(n), n).as_bytes(), udp_addr)
            .await
            .unwrap();
    }
    // TCP: the same load is held back (the reader stops reading), never dropped.
    let mut tcp = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    for n in 1000..1040 {
        tcp.write_all(format!("{}\n", rfc3164(&line(n), n)).as_bytes())
            .await
            .unwrap();
    }
    tcp.shutdown().await.unwrap();

    let mut stats = receiver.stats();
    for _ in 0..600 {
        stats = receiver.stats();
        let stored = stored_events(&state, &id).await.len() as u64;
        if stats.received == 240
            && stored == stats.queued
            && sim.ingested_events().len() as u64 == stats.queued
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stats.received, 240, "{stats:?}");
    assert!(stats.udp_dropped > 0, "{stats:?}");
    assert_eq!(stats.queued + stats.udp_dropped, 240, "{stats:?}");
    let events = stored_events(&state, &id).await;
    assert_eq!(events.len() as u64, stats.queued);
    let tcp_events = events
        .iter()
        .filter(|e| e["raw"].as_str().unwrap().contains("cs1=10"))
        .count();
    assert_eq!(tcp_events, 40, "every TCP message arrived");
    assert_eq!(
        sim.ingested_events().len() as u64,
        stats.queued,
        "and reached the slow sink"
    );
}
