//! `portcullis serve --demo`: the seed story, live, on loopback.
//!
//! Starts the twelve upstream simulators of
//! [`portcullis_simulators::seed_world::SeedWorld`] in-process, creates (once) an
//! organisation `demo` with its credentials and twelve connectors through the public REST
//! API — exactly what an admin's script would send — and keeps the sources publishing new
//! records. On a later start the existing connectors are re-pointed at the simulators'
//! new ports (a new revision by `demo`), so cursors, history and settings persist.
//!
//! A newcomer then watches events arrive (`GET /v1/orgs/demo/events`, the admin panel),
//! breaks a source with `POST /demo/sources/{source}/fault` (`duplicate-flood`,
//! `unauthorized`, `rate-limited`, `unavailable`, `none`) and disables it in one click.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use portcullis_simulators::seed_world::{Fault, SeedWorld};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::api::{AppState, router};
use crate::management::model::{Principal, Role};

/// The demo organisation.
pub const DEMO_ORG: &str = "demo";

/// What went wrong setting the demo up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A simulator did not start.
    #[error("cannot start the demo sources: {0}")]
    Sources(#[from] std::io::Error),
    /// The management API refused a step.
    #[error("demo setup step `{step}` failed with {status}: {body}")]
    Step {
        /// What was being done.
        step: String,
        /// HTTP status.
        status: u16,
        /// Response body (problem+json; never carries a secret).
        body: String,
    },
    /// The service refused a direct step.
    #[error("demo setup: {0}")]
    Service(String),
}

/// A running demo: the sources, the org and the tokens a newcomer uses.
pub struct Demo {
    /// The twelve sources.
    pub world: Arc<SeedWorld>,
    /// Operator token of the demo org (shown once at start).
    pub operator_token: String,
    /// Viewer token of the demo org.
    pub viewer_token: String,
    traffic: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("world", &self.world)
            .finish_non_exhaustive()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.traffic.abort();
    }
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Connector schedule (ISO 8601).
    pub schedule: String,
    /// Every this often each source publishes `records_per_tick` new records.
    pub tick: Duration,
    /// Records per source per tick.
    pub records_per_tick: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            schedule: "PT10S".into(),
            tick: Duration::from_secs(5),
            records_per_tick: 2,
        }
    }
}

fn setup_principal() -> Principal {
    Principal {
        token_id: "demo".into(),
        name: "demo setup".into(),
        org: None,
        role: Role::Admin,
    }
}

async fn call(
    app: &Router,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), DemoError> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        })
        .map_err(|e| DemoError::Service(e.to_string()))?;
    let resp = app
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| DemoError::Service(e.to_string()))?;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|e| DemoError::Service(e.to_string()))?;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, value))
}

fn step_error(step: &str, status: StatusCode, body: &Value) -> DemoError {
    DemoError::Step {
        step: step.to_string(),
        status: status.as_u16(),
        body: body.to_string(),
    }
}

/// Start the sources and make sure the demo org, its credentials and its twelve
/// connectors exist and point at them. Enables every connector.
pub async fn start(state: &AppState, options: DemoOptions) -> Result<Demo, DemoError> {
    let world = Arc::new(tokio::task::block_in_place(SeedWorld::start)?);
    let service = state.service();
    let admin = setup_principal();
    if service.get_org(&admin, DEMO_ORG).is_err() {
        service
            .create_org(&admin, DEMO_ORG, "Demo SOC")
            .await
            .map_err(|e| DemoError::Service(e.to_string()))?;
    }
    let (_, operator_token) = service
        .create_token(&admin, DEMO_ORG, "demo operator", Role::Operator)
        .await
        .map_err(|e| DemoError::Service(e.to_string()))?;
    let (_, viewer_token) = service
        .create_token(&admin, DEMO_ORG, "demo viewer", Role::Viewer)
        .await
        .map_err(|e| DemoError::Service(e.to_string()))?;

    let app = router(state.clone());
    let tok = operator_token.as_str();
    for cred in world.credentials() {
        let path = format!("/v1/orgs/{DEMO_ORG}/credentials/{}", cred.name);
        let (status, body) = call(&app, tok, "PUT", &path, Some(&cred.body)).await?;
        if !status.is_success() {
            return Err(step_error(
                &format!("credential {}", cred.name),
                status,
                &body,
            ));
        }
        // A re-run writes a new version; promote it so the connectors use it.
        if body["pending_version"].is_number() || body["pending"].is_object() {
            let (status, body) = call(&app, tok, "POST", &format!("{path}/promote"), None).await?;
            if !status.is_success() {
                return Err(step_error(&format!("promote {}", cred.name), status, &body));
            }
        }
    }

    let (status, list) = call(
        &app,
        tok,
        "GET",
        &format!("/v1/orgs/{DEMO_ORG}/connectors?limit=100"),
        None,
    )
    .await?;
    if !status.is_success() {
        return Err(step_error("list connectors", status, &list));
    }
    let existing: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    for c in world.connectors(&options.schedule) {
        let name = c.body["name"].as_str().unwrap_or_default().to_string();
        let id = existing
            .iter()
            .find(|e| e["name"] == c.body["name"])
            .and_then(|e| e["id"].as_str())
            .map(str::to_string);
        let id = match id {
            Some(id) => {
                let patch = json!({"config": c.body["config"], "grants": c.body["grants"]});
                let path = format!("/v1/orgs/{DEMO_ORG}/connectors/{id}");
                let (status, body) = call(&app, tok, "PATCH", &path, Some(&patch)).await?;
                if !status.is_success() {
                    return Err(step_error(&format!("re-point {name}"), status, &body));
                }
                id
            }
            None => {
                let path = format!("/v1/orgs/{DEMO_ORG}/connectors");
                let (status, body) = call(&app, tok, "POST", &path, Some(&c.body)).await?;
                if !status.is_success() {
                    return Err(step_error(&format!("create {name}"), status, &body));
                }
                body["id"].as_str().unwrap_or_default().to_string()
            }
        };
        let path = format!("/v1/orgs/{DEMO_ORG}/connectors/{id}/enable");
        let (status, body) = call(&app, tok, "POST", &path, None).await?;
        if !status.is_success() {
            return Err(step_error(&format!("enable {name}"), status, &body));
        }
    }

    let traffic = {
        let world = world.clone();
        let (every, n) = (options.tick, options.records_per_tick);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let world = world.clone();
                // The simulators' setters take short locks only.
                world.tick(n);
            }
        })
    };
    Ok(Demo {
        world,
        operator_token,
        viewer_token,
        traffic,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    fault: String,
    #[serde(default)]
    retry_after_secs: Option<u64>,
}

/// `POST /demo/sources/{source}/fault` — break or mend a source (operator of the demo
/// org or platform admin).
pub fn routes(state: AppState, world: Arc<SeedWorld>) -> Router {
    Router::new()
        .route("/demo/sources/{source}/fault", post(set_fault))
        .with_state((state, world))
}

async fn set_fault(
    State((state, world)): State<(AppState, Arc<SeedWorld>)>,
    headers: axum::http::HeaderMap,
    Path(source): Path<String>,
    body: Result<Json<FaultBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let problem = |status: StatusCode, detail: String| {
        (
            status,
            [("content-type", "application/problem+json")],
            json!({"type": "about:blank", "title": status.canonical_reason(), "status": status.as_u16(), "detail": detail}).to_string(),
        )
            .into_response()
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(principal) = token.and_then(|t| state.service().authenticate(t).ok()) else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required".into(),
        );
    };
    let allowed = principal.is_platform_admin()
        || (principal.org.as_deref() == Some(DEMO_ORG) && principal.role >= Role::Operator);
    if !allowed {
        return problem(
            StatusCode::FORBIDDEN,
            "breaking a demo source needs an operator of the demo org".into(),
        );
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let fault = match body.fault.as_str() {
        "none" => Fault::None,
        "duplicate-flood" => Fault::DuplicateFlood,
        "unauthorized" => Fault::Unauthorized,
        "rate-limited" => Fault::RateLimited {
            retry_after_secs: body.retry_after_secs.unwrap_or(30),
        },
        "unavailable" => Fault::Unavailable,
        other => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "/fault: unknown fault {other:?}; expected one of none, duplicate-flood, unauthorized, rate-limited, unavailable"
                ),
            );
        }
    };
    match world.set_fault(&source, fault) {
        Ok(()) => {
            tracing::info!(source = %source, fault = %body.fault, actor = %principal.actor(), "demo source fault set");
            (
                StatusCode::OK,
                Json(json!({"source": source, "fault": body.fault})),
            )
                .into_response()
        }
        Err(e) => problem(StatusCode::NOT_FOUND, e),
    }
}
