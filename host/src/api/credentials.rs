//! Credentials of an organisation (the vault): write-only secrets, metadata reads,
//! versions with test, promote and rollback, and the platform admin's master key rotation.
//! No answer, error or audit record ever contains a secret value.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::openapi::Items;
use super::{ApiError, AppState, Caller};
use crate::vault::RotationReport;
use crate::vault::record::{
    CredentialInputDoc, CredentialMetadata, CredentialTestReport, zeroize_json,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/credentials", get(list))
        .route(
            "/orgs/{org}/credentials/{name}",
            get(read).put(put).delete(remove),
        )
        .route("/orgs/{org}/credentials/{name}/test", post(test))
        .route("/orgs/{org}/credentials/{name}/promote", post(promote))
        .route("/orgs/{org}/credentials/{name}/rollback", post(rollback))
        .route("/vault/rotate-master-key", post(rotate_master_key))
}

/// Path of `/v1/orgs/{org}/credentials/{name}` and its actions.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct CredentialPath {
    /// Organisation id
    org: String,
    /// Credential name
    name: String,
}

/// Query of `PUT .../credentials/{name}`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct PutQuery {
    /// Promote the new version at once instead of leaving it pending.
    #[serde(default)]
    promote: bool,
}

/// Query of `DELETE .../credentials/{name}`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DeleteQuery {
    /// Delete even while connectors are bound to it.
    #[serde(default)]
    force: bool,
}

/// Query of `POST .../credentials/{name}/test`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct TestQuery {
    /// Version to test (default: the pending version, else the promoted one).
    version: Option<u32>,
}

/// Body of `POST /v1/vault/rotate-master-key`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateBody {
    /// A key file on the server to rotate to (created with a fresh key, mode 0600, if
    /// missing). Omitted: a fresh key replaces the current key file.
    #[serde(default)]
    new_key_file: Option<String>,
}

const P: &str = "application/problem+json";

/// Create a credential or write a new version (operator). Secret fields are write-only:
/// no answer ever contains them. On an existing credential the new version is pending
/// until promoted (or `?promote=true`).
#[utoipa::path(
    put,
    path = "/v1/orgs/{org}/credentials/{name}",
    tag = "credentials",
    operation_id = "putCredential",
    params(
        CredentialPath,
        PutQuery,
    ),
    request_body = CredentialInputDoc,
    responses(
        (status = 201, description = "Created (version 1, promoted)", body = CredentialMetadata),
        (status = 200, description = "New version written", body = CredentialMetadata),
        (status = 400, description = "Malformed JSON", body = ApiError, content_type = P),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = P),
        (status = 403, description = "A viewer token", body = ApiError, content_type = P),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = P),
        (status = 409, description = "The kind differs from the existing credential's", body = ApiError, content_type = P),
        (status = 422, description = "Invalid fields (named, never echoed)", body = ApiError, content_type = P),
    ),
    security(("bearer" = []))
)]
pub(super) async fn put(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(CredentialPath { org, name }): ApiPath<CredentialPath>,
    ApiQuery(q): ApiQuery<PutQuery>,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> Result<impl IntoResponse, ApiError> {
    let result = s
        .service()
        .put_credential(&p, &org, &name, &body, q.promote)
        .await;
    zeroize_json(&mut body);
    let (meta, created) = result?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(meta)))
}

/// Credentials of the organisation: metadata only (viewer).
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/credentials",
    tag = "credentials",
    operation_id = "listCredentials",
    params(("org" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "Credentials (metadata only)", body = Items<CredentialMetadata>),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = P),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = P),
    ),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(Items {
        items: s.service().list_credentials(&p, &org)?,
    }))
}

/// One credential: metadata only (viewer).
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/credentials/{name}",
    tag = "credentials",
    operation_id = "getCredential",
    params(CredentialPath),
    responses(
        (status = 200, description = "The credential (metadata only)", body = CredentialMetadata),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = P),
        (status = 404, description = "No such organisation or credential", body = ApiError, content_type = P),
    ),
    security(("bearer" = []))
)]
pub(super) async fn read(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(CredentialPath { org, name }): ApiPath<CredentialPath>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().get_credential(&p, &org, &name)?))
}

/// Delete a credential with all its versions (operator); refused while connectors are
/// bound to it unless `force=true`.
#[utoipa::path(
    delete,
    path = "/v1/orgs/{org}/credentials/{name}",
    tag = "credentials",
    operation_id = "deleteCredential",
    params(
        CredentialPath,
        DeleteQuery,
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad query", body = ApiError, content_type = P),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = P),
        (status = 403, description = "A viewer token", body = ApiError, content_type = P),
        (status = 404, description = "No such organisation or credential", body = ApiError, content_type = P),
        (status = 409, description = "Bound to connectors (pass force=true)", body = ApiError, content_type = P),
    ),
    security(("bearer" = []))
)]
pub(super) async fn remove(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(CredentialPath { org, name }): ApiPath<CredentialPath>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<impl IntoResponse, ApiError> {
    s.service()
        .delete_credential(&p, &org, &name, q.force)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Test a version (default: pending, else promoted) against every connector bound to the
/// credential, running their `test-connection` with it, without promoting it (operator).
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/credentials/{name}/test",
    tag = "credentials",
    operation_id = "testCredential",
    params(
        CredentialPath,
        TestQuery,
    ),
    responses(
        (status = 200, description = "Per-connector results (`AUTH_FAILED` with the token endpoint's error code when authentication failed)", body = CredentialTestReport),
        (status = 400, description = "Bad query", body = ApiError, content_type = P),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = P),
        (status = 403, description = "A viewer token", body = ApiError, content_type = P),
        (status = 404, description = "No such organisation or credential", body = ApiError, content_type = P),
        (status = 409, description = "No connector is bound to the credential", body = ApiError, content_type = P),
        (status = 422, description = "No such version", body = ApiError, content_type = P),
    ),
    security(("bearer" = []))
)]
pub(super) async fn test(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(CredentialPath { org, name }): ApiPath<CredentialPath>,
    ApiQuery(q): ApiQuery<TestQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        s.service()
            .test_credential(&p, &org, &name, q.version)
            .await?,
    ))
}

/// Promote the pending version (operator): every bound connector's next request uses it.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/credentials/{name}/promote",
    tag = "credentials",
    operation_id = "promoteCredential",
    params(CredentialPath),
    responses(
        (status = 200, description = "Promoted", body = CredentialMetadata),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = P),
        (status = 403, description = "A viewer token", body = ApiError, content_type = P),
        (status = 404, description = "No such organisation or credential", body = ApiError, content_type = P),
        (status = 409, description = "No pending version", body = ApiError, content_type = P),
    ),
    security(("bearer" = []))
)]
pub(super) async fn promote(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(CredentialPath { org, name }): ApiPath<CredentialPath>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.service().promote_credential(&p, &org, &name).await?))
}

/// Return to the previous version (operator).
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/credentials/{name}/rollback",
    tag = "credentials",
    operation_id = "rollbackCredential",
    params(CredentialPath),
    responses(
        (status = 200, description = "Rolled back", body = CredentialMetadata),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = P),
        (status = 403, description = "A viewer token", body = ApiError, content_type = P),
        (status = 404, description = "No such organisation or credential", body = ApiError, content_type = P),
        (status = 409, description = "No previous version", body = ApiError, content_type = P),
    ),
    security(("bearer" = []))
)]
pub(super) async fn rollback(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(CredentialPath { org, name }): ApiPath<CredentialPath>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        s.service().rollback_credential(&p, &org, &name).await?,
    ))
}

/// Re-wrap every organisation's data key under a new master key, online (platform
/// admin). Secrets are not re-entered. Without `new_key_file` a fresh key replaces the
/// current key file; with it the server switches to that file's key and the configuration
/// must name it (`[vault] master_key_file`) for the next start.
#[utoipa::path(
    post,
    path = "/v1/vault/rotate-master-key",
    tag = "credentials",
    operation_id = "rotateMasterKey",
    request_body(content = RotateBody, description = "Optional new key file", content_type = "application/json"),
    responses(
        (status = 200, description = "Rotated", body = RotationReport),
        (status = 400, description = "Malformed JSON", body = ApiError, content_type = P),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = P),
        (status = 403, description = "Not the platform admin token", body = ApiError, content_type = P),
        (status = 409, description = "Cannot rotate (key from the environment and no new key file, same key, unreadable file)", body = ApiError, content_type = P),
    ),
    security(("bearer" = []))
)]
pub(super) async fn rotate_master_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: Option<Json<RotateBody>>,
) -> Result<impl IntoResponse, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let path = body.new_key_file.map(std::path::PathBuf::from);
    Ok(Json(
        s.service().rotate_master_key(&p, path.as_deref()).await?,
    ))
}
