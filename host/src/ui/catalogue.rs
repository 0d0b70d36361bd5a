//! The catalogue: every connector of the org with category, plugin and version, enabled
//! switch, health (colour, state and reasons in words), last event time and events/min;
//! filters by category, status and health (a plain GET form, so it works without
//! JavaScript); `/catalogue.json` for the live refresh; the one-click toggle (with undo)
//! and the connection test, both plain forms that the script upgrades to in-place calls.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::activity::{self, Activity};
use super::layout::{Section, csrf_field, notice, page, when};
use super::session::{UiSession, wants_json};
use super::words::{self, CATEGORIES, HEALTH_STATES};
use super::{UiError, check_csrf, html_response, org_or_pick};
use crate::api::AppState;
use crate::management::ConnectorFilter;
use crate::management::model::{ConnectorRecord, Principal, Role};
use crate::runtime::TestReport;

/// Catalogue filters (empty = any) and the connector just toggled (for the undo notice).
#[derive(Debug, Default, Deserialize)]
pub struct CatalogueQuery {
    /// Category code.
    #[serde(default)]
    pub category: Option<String>,
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Health state code.
    #[serde(default)]
    pub health: Option<String>,
    /// Connector just toggled without JavaScript: offer an undo.
    #[serde(default)]
    pub toggled: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref().filter(|s| !s.is_empty()).cloned()
}

/// One catalogue row, as the page shows it and `/catalogue.json` sends it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Connector id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Category code (from the plugin's manifest; empty when the plugin is gone).
    pub category: String,
    /// Category in words.
    pub category_label: String,
    /// Plugin id.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// Ingestion on?
    pub enabled: bool,
    /// Health state code.
    pub health: String,
    /// "Degraded — duplicate flood 92 %".
    pub health_text: String,
    /// When the state was entered.
    pub health_since: String,
    /// Last event time (RFC 3339), if any.
    pub last_event: Option<String>,
    /// Events per minute, if measured.
    pub events_per_min: Option<f64>,
}

impl Row {
    /// A row from a record and what the health module knows.
    pub fn build(state: &AppState, p: &Principal, rec: &ConnectorRecord) -> Row {
        let plugin = state
            .service()
            .plugin_record(&rec.spec.plugin.id, &rec.spec.plugin.version);
        let act: Activity = activity::of(state, p, rec);
        // The connector's own catalogue category (a generic plugin standing in for a
        // source), else its plugin's.
        let category = rec
            .spec
            .category
            .or_else(|| plugin.as_ref().map(|p| p.manifest.category));
        Row {
            id: rec.id.clone(),
            name: rec.spec.name.clone(),
            category: category
                .map(|c| words::category_code(c).to_string())
                .unwrap_or_default(),
            category_label: category
                .map(|c| words::category_label(c).to_string())
                .unwrap_or_else(|| "plugin not installed".to_string()),
            plugin: rec.spec.plugin.id.clone(),
            version: rec.spec.plugin.version.clone(),
            enabled: rec.enabled,
            health: words::health_code(act.state).to_string(),
            health_text: act.sentence(),
            health_since: act.since.clone(),
            last_event: act.last_event.clone(),
            events_per_min: act.events_per_min,
        }
    }
}

/// Every connector of `org` that passes the filters, as rows.
pub fn rows(
    state: &AppState,
    s: &UiSession,
    org: &str,
    q: &CatalogueQuery,
) -> Result<Vec<Row>, UiError> {
    let mut filter = ConnectorFilter {
        category: non_empty(&q.category),
        status: non_empty(&q.status),
        health: None,
        limit: Some(500),
        ..ConnectorFilter::default()
    };
    let health = non_empty(&q.health);
    let mut out = Vec::new();
    loop {
        let (page, next) = state
            .service()
            .list_connectors(&s.principal, org, &filter)?;
        out.extend(
            page.iter()
                .map(|c| Row::build(state, &s.principal, c))
                // Health filtered on the live state (the health module's), not the record's.
                .filter(|r| health.as_deref().is_none_or(|h| r.health == h)),
        );
        match next {
            Some(n) => filter.cursor = Some(n),
            None => break,
        }
    }
    Ok(out)
}

/// `events/min` for people.
pub fn rate_text(r: Option<f64>) -> String {
    match r {
        None => "—".to_string(),
        Some(v) if v >= 10.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// The health indicator: a coloured dot (decorative) and the state with reasons in words.
pub fn health_markup(code: &str, text: &str) -> Markup {
    html! {
        span class={"health health-" (code)} data-health=(code) {
            span.dot aria-hidden="true" {}
            span.health-text { (text) }
        }
    }
}

/// The enable/disable switch: a form, so it works without JavaScript.
pub fn switch_markup(s: &UiSession, id: &str, name: &str, enabled: bool, back: &str) -> Markup {
    html! {
        form.toggle method="post" action={"/connectors/" (id) "/enabled"} {
            (csrf_field(s))
            input type="hidden" name="enabled" value=(if enabled { "false" } else { "true" });
            input type="hidden" name="back" value=(back);
            button.switch type="submit" role="switch" aria-checked=(if enabled { "true" } else { "false" })
                aria-label={"Enabled: " (name)} data-id=(id) {
                span.track aria-hidden="true" { span.knob {} }
                span.switch-label { (if enabled { "On" } else { "Off" }) }
            }
        }
    }
}

/// The test button.
pub fn test_markup(s: &UiSession, id: &str, name: &str) -> Markup {
    html! {
        form.test method="post" action={"/connectors/" (id) "/test"} {
            (csrf_field(s))
            button.secondary type="submit" aria-label={"Test " (name)} { "Test" }
        }
    }
}

fn time_markup(t: &Option<String>) -> Markup {
    html! {
        @match t {
            Some(t) => (when(t)),
            None => span.muted { "never" },
        }
    }
}

fn row_markup(s: &UiSession, r: &Row) -> Markup {
    let operator = s.principal.role >= Role::Operator;
    html! {
        tr data-id=(r.id) {
            th scope="row" { a href={"/connectors/" (r.id)} { (r.name) } }
            td { (r.category_label) }
            td { code { (r.plugin) } " " span.muted { (r.version) } }
            td.status {
                @if operator {
                    (switch_markup(s, &r.id, &r.name, r.enabled, "catalogue"))
                } @else {
                    span.state-text { (if r.enabled { "Enabled" } else { "Disabled" }) }
                }
            }
            td.health-cell { (health_markup(&r.health, &r.health_text)) }
            td.last-event { (time_markup(&r.last_event)) }
            td.rate { (rate_text(r.events_per_min)) }
            @if operator { td { (test_markup(s, &r.id, &r.name)) } }
        }
    }
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(String, String)]) -> Markup {
    html! {
        div.field {
            label for={"f-" (name)} { (label) }
            select id={"f-" (name)} name=(name) {
                option value="" selected[current.is_none()] { "Any" }
                @for (v, l) in options {
                    option value=(v) selected[current == Some(v.as_str())] { (l) }
                }
            }
        }
    }
}

fn filters_markup(q: &CatalogueQuery) -> Markup {
    let cats: Vec<(String, String)> = CATEGORIES
        .iter()
        .map(|c| {
            (
                words::category_code(*c).into(),
                words::category_label(*c).into(),
            )
        })
        .collect();
    let statuses = vec![
        ("enabled".to_string(), "Enabled".to_string()),
        ("disabled".to_string(), "Disabled".to_string()),
    ];
    let healths: Vec<(String, String)> = HEALTH_STATES
        .iter()
        .map(|h| {
            (
                words::health_code(*h).into(),
                words::health_label(*h).into(),
            )
        })
        .collect();
    html! {
        form.filters method="get" action="/" role="search" aria-label="Filter connectors" {
            (select("category", "Category", non_empty(&q.category).as_deref(), &cats))
            (select("status", "Status", non_empty(&q.status).as_deref(), &statuses))
            (select("health", "Health", non_empty(&q.health).as_deref(), &healths))
            button type="submit" { "Apply filters" }
            a href="/" { "Clear" }
        }
    }
}

fn query_string(q: &CatalogueQuery) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("category", &q.category),
        ("status", &q.status),
        ("health", &q.health),
    ] {
        if let Some(v) = non_empty(v) {
            parts.push(format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
    }
    parts.join("&")
}

/// `GET /`: the catalogue.
pub async fn page_handler(
    State(state): State<AppState>,
    s: UiSession,
    Query(q): Query<CatalogueQuery>,
) -> Result<Response, UiError> {
    let org = org_or_pick!(s);
    let rows = rows(&state, &s, &org, &q)?;
    let operator = s.principal.role >= Role::Operator;
    let toggled = q
        .toggled
        .as_deref()
        .and_then(|id| state.service().get_connector(&s.principal, &org, id).ok());
    let body = html! {
        @if let Some(c) = &toggled {
            div.notice.info role="status" {
                (c.spec.name) " is now " (if c.enabled { "enabled" } else { "disabled" }) ". "
                @if operator {
                    form.inline method="post" action={"/connectors/" (c.id) "/enabled"} {
                        (csrf_field(&s))
                        input type="hidden" name="enabled" value=(if c.enabled { "false" } else { "true" });
                        input type="hidden" name="back" value="catalogue";
                        button.link type="submit" { "Undo" }
                    }
                }
            }
        }
        (filters_markup(&q))
        p.muted #refresh-status aria-live="polite" {
            (rows.len()) " connector(s). "
            @if !operator { "Read-only: your token is a viewer." }
        }
        div #toast-region aria-live="polite" {}
        div.table-wrap {
            table #catalogue data-poll={"/catalogue.json?" (query_string(&q))} {
                caption.visually-hidden { "Connectors of organisation " (org) }
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Category" }
                        th scope="col" { "Plugin" }
                        th scope="col" { "Status" }
                        th scope="col" { "Health" }
                        th scope="col" { "Last event" }
                        th scope="col" { abbr title="events per minute" { "Events/min" } }
                        @if operator { th scope="col" { "Test" } }
                    }
                }
                tbody {
                    @for r in &rows { (row_markup(&s, r)) }
                }
            }
        }
        @if rows.is_empty() { (notice("info", "No connector matches.")) }
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            &format!("Connectors of {org}"),
            Some(&s),
            Section::Catalogue,
            body,
        ),
    ))
}

/// `GET /catalogue.json`: the rows, for the live refresh.
pub async fn json_handler(
    State(state): State<AppState>,
    s: UiSession,
    Query(q): Query<CatalogueQuery>,
) -> Result<Response, UiError> {
    let Some(org) = s.org.clone() else {
        return Err(UiError::new(StatusCode::CONFLICT, "pick an organisation first").json(true));
    };
    let rows = rows(&state, &s, &org, &q).map_err(|e| e.json(true))?;
    Ok(axum::Json(serde_json::json!({"org": org, "connectors": rows})).into_response())
}

/// The toggle form.
#[derive(Debug, Deserialize)]
pub struct ToggleForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    /// The state wanted.
    enabled: String,
    /// `catalogue` (default) or `connector`: where to go without JavaScript.
    #[serde(default)]
    back: String,
}

/// The org a one-click action acts in, after the CSRF check: none picked yet is a 409
/// (in JSON when `json`).
fn action_org(
    s: &UiSession,
    headers: &HeaderMap,
    csrf: &str,
    json: bool,
) -> Result<String, UiError> {
    check_csrf(s, headers, Some(csrf))?;
    s.org
        .clone()
        .ok_or_else(|| UiError::new(StatusCode::CONFLICT, "pick an organisation first").json(json))
}

/// `POST /connectors/{id}/enabled`: one-click enable/disable.
pub async fn toggle_handler(
    State(state): State<AppState>,
    s: UiSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ToggleForm>,
) -> Result<Response, UiError> {
    let json = wants_json(&headers);
    let org = action_org(&s, &headers, &form.csrf, json)?;
    let enabled = match form.enabled.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(
                UiError::new(StatusCode::BAD_REQUEST, "enabled must be true or false").json(json),
            );
        }
    };
    let rec = state
        .service()
        .set_enabled(&s.principal, &org, &id, enabled)
        .await
        .map_err(|e| UiError::from(e).json(json))?;
    if json {
        return Ok(axum::Json(Row::build(&state, &s.principal, &rec)).into_response());
    }
    let target = if form.back == "connector" {
        format!("/connectors/{}?toggled=1", rec.id)
    } else {
        format!("/?toggled={}", rec.id)
    };
    Ok(Redirect::to(&target).into_response())
}

/// The test form.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// A test report for people: each stage with its latency, then up to 3 sample events.
pub fn report_markup(report: &TestReport) -> Markup {
    html! {
        div.report {
            p {
                strong { (if report.ok { "Passed" } else { "Failed" }) }
                " in " (report.latency_ms) " ms (measured by the host)"
            }
            table.stages {
                caption.visually-hidden { "Test stages" }
                thead { tr { th scope="col" { "Stage" } th scope="col" { "Result" } th scope="col" { "Latency" } th scope="col" { "Detail" } } }
                tbody {
                    @for st in &report.stages {
                        tr class=(if st.ok { "stage ok" } else { "stage failed" }) {
                            th scope="row" { (st.name) }
                            td { (if st.ok { "passed" } else { "failed" }) }
                            td { @match st.latency_ms { Some(ms) => { (ms) " ms" }, None => span.muted { "—" } } }
                            td { (st.message) }
                        }
                    }
                }
            }
            @if !report.sample.is_empty() {
                h3 { "Sample events" }
                ol.samples {
                    @for e in report.sample.iter().take(3) {
                        li {
                            strong { (e.title) } " "
                            span.muted { (e.severity) " · " (serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) " · " (e.time) }
                            " " code { (e.id) }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /connectors/{id}/test`: run the connection test (also on disabled connectors).
pub async fn test_handler(
    State(state): State<AppState>,
    s: UiSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, UiError> {
    let json = wants_json(&headers);
    let org = action_org(&s, &headers, &form.csrf, json)?;
    let rec = state
        .service()
        .get_connector(&s.principal, &org, &id)
        .map_err(|e| UiError::from(e).json(json))?;
    let mut report = state
        .service()
        .test_connector(&s.principal, &org, &id)
        .await
        .map_err(|e| UiError::from(e).json(json))?;
    report.sample.truncate(3);
    if json {
        return Ok(axum::Json(serde_json::json!({
            "id": id,
            "report": report,
            "html": report_markup(&report).into_string(),
        }))
        .into_response());
    }
    let body = html! {
        (report_markup(&report))
        p { a href={"/connectors/" (id)} { "Open " (rec.spec.name) } " · " a href="/" { "Back to the catalogue" } }
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            &format!("Test of {}", rec.spec.name),
            Some(&s),
            Section::Catalogue,
            body,
        ),
    ))
}
