//! Connectors of an organisation: CRUD, revisions, enable/disable, connection test.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::openapi::Items;
use super::{ApiError, AppState, Caller};
use crate::management::model::{ConnectorRecord, Revision};
use crate::management::{ConnectorFilter, ConnectorInput, ConnectorPatch};
use crate::runtime::TestReport;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/connectors", post(create).get(list))
        .route(
            "/orgs/{org}/connectors/{id}",
            get(read).patch(update).delete(remove),
        )
        .route("/orgs/{org}/connectors/{id}/enable", post(enable))
        .route("/orgs/{org}/connectors/{id}/disable", post(disable))
        .route("/orgs/{org}/connectors/{id}/test", post(test))
        .route("/orgs/{org}/connectors/{id}/revisions", get(revisions))
}

/// One page of connectors.
#[derive(Serialize, ToSchema)]
pub(super) struct ConnectorPage {
    /// Connectors of this page.
    items: Vec<ConnectorRecord>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A connector after an update, with the capability diff when its plugin version changed.
#[derive(Serialize, ToSchema)]
pub(super) struct UpdatedConnector {
    #[serde(flatten)]
    record: ConnectorRecord,
    /// Hosts, credential slots and push input added or removed by a plugin version change
    /// (`from`, `to`, `hosts_added`, `hosts_removed`, `credential_slots_added`,
    /// `credential_slots_removed`, `accepts_push`, `note`). New hosts are never granted
    /// automatically.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    capability_diff: Option<serde_json::Value>,
}

/// Create a connector (operator). Starts disabled unless `enabled` is true.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/connectors",
    tag = "connectors",
    operation_id = "createConnector",
    params(("org" = String, Path, description = "Organisation id")),
    request_body = ConnectorInput,
    responses(
        (status = 201, description = "The connector (revision 1)", body = ConnectorRecord),
        (status = 400, description = "Malformed JSON or unknown fields", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Invalid configuration, grants, credentials or schedule (field errors)", body = ApiError, content_type = "application/problem+json"),
        (status = 502, description = "The plugin's `validate-config` failed", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<ConnectorInput>,
) -> Result<impl IntoResponse, ApiError> {
    let rec = s.service().create_connector(&p, &org, body).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

/// Connectors of the organisation, filtered, one page at a time.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/connectors",
    tag = "connectors",
    operation_id = "listConnectors",
    params(("org" = String, Path, description = "Organisation id"), ConnectorFilter),
    responses(
        (status = 200, description = "One page of connectors", body = ConnectorPage),
        (status = 400, description = "Bad query (unknown parameter, non-numeric limit)", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter value (field errors)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
    ApiQuery(filter): ApiQuery<ConnectorFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let (items, next_cursor) = s.service().list_connectors(&p, &org, &filter)?;
    Ok(Json(ConnectorPage { items, next_cursor }))
}

/// One connector.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/connectors/{id}",
    tag = "connectors",
    operation_id = "getConnector",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 200, description = "The connector", body = ConnectorRecord),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn read(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().get_connector(&p, &org, &id)?))
}

/// Change a connector (operator): every change is a new revision. Changing
/// `plugin_version` upgrades (or downgrades) and answers the capability diff.
#[utoipa::path(
    patch,
    path = "/v1/orgs/{org}/connectors/{id}",
    tag = "connectors",
    operation_id = "updateConnector",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    request_body = ConnectorPatch,
    responses(
        (status = 200, description = "The connector", body = UpdatedConnector),
        (status = 400, description = "Malformed JSON or unknown fields", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (field errors)", body = ApiError, content_type = "application/problem+json"),
        (status = 502, description = "The plugin's `validate-config` failed", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn update(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ConnectorPatch>,
) -> Result<impl IntoResponse, ApiError> {
    let (record, capability_diff) = s.service().update_connector(&p, &org, &id, body).await?;
    Ok(Json(UpdatedConnector {
        record,
        capability_diff,
    }))
}

/// Delete a connector with its revisions and cursor (operator).
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/connectors/{id}",
    tag = "connectors",
    operation_id = "deleteConnector",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn remove(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    s.service().delete_connector(&p, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a connector (operator): ingestion resumes from its saved cursor.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/connectors/{id}/enable",
    tag = "connectors",
    operation_id = "enableConnector",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 200, description = "The connector", body = ConnectorRecord),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "Its plugin version is not installed", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn enable(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().set_enabled(&p, &org, &id, true).await?))
}

/// Disable a connector (operator): ingestion stops; config, credentials, grants, cursor
/// and history stay.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/connectors/{id}/disable",
    tag = "connectors",
    operation_id = "disableConnector",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 200, description = "The connector", body = ConnectorRecord),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn disable(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().set_enabled(&p, &org, &id, false).await?))
}

/// Run the plugin's `test-connection` in the sandbox (operator); allowed on a disabled
/// connector. A failing upstream is a report with failed stages, not an error.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/connectors/{id}/test",
    tag = "connectors",
    operation_id = "testConnector",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 200, description = "Stages (auth, sample, ...), latency and up to 3 sample events", body = TestReport),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector, or its plugin version is not installed", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The connector's grants cannot be bound", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn test(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().test_connector(&p, &org, &id).await?))
}

/// Configuration revisions of a connector, oldest first.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/connectors/{id}/revisions",
    tag = "connectors",
    operation_id = "connectorRevisions",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 200, description = "Revisions with author, time and configuration", body = Items<Revision>),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn revisions(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(Items {
        items: s.service().revisions(&p, &org, &id)?,
    }))
}
