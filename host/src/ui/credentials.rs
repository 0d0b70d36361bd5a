//! Credential bindings of a connector on its page: each slot the plugin declares, the
//! credential bound to it with what the vault says about it (kind, version, hosts, who
//! changed it when — never a secret), and a write-only form to set or replace the secret
//! and bind it. Secret inputs always render empty (`autocomplete="new-password"`); the
//! submitted secret goes straight to the vault and is never echoed, not even after a
//! failed submission.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::connector::{FormState, render};
use super::layout::csrf_field;
use super::session::UiSession;
use super::words::credential_kind_label;
use super::{UiError, check_csrf, org_or_pick};
use crate::api::AppState;
use crate::management::model::{ConnectorRecord, Role};
use crate::management::{ConnectorPatch, ServiceError};
use crate::manifest::{CredentialKind, Manifest};
use crate::vault::record::{CredentialMetadata, zeroize_json};
use zeroize::Zeroize;

/// One slot as the page shows it.
#[derive(Debug, Clone)]
pub struct SlotView {
    /// Slot name.
    pub slot: String,
    /// What it is for.
    pub description: String,
    /// Accepted kinds.
    pub kinds: Vec<CredentialKind>,
    /// The plugin needs it.
    pub required: bool,
    /// Credential name bound to it.
    pub bound: Option<String>,
    /// What the vault has for that credential (metadata only).
    pub stored: Option<CredentialMetadata>,
    /// Hosts a new credential is bound to by default (the connector's grants).
    pub default_hosts: Vec<String>,
    /// Name a new credential gets by default.
    pub default_name: String,
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(40).collect()
}

/// The slots of a connector.
pub fn view(
    state: &AppState,
    s: &UiSession,
    org: &str,
    rec: &ConnectorRecord,
    manifest: Option<&Manifest>,
) -> Vec<SlotView> {
    let Some(m) = manifest else {
        return Vec::new();
    };
    m.credential_slots
        .iter()
        .map(|slot| {
            let bound = rec.spec.credentials.get(&slot.name).cloned();
            let stored = bound
                .as_deref()
                .and_then(|name| state.service().get_credential(&s.principal, org, name).ok());
            let base = slug(&rec.spec.name);
            SlotView {
                slot: slot.name.clone(),
                description: slot.description.clone(),
                kinds: slot.kinds.clone(),
                required: slot.required,
                default_name: bound.clone().unwrap_or_else(|| {
                    format!(
                        "{}-{}",
                        if base.is_empty() { "connector" } else { &base },
                        slug(&slot.name)
                    )
                }),
                bound,
                stored,
                default_hosts: rec.spec.grants.clone(),
            }
        })
        .collect()
}

fn kind_code(k: CredentialKind) -> String {
    k.to_string()
}

fn secret_input(id: &str, name: &str, label: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) type="password" name=(name) value="" autocomplete="new-password" spellcheck="false";
        }
    }
}

fn text_input(id: &str, name: &str, label: &str, value: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) type="text" name=(name) value=(value) spellcheck="false";
        }
    }
}

fn kind_fields(prefix: &str, k: CredentialKind, stored: Option<&CredentialMetadata>) -> Markup {
    // Non-secret fields of the stored credential may be shown; secrets never are.
    let public = |key: &str| -> String {
        stored
            .filter(|m| m.kind == k)
            .and_then(|m| serde_json::to_value(&m.fields).ok())
            .and_then(|v| v.get(key).cloned())
            .map(|v| match v {
                Value::String(s) => s,
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let id = |f: &str| format!("{prefix}-{}-{f}", kind_code(k));
    html! {
        @match k {
            CredentialKind::Bearer => {
                (secret_input(&id("token"), "token", "Bearer token"))
            }
            CredentialKind::ApiKey => {
                (secret_input(&id("key"), "key", "API key"))
                (text_input(&id("header"), "header", "Header name (or leave empty and use a query parameter)", &public("header")))
                (text_input(&id("query"), "query", "Query parameter name", &public("query")))
                (text_input(&id("prefix"), "prefix", "Prefix before the key (optional)", &public("prefix")))
            }
            CredentialKind::Basic => {
                (text_input(&id("username"), "username", "User name", &public("username")))
                (secret_input(&id("password"), "password", "Password"))
            }
            CredentialKind::OAuth2ClientCredentials => {
                (text_input(&id("token_url"), "token_url", "Token URL", &public("token_url")))
                (text_input(&id("client_id"), "client_id", "Client id", &public("client_id")))
                (secret_input(&id("client_secret"), "client_secret", "Client secret"))
                (text_input(&id("scopes"), "scopes", "Scopes (space-separated, optional)", &public("scopes")))
            }
        }
    }
}

/// The credentials section.
pub fn markup(
    s: &UiSession,
    id: &str,
    slots: &[SlotView],
    errors: &BTreeMap<String, Vec<String>>,
) -> Markup {
    let operator = s.principal.role >= Role::Operator;
    html! {
        section aria-labelledby="h-credentials" {
            h2 #h-credentials { "Credentials" }
            p.muted { "Secrets are write-only: you can set or replace them here, and they are never shown again, to anyone. The host injects them into requests; the plugin never sees them." }
            @if slots.is_empty() { p { "The plugin uses no credentials." } }
            @for v in slots {
                @let prefix = format!("cred-{}", v.slot);
                div.card.slot {
                    h3 { "Slot " code { (v.slot) } @if v.required { " (required)" } }
                    p { (v.description) }
                    p.muted { "Accepts: " (v.kinds.iter().map(|k| credential_kind_label(*k)).collect::<Vec<_>>().join(", ")) }
                    p.binding {
                        "Bound credential: "
                        @match &v.bound { Some(b) => code { (b) }, None => span.muted { "none" } }
                    }
                    @match &v.stored {
                        Some(m) => {
                            p.secret-state {
                                "Secret set: " (credential_kind_label(m.kind)) ", version " (m.version)
                                @if let Some(p) = m.pending_version { " (version " (p) " pending)" }
                                ", updated " (super::layout::when(&m.updated_at)) " by " (m.updated_by) "."
                                @if !m.hosts.is_empty() { " May be sent to " (m.hosts.join(", ")) "." }
                            }
                        }
                        None => {
                            @if v.bound.is_some() { p.secret-state { span.muted { "No secret is stored under that name yet." } } }
                        }
                    }
                    @if let Some(es) = errors.get(&v.slot) {
                        p.field-error id={(prefix) "-error"} { @for e in es { (e) br; } }
                    }
                    @if operator {
                        form.credential method="post" action={"/connectors/" (id) "/credentials/" (v.slot)} autocomplete="off" {
                            (csrf_field(s))
                            div.field {
                                label for={(prefix) "-name"} { "Credential name" }
                                input id={(prefix) "-name"} type="text" name="name" value=(v.default_name) spellcheck="false";
                            }
                            div.field {
                                label for={(prefix) "-kind"} { "Kind" }
                                select id={(prefix) "-kind"} name="kind" {
                                    @for k in &v.kinds {
                                        option value=(kind_code(*k)) selected[v.stored.as_ref().is_some_and(|m| m.kind == *k)] { (credential_kind_label(*k)) }
                                    }
                                }
                            }
                            @for k in &v.kinds {
                                fieldset.kind data-kind=(kind_code(*k)) {
                                    legend { "If " (credential_kind_label(*k)) }
                                    (kind_fields(&prefix, *k, v.stored.as_ref()))
                                }
                            }
                            div.field {
                                label for={(prefix) "-hosts"} { "May be sent to (host patterns, one per line)" }
                                textarea id={(prefix) "-hosts"} name="hosts" rows="2" spellcheck="false" {
                                    (v.stored.as_ref().map(|m| m.hosts.join("\n")).unwrap_or_else(|| v.default_hosts.join("\n")))
                                }
                            }
                            button type="submit" { (if v.stored.is_some() { "Replace secret" } else { "Set secret" }) }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /connectors/{id}/credentials/{slot}`: store the secret in the vault (a new
/// promoted version) and bind it to the slot.
pub async fn set_handler(
    State(state): State<AppState>,
    s: UiSession,
    headers: HeaderMap,
    Path((id, slot)): Path<(String, String)>,
    Form(mut form): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let get = |k: &str| -> String {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    check_csrf(&s, &headers, Some(&get("_csrf")))?;
    let org = org_or_pick!(s);
    let rec = state.service().get_connector(&s.principal, &org, &id)?;
    let kind = get("kind");
    let name = get("name");
    let mut body = json!({
        "kind": kind,
        "hosts": get("hosts").lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>(),
    });
    let fields: &[&str] = match kind.as_str() {
        "bearer" => &["token"],
        "api-key" => &["key", "header", "query", "prefix"],
        "basic" => &["username", "password"],
        "oauth2-client-credentials" => &["token_url", "client_id", "client_secret"],
        _ => &[],
    };
    for f in fields {
        let v = get(f);
        if !v.is_empty() {
            body[*f] = Value::String(v);
        }
    }
    if kind == "oauth2-client-credentials" {
        let scopes: Vec<String> = get("scopes")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !scopes.is_empty() {
            body["scopes"] = json!(scopes);
        }
    }
    let fail = |message: String| FormState {
        credential_errors: BTreeMap::from([(slot.clone(), vec![message])]),
        notice: Some((
            "error",
            "The credential was not saved; see the Credentials section.".to_string(),
        )),
        ..FormState::default()
    };
    let result = state
        .service()
        .put_credential(&s.principal, &org, &name, &body, true)
        .await;
    // Overwrite the submitted secret as soon as the vault has it (or refused it).
    zeroize_json(&mut body);
    for (_, v) in form.iter_mut() {
        v.zeroize();
    }
    match result {
        Ok(_) => {}
        Err(ServiceError::Invalid { fields, .. }) => {
            // Field errors name fields, never values.
            let msg = fields
                .iter()
                .map(|f| format!("{}: {}", f.path.trim_start_matches('/'), f.message))
                .collect::<Vec<_>>()
                .join("; ");
            return render(
                &state,
                &s,
                &org,
                &rec,
                fail(msg),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        Err(ServiceError::Conflict(m)) => {
            return render(&state, &s, &org, &rec, fail(m), StatusCode::CONFLICT).await;
        }
        Err(e) => return Err(e.into()),
    }
    if rec.spec.credentials.get(&slot) != Some(&name) {
        let mut creds = rec.spec.credentials.clone();
        creds.insert(slot.clone(), name.clone());
        let patch = ConnectorPatch {
            credentials: Some(creds),
            ..ConnectorPatch::default()
        };
        if let Err(e) = state
            .service()
            .update_connector(&s.principal, &org, &id, patch)
            .await
        {
            let msg = match e {
                ServiceError::Invalid { fields, .. } => fields
                    .iter()
                    .map(|f| f.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            return render(
                &state,
                &s,
                &org,
                &rec,
                fail(format!(
                    "The secret was stored as {name:?} but could not be bound: {msg}"
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    }
    Ok(Redirect::to(&format!("/connectors/{id}?saved=credential")).into_response())
}
