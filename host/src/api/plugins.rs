//! Plugins installed at runtime: upload, list (with the capabilities they request), unload.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, Caller, MAX_PLUGIN_BODY};
use crate::management::model::PluginRecord;

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

fn capabilities(r: &PluginRecord) -> serde_json::Value {
    json!({
        "hosts": r.manifest.hosts,
        "credential_slots": r.manifest.credential_slots,
        "accepts_push": r.manifest.accepts_push,
        "imports": r.imports,
    })
}

fn plugin_doc(r: &PluginRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["capabilities"] = capabilities(r);
    v
}

async fn install_plugin(
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

async fn list_plugins(
    State(s): State<AppState>,
    Caller(_p): Caller,
) -> Result<impl IntoResponse, ApiError> {
    let items: Vec<_> = s.service().list_plugins()?.iter().map(plugin_doc).collect();
    Ok(Json(json!({"items": items})))
}

async fn get_plugin(
    State(s): State<AppState>,
    Caller(_p): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = path?;
    let versions = s.service().plugin_versions(&id)?;
    let latest = versions.first().map(plugin_doc);
    Ok(Json(json!({
        "id": id,
        "latest": latest,
        "versions": versions.iter().map(plugin_doc).collect::<Vec<_>>(),
    })))
}

async fn get_version(
    State(s): State<AppState>,
    Caller(_p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((id, version)) = path?;
    let rec = s
        .service()
        .plugin_versions(&id)?
        .into_iter()
        .find(|r| r.version == version)
        .ok_or_else(|| {
            ApiError::from(crate::management::ServiceError::NotFound {
                kind: "plugin version",
                id: format!("{id}@{version}"),
            })
        })?;
    Ok(Json(plugin_doc(&rec)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn delete_plugin(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = path?;
    let Query(q) = q?;
    Ok(Json(
        s.service().delete_plugin(&p, &id, None, q.force).await?,
    ))
}

async fn delete_version(
    State(s): State<AppState>,
    Caller(p): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path((id, version)) = path?;
    let Query(q) = q?;
    Ok(Json(
        s.service()
            .delete_plugin(&p, &id, Some(&version), q.force)
            .await?,
    ))
}
