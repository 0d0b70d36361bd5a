//! The HTTP broker as the only way out: refused egress (undeclared, not granted, private
//! and metadata addresses, redirects), credential binding and injection, secrets kept from
//! the plugin, size and request caps. Uses the `egress-probe` guest, which reports what
//! happened to each request it was told to make.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use portcullis::event::Event;
use portcullis::runtime::RuntimeLimits;
use portcullis_e2e::artifacts::EGRESS_PROBE;
use serde_json::{Value, json};

async fn probe(allow_private: bool, grants: &[&str], creds: Value, requests: Value) -> Vec<Event> {
    probe_with(
        allow_private,
        RuntimeLimits::default(),
        grants,
        creds,
        requests,
    )
    .await
}

async fn probe_with(
    allow_private: bool,
    limits: RuntimeLimits,
    grants: &[&str],
    creds: Value,
    requests: Value,
) -> Vec<Event> {
    let rt = runtime_with(allow_private, limits);
    let plugin = load(&rt, EGRESS_PROBE).await;
    let b = bind(&plugin, "probe", grants, credentials(creds));
    let batch = b
        .sandbox
        .poll(&json!({ "requests": requests }), None)
        .await
        .unwrap();
    batch.events
}

fn error_of(e: &Event) -> Option<(String, String)> {
    e.attributes.get("error").map(|err| {
        (
            err["kind"].as_str().unwrap_or("").to_string(),
            err["message"].as_str().unwrap_or("").to_string(),
        )
    })
}

fn assert_denied(e: &Event, needle: &str) {
    let (kind, message) =
        error_of(e).unwrap_or_else(|| panic!("request was not refused: {:?}", e.attributes));
    assert_eq!(kind, "denied", "{message}");
    assert!(
        message.contains(needle),
        "message {message:?} should mention {needle:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn private_and_metadata_addresses_are_refused_without_a_request() {
    let sim = portcullis_e2e::helper_server();
    let port = sim.addr().port();
    let events = probe(
        false,
        &[
            "http://127.0.0.1:*",
            "http://localhost:*",
            "http://169.254.169.254",
            "http://[::ffff:127.0.0.1]:*",
        ],
        json!({}),
        json!([
            {"url": format!("http://127.0.0.1:{port}/echo")},
            {"url": "http://169.254.169.254/latest/meta-data/"},
            {"url": format!("http://[::ffff:127.0.0.1]:{port}/echo")},
            {"url": format!("http://localhost:{port}/echo")},
        ]),
    )
    .await;
    assert_eq!(events.len(), 4);
    assert_denied(&events[0], "loopback");
    assert_denied(&events[1], "metadata");
    assert_denied(&events[2], "loopback");
    assert_denied(&events[3], "resolves to");
    assert!(
        sim.log().is_empty(),
        "no request may reach the server: {:?}",
        sim.log().requests()
    );

    // Control: the same request goes through when private networks are allowed.
    let events = probe(
        true,
        &["http://127.0.0.1:*"],
        json!({}),
        json!([{"url": format!("http://127.0.0.1:{port}/echo")}]),
    )
    .await;
    assert_eq!(events[0].attributes["status"], 200);
    assert_eq!(sim.log().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn undeclared_and_ungranted_hosts_are_refused_before_a_socket_opens() {
    let sim = portcullis_e2e::helper_server();
    let port = sim.addr().port();
    let events = probe(
        true,
        &["http://127.0.0.1:*"],
        json!({}),
        json!([
            {"url": "http://undeclared.test/x"},
            {"url": format!("http://declared.test:{port}/echo")},
            {"url": format!("http://localhost:{port}/echo")},
            {"url": "ftp://127.0.0.1/file"},
        ]),
    )
    .await;
    assert_denied(
        &events[0],
        "not among the hosts plugin egress-probe declares",
    );
    assert_denied(&events[1], "not granted");
    assert_denied(&events[2], "not granted");
    assert_eq!(error_of(&events[3]).unwrap().0, "invalid-request");
    assert!(sim.log().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_outside_the_declared_hosts_is_rejected_at_bind() {
    let rt = runtime(true);
    let plugin = load(&rt, EGRESS_PROBE).await;
    let env = portcullis::ConnectorEnv {
        grants: patterns(&["https://evil.example.com"]),
        ..portcullis::ConnectorEnv::isolated("x")
    };
    let err = plugin.bind(env).unwrap_err().to_string();
    assert!(
        err.contains("https://evil.example.com") && err.contains("egress-probe"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_rechecked_at_every_hop() {
    let a = portcullis_e2e::helper_server();
    let b = portcullis_e2e::helper_server();
    let a_base = a.base_url();
    let b_url = b.url("/echo");
    let events = probe(
        true,
        &[&a_base],
        json!({}),
        json!([
            {"url": a.url(&format!("/redirect?to={}", urlencode(&b_url)))},
            {"url": a.url(&format!("/redirect?to={}", urlencode("http://169.254.169.254/latest/meta-data/")))},
            {"url": a.url(&format!("/redirect?to={}&status=307", urlencode(&a.url("/echo"))))},
        ]),
    )
    .await;
    assert_denied(&events[0], "redirect refused");
    assert_denied(&events[1], "redirect refused");
    assert!(
        b.log().is_empty(),
        "the refused redirect target got a request"
    );
    // A redirect within the grant is followed by the host, and the final URL reported.
    assert_eq!(events[2].attributes["status"], 200);
    assert!(
        events[2].attributes["final_url"]
            .as_str()
            .unwrap()
            .ends_with("/echo")
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credential_bound_to_host_a_never_reaches_host_b() {
    let a = portcullis_e2e::helper_server();
    let b = portcullis_e2e::helper_server();
    let secret = "tok-A-only-7f3c9e51";
    let creds = json!({"api": {"kind": "bearer", "token": secret, "hosts": [a.base_url()]}});
    let events = probe(
        true,
        &[&a.base_url(), &b.base_url()],
        creds,
        json!([
            // Directly to B naming the slot: refused.
            {"url": b.url("/echo"), "credential": "api"},
            // To A, redirected to B: followed, but without the credential.
            {"url": a.url(&format!("/redirect?to={}", urlencode(&b.url("/echo")))), "credential": "api"},
            // To A: authenticated; the echoed token is redacted before the plugin sees it.
            {"url": a.url("/echo"), "credential": "api"},
        ]),
    )
    .await;
    assert_denied(&events[0], "not bound to");
    assert_eq!(events[1].attributes["status"], 200);
    assert_eq!(events[2].attributes["status"], 200);

    let b_reqs = b.log().requests();
    assert_eq!(b_reqs.len(), 1, "only the redirected request reaches B");
    assert!(b_reqs[0].header("authorization").is_none());
    assert!(!format!("{b_reqs:?}").contains(secret));

    let a_reqs = a.log().requests_to("/echo");
    assert_eq!(
        a_reqs[0].header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );
    for e in &events {
        assert!(
            !e.raw.contains(secret),
            "secret leaked to the plugin: {}",
            e.raw
        );
        assert!(!e.attributes.to_string().contains(secret));
    }
    assert!(
        events[2].attributes["body"]
            .as_str()
            .unwrap()
            .contains("[REDACTED]")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_credential_kind_is_injected_by_the_host() {
    let a = portcullis_e2e::helper_server();
    let oauth = portcullis_e2e::oauth_server(Default::default());
    let base = a.base_url();
    let cases = [
        (
            json!({"kind": "basic", "username": "svc", "password": "pa55-word-xyz", "hosts": [base]}),
            "pa55-word-xyz",
        ),
        (
            json!({"kind": "api-key", "key": "k-header-123456", "header": "X-Api-Key", "prefix": "Token ", "hosts": [base]}),
            "k-header-123456",
        ),
        (
            json!({"kind": "api-key", "key": "k-query-654321", "query": "apikey", "hosts": [base]}),
            "k-query-654321",
        ),
        (
            json!({"kind": "oauth2-client-credentials", "token_url": oauth.token_url(), "client_id": oauth.client_id(), "client_secret": oauth.client_secret(), "hosts": [base]}),
            "unused",
        ),
    ];
    for (i, (cred, secret)) in cases.iter().enumerate() {
        a.log().clear();
        let events = probe(
            true,
            &[&base],
            json!({ "api": cred }),
            json!([{"url": a.url("/echo?x=1"), "credential": "api"}]),
        )
        .await;
        let e = &events[0];
        assert_eq!(e.attributes["status"], 200, "case {i}: {:?}", e.attributes);
        let req = a.log().last().unwrap();
        match i {
            0 => assert_eq!(
                req.header("authorization"),
                Some("Basic c3ZjOnBhNTUtd29yZC14eXo=")
            ),
            1 => assert_eq!(req.header("x-api-key"), Some("Token k-header-123456")),
            2 => {
                assert_eq!(req.query_param("apikey").as_deref(), Some("k-query-654321"));
                assert_eq!(req.query_param("x").as_deref(), Some("1"));
                // The URL handed back to the plugin does not carry the key.
                assert!(
                    !e.attributes["final_url"]
                        .as_str()
                        .unwrap()
                        .contains("k-query")
                );
            }
            _ => {
                let token = oauth.last_token().unwrap();
                assert_eq!(
                    req.header("authorization"),
                    Some(format!("Bearer {token}").as_str())
                );
                assert!(!e.attributes.to_string().contains(&token));
            }
        }
        assert!(
            !e.attributes.to_string().contains(secret),
            "case {i} leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_set_authorization_and_cookie_headers_are_refused() {
    let a = portcullis_e2e::helper_server();
    let events = probe(
        true,
        &[&a.base_url()],
        json!({}),
        json!([
            {"url": a.url("/echo"), "headers": [["Authorization", "Bearer stolen"]]},
            {"url": a.url("/echo"), "headers": [["cookie", "session=1"]]},
            {"url": a.url("/echo"), "headers": [["Proxy-Authorization", "Basic eDp5"]]},
            {"url": a.url("/echo"), "headers": [["X-Fine", "yes"]]},
        ]),
    )
    .await;
    assert_denied(&events[0], "Authorization");
    assert_denied(&events[1], "cookie");
    assert_denied(&events[2], "Proxy-Authorization");
    assert_eq!(events[3].attributes["status"], 200);
    assert_eq!(a.log().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unbound_or_undeclared_slots_fail_cleanly() {
    let a = portcullis_e2e::helper_server();
    let events = probe(
        true,
        &[&a.base_url()],
        json!({}),
        json!([
            {"url": a.url("/echo"), "credential": "api"},
            {"url": a.url("/echo"), "credential": "other"},
        ]),
    )
    .await;
    let (kind, msg) = error_of(&events[0]).unwrap();
    assert_eq!(kind, "credential");
    assert!(
        msg.contains("no credential is bound to slot \"api\""),
        "{msg}"
    );
    assert_denied(&events[1], "not declared");
    assert!(a.log().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn response_size_and_request_count_are_capped() {
    let a = portcullis_e2e::helper_server();
    let mut reqs: Vec<Value> = (0..5).map(|_| json!({"url": a.url("/echo")})).collect();
    reqs.insert(0, json!({"url": a.url("/big?bytes=20000000&chunked=true")}));
    let events = probe_with(
        true,
        RuntimeLimits {
            max_requests_per_call: 3,
            ..RuntimeLimits::default()
        },
        &[&a.base_url()],
        json!({}),
        json!(reqs),
    )
    .await;
    assert_eq!(error_of(&events[0]).unwrap().0, "too-large");
    assert_eq!(events[1].attributes["status"], 200);
    assert_eq!(events[2].attributes["status"], 200);
    for e in &events[3..] {
        assert_eq!(error_of(e).unwrap().0, "budget-exhausted");
    }
}
