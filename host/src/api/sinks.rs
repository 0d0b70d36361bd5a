//! Sinks of an organisation: `GET/PUT /v1/orgs/{org}/sinks` (see
//! [`crate::ingest::sinks`] for the configuration, the event-store default and how
//! secrets are kept write-only).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::extract::ApiPath;
use super::{ApiError, AppState, Caller};
use crate::ingest::sinks::{OrgSinks, SinkConfigError, SinkRegistry};
use crate::management::ServiceError;
use crate::management::model::Role;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/orgs/{org}/sinks", get(read).put(replace))
}

fn registry(s: &AppState) -> Result<&SinkRegistry, ApiError> {
    s.ingest().map(|i| i.push.sinks().as_ref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready",
            "ingestion is not running",
        )
    })
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "sink configuration store failure");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error",
        "the store failed; see the server log",
    )
}

/// The org's sinks (admin or operator; secrets are never shown).
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/sinks",
    tag = "sinks",
    operation_id = "getSinks",
    params(("org" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "The configuration (defaults when never set)", body = OrgSinks),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn read(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    s.service().get_org(&p, &org)?;
    if p.role < Role::Operator {
        return Err(ServiceError::Forbidden("reading sinks needs the operator role".into()).into());
    }
    Ok(Json(registry(&s)?.config(&org).map_err(store_error)?))
}

/// Replace the org's sinks (admin or operator). `event_store` left out stays `true`;
/// a forward sink's secret left out keeps the stored one of the sink with that name.
#[utoipa::path(
    put,
    path = "/v1/orgs/{org}/sinks",
    tag = "sinks",
    operation_id = "putSinks",
    params(("org" = String, Path, description = "Organisation id")),
    request_body = OrgSinks,
    responses(
        (status = 200, description = "The stored configuration (secrets left out)", body = OrgSinks),
        (status = 400, description = "Malformed JSON or unknown fields", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (field errors)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn replace(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<OrgSinks>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(org) = path?;
    s.service().get_org(&p, &org)?;
    if p.role < Role::Operator {
        return Err(
            ServiceError::Forbidden("changing sinks needs the operator role".into()).into(),
        );
    }
    let Json(cfg) = body?;
    let names: Vec<String> = cfg
        .sinks
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v["name"].as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    let audit = s.service().audit_op(
        &p.actor(),
        Some(&org),
        "sinks.update",
        &format!("org/{org}/sinks"),
        "ok",
        serde_json::json!({"event_store": cfg.event_store, "sinks": names}),
    )?;
    match registry(&s)?.put_config(&org, cfg, Some(audit)) {
        Ok(c) => Ok(Json(c)),
        Err(SinkConfigError::Invalid(fields)) => Err(ServiceError::Invalid {
            message: format!("{} invalid field(s)", fields.len()),
            fields,
        }
        .into()),
        Err(SinkConfigError::Store(e)) => Err(store_error(e)),
    }
}
