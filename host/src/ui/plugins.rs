//! The plugins page: every installed plugin version with its category, what it requests
//! in plain words, the connectors of the org using it, upload of a new component
//! (platform admin) and unload (refused while in use unless forced).

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{Section, csrf_field, notice, page};
use super::session::UiSession;
use super::words::{capability_sentences, category_label};
use super::{UiError, check_csrf, html_response};
use crate::api::AppState;
use crate::management::ConnectorFilter;
use crate::management::model::PluginRecord;

/// Largest upload through the panel (same as the API's).
pub const MAX_UPLOAD: usize = crate::api::MAX_PLUGIN_BODY;

fn render(
    state: &AppState,
    s: &UiSession,
    message: Option<(&str, String)>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let plugins: Vec<PluginRecord> = state.service().list_plugins()?;
    let admin = s.principal.is_platform_admin();
    // Connectors of the org in view using each plugin version (id, name).
    let users = |p: &PluginRecord| -> Vec<(String, String)> {
        let Some(org) = &s.org else {
            return Vec::new();
        };
        let filter = ConnectorFilter {
            plugin: Some(p.id.clone()),
            limit: Some(500),
            ..ConnectorFilter::default()
        };
        state
            .service()
            .list_connectors(&s.principal, org, &filter)
            .map(|(v, _)| {
                v.into_iter()
                    .filter(|c| c.spec.plugin.version == p.version)
                    .map(|c| (c.id, c.spec.name))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The newest installed version of each plugin (the list is newest first).
    let newest = |id: &str| {
        plugins
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.version.clone())
    };
    let operator = s.principal.role >= crate::management::model::Role::Operator;
    let body = html! {
        @if let Some((kind, text)) = &message { (notice(kind, text)) }
        @if admin {
            section aria-labelledby="h-upload" {
                h2 #h-upload { "Install a plugin" }
                form.card method="post" action="/plugins" enctype="multipart/form-data" {
                    (csrf_field(s))
                    label for="component" { "WebAssembly component (.wasm)" }
                    input #component type="file" name="component" accept=".wasm,application/wasm" required;
                    p.help { "The host checks its imports and manifest before anything is stored." }
                    button type="submit" { "Install" }
                }
            }
        }
        section aria-labelledby="h-installed" {
            h2 #h-installed { "Installed plugins" }
            @for p in &plugins {
                article.card.plugin aria-labelledby={"p-" (p.id) "-" (p.version)} {
                    h3 id={"p-" (p.id) "-" (p.version)} { (p.manifest.name) " " span.muted { code { (p.id) } " " (p.version) } }
                    p { (category_label(p.manifest.category)) " · " (p.manifest.description) }
                    p.muted {
                        "Installed " (super::layout::when(&p.installed_at)) " by " (p.installed_by)
                        @if p.bundled { " (bundled)" }
                        " · sha256 " code { (p.sha256.get(..12).unwrap_or(&p.sha256)) } " · " (p.size / 1024) " KiB · WIT " (p.api_version)
                    }
                    @let uses = users(p);
                    @let latest = newest(&p.id);
                    @if s.org.is_some() {
                        p { (uses.len()) " connector(s) of this organisation use this version." }
                        @if !uses.is_empty() {
                            ul.users {
                                @for (cid, cname) in &uses {
                                    li {
                                        a href={"/connectors/" (cid)} { (cname) }
                                        @if let Some(v) = latest.as_ref().filter(|v| **v != p.version) {
                                            @if operator {
                                                " · " a href={"/connectors/" (cid) "/upgrade?version=" (percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC))} { "Review the capability changes of " (v) " before upgrading" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h4 { "What it asks for" }
                    ul { @for line in capability_sentences(&p.capabilities()) { li { (line) } } }
                    @if admin {
                        form.inline method="post" action={"/plugins/" (p.id) "/unload"} {
                            (csrf_field(s))
                            input type="hidden" name="version" value=(p.version);
                            label.choice { input type="checkbox" name="force" value="true"; " Disable its connectors first" }
                            " " button.danger type="submit" { "Unload " (p.id) " " (p.version) }
                        }
                    }
                }
            }
            @if plugins.is_empty() { p { "No plugins are installed." } }
        }
    };
    Ok(html_response(
        status,
        page("Plugins", Some(s), Section::Plugins, body),
    ))
}

/// `GET /plugins`.
pub async fn page_handler(
    State(state): State<AppState>,
    s: UiSession,
) -> Result<Response, UiError> {
    render(&state, &s, None, StatusCode::OK)
}

/// `POST /plugins` (multipart: `_csrf` first, then `component`).
pub async fn upload_handler(
    State(state): State<AppState>,
    s: UiSession,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, UiError> {
    let mut csrf: Option<String> = None;
    let mut bytes: Option<Vec<u8>> = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| UiError::new(StatusCode::BAD_REQUEST, format!("upload: {e}")))?
    {
        match field.name() {
            Some("_csrf") => {
                csrf =
                    Some(field.text().await.map_err(|e| {
                        UiError::new(StatusCode::BAD_REQUEST, format!("upload: {e}"))
                    })?);
            }
            Some("component") => {
                // The token comes first in the form: nothing is read from an unchecked upload.
                check_csrf(&s, &headers, csrf.as_deref())?;
                let data = field.bytes().await.map_err(|e| {
                    UiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("upload: {e}"))
                })?;
                bytes = Some(data.to_vec());
            }
            _ => {}
        }
    }
    check_csrf(&s, &headers, csrf.as_deref())?;
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        return render(
            &state,
            &s,
            Some(("error", "Choose a .wasm file to install.".into())),
            StatusCode::BAD_REQUEST,
        );
    };
    match state
        .service()
        .install_plugin(&s.principal, &bytes, false)
        .await
    {
        Ok((rec, true)) => render(
            &state,
            &s,
            Some(("success", format!("Installed {} {}.", rec.id, rec.version))),
            StatusCode::OK,
        ),
        Ok((rec, false)) => render(
            &state,
            &s,
            Some((
                "info",
                format!(
                    "{} {} was already installed with the same contents.",
                    rec.id, rec.version
                ),
            )),
            StatusCode::OK,
        ),
        Err(e) => {
            let e = UiError::from(e);
            let status = e.status;
            render(&state, &s, Some(("error", e.message)), status)
        }
    }
}

/// The unload form.
#[derive(Debug, Deserialize)]
pub struct UnloadForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    /// One version (empty: every version).
    #[serde(default)]
    version: String,
    /// Disable connectors using it first.
    #[serde(default)]
    force: Option<String>,
}

/// `POST /plugins/{id}/unload`.
pub async fn unload_handler(
    State(state): State<AppState>,
    s: UiSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Form(form): axum::extract::Form<UnloadForm>,
) -> Result<Response, UiError> {
    check_csrf(&s, &headers, Some(&form.csrf))?;
    let version = Some(form.version.as_str()).filter(|v| !v.is_empty());
    match state
        .service()
        .delete_plugin(&s.principal, &id, version, form.force.is_some())
        .await
    {
        Ok(out) => {
            let mut text = format!("Unloaded {id} {}.", out.removed.join(", "));
            if !out.disabled_connectors.is_empty() {
                text.push_str(&format!(
                    " Disabled first: {}.",
                    out.disabled_connectors.join(", ")
                ));
            }
            render(&state, &s, Some(("success", text)), StatusCode::OK)
        }
        Err(e) => {
            let e = UiError::from(e);
            let status = e.status;
            render(&state, &s, Some(("error", e.message)), status)
        }
    }
}
