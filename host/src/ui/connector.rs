//! One connector's page: status and health, the test, the configuration form generated
//! from the plugin's JSON Schema (inline field errors from validation), granted vs
//! requested hosts and the schedule, credential bindings (secrets write-only), the plugin
//! version with the capability diff before an upgrade, health history, revisions with
//! author and time, and the connector's audit trail.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::catalogue::{Row, health_markup, rate_text, switch_markup, test_markup};
use super::credentials;
use super::layout::{Section, csrf_field, notice, page, when};
use super::schema_form::{self, Field};
use super::session::UiSession;
use super::{UiError, check_csrf, html_response, org_or_pick};
use crate::api::AppState;
use crate::config_schema::FieldError;
use crate::management::model::{ConnectorRecord, LastTest, Role};
use crate::management::{ConnectorPatch, ServiceError};
use crate::manifest::Manifest;

/// What a re-rendered page shows after a failed form.
#[derive(Default)]
pub struct FormState {
    /// Config inputs as submitted (instead of the stored configuration).
    pub config_fields: Option<Vec<Field>>,
    /// Field errors of the config form, by property.
    pub config_errors: BTreeMap<String, Vec<String>>,
    /// Grants and schedule as submitted.
    pub access: Option<(String, String)>,
    /// Field errors of the access form, by field (`grants`, `schedule`).
    pub access_errors: BTreeMap<String, Vec<String>>,
    /// Field errors of the credential form, by slot.
    pub credential_errors: BTreeMap<String, Vec<String>>,
    /// A notice at the top.
    pub notice: Option<(&'static str, String)>,
}

/// Query of the connector page.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Just toggled without JavaScript.
    #[serde(default)]
    pub toggled: Option<String>,
    /// Just saved: which form.
    #[serde(default)]
    pub saved: Option<String>,
}

fn manifest_of(state: &AppState, rec: &ConnectorRecord) -> Option<Manifest> {
    state
        .service()
        .plugin_record(&rec.spec.plugin.id, &rec.spec.plugin.version)
        .map(|p| p.manifest)
}

fn field_errors(errs: &[FieldError], prefix: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in errs {
        let key = e
            .path
            .strip_prefix(prefix)
            .unwrap_or(&e.path)
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        out.entry(key).or_default().push(e.message.clone());
    }
    out
}

fn errors_markup(id: &str, errs: Option<&Vec<String>>) -> Markup {
    html! {
        @if let Some(es) = errs {
            p.field-error id=(id) { @for e in es { (e) br; } }
        }
    }
}

/// Render the whole connector page.
pub async fn render(
    state: &AppState,
    s: &UiSession,
    org: &str,
    rec: &ConnectorRecord,
    form: FormState,
    status: StatusCode,
) -> Result<Response, UiError> {
    let operator = s.principal.role >= Role::Operator;
    let manifest = manifest_of(state, rec);
    let row = Row::build(state, &s.principal, rec);
    let revisions = state.service().revisions(&s.principal, org, &rec.id)?;
    let target = format!("connector/{}", rec.id);
    let audit: Vec<_> = state
        .service()
        .audit(&s.principal, Some(org), 1000)?
        .into_iter()
        .filter(|a| a.target == target)
        .take(50)
        .collect();
    let versions: Vec<String> = state
        .service()
        .plugin_versions(&rec.spec.plugin.id)
        .map(|v| v.into_iter().map(|r| r.version).collect())
        .unwrap_or_default();
    let last_test: Option<LastTest> = rec
        .last_test
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let history = super::activity::history(state, &s.principal, rec);
    let cred_view = credentials::view(state, s, org, rec, manifest.as_ref());

    let config_fields = form.config_fields.clone().unwrap_or_else(|| {
        manifest
            .as_ref()
            .map(|m| schema_form::fields(&m.config_schema, &rec.spec.config))
            .unwrap_or_default()
    });
    let (grants_text, schedule_text) = form
        .access
        .clone()
        .unwrap_or_else(|| (rec.spec.grants.join("\n"), rec.spec.schedule.clone()));
    let requested: Vec<String> = manifest
        .as_ref()
        .map(|m| m.hosts.clone())
        .unwrap_or_default();
    let id = &rec.id;

    let body = html! {
        @if let Some((kind, text)) = &form.notice { (notice(kind, text)) }
        section aria-labelledby="h-status" {
            h2 #h-status { "Status" }
            div #toast-region aria-live="polite" {}
            dl.facts {
                dt { "Plugin" } dd { code { (rec.spec.plugin.id) } " " (rec.spec.plugin.version) " · " (row.category_label) }
                dt { "Enabled" } dd.status {
                    @if operator { (switch_markup(s, id, &rec.spec.name, rec.enabled, "connector")) }
                    @else { (if rec.enabled { "Enabled" } else { "Disabled" }) }
                }
                dt { "Health" } dd.health-cell { (health_markup(&row.health, &row.health_text)) " " span.muted { "since " (when(&row.health_since)) } }
                dt { "Last event" } dd { @match &row.last_event { Some(t) => (when(t)), None => span.muted { "never" } } }
                dt { "Events/min" } dd { (rate_text(row.events_per_min)) }
                dt { "Created" } dd { (when(&rec.created_at)) " by " (rec.created_by) }
                dt { "Updated" } dd { (when(&rec.updated_at)) " by " (rec.updated_by) " (revision " (rec.revision) ")" }
            }
        }
        section aria-labelledby="h-test" {
            h2 #h-test { "Connection test" }
            @if operator { div.test-host data-id=(id) { (test_markup(s, id, &rec.spec.name)) } }
            div.test-result data-for=(id) aria-live="polite" {}
            @if let Some(t) = &last_test {
                p {
                    "Last test " (when(&t.at)) " by " (t.by) ": " strong { (if t.ok { "passed" } else { "failed" }) } " in " (t.latency_ms) " ms."
                }
                ul.stages-list {
                    @for st in &t.stages {
                        li { (st.name) ": " (if st.ok { "passed" } else { "failed" })
                            @if let Some(ms) = st.latency_ms { " (" (ms) " ms)" } " — " (st.message) }
                    }
                }
            } @else { p.muted { "Never tested." } }
        }
        section aria-labelledby="h-config" {
            h2 #h-config { "Configuration" }
            @if manifest.is_none() {
                (notice("error", "The plugin version this connector uses is not installed; upgrade it to an installed version to edit its configuration."))
            } @else if operator {
                form.card method="post" action={"/connectors/" (id) "/config"} novalidate {
                    (csrf_field(s))
                    @if let Some(es) = form.config_errors.get("") { p.field-error { @for e in es { (e) br; } } }
                    (schema_form::render(&config_fields, &form.config_errors, false))
                    button type="submit" { "Save configuration" }
                }
            } @else {
                div.card { (schema_form::render(&config_fields, &BTreeMap::new(), true)) }
            }
        }
        section aria-labelledby="h-access" {
            h2 #h-access { "Hosts and schedule" }
            table {
                caption { "Hosts the plugin requests, and whether this connector is granted them" }
                thead { tr { th scope="col" { "Requested by the plugin" } th scope="col" { "Granted here" } } }
                tbody {
                    @for h in &requested {
                        @let granted: Vec<&String> = rec.spec.grants.iter().filter(|g| *g == h || covers(h, g)).collect();
                        tr { td { code { (h) } } td { @if granted.is_empty() { span.muted { "not granted" } } @else { @for g in granted { code { (g) } " " } } } }
                    }
                    @if requested.is_empty() { tr { td colspan="2" { "The plugin requests no hosts." } } }
                }
            }
            @if operator {
                form.card method="post" action={"/connectors/" (id) "/access"} novalidate {
                    (csrf_field(s))
                    div class={"field" @if form.access_errors.contains_key("grants") { " has-error" }} {
                        label for="grants" { "Granted hosts (one pattern per line, e.g. https://api.example.com)" }
                        textarea #grants name="grants" rows="3" spellcheck="false" aria-describedby="grants-error" { (grants_text) }
                        (errors_markup("grants-error", form.access_errors.get("grants")))
                    }
                    div class={"field" @if form.access_errors.contains_key("schedule") { " has-error" }} {
                        label for="schedule" { "Schedule (ISO 8601 duration between polls, e.g. PT5M)" }
                        input #schedule name="schedule" value=(schedule_text) spellcheck="false" aria-describedby="schedule-error";
                        (errors_markup("schedule-error", form.access_errors.get("schedule")))
                    }
                    button type="submit" { "Save hosts and schedule" }
                }
            } @else {
                p { "Granted: " @for g in &rec.spec.grants { code { (g) } " " } }
                p { "Schedule: " code { (rec.spec.schedule) } }
            }
        }
        (credentials::markup(s, id, &cred_view, &form.credential_errors))
        section aria-labelledby="h-plugin" {
            h2 #h-plugin { "Plugin version" }
            p { "Runs " code { (rec.spec.plugin.id) } " " (rec.spec.plugin.version) ". Installed versions: " (versions.join(", ")) "." }
            @if operator && versions.iter().any(|v| *v != rec.spec.plugin.version) {
                form.inline method="get" action={"/connectors/" (id) "/upgrade"} {
                    label for="version" { "Change to version" } " "
                    select #version name="version" {
                        @for v in versions.iter().filter(|v| **v != rec.spec.plugin.version) { option value=(v) { (v) } }
                    }
                    " " button.secondary type="submit" { "Review capability changes" }
                }
            }
        }
        section aria-labelledby="h-history" {
            h2 #h-history { "Health history" }
            @if history.is_empty() { p.muted { "No health changes recorded yet." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Since" } th scope="col" { "Health" } } }
                    tbody { @for h in &history { tr { td { (when(&h.0)) } td { (health_markup(&h.1, &h.2)) } } } }
                }
            }
        }
        section aria-labelledby="h-revisions" {
            h2 #h-revisions { "Revisions" }
            table {
                thead { tr { th scope="col" { "#" } th scope="col" { "Change" } th scope="col" { "Author" } th scope="col" { "Time" } th scope="col" { "Plugin" } } }
                tbody {
                    @for r in revisions.iter().rev() {
                        tr { td { (r.revision) } td { (r.change) } td { (r.author) } td { (when(&r.at)) } td { (r.spec.plugin.version) } }
                    }
                }
            }
        }
        section aria-labelledby="h-audit" {
            h2 #h-audit { "Audit trail" }
            table {
                thead { tr { th scope="col" { "Time" } th scope="col" { "Action" } th scope="col" { "Actor" } th scope="col" { "Outcome" } } }
                tbody {
                    @for a in &audit { tr { td { (when(&a.at)) } td { code { (a.action) } } td { (a.actor) } td { (a.outcome) } } }
                }
            }
        }
        p { a href="/" { "Back to the catalogue" } }
    };
    Ok(html_response(
        status,
        page(&rec.spec.name, Some(s), Section::Catalogue, body),
    ))
}

/// Whether requested pattern `declared` covers granted `granted` (both host patterns).
fn covers(declared: &str, granted: &str) -> bool {
    use crate::broker::host_pattern::HostPattern;
    match (HostPattern::parse(declared), HostPattern::parse(granted)) {
        (Ok(d), Ok(g)) => d.covers(&g),
        _ => false,
    }
}

/// `GET /connectors/{id}`.
pub async fn page_handler(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, UiError> {
    let org = org_or_pick!(s);
    let rec = state.service().get_connector(&s.principal, &org, &id)?;
    let mut form = FormState::default();
    if q.toggled.is_some() {
        form.notice = Some((
            "info",
            format!(
                "{} is now {}.",
                rec.spec.name,
                if rec.enabled { "enabled" } else { "disabled" }
            ),
        ));
    }
    if let Some(what) = &q.saved {
        form.notice = Some((
            "success",
            match what.as_str() {
                "config" => "Configuration saved (a new revision).".to_string(),
                "access" => "Hosts and schedule saved (a new revision).".to_string(),
                "credential" => {
                    "Secret stored. It is write-only: it will not be shown again.".to_string()
                }
                "upgrade" => "Plugin version changed (a new revision).".to_string(),
                _ => "Saved.".to_string(),
            },
        ));
    }
    render(&state, &s, &org, &rec, form, StatusCode::OK).await
}

fn csrf_of(form: &[(String, String)]) -> Option<&str> {
    form.iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.as_str())
}

/// `POST /connectors/{id}/config`: save the generated form (a new revision).
pub async fn config_handler(
    State(state): State<AppState>,
    s: UiSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    check_csrf(&s, &headers, csrf_of(&form))?;
    let org = org_or_pick!(s);
    let rec = state.service().get_connector(&s.principal, &org, &id)?;
    let manifest = manifest_of(&state, &rec).ok_or_else(|| {
        UiError::new(
            StatusCode::CONFLICT,
            "the connector's plugin version is not installed",
        )
    })?;
    let submitted_fields = || {
        let mut fields = schema_form::fields(&manifest.config_schema, &rec.spec.config);
        for f in &mut fields {
            let v = form
                .iter()
                .find(|(k, _)| k.strip_prefix(schema_form::PREFIX) == Some(f.name.as_str()))
                .map(|(_, v)| v.clone());
            f.checked = v.is_some();
            f.text = v.unwrap_or_default();
        }
        fields
    };
    let errors = match schema_form::parse(&manifest.config_schema, &rec.spec.config, &form) {
        Ok(config) => {
            let patch = ConnectorPatch {
                config: Some(config),
                ..ConnectorPatch::default()
            };
            match state
                .service()
                .update_connector(&s.principal, &org, &id, patch)
                .await
            {
                Ok(_) => {
                    return Ok(
                        Redirect::to(&format!("/connectors/{id}?saved=config")).into_response()
                    );
                }
                Err(ServiceError::Invalid { fields, .. }) => fields,
                Err(e) => return Err(e.into()),
            }
        }
        Err(errors) => errors,
    };
    let form_state = FormState {
        config_fields: Some(submitted_fields()),
        config_errors: schema_form::errors_by_field(&errors),
        notice: Some((
            "error",
            format!(
                "The configuration was not saved: {} problem(s), shown at the fields.",
                errors.len()
            ),
        )),
        ..FormState::default()
    };
    render(
        &state,
        &s,
        &org,
        &rec,
        form_state,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// The hosts-and-schedule form.
#[derive(Debug, Deserialize)]
pub struct AccessForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    grants: String,
    #[serde(default)]
    schedule: String,
}

/// `POST /connectors/{id}/access`: grants and schedule (a new revision).
pub async fn access_handler(
    State(state): State<AppState>,
    s: UiSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AccessForm>,
) -> Result<Response, UiError> {
    check_csrf(&s, &headers, Some(&form.csrf))?;
    let org = org_or_pick!(s);
    let rec = state.service().get_connector(&s.principal, &org, &id)?;
    let grants: Vec<String> = form
        .grants
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let patch = ConnectorPatch {
        grants: Some(grants),
        schedule: Some(form.schedule.trim().to_string()),
        ..ConnectorPatch::default()
    };
    match state
        .service()
        .update_connector(&s.principal, &org, &id, patch)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/connectors/{id}?saved=access")).into_response()),
        Err(ServiceError::Invalid { fields, .. }) => {
            let form_state = FormState {
                access: Some((form.grants.clone(), form.schedule.clone())),
                access_errors: field_errors(&fields, ""),
                notice: Some((
                    "error",
                    "Hosts and schedule were not saved; see the fields.".to_string(),
                )),
                ..FormState::default()
            };
            render(
                &state,
                &s,
                &org,
                &rec,
                form_state,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// Query of the upgrade preview.
#[derive(Debug, Deserialize)]
pub struct UpgradeQuery {
    /// Target version.
    version: String,
}

/// What changes between two manifests' capabilities, in words.
pub fn capability_changes(old: Option<&Manifest>, new: &Manifest) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let old_hosts: Vec<String> = old.map(|m| m.hosts.clone()).unwrap_or_default();
    for h in new.hosts.iter().filter(|h| !old_hosts.contains(h)) {
        out.push((
            true,
            format!("Asks to reach {h} (not granted automatically)"),
        ));
    }
    for h in old_hosts.iter().filter(|h| !new.hosts.contains(h)) {
        out.push((false, format!("No longer asks to reach {h}")));
    }
    let old_slots: Vec<&str> = old
        .map(|m| m.credential_slots.iter().map(|s| s.name.as_str()).collect())
        .unwrap_or_default();
    for s in new
        .credential_slots
        .iter()
        .filter(|s| !old_slots.contains(&s.name.as_str()))
    {
        out.push((
            true,
            format!(
                "New credential slot \"{}\"{}",
                s.name,
                if s.required { " (required)" } else { "" }
            ),
        ));
    }
    for s in old_slots.iter().filter(|s| new.slot(s).is_none()) {
        out.push((false, format!("Credential slot \"{s}\" removed")));
    }
    let old_push = old.map(|m| m.accepts_push).unwrap_or(false);
    if new.accepts_push != old_push {
        out.push((
            new.accepts_push,
            if new.accepts_push {
                "Now accepts pushed input".into()
            } else {
                "No longer accepts pushed input".into()
            },
        ));
    }
    out
}

/// `GET /connectors/{id}/upgrade?version=`: the capability diff, then a confirm form.
pub async fn upgrade_preview(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Query(q): Query<UpgradeQuery>,
) -> Result<Response, UiError> {
    let org = org_or_pick!(s);
    let rec = state.service().get_connector(&s.principal, &org, &id)?;
    let new = state
        .service()
        .plugin_record(&rec.spec.plugin.id, &q.version)
        .ok_or_else(|| {
            UiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "plugin {}@{} is not installed",
                    rec.spec.plugin.id, q.version
                ),
            )
        })?;
    let old = manifest_of(&state, &rec);
    let changes = capability_changes(old.as_ref(), &new.manifest);
    let body = html! {
        p { "Change " strong { (rec.spec.name) } " from " code { (rec.spec.plugin.id) " " (rec.spec.plugin.version) } " to " code { (new.version) } "." }
        h2 { "Capability changes" }
        @if changes.is_empty() { p { "None: the new version asks for the same hosts, credentials and input." } }
        @else {
            ul.diff { @for (added, text) in &changes { li class=(if *added { "added" } else { "removed" }) { span.visually-hidden { (if *added { "Added: " } else { "Removed: " }) } (text) } } }
        }
        @if s.principal.role >= Role::Operator {
            form.card method="post" action={"/connectors/" (id) "/upgrade"} {
                (csrf_field(&s))
                input type="hidden" name="version" value=(new.version);
                button type="submit" { "Change to " (new.version) }
                " " a href={"/connectors/" (id)} { "Cancel" }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            &format!("Change plugin version of {}", rec.spec.name),
            Some(&s),
            Section::Catalogue,
            body,
        ),
    ))
}

/// The upgrade confirm form.
#[derive(Debug, Deserialize)]
pub struct UpgradeForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    version: String,
}

/// `POST /connectors/{id}/upgrade`.
pub async fn upgrade_handler(
    State(state): State<AppState>,
    s: UiSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<UpgradeForm>,
) -> Result<Response, UiError> {
    check_csrf(&s, &headers, Some(&form.csrf))?;
    let org = org_or_pick!(s);
    let patch = ConnectorPatch {
        plugin_version: Some(form.version),
        ..ConnectorPatch::default()
    };
    state
        .service()
        .update_connector(&s.principal, &org, &id, patch)
        .await?;
    Ok(Redirect::to(&format!("/connectors/{id}?saved=upgrade")).into_response())
}
