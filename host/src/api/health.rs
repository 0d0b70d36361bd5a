//! Connector health and metrics: `GET /v1/orgs/{org}/connectors/{id}/health` (current
//! health with recent transitions), `GET /v1/orgs/{org}/connectors/{id}/metrics`
//! (events/min, last event, latency percentiles, ...) and `GET /metrics` (Prometheus text;
//! the platform admin sees every org, an org token only its own org's series).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiPath, ApiQuery};
use super::{ApiError, AppState, Caller};
use crate::health::ConnectorMetricsView;
use crate::management::ConnectorHealthView;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/connectors/{id}/health", get(connector_health))
        .route(
            "/orgs/{org}/connectors/{id}/metrics",
            get(connector_metrics),
        )
}

/// Query of the health endpoint.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct HealthQuery {
    /// Most transitions to return, newest first (default 50, at most 1000).
    limit: Option<usize>,
}

/// A connector's health: state, reasons with their fields, hold-off, crash-loop policy and
/// recent transitions (newest first).
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/connectors/{id}/health",
    tag = "connectors",
    operation_id = "connectorHealth",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
        HealthQuery,
    ),
    responses(
        (status = 200, description = "Health and transitions", body = ConnectorHealthView),
        (status = 400, description = "Bad query", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn connector_health(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().connector_health(
        &p,
        &org,
        &id,
        q.limit.unwrap_or(50),
    )?))
}

/// A connector's figures since the server started: events in/out, duplicates dropped,
/// events per minute, last event and last success, poll latency p50/p95/p99, errors by
/// reason code, sink lag.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/connectors/{id}/metrics",
    tag = "connectors",
    operation_id = "connectorMetrics",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 200, description = "Figures", body = ConnectorMetricsView),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn connector_metrics(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().connector_metrics(&p, &org, &id)?))
}

/// Prometheus metrics (text exposition format 0.0.4) of the connectors the token may see.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn prometheus(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<impl IntoResponse, ApiError> {
    let text = s.service().prometheus_metrics(&p)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
