//! Organisations, their tokens, and the audit log.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, Caller};
use crate::management::model::Role;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs", post(create_org).get(list_orgs))
        .route("/orgs/{org}", get(get_org))
        .route("/orgs/{org}/tokens", post(create_token).get(list_tokens))
        .route("/orgs/{org}/tokens/{id}", delete(delete_token))
        .route("/orgs/{org}/audit", get(org_audit))
        .route("/audit", get(platform_audit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    id: String,
    name: String,
}

async fn create_org(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: Result<Json<NewOrg>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let org = s.service().create_org(&p, &body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

async fn list_orgs(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(json!({"items": s.service().list_orgs(&p)?})))
}

async fn get_org(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(org) = path?;
    Ok(Json(s.service().get_org(&p, &org)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: Role,
}

async fn create_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(org) = path?;
    let Json(body) = body?;
    let (rec, token) = s
        .service()
        .create_token(&p, &org, &body.name, body.role)
        .await?;
    let mut doc = serde_json::to_value(rec).unwrap_or_default();
    doc["token"] = json!(token);
    doc["note"] = json!("the token is shown once; only its hash is stored");
    Ok((StatusCode::CREATED, Json(doc)))
}

async fn list_tokens(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(org) = path?;
    Ok(Json(json!({"items": s.service().list_tokens(&p, &org)?})))
}

async fn delete_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((org, id)) = path?;
    s.service().delete_token(&p, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn org_audit(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(org) = path?;
    let Query(q) = q?;
    Ok(Json(
        json!({"items": s.service().audit(&p, Some(&org), q.limit.unwrap_or(100))?}),
    ))
}

async fn platform_audit(
    State(s): State<AppState>,
    Caller(p): Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = q?;
    Ok(Json(
        json!({"items": s.service().audit(&p, None, q.limit.unwrap_or(100))?}),
    ))
}
