//! The credential vault through the real host: REST and GraphQL, the rest-generic plugin
//! in the sandbox, a resource server that records every `Authorization` it receives, and a
//! real OAuth authorization server (npm's `oidc-provider`).
//!
//! - [`api`]: write-only metadata, roles and tenancy, binding validation, delete refusal.
//! - [`binding`]: a credential bound to host A is never sent to host B.
//! - [`rotation`]: a connector polling continuously keeps succeeding across a promotion;
//!   requests after it carry the new secret; rollback restores the old one.
//! - [`leak`]: after a full run, no secret or access token appears in any log line, API
//!   answer, audit record, error or raw store file.
//! - [`master_key`]: wrong key refuses to start and changes nothing; rotation (API, CLI).
//! - [`oidc`]: tokens from `oidc-provider` obtained, cached, refreshed before expiry and
//!   after `invalid_token`.
#![allow(clippy::unwrap_used)]

mod api;
mod binding;
mod leak;
mod master_key;
mod oidc;
mod rotation;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use parking_lot::Mutex;
use portcullis::api::AppState;
use serde_json::{Value, json};

use crate::app::{ADMIN, Resp, call, call_as};

/// A resource server: `GET /alerts` answers two records when the `Authorization` header
/// is one of the accepted values, `401` with `WWW-Authenticate: Bearer
/// error="invalid_token"` otherwise (and for the next `reject_next` requests).
#[derive(Clone, Default)]
pub struct ResourceServer {
    inner: Arc<RsInner>,
    pub base: String,
}

#[derive(Default)]
struct RsInner {
    accepted: Mutex<HashSet<String>>,
    /// `Authorization` of every request (`""` when absent).
    seen: Mutex<Vec<String>>,
    reject_next: AtomicUsize,
    /// Accept any bearer token (the OAuth test checks tokens itself).
    any_bearer: std::sync::atomic::AtomicBool,
}

async fn alerts(State(rs): State<Arc<RsInner>>, headers: HeaderMap) -> axum::response::Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    rs.seen.lock().push(auth.clone());
    let reject = rs
        .reject_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let ok = !reject
        && (rs.accepted.lock().contains(&auth)
            || (rs.any_bearer.load(Ordering::SeqCst) && auth.starts_with("Bearer ")));
    if ok {
        axum::Json(json!([
            {"id": "a-1", "title": "first"},
            {"id": "a-2", "title": "second"}
        ]))
        .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                r#"Bearer realm="rs", error="invalid_token", error_description="token rejected""#,
            )],
            axum::Json(json!({"error": "invalid_token"})),
        )
            .into_response()
    }
}

impl ResourceServer {
    pub async fn start() -> Self {
        let inner = Arc::new(RsInner::default());
        let app = axum::Router::new()
            .route("/alerts", axum::routing::get(alerts))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ResourceServer { inner, base }
    }
    pub fn accept(&self, authorization: &str) {
        self.inner.accepted.lock().insert(authorization.to_string());
    }
    pub fn revoke(&self, authorization: &str) {
        self.inner.accepted.lock().remove(authorization);
    }
    pub fn accept_any_bearer(&self) {
        self.inner.any_bearer.store(true, Ordering::SeqCst);
    }
    pub fn reject_next(&self, n: usize) {
        self.inner.reject_next.store(n, Ordering::SeqCst);
    }
    pub fn seen(&self) -> Vec<String> {
        self.inner.seen.lock().clone()
    }
}

pub async fn create_org(state: &AppState, org: &str) {
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

pub async fn token(state: &AppState, org: &str, role: &str) -> String {
    let r = call(
        state,
        "POST",
        &format!("/v1/orgs/{org}/tokens"),
        Some(ADMIN),
        Some(json!({"name": role, "role": role})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["token"].as_str().unwrap().to_string()
}

pub async fn put_credential(
    state: &AppState,
    token: &str,
    org: &str,
    name: &str,
    query: &str,
    body: Value,
) -> Resp {
    call(
        state,
        "PUT",
        &format!("/v1/orgs/{org}/credentials/{name}{query}"),
        Some(token),
        Some(body),
    )
    .await
}

pub fn bearer(token: &str, hosts: &[&str]) -> Value {
    json!({"kind": "bearer", "token": token, "hosts": hosts})
}

/// A rest-generic connector reading `<base>/alerts` with credential `cred` in slot `api`,
/// granted `grant`.
pub fn rest_connector(name: &str, base: &str, grant: &str, cred: &str) -> Value {
    json!({
        "name": name,
        "plugin": "rest-generic",
        "config": {"base_url": base, "path": "/alerts", "id": "/id", "title": "/title", "credential": "api"},
        "credentials": {"api": cred},
        "grants": [grant],
        "schedule": "PT1M"
    })
}

pub async fn create_connector(state: &AppState, token: &str, org: &str, body: Value) -> String {
    let r = call(
        state,
        "POST",
        &format!("/v1/orgs/{org}/connectors"),
        Some(token),
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// The connector's sandbox exactly as polls run it (its environment from
/// `ManagementService::connector_env`), bound once.
pub async fn sandbox(state: &AppState, org: &str, id: &str) -> portcullis::ConnectorSandbox {
    let svc = state.service();
    let p = svc.authenticate(ADMIN).unwrap();
    let rec = svc.get_connector(&p, org, id).unwrap();
    let bytes = std::fs::read(portcullis_e2e::artifacts::REST_GENERIC).unwrap();
    let plugin = svc.runtime().load(&bytes).await.unwrap();
    plugin.bind(svc.connector_env(&rec)).unwrap()
}

/// The configuration of a connector, for polls.
pub async fn config_of(state: &AppState, org: &str, id: &str) -> Value {
    let r = call_as(
        state,
        "GET",
        &format!("/v1/orgs/{org}/connectors/{id}"),
        ADMIN,
    )
    .await;
    r.body["config"].clone()
}
