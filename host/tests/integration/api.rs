//! The management API driven through the router (`oneshot`) and over a real socket:
//! tenant isolation, roles, plugins at runtime, connectors with revisions, toggle,
//! test, audit, persistence across restarts, and bad input answered with problem+json.
#![allow(clippy::unwrap_used)]

use crate::app;

use std::path::Path;

use app::{ADMIN, app, call, config, connector_body, raw};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use portcullis::api::AppState;
use portcullis::server::{ServerConfig, start};
use portcullis_e2e::artifacts::NOOP;
use serde_json::{Value, json};

/// Two orgs, each with an admin, operator and viewer token; one connector each.
struct World {
    state: AppState,
    tokens: std::collections::HashMap<(String, String), String>,
    connectors: std::collections::HashMap<String, String>,
}

async fn world(dir: &Path) -> World {
    let state = app(dir).await;
    let mut tokens = std::collections::HashMap::new();
    let mut connectors = std::collections::HashMap::new();
    for org in ["red", "blue"] {
        let r = call(
            &state,
            "POST",
            "/v1/orgs",
            Some(ADMIN),
            Some(json!({"id": org, "name": org})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        app::example_credential(&state, org).await;
        for role in ["admin", "operator", "viewer"] {
            let r = call(
                &state,
                "POST",
                &format!("/v1/orgs/{org}/tokens"),
                Some(ADMIN),
                Some(json!({"name": role, "role": role})),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED);
            tokens.insert(
                (org.to_string(), role.to_string()),
                r.body["token"].as_str().unwrap().to_string(),
            );
        }
        let r = call(
            &state,
            "POST",
            &format!("/v1/orgs/{org}/connectors"),
            Some(ADMIN),
            Some(connector_body(&format!("{org} feed"))),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        connectors.insert(org.to_string(), r.body["id"].as_str().unwrap().to_string());
    }
    World {
        state,
        tokens,
        connectors,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_org_access_is_indistinguishable_from_not_found() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let blue_conn = &w.connectors["blue"];
    let endpoints: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/orgs/blue".into(), None),
        ("GET", "/v1/orgs/blue/connectors".into(), None),
        (
            "POST",
            "/v1/orgs/blue/connectors".into(),
            Some(connector_body("x")),
        ),
        ("GET", format!("/v1/orgs/blue/connectors/{blue_conn}"), None),
        (
            "PATCH",
            format!("/v1/orgs/blue/connectors/{blue_conn}"),
            Some(json!({"name": "pwned"})),
        ),
        (
            "DELETE",
            format!("/v1/orgs/blue/connectors/{blue_conn}"),
            None,
        ),
        (
            "POST",
            format!("/v1/orgs/blue/connectors/{blue_conn}/enable"),
            None,
        ),
        (
            "POST",
            format!("/v1/orgs/blue/connectors/{blue_conn}/disable"),
            None,
        ),
        (
            "POST",
            format!("/v1/orgs/blue/connectors/{blue_conn}/test"),
            None,
        ),
        (
            "GET",
            format!("/v1/orgs/blue/connectors/{blue_conn}/revisions"),
            None,
        ),
        ("GET", "/v1/orgs/blue/tokens".into(), None),
        (
            "POST",
            "/v1/orgs/blue/tokens".into(),
            Some(json!({"name": "x", "role": "admin"})),
        ),
        ("GET", "/v1/orgs/blue/audit".into(), None),
    ];
    for role in ["admin", "operator", "viewer"] {
        let red = &w.tokens[&("red".to_string(), role.to_string())];
        for (method, uri, body) in &endpoints {
            let cross = call(&w.state, method, uri, Some(red), body.clone()).await;
            let missing_uri = uri.replace("/orgs/blue", "/orgs/nonexistent-org");
            let missing = call(&w.state, method, &missing_uri, Some(red), body.clone()).await;
            assert_eq!(
                cross.status,
                StatusCode::NOT_FOUND,
                "{role} {method} {uri}: {:?}",
                cross.body
            );
            assert_eq!(cross.content_type, "application/problem+json");
            assert_eq!(missing.status, StatusCode::NOT_FOUND);
            assert_eq!(
                cross.body["detail"].as_str().unwrap().replace("blue", "X"),
                missing.body["detail"]
                    .as_str()
                    .unwrap()
                    .replace("nonexistent-org", "X"),
                "the answers must not reveal that org blue exists"
            );
        }
        // An org's own connector id through another org's path is not found either.
        let r = call(
            &w.state,
            "GET",
            &format!("/v1/orgs/red/connectors/{blue_conn}"),
            Some(red),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // The org list shows only the caller's org.
        let r = call(&w.state, "GET", "/v1/orgs", Some(red), None).await;
        let ids: Vec<&str> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["red"]);
    }
    // Blue's connector is untouched.
    let r = call(
        &w.state,
        "GET",
        &format!("/v1/orgs/blue/connectors/{blue_conn}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.body["name"], "blue feed");
    assert_eq!(r.body["revision"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_decide_what_a_token_may_do() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let c = &w.connectors["red"];
    let t = |role: &str| w.tokens[&("red".to_string(), role.to_string())].clone();
    let viewer = t("viewer");
    let operator = t("operator");
    let admin = t("admin");

    assert_eq!(
        call(
            &w.state,
            "GET",
            "/v1/orgs/red/connectors",
            Some(&viewer),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    for (method, uri) in [
        ("POST", format!("/v1/orgs/red/connectors/{c}/enable")),
        ("POST", format!("/v1/orgs/red/connectors/{c}/test")),
        ("DELETE", format!("/v1/orgs/red/connectors/{c}")),
    ] {
        let r = call(&w.state, method, &uri, Some(&viewer), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert!(r.body["detail"].as_str().unwrap().contains("Operator"));
    }
    assert_eq!(
        call(
            &w.state,
            "POST",
            &format!("/v1/orgs/red/connectors/{c}/enable"),
            Some(&operator),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &w.state,
            "GET",
            "/v1/orgs/red/tokens",
            Some(&operator),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let r = call(&w.state, "GET", "/v1/orgs/red/tokens", Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.to_string().find("pcs_").is_none(),
        "tokens are never shown again"
    );
    // Plugins and orgs are platform-level.
    assert_eq!(
        call(
            &w.state,
            "POST",
            "/v1/orgs",
            Some(&admin),
            Some(json!({"id": "x", "name": "x"}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &w.state,
            "DELETE",
            "/v1/plugins/rest-generic",
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // No token, a bad token, a bad scheme.
    assert_eq!(
        call(&w.state, "GET", "/v1/orgs", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &w.state,
            "GET",
            "/v1/orgs",
            Some("pcs_not-a-real-token"),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    let req = Request::builder()
        .uri("/v1/orgs")
        .header("authorization", format!("Basic {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(raw(&w.state, req).await.status, StatusCode::UNAUTHORIZED);
    // A revoked token stops working.
    let list = call(&w.state, "GET", "/v1/orgs/red/tokens", Some(&admin), None).await;
    let viewer_id = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        call(
            &w.state,
            "DELETE",
            &format!("/v1/orgs/red/tokens/{viewer_id}"),
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(
            &w.state,
            "GET",
            "/v1/orgs/red/connectors",
            Some(&viewer),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_then_enable_keeps_everything_and_test_works_while_disabled() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let op = w.tokens[&("red".to_string(), "operator".to_string())].clone();
    let c = &w.connectors["red"];
    let base = format!("/v1/orgs/red/connectors/{c}");
    let r = call(&w.state, "PATCH", &base, Some(&op), Some(json!({"config": {"base_url": "https://api.example.com", "path": "/v2/alerts", "id": "/uid", "credential": "api"}, "schedule": "PT2M"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["revision"], 2);
    call(&w.state, "POST", &format!("{base}/enable"), Some(&op), None).await;
    let before = call(&w.state, "GET", &base, Some(&op), None).await.body;
    let revs_before = call(
        &w.state,
        "GET",
        &format!("{base}/revisions"),
        Some(&op),
        None,
    )
    .await
    .body;

    let r = call(
        &w.state,
        "POST",
        &format!("{base}/disable"),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["health"]["state"], "disabled");
    // Testing a disabled connector is allowed (test before activation).
    let t = call(&w.state, "POST", &format!("{base}/test"), Some(&op), None).await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    assert!(
        t.body["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "auth")
    );
    assert!(t.body["latency_ms"].is_u64());

    let after = call(&w.state, "POST", &format!("{base}/enable"), Some(&op), None)
        .await
        .body;
    for key in [
        "config",
        "credentials",
        "grants",
        "schedule",
        "plugin",
        "revision",
        "name",
        "enabled",
    ] {
        assert_eq!(
            before[key], after[key],
            "{key} changed across disable/enable"
        );
    }
    let revs_after = call(
        &w.state,
        "GET",
        &format!("{base}/revisions"),
        Some(&op),
        None,
    )
    .await
    .body;
    assert_eq!(revs_before, revs_after);
    assert_eq!(revs_after["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        revs_after["items"][1]["spec"]["config"]["path"],
        "/v2/alerts"
    );
    // Every step is in the audit log, with no secret values.
    let audit = call(&w.state, "GET", "/v1/orgs/red/audit", Some(&op), None)
        .await
        .body;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in [
        "connector.create",
        "connector.updated",
        "connector.enable",
        "connector.disable",
        "connector.test",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_install_at_runtime_and_unload_only_when_forced() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    // Install a new plugin over the API; usable at once.
    let wasm = std::fs::read(NOOP).unwrap();
    let req = Request::builder()
        .method("POST")
        .uri("/v1/plugins")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/wasm")
        .body(Body::from(wasm.clone()))
        .unwrap();
    let r = raw(&w.state, req).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["capabilities"]["hosts"], json!([]));
    let req = Request::builder()
        .method("POST")
        .uri("/v1/plugins")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/wasm")
        .body(Body::from(wasm))
        .unwrap();
    assert_eq!(
        raw(&w.state, req).await.status,
        StatusCode::OK,
        "re-installing the same bytes is idempotent"
    );
    let r = call(
        &w.state,
        "POST",
        "/v1/orgs/red/connectors",
        Some(ADMIN),
        Some(json!({"name": "noop", "plugin": "noop"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let noop_conn = r.body["id"].as_str().unwrap().to_string();
    call(
        &w.state,
        "POST",
        &format!("/v1/orgs/red/connectors/{noop_conn}/enable"),
        Some(ADMIN),
        None,
    )
    .await;

    let r = call(
        &w.state,
        "GET",
        "/v1/plugins/rest-generic",
        Some(&w.tokens[&("blue".to_string(), "viewer".to_string())]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["latest"]["capabilities"]["credential_slots"][0]["name"],
        "api"
    );

    let r = call(&w.state, "DELETE", "/v1/plugins/noop", Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["detail"].as_str().unwrap().contains(&noop_conn));
    let r = call(
        &w.state,
        "DELETE",
        "/v1/plugins/noop?force=true",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["disabled_connectors"],
        json!([format!("red/{noop_conn}")])
    );
    let c = call(
        &w.state,
        "GET",
        &format!("/v1/orgs/red/connectors/{noop_conn}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(c.body["enabled"], false);
    assert_eq!(
        call(&w.state, "GET", "/v1/plugins/noop", Some(ADMIN), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Other plugins' connectors keep answering.
    let other = &w.connectors["blue"];
    let t = call(
        &w.state,
        "POST",
        &format!("/v1/orgs/blue/connectors/{other}/test"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(t.status, StatusCode::OK);
    let audit = call(&w.state, "GET", "/v1/audit", Some(ADMIN), None)
        .await
        .body;
    assert!(audit.to_string().contains("plugin.unload"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_4xx_problem_naming_what_is_wrong() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let post_wasm = |bytes: Vec<u8>, ct: &str| {
        Request::builder()
            .method("POST")
            .uri("/v1/plugins")
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", ct)
            .body(Body::from(bytes))
            .unwrap()
    };
    let core = wat::parse_str("(module)").unwrap();
    let future =
        wat::parse_str(r#"(component (instance (export "portcullis:connector/plugin@9.0.0")))"#)
            .unwrap();
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post_wasm(b"not wasm".to_vec(), "application/wasm"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a WebAssembly component",
        ),
        (
            post_wasm(core, "application/wasm"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "core WebAssembly module",
        ),
        (
            post_wasm(future, "application/wasm"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "portcullis:connector@9.0.0",
        ),
        (
            post_wasm(vec![0; 10], "application/json"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/wasm",
        ),
    ];
    for (req, status, needle) in cases {
        let r = raw(&w.state, req).await;
        assert_eq!(r.status, status, "{:?}", r.body);
        assert_eq!(r.content_type, "application/problem+json");
        assert!(
            r.body["detail"].as_str().unwrap().contains(needle),
            "{:?}",
            r.body
        );
    }
    let org = "/v1/orgs/red/connectors";
    let json_cases: Vec<(&str, &str, Value, StatusCode, &str)> = vec![
        (
            "POST",
            org,
            json!({"name": "x", "plugin": "rest-generic", "bogus": 1}),
            StatusCode::BAD_REQUEST,
            "/bogus",
        ),
        (
            "POST",
            org,
            json!({"name": "x", "plugin": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/plugin",
        ),
        (
            "POST",
            org,
            json!({"name": "x", "plugin": "rest-generic", "config": {"base_url": 5}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/config/base_url",
        ),
        (
            "POST",
            org,
            json!({"name": "x", "plugin": "rest-generic", "config": {"base_url": "https://a.example", "path": "/", "id": "/id"}, "grants": ["https://evil.example.net", "nope"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/grants/1",
        ),
        (
            "POST",
            org,
            json!({"name": "x", "plugin": "rest-generic", "config": {"base_url": "https://a.example", "path": "/", "id": "/id"}, "credentials": {"nope": "c"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/credentials/nope",
        ),
        (
            "POST",
            "/v1/orgs",
            json!({"id": "Bad Id!", "name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/id",
        ),
        (
            "POST",
            "/v1/orgs/red/tokens",
            json!({"name": "x", "role": "superuser"}),
            StatusCode::BAD_REQUEST,
            "role",
        ),
    ];
    for (method, uri, body, status, needle) in json_cases {
        let r = call(&w.state, method, uri, Some(ADMIN), Some(body)).await;
        assert_eq!(r.status, status, "{method} {uri}: {:?}", r.body);
        assert_eq!(r.content_type, "application/problem+json");
        assert!(
            r.body.to_string().contains(needle),
            "{needle} not in {:?}",
            r.body
        );
    }
    // Malformed JSON, an oversized body, an unknown endpoint, a bad query.
    let req = Request::builder()
        .method("POST")
        .uri(org)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from("{ nope"))
        .unwrap();
    let r = raw(&w.state, req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let req = Request::builder()
        .method("POST")
        .uri(org)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    assert_eq!(
        raw(&w.state, req).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        call(&w.state, "GET", "/v1/nope", Some(ADMIN), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = call(
        &w.state,
        "GET",
        "/v1/orgs/red/connectors?limit=abc",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &w.state,
        "GET",
        "/v1/orgs/red/connectors?status=maybe",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread")]
async fn state_survives_a_restart_over_a_real_socket() {
    let tmp = portcullis_e2e::temp_dir();
    let cfg = config(tmp.path());
    let started = start(&cfg, Some(ADMIN)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(portcullis::server::serve_on(listener, started, async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    assert_eq!(
        client.get(url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        client.get(url("/readyz")).send().await.unwrap().status(),
        200
    );
    let r = client
        .post(url("/v1/orgs"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(json!({"id": "acme", "name": "Acme"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("x-request-id").is_some());
    let r = client
        .put(url("/v1/orgs/acme/credentials/example-token"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(app::example_credential_body().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(url("/v1/orgs/acme/connectors"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(connector_body("keep me").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();

    // Restart on the same data dir: the bundled plugin is not reinstalled twice and the
    // connector is there.
    let again = app(tmp.path()).await;
    let r = call(
        &again,
        "GET",
        &format!("/v1/orgs/acme/connectors/{id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "keep me");
    let plugins = call(&again, "GET", "/v1/plugins", Some(ADMIN), None).await;
    assert_eq!(plugins.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_files_reject_unknown_keys_by_name() {
    let tmp = portcullis_e2e::temp_dir();
    let p = tmp.path().join("portcullis.toml");
    std::fs::write(
        &p,
        "listen = \"127.0.0.1:9999\"\n[limits]\nmemory_mib = 32\nbogus_key = 1\n",
    )
    .unwrap();
    let err = ServerConfig::load(&p).unwrap_err().to_string();
    assert!(err.contains("bogus_key"), "{err}");
    std::fs::write(
        &p,
        "listen = \"127.0.0.1:9999\"\nallow_private_networks = true\n",
    )
    .unwrap();
    let cfg = ServerConfig::load(&p).unwrap();
    assert!(cfg.allow_private_networks);
    assert_eq!(cfg.limits.memory_mib, 64);
}
