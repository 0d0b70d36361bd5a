//! Organisations, their tokens, and the audit log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::openapi::Items;
use super::{ApiError, AppState, Caller};
use crate::management::model::{AuditRecord, Org, Role, TokenRecord};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs", post(create_org).get(list_orgs))
        .route("/orgs/{org}", get(get_org))
        .route("/orgs/{org}/tokens", post(create_token).get(list_tokens))
        .route("/orgs/{org}/tokens/{id}", delete(delete_token))
        .route("/orgs/{org}/audit", get(org_audit))
        .route("/audit", get(platform_audit))
}

/// Body of `POST /v1/orgs`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewOrg {
    /// Slug id (`[a-z0-9][a-z0-9-]{0,62}`).
    id: String,
    /// Display name (1-200 characters).
    name: String,
}

/// Create an organisation (platform admin).
#[utoipa::path(
    post,
    path = "/v1/orgs",
    tag = "orgs",
    operation_id = "createOrg",
    request_body = NewOrg,
    responses(
        (status = 201, description = "The organisation", body = Org),
        (status = 400, description = "Malformed JSON or unknown fields", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "Not the platform admin token", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = ApiError, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Invalid id or name (field errors)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create_org(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiJson(body): ApiJson<NewOrg>,
) -> Result<impl IntoResponse, ApiError> {
    let org = s.service().create_org(&p, &body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// Organisations visible to the caller (an org token sees only its own).
#[utoipa::path(
    get,
    path = "/v1/orgs",
    tag = "orgs",
    operation_id = "listOrgs",
    responses(
        (status = 200, description = "Organisations", body = Items<Org>),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_orgs(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(Items {
        items: s.service().list_orgs(&p)?,
    }))
}

/// One organisation.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}",
    tag = "orgs",
    operation_id = "getOrg",
    params(("org" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "The organisation", body = Org),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_org(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().get_org(&p, &org)?))
}

/// Body of `POST /v1/orgs/{org}/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    /// Label (1-200 characters).
    name: String,
    /// Role of the new token.
    role: Role,
}

/// A token just created: its record, and the token itself (shown once).
#[derive(Serialize, ToSchema)]
pub(super) struct CreatedToken {
    #[serde(flatten)]
    record: TokenRecord,
    /// The bearer token. Shown once; only its hash is stored.
    token: String,
    /// A reminder of the above.
    note: String,
}

/// Create a token of the organisation (org admin or platform admin).
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/tokens",
    tag = "orgs",
    operation_id = "createToken",
    params(("org" = String, Path, description = "Organisation id")),
    request_body = NewToken,
    responses(
        (status = 201, description = "The token record and the token (shown once)", body = CreatedToken),
        (status = 400, description = "Malformed JSON, unknown fields or an unknown role", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name (field errors)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    let (record, token) = s
        .service()
        .create_token(&p, &org, &body.name, body.role)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            record,
            token,
            note: "the token is shown once; only its hash is stored".into(),
        }),
    ))
}

/// Tokens of the organisation (metadata only; never a token or its hash).
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/tokens",
    tag = "orgs",
    operation_id = "listTokens",
    params(("org" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "Token records", body = Items<TokenRecord>),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_tokens(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(Items {
        items: s.service().list_tokens(&p, &org)?,
    }))
}

/// Revoke a token of the organisation.
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/tokens/{id}",
    tag = "orgs",
    operation_id = "deleteToken",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Token id (`tok_...`)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or token", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn delete_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    s.service().delete_token(&p, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the audit endpoints.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Most records to return, newest first (default 100, at most 1000).
    limit: Option<usize>,
}

/// Audit records of the organisation, newest first.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/audit",
    tag = "audit",
    operation_id = "orgAudit",
    params(("org" = String, Path, description = "Organisation id"), AuditQuery),
    responses(
        (status = 200, description = "Audit records", body = Items<AuditRecord>),
        (status = 400, description = "Bad query", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn org_audit(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(Items {
        items: s.service().audit(&p, Some(&org), q.limit.unwrap_or(100))?,
    }))
}

/// Audit records of the whole platform, newest first (platform admin).
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    operation_id = "platformAudit",
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit records", body = Items<AuditRecord>),
        (status = 400, description = "Bad query", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "Not the platform admin token", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn platform_audit(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(Items {
        items: s.service().audit(&p, None, q.limit.unwrap_or(100))?,
    }))
}
