//! Upgrading a connector to a new plugin version: two versions side by side, the
//! capability diff shown, new hosts granted only explicitly, old version unloaded after.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portcullis::api::router;
use portcullis::server::{ServerConfig, start};
use portcullis_e2e::artifacts::{NOOP, NOOP_NEXT};
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: &str = "platform-admin-token-for-upgrades";

async fn send(state: &portcullis::api::AppState, req: Request<Body>) -> (StatusCode, Value) {
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn json_req(method: &str, uri: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json");
    b.body(body.map(|v| Body::from(v.to_string())).unwrap_or_default())
        .unwrap()
}

fn wasm_req(path: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/v1/plugins")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/wasm")
        .body(Body::from(std::fs::read(path).unwrap()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_shows_the_capability_diff_and_needs_explicit_grants() {
    let tmp = portcullis_e2e::temp_dir();
    let cfg = ServerConfig {
        data_dir: tmp.path().join("data"),
        plugin_dir: tmp.path().join("no-bundled-plugins"),
        ..ServerConfig::default()
    };
    let state = start(&cfg, Some(ADMIN)).await.unwrap().state;
    assert_eq!(send(&state, wasm_req(NOOP)).await.0, StatusCode::CREATED);
    send(
        &state,
        json_req(
            "POST",
            "/v1/orgs",
            Some(json!({"id": "acme", "name": "Acme"})),
        ),
    )
    .await;
    let (status, c) = send(
        &state,
        json_req(
            "POST",
            "/v1/orgs/acme/connectors",
            Some(json!({"name": "n", "plugin": "noop"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{c:?}");
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["plugin"]["version"], "0.1.0");

    // Version 0.2.0 installs beside 0.1.0.
    let (status, v2) = send(&state, wasm_req(NOOP_NEXT)).await;
    assert_eq!(status, StatusCode::CREATED, "{v2:?}");
    assert_eq!(
        v2["capabilities"]["hosts"],
        json!(["https://api.noop.example"])
    );
    let (_, plugin) = send(&state, json_req("GET", "/v1/plugins/noop", None)).await;
    let versions: Vec<&str> = plugin["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, vec!["0.2.0", "0.1.0"]);
    assert_eq!(plugin["latest"]["version"], "0.2.0");

    // Upgrading shows what the new version asks for; nothing new is granted by itself.
    let uri = format!("/v1/orgs/acme/connectors/{id}");
    let (status, up) = send(
        &state,
        json_req("PATCH", &uri, Some(json!({"plugin_version": "0.2.0"}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{up:?}");
    assert_eq!(up["plugin"]["version"], "0.2.0");
    assert_eq!(
        up["capability_diff"]["hosts_added"],
        json!(["https://api.noop.example"])
    );
    assert_eq!(
        up["capability_diff"]["credential_slots_added"],
        json!(["api"])
    );
    assert_eq!(up["grants"], json!([]));
    assert_eq!(up["revision"], 2);

    // Granting the new host is an explicit, separate change.
    let (status, g) = send(
        &state,
        json_req(
            "PATCH",
            &uri,
            Some(json!({"grants": ["https://api.noop.example"]})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{g:?}");
    assert_eq!(g["revision"], 3);
    let (_, revs) = send(&state, json_req("GET", &format!("{uri}/revisions"), None)).await;
    let changes: Vec<&str> = revs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, vec!["created", "upgraded", "updated"]);

    // Downgrading while a 0.2.0-only host is granted is refused with the field named.
    let (status, err) = send(
        &state,
        json_req("PATCH", &uri, Some(json!({"plugin_version": "0.1.0"}))),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["errors"][0]["path"], "/grants/0");

    // 0.1.0 is no longer used: it unloads without force; 0.2.0 is in use.
    let (status, out) = send(&state, json_req("DELETE", "/v1/plugins/noop/0.1.0", None)).await;
    assert_eq!(status, StatusCode::OK, "{out:?}");
    assert_eq!(out["removed"], json!(["0.1.0"]));
    assert_eq!(
        send(&state, json_req("DELETE", "/v1/plugins/noop/0.2.0", None))
            .await
            .0,
        StatusCode::CONFLICT
    );
}
