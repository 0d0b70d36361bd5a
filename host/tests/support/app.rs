//! A host on a temporary data dir with the bundled rest-generic plugin, and ways to call
//! its router (`oneshot`) or serve it on a real socket.
#![allow(dead_code)] // shared by several test crates, each using a part

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portcullis::api::{AppState, router};
use portcullis::server::{ServerConfig, start};
use portcullis_e2e::artifacts::REST_GENERIC;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const ADMIN: &str = "platform-admin-token-for-tests";

pub fn config(dir: &Path) -> ServerConfig {
    let plugins = dir.join("bundled");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(REST_GENERIC, plugins.join("rest-generic.wasm")).unwrap();
    ServerConfig {
        data_dir: dir.join("data"),
        plugin_dir: plugins,
        allow_private_networks: true,
        ..ServerConfig::default()
    }
}

pub async fn app(dir: &Path) -> AppState {
    start(&config(dir), Some(ADMIN)).await.unwrap().state
}

pub struct Resp {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

pub async fn raw(state: &AppState, req: Request<Body>) -> Resp {
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp {
        status,
        content_type,
        body,
    }
}

pub async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    raw(state, req).await
}

/// A request without a body, with the bearer `token`.
pub async fn call_as(state: &AppState, method: &str, uri: &str, token: &str) -> Resp {
    call(state, method, uri, Some(token), None).await
}

pub fn connector_body(name: &str) -> Value {
    json!({
        "name": name,
        "plugin": "rest-generic",
        "config": {"base_url": "https://api.example.com", "path": "/alerts", "id": "/id", "credential": "api"},
        "credentials": {"api": "example-token"},
        "grants": ["https://api.example.com"],
        "schedule": "PT1M"
    })
}

/// Body of the bearer credential `example-token` that [`connector_body`] binds.
pub fn example_credential_body() -> Value {
    json!({"kind": "bearer", "token": "example-secret-token-value", "hosts": ["https://api.example.com"]})
}

/// Create the credential `example-token` in `org` (connectors can only bind existing
/// credentials).
pub async fn example_credential(state: &AppState, org: &str) {
    let r = call(
        state,
        "PUT",
        &format!("/v1/orgs/{org}/credentials/example-token"),
        Some(ADMIN),
        Some(example_credential_body()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// A host served on 127.0.0.1.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its state, to drive it through the router as well.
    pub state: AppState,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Shut it down gracefully.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap();
    }
}

/// Start a host on `dir` and serve it on 127.0.0.1.
pub async fn serve(dir: &Path) -> Served {
    serve_config(&config(dir)).await
}

/// Start a host with `cfg` and serve it on 127.0.0.1 (stoppable gracefully, so it can
/// start again on the same data directory in this process).
pub async fn serve_config(cfg: &ServerConfig) -> Served {
    let started = start(cfg, Some(ADMIN)).await.unwrap();
    let state = started.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        portcullis::server::serve_on(listener, started, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Served {
        url: format!("http://{addr}"),
        state,
        stop: tx,
        server,
    }
}
