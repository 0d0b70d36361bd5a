//! Plugins installed at runtime: upload, list (with the capabilities they request), unload.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiPath, ApiQuery};
use super::openapi::{Items, WasmComponent};
use super::{ApiError, AppState, Caller, MAX_PLUGIN_BODY};
use crate::management::PluginDeleteOutcome;
use crate::management::model::{PluginCapabilities, PluginRecord};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/plugins",
            get(list_plugins)
                .post(install_plugin)
                .layer(DefaultBodyLimit::max(MAX_PLUGIN_BODY)),
        )
        .route("/plugins/{id}", get(get_plugin).delete(delete_plugin))
        .route(
            "/plugins/{id}/{version}",
            get(get_version).delete(delete_version),
        )
}

/// An installed plugin version with the capabilities it requests.
#[derive(Serialize, ToSchema)]
pub(super) struct PluginDoc {
    #[serde(flatten)]
    record: PluginRecord,
    /// What it asks for: hosts, credential slots and kinds, push input; and its imports.
    capabilities: PluginCapabilities,
}

fn plugin_doc(r: &PluginRecord) -> PluginDoc {
    PluginDoc {
        record: r.clone(),
        capabilities: r.capabilities(),
    }
}

/// Every installed version of one plugin.
#[derive(Serialize, ToSchema)]
pub(super) struct PluginVersions {
    /// Plugin id.
    id: String,
    /// The newest version.
    latest: Option<PluginDoc>,
    /// Every version, newest first.
    versions: Vec<PluginDoc>,
}

/// Install a plugin component (platform admin). It is validated (component, WIT API
/// version, imports), precompiled, stored and served at once. Re-uploading the same bytes
/// answers 200 with the existing record.
#[utoipa::path(
    post,
    path = "/v1/plugins",
    tag = "plugins",
    operation_id = "installPlugin",
    request_body(content = WasmComponent, content_type = "application/wasm", description = "The WebAssembly component"),
    responses(
        (status = 201, description = "Installed", body = PluginDoc),
        (status = 200, description = "Already installed with the same contents", body = PluginDoc),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "Not the platform admin token", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "Same id and version installed with other contents", body = ApiError, content_type = "application/problem+json"),
        (status = 413, description = "Component too large", body = ApiError, content_type = "application/problem+json"),
        (status = 415, description = "Not `Content-Type: application/wasm`", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Refused: not a component, wrong WIT version, unknown imports, bad manifest", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn install_plugin(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/wasm") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            format!("upload the component with `Content-Type: application/wasm` (got {ct:?})"),
        ));
    }
    let (rec, created) = s.service().install_plugin(&p, &body, false).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(plugin_doc(&rec))))
}

/// Every installed plugin version, with its capabilities.
#[utoipa::path(
    get,
    path = "/v1/plugins",
    tag = "plugins",
    operation_id = "listPlugins",
    responses(
        (status = 200, description = "Installed plugin versions", body = Items<PluginDoc>),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_plugins(
    State(s): State<AppState>,
    Caller(_p): Caller,
) -> Result<impl IntoResponse, ApiError> {
    let items: Vec<_> = s.service().list_plugins()?.iter().map(plugin_doc).collect();
    Ok(Json(Items { items }))
}

/// One plugin: its newest version and every version.
#[utoipa::path(
    get,
    path = "/v1/plugins/{id}",
    tag = "plugins",
    operation_id = "getPlugin",
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "The plugin's versions", body = PluginVersions),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_plugin(
    State(s): State<AppState>,
    Caller(_p): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let versions = s.service().plugin_versions(&id)?;
    let latest = versions.first().map(plugin_doc);
    Ok(Json(PluginVersions {
        id,
        latest,
        versions: versions.iter().map(plugin_doc).collect(),
    }))
}

/// One version of a plugin.
#[utoipa::path(
    get,
    path = "/v1/plugins/{id}/{version}",
    tag = "plugins",
    operation_id = "getPluginVersion",
    params(
        ("id" = String, Path, description = "Plugin id"),
        ("version" = String, Path, description = "Plugin version"),
    ),
    responses(
        (status = 200, description = "The plugin version", body = PluginDoc),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin or version", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_version(
    State(s): State<AppState>,
    Caller(_p): Caller,
    ApiPath((id, version)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let rec = s.service().plugin_record(&id, &version).ok_or_else(|| {
        ApiError::from(crate::management::ServiceError::NotFound {
            kind: "plugin version",
            id: format!("{id}@{version}"),
        })
    })?;
    Ok(Json(plugin_doc(&rec)))
}

/// Query of the unload endpoints.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DeleteQuery {
    /// Disable the connectors that use the plugin first, instead of refusing (409).
    #[serde(default)]
    force: bool,
}

/// Unload every version of a plugin (platform admin). Refused while connectors use it
/// unless `force=true`, which disables them first (recorded in the audit log).
#[utoipa::path(
    delete,
    path = "/v1/plugins/{id}",
    tag = "plugins",
    operation_id = "deletePlugin",
    params(("id" = String, Path, description = "Plugin id"), DeleteQuery),
    responses(
        (status = 200, description = "Unloaded", body = PluginDeleteOutcome),
        (status = 400, description = "Bad query", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "Not the platform admin token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "In use by connectors (pass force=true)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn delete_plugin(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        s.service().delete_plugin(&p, &id, None, q.force).await?,
    ))
}

/// Unload one version of a plugin (platform admin); same rules as unloading all.
#[utoipa::path(
    delete,
    path = "/v1/plugins/{id}/{version}",
    tag = "plugins",
    operation_id = "deletePluginVersion",
    params(
        ("id" = String, Path, description = "Plugin id"),
        ("version" = String, Path, description = "Plugin version"),
        DeleteQuery,
    ),
    responses(
        (status = 200, description = "Unloaded", body = PluginDeleteOutcome),
        (status = 400, description = "Bad query", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "Not the platform admin token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin or version", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "In use by connectors (pass force=true)", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn delete_version(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((id, version)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        s.service()
            .delete_plugin(&p, &id, Some(&version), q.force)
            .await?,
    ))
}
