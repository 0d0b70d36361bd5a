//! Connectors of an organisation: CRUD, revisions, enable/disable, connection test.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, AppState, Caller};
use crate::management::{ConnectorFilter, ConnectorInput, ConnectorPatch};

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

async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<ConnectorInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(org) = path?;
    let Json(body) = body?;
    let rec = s.service().create_connector(&p, &org, body).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ConnectorFilter>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(org) = path?;
    let Query(filter) = q?;
    let (items, next) = s.service().list_connectors(&p, &org, &filter)?;
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

async fn read(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((org, id)) = path?;
    Ok(Json(s.service().get_connector(&p, &org, &id)?))
}

async fn update(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<ConnectorPatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((org, id)) = path?;
    let Json(body) = body?;
    let (rec, diff) = s.service().update_connector(&p, &org, &id, body).await?;
    let mut doc = serde_json::to_value(rec).unwrap_or_default();
    if let Some(d) = diff {
        doc["capability_diff"] = d;
    }
    Ok(Json(doc))
}

async fn remove(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((org, id)) = path?;
    s.service().delete_connector(&p, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enable(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((org, id)) = path?;
    Ok(Json(s.service().set_enabled(&p, &org, &id, true).await?))
}

async fn disable(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((org, id)) = path?;
    Ok(Json(s.service().set_enabled(&p, &org, &id, false).await?))
}

async fn test(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((org, id)) = path?;
    Ok(Json(s.service().test_connector(&p, &org, &id).await?))
}

async fn revisions(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((org, id)) = path?;
    Ok(Json(
        json!({"items": s.service().revisions(&p, &org, &id)?}),
    ))
}
