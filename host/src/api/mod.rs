//! The HTTP API: REST under `/v1` (JSON; errors as RFC 9457 problem+json; its OpenAPI 3.1
//! document at `/v1/openapi.json`), GraphQL at `/graphql`, `/healthz`, `/readyz`. One
//! [`router`] builds it over an [`AppState`]; handlers are grouped per resource; every REST
//! error goes through [`ApiError`].

mod connectors;
mod credentials;
mod error;
mod events;
mod extract;
pub mod graphql;
mod health;
mod ingest;
pub mod openapi;
mod orgs;
mod plugins;
mod sinks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use error::ApiError;

use crate::management::ManagementService;
use crate::management::model::Principal;

/// Largest JSON body accepted.
pub const MAX_JSON_BODY: usize = 1024 * 1024;
/// Largest plugin upload.
pub const MAX_PLUGIN_BODY: usize = 64 * 1024 * 1024;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

/// What [`AppState`] holds.
pub struct AppInner {
    /// The management service.
    pub service: Arc<ManagementService>,
    /// The ingestion pipeline and scheduler, once the server started them.
    pub ingest: std::sync::OnceLock<crate::ingest::Ingest>,
    /// Set once startup (bundled plugins, store) is complete.
    pub ready: AtomicBool,
    /// Browser sessions of the admin panel.
    pub ui_sessions: crate::ui::SessionStore,
    next_request: AtomicU64,
}

impl AppState {
    /// Wrap a service.
    pub fn new(service: ManagementService) -> Self {
        Self::shared(Arc::new(service))
    }

    /// Wrap a service that ingestion shares.
    pub fn shared(service: Arc<ManagementService>) -> Self {
        AppState(Arc::new(AppInner {
            service,
            ingest: std::sync::OnceLock::new(),
            ready: AtomicBool::new(false),
            ui_sessions: crate::ui::SessionStore::default(),
            next_request: AtomicU64::new(1),
        }))
    }

    /// The service.
    pub fn service(&self) -> &ManagementService {
        &self.0.service
    }

    /// Ingestion (pipeline, event store, scheduler), when started.
    pub fn ingest(&self) -> Option<&crate::ingest::Ingest> {
        self.0.ingest.get()
    }
}

/// The authenticated caller, from `Authorization: Bearer <token>`.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthenticated("missing `Authorization: Bearer <token>` header")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header must use the Bearer scheme")
            })?;
        let principal = state
            .service()
            .authenticate(token)
            .map_err(ApiError::from)?;
        Ok(Caller(principal))
    }
}

/// A request id per request, in the `x-request-id` response header and the log span.
async fn request_id(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "req-{}",
                state.0.next_request.fetch_add(1, Ordering::Relaxed)
            )
        });
    let span = tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = std::time::Instant::now();
    let mut resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let _enter = span.enter();
    tracing::info!(
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Liveness.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    operation_id = "healthz",
    responses((status = 200, description = "The process is up", body = openapi::Status)),
)]
async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
}

/// Readiness: startup (store, bundled plugins) is complete.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = openapi::Status),
        (status = 503, description = "Startup still in progress", body = ApiError, content_type = "application/problem+json"),
    ),
)]
async fn readyz(State(state): State<AppState>) -> Response {
    if state.0.ready.load(Ordering::Relaxed) {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )
            .into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready",
            "startup is still in progress",
        )
        .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found", "no such endpoint")
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .merge(orgs::routes())
        .merge(connectors::routes())
        .merge(health::routes())
        .merge(credentials::routes())
        .merge(events::routes())
        .merge(ingest::routes())
        .merge(sinks::routes())
        .merge(plugins::routes())
        .route("/openapi.json", get(openapi::openapi_json))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(health::prometheus))
        .nest("/v1", v1)
        .merge(graphql::routes().layer(DefaultBodyLimit::max(MAX_JSON_BODY)))
        .merge(crate::ui::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_id,
        ))
        .with_state(state)
}
