//! GraphQL (June 2018 spec) at `POST /graphql`, GraphiQL at `GET /graphql`.
//!
//! The catalogue (organisations, connectors with filters, cursor paging, nested plugin,
//! health and last test, revisions; plugins with their capabilities; the audit log) and the
//! connector mutations (create, update, delete, `setConnectorEnabled`, `testConnector`).
//! Every resolver calls [`ManagementService`], so authentication (`Authorization: Bearer`),
//! roles and tenant isolation are exactly the REST API's: another organisation's objects
//! answer `NOT_FOUND` with the same message as ids that do not exist.
//!
//! Every error carries `extensions.code`: `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`,
//! `INVALID` (with `extensions.fields`: `[{path, message}]`, RFC 6901 pointers into the
//! operation's `input`, or into its arguments), `CONFLICT`, `PLUGIN_CALL_FAILED`,
//! `INTERNAL`; and for the request itself `BAD_REQUEST`, `GRAPHQL_PARSE_FAILED`,
//! `GRAPHQL_VALIDATION_FAILED`, `QUERY_TOO_DEEP` (more than [`MAX_DEPTH`] nested fields)
//! and `QUERY_TOO_COMPLEX` (complexity above [`MAX_COMPLEXITY`]).
//!
//! Every field that can fail is nullable: when it fails it is `null` in `data` and its
//! error, with `path` and `extensions.code`, is in `errors`; the other fields are answered.
//!
//! Introspection is on and needs no token (the schema is public, as is the OpenAPI
//! document); everything else needs one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use async_graphql::connection::{Connection, Edge};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{
    Context, EmptySubscription, Enum, ErrorExtensionValues, ErrorExtensions, ID, InputObject,
    Object, Positioned, Schema, ServerError, ServerResult, SimpleObject, ValidationResult,
    Variables,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::AppState;

mod credentials;
use crate::management::model::{self, Principal};
use crate::management::{
    ConnectorFilter, ConnectorInput, ConnectorPatch, ManagementService, ServiceError,
};

/// Most nested fields an operation may select (`ofType` links of introspection, which
/// only unwrap list and non-null types, do not count).
pub const MAX_DEPTH: usize = 10;
/// Highest complexity an operation may have (each selected field costs 1).
pub const MAX_COMPLEXITY: usize = 500;

/// The schema type.
pub type PortcullisSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

static SCHEMA: LazyLock<PortcullisSchema> = LazyLock::new(|| {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .extension(Limits)
        .finish()
});

/// The GraphQL schema (built once).
pub fn schema() -> &'static PortcullisSchema {
    &SCHEMA
}

/// The schema in SDL.
pub fn sdl() -> String {
    schema().sdl()
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/graphql", get(graphiql).post(graphql))
}

async fn graphiql() -> impl IntoResponse {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .title("Portcullis GraphQL")
            .finish(),
    )
}

/// Who is calling: resolved once per request from the `Authorization` header.
struct RequestCtx {
    state: AppState,
    caller: Result<Principal, String>,
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, String> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("missing `Authorization: Bearer <token>` header")?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("the Authorization header must use the Bearer scheme")?;
    state.service().authenticate(token).map_err(|e| match e {
        ServiceError::Store(s) => {
            tracing::error!(error = %s, "store failure");
            "the store failed; see the server log".to_string()
        }
        other => other.to_string(),
    })
}

fn request_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{"message": message, "extensions": {"code": code}}],
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => {
            let status = r.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "PAYLOAD_TOO_LARGE"
            } else {
                "BAD_REQUEST"
            };
            return request_error(status, code, r.body_text());
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!(
                    "the body must be a JSON object {{\"query\": ..., \"variables\": ..., \"operationName\": ...}}: {e}"
                ),
            );
        }
    };
    let caller = authenticate(&state, &headers);
    let response = schema()
        .execute(request.data(RequestCtx { state, caller }))
        .await;
    let content_type = if headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/graphql-response+json"))
    {
        "application/graphql-response+json"
    } else {
        "application/json"
    };
    let body = serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

// ----- errors ------------------------------------------------------------------------------

fn coded(message: impl Into<String>, code: &str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

/// The GraphQL name of a field path the service reports (`/plugin_version` →
/// `/pluginVersion`, `/limit` → `/first`, `/cursor` → `/after`; configuration keys stay).
fn graphql_path(path: &str) -> String {
    let Some(rest) = path.strip_prefix('/') else {
        return path.to_string();
    };
    let (first, tail) = match rest.split_once('/') {
        Some((f, t)) => (f, Some(t)),
        None => (rest, None),
    };
    let first = match first {
        "limit" => "first".to_string(),
        "cursor" => "after".to_string(),
        "q" => "search".to_string(),
        f => {
            let mut out = String::new();
            let mut upper = false;
            for c in f.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        }
    };
    match tail {
        Some(t) => format!("/{first}/{t}"),
        None => format!("/{first}"),
    }
}

fn service_error(e: ServiceError) -> async_graphql::Error {
    match e {
        ServiceError::Unauthenticated => coded(e.to_string(), "UNAUTHENTICATED"),
        ServiceError::Forbidden(m) => coded(m, "FORBIDDEN"),
        ServiceError::NotFound { .. } => coded(e.to_string(), "NOT_FOUND"),
        ServiceError::Invalid { message, fields } => {
            let fields: Vec<serde_json::Value> = fields
                .into_iter()
                .map(|f| serde_json::json!({"path": graphql_path(&f.path), "message": f.message}))
                .collect();
            let fields = async_graphql::Value::from_json(serde_json::Value::Array(fields))
                .unwrap_or(async_graphql::Value::Null);
            async_graphql::Error::new(message).extend_with(|_, e| {
                e.set("code", "INVALID");
                e.set("fields", fields.clone());
            })
        }
        ServiceError::Conflict(m) => coded(m, "CONFLICT"),
        ServiceError::PluginRefused(l) => coded(format!("plugin refused: {l}"), "INVALID"),
        ServiceError::PluginCall(m) => coded(m, "PLUGIN_CALL_FAILED"),
        ServiceError::Store(s) => {
            tracing::error!(error = %s, "store failure");
            coded("the store failed; see the server log", "INTERNAL")
        }
    }
}

type GqlResult<T> = async_graphql::Result<T>;

trait OrGql<T> {
    fn gql(self) -> GqlResult<T>;
}

impl<T> OrGql<T> for Result<T, ServiceError> {
    fn gql(self) -> GqlResult<T> {
        self.map_err(service_error)
    }
}

/// The service and the authenticated caller, or `UNAUTHENTICATED`.
fn caller<'a>(ctx: &Context<'a>) -> GqlResult<(&'a ManagementService, &'a Principal)> {
    let rc = ctx.data::<RequestCtx>()?;
    match &rc.caller {
        Ok(p) => Ok((rc.state.service(), p)),
        Err(m) => Err(coded(m.clone(), "UNAUTHENTICATED")),
    }
}

/// A field that failed is `null` with its error (and path) in `errors`, as the spec
/// wants for nullable fields; every field that can fail is nullable.
fn nullable<T>(ctx: &Context<'_>, r: GqlResult<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
            None
        }
    }
}

// ----- enums -------------------------------------------------------------------------------

/// What a token may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::management::model::Role")]
enum Role {
    /// Read only.
    Viewer,
    /// Connectors, credentials, toggle, test.
    Operator,
    /// Everything in scope.
    Admin,
}

/// Connector health.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::management::model::HealthState")]
enum HealthState {
    /// Not yet observed.
    Unknown,
    /// Fine.
    Healthy,
    /// Working with problems.
    Degraded,
    /// Not working.
    Failing,
    /// Disabled by an operator.
    Disabled,
}

/// Connector category.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::manifest::Category")]
enum Category {
    /// Security information and event management.
    Siem,
    /// Threat-intelligence feed.
    ThreatIntel,
    /// Open-source intelligence provider.
    Osint,
    /// Blockchain monitor.
    Blockchain,
    /// Vulnerability database.
    Vulnerability,
    /// Cloud logs.
    CloudLogs,
    /// Endpoint telemetry.
    Endpoint,
    /// Network telemetry.
    Network,
    /// Any other REST API.
    CustomApi,
}

/// Credential kinds the host can inject.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::manifest::CredentialKind")]
enum CredentialKind {
    /// `Authorization: Bearer`.
    Bearer,
    /// OAuth 2.0 client credentials (RFC 6749 §4.4).
    #[graphql(name = "OAUTH2_CLIENT_CREDENTIALS")]
    OAuth2ClientCredentials,
    /// Key in a header or query parameter.
    ApiKey,
    /// HTTP Basic.
    Basic,
}

/// Unified event kinds.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::event::EventKind")]
enum EventKind {
    /// A detection or alarm.
    Alert,
    /// A log record.
    Log,
    /// A threat-intelligence indicator.
    Indicator,
    /// A vulnerability record.
    Vulnerability,
    /// A blockchain transaction.
    Transaction,
    /// An asset inventory record.
    Asset,
    /// A finding.
    Finding,
}

/// Whether ingestion is on.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
enum ConnectorStatus {
    /// Ingesting.
    Enabled,
    /// Not ingesting; configuration, credentials, grants and cursor kept.
    Disabled,
}

/// The serde name of a model enum (`"threat-intel"`), as the service's filters take it.
fn serde_name<T: serde::Serialize>(v: T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

// ----- objects -----------------------------------------------------------------------------

/// The caller: the token the request authenticated with.
struct Caller(Principal);

#[Object]
impl Caller {
    /// Token id (never the token).
    async fn token_id(&self) -> ID {
        ID(self.0.token_id.clone())
    }
    /// Token label.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The token's organisation (`null`: the platform admin).
    async fn org(&self) -> Option<ID> {
        self.0.org.clone().map(ID)
    }
    /// Role.
    async fn role(&self) -> Role {
        self.0.role.into()
    }
    /// The platform administrator's token.
    async fn platform_admin(&self) -> bool {
        self.0.is_platform_admin()
    }
}

/// An organisation.
struct Org(model::Org);

#[Object]
impl Org {
    /// Slug id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// RFC 3339.
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    /// Who created it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
}

/// Credential slot → credential name (never a value).
#[derive(SimpleObject)]
struct CredentialBinding {
    /// The plugin's slot.
    slot: String,
    /// The credential bound to it, by name.
    credential: String,
}

fn bindings(m: &BTreeMap<String, String>) -> Vec<CredentialBinding> {
    m.iter()
        .map(|(slot, credential)| CredentialBinding {
            slot: slot.clone(),
            credential: credential.clone(),
        })
        .collect()
}

/// Health with reason codes.
struct Health(model::Health);

#[Object]
impl Health {
    /// State.
    async fn state(&self) -> HealthState {
        self.0.state.into()
    }
    /// Reason codes (`AUTH_FAILED`, ...).
    async fn reasons(&self) -> &[String] {
        &self.0.reasons
    }
    /// When the state was entered (RFC 3339).
    async fn since(&self) -> &str {
        &self.0.since
    }
    /// The reasons with their fields.
    async fn details(&self) -> Vec<HealthReason> {
        self.0.details.iter().cloned().map(HealthReason).collect()
    }
}

/// A reason code with its fields.
struct HealthReason(crate::health::HealthReason);

#[Object]
impl HealthReason {
    /// `AUTH_FAILED`, `RATE_LIMITED`, `UPSTREAM_ERROR`, `TIMEOUT`, `PLUGIN_TRAP`,
    /// `PARSE_ERRORS`, `DUPLICATE_FLOOD`, `STALE`, `BACKPRESSURED`, `CRASH_LOOP`.
    async fn code(&self) -> &'static str {
        self.0.code()
    }
    /// The reason's fields (`until`, `status`, `rate`, `sample`, `ratio`, `since`, ...).
    async fn fields(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.0).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("code");
        }
        v
    }
}

/// One change of a connector's health.
struct HealthTransition(model::HealthTransition);

#[Object]
impl HealthTransition {
    /// When (RFC 3339).
    async fn at(&self) -> &str {
        &self.0.at
    }
    /// Previous state.
    async fn from(&self) -> HealthState {
        self.0.from.into()
    }
    /// New state.
    async fn to(&self) -> HealthState {
        self.0.to.into()
    }
    /// New reason codes.
    async fn reasons(&self) -> &[String] {
        &self.0.reasons
    }
    /// The reasons with their fields.
    async fn details(&self) -> Vec<HealthReason> {
        self.0.details.iter().cloned().map(HealthReason).collect()
    }
}

/// Per-connector figures.
struct ConnectorMetrics(crate::health::ConnectorMetricsView);

#[Object]
impl ConnectorMetrics {
    /// Events the plugin produced, before dedup.
    async fn events_in(&self) -> u64 {
        self.0.events_in
    }
    /// Events dropped as duplicates.
    async fn duplicates_dropped(&self) -> u64 {
        self.0.duplicates_dropped
    }
    /// Events acknowledged by every sink.
    async fn events_out(&self) -> u64 {
        self.0.events_out
    }
    /// New events per minute over the last 5 minutes.
    async fn events_per_minute(&self) -> f64 {
        self.0.events_per_minute
    }
    /// Last new event (RFC 3339).
    async fn last_event(&self) -> Option<&str> {
        self.0.last_event.as_deref()
    }
    /// Last successful poll (RFC 3339).
    async fn last_success(&self) -> Option<&str> {
        self.0.last_success.as_deref()
    }
    /// Poll latency p50 over recent polls, milliseconds.
    async fn poll_latency_p50_ms(&self) -> Option<f64> {
        self.0.poll_latency_ms.p50
    }
    /// Poll latency p95, milliseconds.
    async fn poll_latency_p95_ms(&self) -> Option<f64> {
        self.0.poll_latency_ms.p95
    }
    /// Poll latency p99, milliseconds.
    async fn poll_latency_p99_ms(&self) -> Option<f64> {
        self.0.poll_latency_ms.p99
    }
    /// Errors by reason code.
    async fn errors(&self) -> serde_json::Value {
        serde_json::to_value(&self.0.errors).unwrap_or_default()
    }
    /// Accepted events not yet acknowledged by every sink.
    async fn sink_pending_events(&self) -> u64 {
        self.0.sink_pending_events
    }
    /// How long the oldest of those has waited, seconds.
    async fn sink_lag_secs(&self) -> f64 {
        self.0.sink_lag_secs
    }
}

/// What a crash loop does to a connector.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::management::model::CrashLoopPolicy")]
enum CrashLoopPolicy {
    /// Disable it automatically (audited).
    Disable,
    /// Only report it in health.
    Ignore,
}

/// One stage of a connection test.
struct TestStage(crate::runtime::TestStage);

#[Object]
impl TestStage {
    /// `auth`, `sample`, or plugin-specific.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Passed?
    async fn ok(&self) -> bool {
        self.0.ok
    }
    /// Detail.
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// Duration as measured by the plugin.
    async fn latency_ms(&self) -> Option<u64> {
        self.0.latency_ms
    }
}

/// The last connection test of a connector.
struct LastTest(model::LastTest);

#[Object]
impl LastTest {
    /// When (RFC 3339).
    async fn at(&self) -> &str {
        &self.0.at
    }
    /// Who ran it.
    async fn by(&self) -> &str {
        &self.0.by
    }
    /// Every stage passed.
    async fn ok(&self) -> bool {
        self.0.ok
    }
    /// Host-measured latency of the whole call.
    async fn latency_ms(&self) -> u64 {
        self.0.latency_ms
    }
    /// Stages.
    async fn stages(&self) -> Vec<TestStage> {
        self.0.stages.iter().cloned().map(TestStage).collect()
    }
}

/// A value worth pivoting on.
struct Observable(crate::event::Observable);

#[Object]
impl Observable {
    /// Observable type, kebab-case (`ip`, `sha256`, `wallet-address`, ...).
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The value.
    async fn value(&self) -> &str {
        &self.0.value
    }
}

/// One normalised, OCSF-aligned event.
struct Event(crate::event::Event);

#[Object]
impl Event {
    /// Dedup key, unique per source connector.
    async fn id(&self) -> &str {
        &self.0.id
    }
    /// RFC 3339 UTC time.
    async fn time(&self) -> &str {
        &self.0.time
    }
    /// Event kind.
    async fn kind(&self) -> EventKind {
        self.0.kind.into()
    }
    /// OCSF `severity_id` (0–6).
    async fn severity_id(&self) -> u8 {
        self.0.severity_id
    }
    /// OCSF severity label.
    async fn severity(&self) -> &str {
        &self.0.severity
    }
    /// Short human title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The connector that produced it.
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// Pivotable values.
    async fn observables(&self) -> Vec<Observable> {
        self.0.observables.iter().cloned().map(Observable).collect()
    }
    /// Normalised fields (a JSON object).
    async fn attributes(&self) -> &serde_json::Value {
        &self.0.attributes
    }
    /// The original record.
    async fn raw(&self) -> &str {
        &self.0.raw
    }
}

/// Result of a connection test run in the sandbox.
struct TestReport(crate::runtime::TestReport);

#[Object]
impl TestReport {
    /// Every stage passed.
    async fn ok(&self) -> bool {
        self.0.ok
    }
    /// Host-measured latency of the whole call.
    async fn latency_ms(&self) -> u64 {
        self.0.latency_ms
    }
    /// Stages (`auth`, `sample`, any the plugin adds).
    async fn stages(&self) -> Vec<TestStage> {
        self.0.stages.iter().cloned().map(TestStage).collect()
    }
    /// Up to 3 sample events.
    async fn sample(&self) -> Vec<Event> {
        self.0.sample.iter().cloned().map(Event).collect()
    }
}

/// A credential slot a plugin declares.
struct CredentialSlot(crate::manifest::CredentialSlot);

#[Object]
impl CredentialSlot {
    /// Slot name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the credential is for.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Accepted kinds.
    async fn kinds(&self) -> Vec<CredentialKind> {
        self.0.kinds.iter().copied().map(Into::into).collect()
    }
    /// Whether a connector must bind it.
    async fn required(&self) -> bool {
        self.0.required
    }
}

fn slots(v: &[crate::manifest::CredentialSlot]) -> Vec<CredentialSlot> {
    v.iter().cloned().map(CredentialSlot).collect()
}

/// What a plugin says it is.
struct Manifest(crate::manifest::Manifest);

#[Object]
impl Manifest {
    /// Plugin id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Version (semver).
    async fn version(&self) -> &str {
        &self.0.version
    }
    /// Category.
    async fn category(&self) -> Category {
        self.0.category.into()
    }
    /// Description.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// JSON Schema of the connector configuration.
    async fn config_schema(&self) -> &serde_json::Value {
        &self.0.config_schema
    }
    /// Host patterns it asks to reach.
    async fn hosts(&self) -> &[String] {
        &self.0.hosts
    }
    /// Credential slots it asks for.
    async fn credential_slots(&self) -> Vec<CredentialSlot> {
        slots(&self.0.credential_slots)
    }
    /// Whether it accepts pushed input.
    async fn accepts_push(&self) -> bool {
        self.0.accepts_push
    }
}

/// What a plugin requests, for audit before it is granted.
struct Capabilities(model::PluginCapabilities);

#[Object]
impl Capabilities {
    /// Host patterns it asks to reach.
    async fn hosts(&self) -> &[String] {
        &self.0.hosts
    }
    /// Credential slots it asks for, with accepted kinds.
    async fn credential_slots(&self) -> Vec<CredentialSlot> {
        slots(&self.0.credential_slots)
    }
    /// Whether it accepts pushed input.
    async fn accepts_push(&self) -> bool {
        self.0.accepts_push
    }
    /// Host interfaces the component imports.
    async fn imports(&self) -> &[String] {
        &self.0.imports
    }
}

/// An installed plugin version.
struct Plugin(std::sync::Arc<model::PluginRecord>);

#[Object]
impl Plugin {
    /// Plugin id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Version.
    async fn version(&self) -> &str {
        &self.0.version
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.manifest.name
    }
    /// Category.
    async fn category(&self) -> Category {
        self.0.manifest.category.into()
    }
    /// Component sha256.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Size in bytes.
    async fn size(&self) -> u64 {
        self.0.size as u64
    }
    /// WIT API version.
    async fn api_version(&self) -> &str {
        &self.0.api_version
    }
    /// The manifest.
    async fn manifest(&self) -> Manifest {
        Manifest(self.0.manifest.clone())
    }
    /// Hosts, credential slots and kinds, push input, imports.
    async fn capabilities(&self) -> Capabilities {
        Capabilities(self.0.capabilities())
    }
    /// RFC 3339.
    async fn installed_at(&self) -> &str {
        &self.0.installed_at
    }
    /// Who installed it.
    async fn installed_by(&self) -> &str {
        &self.0.installed_by
    }
    /// Installed from the bundled plugin directory.
    async fn bundled(&self) -> bool {
        self.0.bundled
    }
}

/// The configurable part of a connector, as one revision captured it.
struct ConnectorSpec(model::ConnectorSpec);

#[Object]
impl ConnectorSpec {
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Plugin id.
    async fn plugin_id(&self) -> ID {
        ID(self.0.plugin.id.clone())
    }
    /// Plugin version.
    async fn plugin_version(&self) -> &str {
        &self.0.plugin.version
    }
    /// Configuration.
    async fn config(&self) -> &serde_json::Value {
        &self.0.config
    }
    /// Credential bindings (by name, never by value).
    async fn credentials(&self) -> Vec<CredentialBinding> {
        bindings(&self.0.credentials)
    }
    /// Granted host patterns.
    async fn grants(&self) -> &[String] {
        &self.0.grants
    }
    /// ISO 8601 duration.
    async fn schedule(&self) -> &str {
        &self.0.schedule
    }
}

/// One configuration revision.
struct Revision(model::Revision);

#[Object]
impl Revision {
    /// Revision number (1-based).
    async fn revision(&self) -> u64 {
        self.0.revision
    }
    /// Who.
    async fn author(&self) -> &str {
        &self.0.author
    }
    /// When (RFC 3339).
    async fn at(&self) -> &str {
        &self.0.at
    }
    /// `created`, `updated` or `upgraded`.
    async fn change(&self) -> &str {
        &self.0.change
    }
    /// The configuration after the change.
    async fn spec(&self) -> ConnectorSpec {
        ConnectorSpec(self.0.spec.clone())
    }
}

/// A configured connector.
struct Connector(model::ConnectorRecord);

#[Object]
impl Connector {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Owning organisation.
    async fn org(&self) -> ID {
        ID(self.0.org.clone())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.spec.name
    }
    /// Plugin id.
    async fn plugin_id(&self) -> ID {
        ID(self.0.spec.plugin.id.clone())
    }
    /// Plugin version.
    async fn plugin_version(&self) -> &str {
        &self.0.spec.plugin.version
    }
    /// Catalogue category: the one the connector was given, else its plugin's (`null`
    /// only when neither is known: an old record whose plugin version was unloaded).
    async fn category(&self, ctx: &Context<'_>) -> Option<Category> {
        if let Some(c) = self.0.spec.category {
            return Some(c.into());
        }
        let (svc, _) = caller(ctx).ok()?;
        let spec = &self.0.spec.plugin;
        svc.plugin_record_shared(&spec.id, &spec.version)
            .map(|r| r.manifest.category.into())
    }
    /// The plugin version it runs, with its manifest and capabilities (`null` once that
    /// version has been unloaded).
    async fn plugin(&self, ctx: &Context<'_>) -> Option<Plugin> {
        let found = (|| {
            let (svc, _) = caller(ctx)?;
            let spec = &self.0.spec.plugin;
            Ok(svc
                .plugin_record_shared(&spec.id, &spec.version)
                .map(Plugin))
        })();
        nullable(ctx, found).flatten()
    }
    /// Configuration.
    async fn config(&self) -> &serde_json::Value {
        &self.0.spec.config
    }
    /// Credential bindings (by name, never by value).
    async fn credentials(&self) -> Vec<CredentialBinding> {
        bindings(&self.0.spec.credentials)
    }
    /// Granted host patterns.
    async fn grants(&self) -> &[String] {
        &self.0.spec.grants
    }
    /// ISO 8601 duration.
    async fn schedule(&self) -> &str {
        &self.0.spec.schedule
    }
    /// Ingestion on?
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// `ENABLED` or `DISABLED`.
    async fn status(&self) -> ConnectorStatus {
        if self.0.enabled {
            ConnectorStatus::Enabled
        } else {
            ConnectorStatus::Disabled
        }
    }
    /// Health.
    async fn health(&self) -> Health {
        Health(self.0.health.clone())
    }
    /// Recent health transitions, newest first.
    async fn health_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 1, maximum = 1000))] limit: i32,
    ) -> Option<Vec<HealthTransition>> {
        let view = caller(ctx).and_then(|(svc, p)| {
            svc.connector_health(p, &self.0.org, &self.0.id, limit as usize)
                .gql()
        });
        nullable(ctx, view).map(|v| v.transitions.into_iter().map(HealthTransition).collect())
    }
    /// Events/min, last event, poll latency percentiles, errors by reason, sink lag.
    async fn metrics(&self, ctx: &Context<'_>) -> Option<ConnectorMetrics> {
        let m = caller(ctx)
            .and_then(|(svc, p)| svc.connector_metrics(p, &self.0.org, &self.0.id).gql());
        nullable(ctx, m).map(ConnectorMetrics)
    }
    /// What a crash loop does to this connector.
    async fn crash_loop_policy(&self) -> CrashLoopPolicy {
        self.0.crash_loop_policy.into()
    }
    /// Current revision number.
    async fn revision(&self) -> u64 {
        self.0.revision
    }
    /// RFC 3339.
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    /// Who created it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// RFC 3339.
    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
    /// Who changed it last.
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// The last connection test, if any.
    async fn last_test(&self) -> Option<LastTest> {
        self.0
            .last_test
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .map(LastTest)
    }
    /// Configuration revisions, oldest first.
    async fn revisions(&self, ctx: &Context<'_>) -> Option<Vec<Revision>> {
        let revisions =
            caller(ctx).and_then(|(svc, p)| svc.revisions(p, &self.0.org, &self.0.id).gql());
        nullable(ctx, revisions).map(|v| v.into_iter().map(Revision).collect())
    }
}

/// One audit record (never a secret value).
struct AuditRecord(model::AuditRecord);

#[Object]
impl AuditRecord {
    /// Id (sortable).
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// RFC 3339.
    async fn at(&self) -> &str {
        &self.0.at
    }
    /// Who.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// Organisation (`null`: platform-level).
    async fn org(&self) -> Option<ID> {
        self.0.org.clone().map(ID)
    }
    /// Action (`connector.disable`, ...).
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// Target (`connector/<id>`, ...).
    async fn target(&self) -> &str {
        &self.0.target
    }
    /// `ok`, `refused: ...` or `failed: ...`.
    async fn outcome(&self) -> &str {
        &self.0.outcome
    }
    /// Extra, non-secret detail.
    async fn detail(&self) -> Option<&serde_json::Value> {
        (!self.0.detail.is_null()).then_some(&self.0.detail)
    }
}

/// The result of `updateConnector`.
struct UpdateConnectorPayload {
    connector: model::ConnectorRecord,
    capability_diff: Option<serde_json::Value>,
}

#[Object]
impl UpdateConnectorPayload {
    /// The connector after the change.
    async fn connector(&self) -> Connector {
        Connector(self.connector.clone())
    }
    /// When the plugin version changed: hosts, credential slots and push input added or
    /// removed. New hosts are never granted automatically.
    async fn capability_diff(&self) -> Option<&serde_json::Value> {
        self.capability_diff.as_ref()
    }
}

// ----- inputs ------------------------------------------------------------------------------

/// Credential slot → credential name.
#[derive(InputObject)]
struct CredentialBindingInput {
    /// The plugin's slot.
    slot: String,
    /// The credential, by name.
    credential: String,
}

fn binding_map(v: Vec<CredentialBindingInput>) -> BTreeMap<String, String> {
    v.into_iter().map(|b| (b.slot, b.credential)).collect()
}

/// A new connector.
#[derive(InputObject)]
struct CreateConnectorInput {
    /// Display name.
    name: String,
    /// Plugin id.
    plugin: ID,
    /// Plugin version (default: the newest installed).
    plugin_version: Option<String>,
    /// Configuration (default `{}`), validated by the plugin's schema and `validate-config`.
    config: Option<serde_json::Value>,
    /// Credential bindings.
    credentials: Option<Vec<CredentialBindingInput>>,
    /// Granted host patterns (explicit; none by default).
    grants: Option<Vec<String>>,
    /// ISO 8601 duration (default `PT5M`).
    schedule: Option<String>,
    /// Start enabled (default false: test before activation).
    #[graphql(default)]
    enabled: bool,
    /// Catalogue category (default: the plugin's; another only for generic plugins).
    category: Option<Category>,
}

/// Changes to a connector; omitted fields stay as they are.
#[derive(InputObject)]
struct UpdateConnectorInput {
    /// New name.
    name: Option<String>,
    /// Upgrade/downgrade to this plugin version (the answer has the capability diff).
    plugin_version: Option<String>,
    /// Replace the configuration.
    config: Option<serde_json::Value>,
    /// Replace the credential bindings.
    credentials: Option<Vec<CredentialBindingInput>>,
    /// Replace the grants.
    grants: Option<Vec<String>>,
    /// New schedule.
    schedule: Option<String>,
    /// New catalogue category (generic plugins only).
    category: Option<Category>,
    /// What a crash loop does (not a configuration revision).
    crash_loop_policy: Option<CrashLoopPolicy>,
}

/// Filters of `connectors`.
#[derive(InputObject, Default)]
struct ConnectorFilterInput {
    /// Plugin category.
    category: Option<Category>,
    /// Enabled or disabled.
    status: Option<ConnectorStatus>,
    /// Health state.
    health: Option<HealthState>,
    /// Plugin id.
    plugin: Option<ID>,
    /// Substring of the name (case-insensitive).
    search: Option<String>,
}

// ----- roots -------------------------------------------------------------------------------

/// Queries.
pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// Credentials of an organisation (viewer): metadata only, never a secret.
    async fn credentials(
        &self,
        ctx: &Context<'_>,
        org: ID,
    ) -> Option<Vec<credentials::Credential>> {
        credentials::credentials(ctx, org).await
    }

    /// One credential (viewer): metadata only.
    async fn credential(
        &self,
        ctx: &Context<'_>,
        org: ID,
        name: String,
    ) -> Option<credentials::Credential> {
        credentials::credential(ctx, org, name).await
    }

    /// The token this request authenticated with.
    async fn me(&self, ctx: &Context<'_>) -> Option<Caller> {
        let result: GqlResult<Caller> = async {
            let (_, p) = caller(ctx)?;
            Ok(Caller(p.clone()))
        }
        .await;
        nullable(ctx, result)
    }

    /// Organisations visible to the caller (an org token sees only its own).
    async fn orgs(&self, ctx: &Context<'_>) -> Option<Vec<Org>> {
        let result: GqlResult<Vec<Org>> = async {
            let (svc, p) = caller(ctx)?;
            Ok(svc.list_orgs(p).gql()?.into_iter().map(Org).collect())
        }
        .await;
        nullable(ctx, result)
    }

    /// One organisation.
    async fn org(&self, ctx: &Context<'_>, id: ID) -> Option<Org> {
        let result: GqlResult<Option<Org>> = async {
            let (svc, p) = caller(ctx)?;
            Ok(Some(Org(svc.get_org(p, &id).gql()?)))
        }
        .await;
        nullable(ctx, result).flatten()
    }

    /// Connectors of an organisation, filtered, in pages (`first` at most 500, default 50;
    /// `after`: the `endCursor` of the previous page).
    async fn connectors(
        &self,
        ctx: &Context<'_>,
        org: ID,
        filter: Option<ConnectorFilterInput>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Option<Connection<String, Connector>> {
        let result: GqlResult<Connection<String, Connector>> = async {
            let (svc, p) = caller(ctx)?;
            let f = filter.unwrap_or_default();
            // Out of range (below 1, above 500) is refused by the service, naming `/first`.
            let limit = usize::try_from(first).unwrap_or(0);
            let query = ConnectorFilter {
                category: f
                    .category
                    .map(crate::manifest::Category::from)
                    .and_then(serde_name),
                status: f.status.map(|s| {
                    match s {
                        ConnectorStatus::Enabled => "enabled",
                        ConnectorStatus::Disabled => "disabled",
                    }
                    .to_string()
                }),
                health: f.health.map(model::HealthState::from).and_then(serde_name),
                plugin: f.plugin.map(|p| p.0),
                q: f.search,
                limit: Some(limit),
                cursor: after.clone(),
            };
            let (items, next) = svc.list_connectors(p, &org, &query).gql()?;
            let mut conn = Connection::new(false, next.is_some());
            conn.edges.extend(items.into_iter().map(|c| {
                Edge::new(
                    ManagementService::connector_cursor(&c.org, &c.id),
                    Connector(c),
                )
            }));
            Ok(conn)
        }
        .await;
        nullable(ctx, result)
    }

    /// One connector of an organisation.
    async fn connector(&self, ctx: &Context<'_>, org: ID, id: ID) -> Option<Connector> {
        let result: GqlResult<Option<Connector>> = async {
            let (svc, p) = caller(ctx)?;
            Ok(Some(Connector(svc.get_connector(p, &org, &id).gql()?)))
        }
        .await;
        nullable(ctx, result).flatten()
    }

    /// Every installed plugin version (by id, newest first), with capabilities.
    async fn plugins(&self, ctx: &Context<'_>) -> Option<Vec<Plugin>> {
        let result: GqlResult<Vec<Plugin>> = async {
            let (svc, _) = caller(ctx)?;
            Ok(svc
                .list_plugins()
                .gql()?
                .into_iter()
                .map(|r| Plugin(std::sync::Arc::new(r)))
                .collect())
        }
        .await;
        nullable(ctx, result)
    }

    /// One plugin: the given version, or the newest.
    async fn plugin(&self, ctx: &Context<'_>, id: ID, version: Option<String>) -> Option<Plugin> {
        let result: GqlResult<Option<Plugin>> = async {
            let (svc, _) = caller(ctx)?;
            let versions = svc.plugin_versions(&id).gql()?;
            let found = match &version {
                None => versions.into_iter().next(),
                Some(v) => versions.into_iter().find(|r| &r.version == v),
            };
            match found {
                Some(r) => Ok(Some(Plugin(std::sync::Arc::new(r)))),
                None => Err(service_error(ServiceError::NotFound {
                    kind: "plugin version",
                    id: format!("{}@{}", id.0, version.unwrap_or_default()),
                })),
            }
        }
        .await;
        nullable(ctx, result).flatten()
    }

    /// Audit records, newest first: of `org`, or platform-wide (platform admin) without it.
    async fn audit(
        &self,
        ctx: &Context<'_>,
        org: Option<ID>,
        #[graphql(default = 100)] limit: i32,
    ) -> Option<Vec<AuditRecord>> {
        let result: GqlResult<Vec<AuditRecord>> = async {
            let (svc, p) = caller(ctx)?;
            let limit = usize::try_from(limit.max(1)).unwrap_or(1);
            Ok(svc
                .audit(p, org.as_ref().map(|o| o.as_str()), limit)
                .gql()?
                .into_iter()
                .map(AuditRecord)
                .collect())
        }
        .await;
        nullable(ctx, result)
    }
}

/// Mutations.
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Create a credential or write a new version (operator). On an existing credential
    /// the version stays pending unless `promote`. Secret fields are write-only.
    async fn set_credential(
        &self,
        ctx: &Context<'_>,
        org: ID,
        name: String,
        input: credentials::SetCredentialInput,
        #[graphql(default = false)] promote: bool,
    ) -> Option<credentials::Credential> {
        credentials::set_credential(ctx, org, name, input, promote).await
    }

    /// Promote a credential's pending version (operator).
    async fn promote_credential(
        &self,
        ctx: &Context<'_>,
        org: ID,
        name: String,
    ) -> Option<credentials::Credential> {
        credentials::promote_or_rollback(ctx, org, name, true).await
    }

    /// Return a credential to its previous version (operator).
    async fn rollback_credential(
        &self,
        ctx: &Context<'_>,
        org: ID,
        name: String,
    ) -> Option<credentials::Credential> {
        credentials::promote_or_rollback(ctx, org, name, false).await
    }

    /// Create a connector (operator). It starts disabled unless `enabled` is true.
    async fn create_connector(
        &self,
        ctx: &Context<'_>,
        org: ID,
        input: CreateConnectorInput,
    ) -> Option<Connector> {
        let result: GqlResult<Connector> = async {
            let (svc, p) = caller(ctx)?;
            let input = ConnectorInput {
                name: input.name,
                plugin: input.plugin.0,
                plugin_version: input.plugin_version,
                config: input.config.unwrap_or_else(|| serde_json::json!({})),
                credentials: binding_map(input.credentials.unwrap_or_default()),
                grants: input.grants.unwrap_or_default(),
                schedule: input.schedule,
                enabled: input.enabled,
                category: input.category.map(Into::into),
            };
            Ok(Connector(svc.create_connector(p, &org, input).await.gql()?))
        }
        .await;
        nullable(ctx, result)
    }

    /// Change a connector (operator): a new revision.
    async fn update_connector(
        &self,
        ctx: &Context<'_>,
        org: ID,
        id: ID,
        input: UpdateConnectorInput,
    ) -> Option<UpdateConnectorPayload> {
        let result: GqlResult<UpdateConnectorPayload> = async {
            let (svc, p) = caller(ctx)?;
            let patch = ConnectorPatch {
                name: input.name,
                plugin_version: input.plugin_version,
                config: input.config,
                credentials: input.credentials.map(binding_map),
                grants: input.grants,
                schedule: input.schedule,
                category: input.category.map(Into::into),
                crash_loop_policy: input.crash_loop_policy.map(Into::into),
            };
            let (connector, capability_diff) =
                svc.update_connector(p, &org, &id, patch).await.gql()?;
            Ok(UpdateConnectorPayload {
                connector,
                capability_diff,
            })
        }
        .await;
        nullable(ctx, result)
    }

    /// Delete a connector with its revisions (operator). Answers its id.
    async fn delete_connector(&self, ctx: &Context<'_>, org: ID, id: ID) -> Option<ID> {
        let result: GqlResult<ID> = async {
            let (svc, p) = caller(ctx)?;
            svc.delete_connector(p, &org, &id).await.gql()?;
            Ok(id)
        }
        .await;
        nullable(ctx, result)
    }

    /// Enable or disable a connector (operator). Disabling keeps configuration,
    /// credentials, grants, cursor and history; enabling resumes from the saved cursor.
    async fn set_connector_enabled(
        &self,
        ctx: &Context<'_>,
        org: ID,
        id: ID,
        enabled: bool,
    ) -> Option<Connector> {
        let result: GqlResult<Connector> = async {
            let (svc, p) = caller(ctx)?;
            Ok(Connector(
                svc.set_enabled(p, &org, &id, enabled).await.gql()?,
            ))
        }
        .await;
        nullable(ctx, result)
    }

    /// Run the plugin's connection test in the sandbox (operator); allowed on a disabled
    /// connector.
    async fn test_connector(&self, ctx: &Context<'_>, org: ID, id: ID) -> Option<TestReport> {
        let result: GqlResult<TestReport> = async {
            let (svc, p) = caller(ctx)?;
            Ok(TestReport(svc.test_connector(p, &org, &id).await.gql()?))
        }
        .await;
        nullable(ctx, result)
    }
}

// ----- limits ------------------------------------------------------------------------------

/// Depth and complexity limits, with a `code` on every request-level error.
struct Limits;

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Limits)
    }
}

fn with_code(mut e: ServerError, code: &str) -> ServerError {
    let ext = e
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    if ext.get("code").is_none() {
        ext.set("code", code);
    }
    e
}

/// Nesting depth of the deepest field of any operation (fragments expanded; `ofType`
/// does not count, since it only unwraps list and non-null wrappers).
fn document_depth(doc: &ExecutableDocument) -> usize {
    fn set_depth<'a>(
        doc: &'a ExecutableDocument,
        set: &'a Positioned<SelectionSet>,
        memo: &mut HashMap<&'a str, usize>,
        visiting: &mut Vec<&'a str>,
    ) -> usize {
        let mut max = 0;
        for sel in &set.node.items {
            let d = match &sel.node {
                Selection::Field(f) => {
                    let inner = set_depth(doc, &f.node.selection_set, memo, visiting);
                    if f.node.name.node.as_str() == "ofType" {
                        inner
                    } else {
                        inner + 1
                    }
                }
                Selection::InlineFragment(i) => {
                    set_depth(doc, &i.node.selection_set, memo, visiting)
                }
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    if let Some(d) = memo.get(name) {
                        *d
                    } else if visiting.contains(&name) {
                        // A cycle: validation refuses it.
                        0
                    } else if let Some(frag) = doc.fragments.get(&s.node.fragment_name.node) {
                        visiting.push(name);
                        let d = set_depth(doc, &frag.node.selection_set, memo, visiting);
                        visiting.pop();
                        memo.insert(name, d);
                        d
                    } else {
                        0
                    }
                }
            };
            max = max.max(d);
        }
        max
    }
    let mut memo = HashMap::new();
    let mut visiting = Vec::new();
    let ops: Vec<_> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(m) => m.values().collect(),
    };
    ops.into_iter()
        .map(|op| set_depth(doc, &op.node.selection_set, &mut memo, &mut visiting))
        .max()
        .unwrap_or(0)
}

#[async_trait::async_trait]
impl Extension for Limits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))?;
        let depth = document_depth(&doc);
        if depth > MAX_DEPTH {
            return Err(with_code(
                ServerError::new(
                    format!(
                        "the query is nested {depth} fields deep; at most {MAX_DEPTH} are allowed"
                    ),
                    None,
                ),
                "QUERY_TOO_DEEP",
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errs| {
            errs.into_iter()
                .map(|e| with_code(e, "GRAPHQL_VALIDATION_FAILED"))
                .collect::<Vec<_>>()
        })?;
        if result.complexity > MAX_COMPLEXITY {
            return Err(vec![with_code(
                ServerError::new(
                    format!(
                        "the query has complexity {}; at most {MAX_COMPLEXITY} is allowed",
                        result.complexity
                    ),
                    None,
                ),
                "QUERY_TOO_COMPLEX",
            )]);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_use_graphql_names() {
        assert_eq!(graphql_path("/plugin_version"), "/pluginVersion");
        assert_eq!(graphql_path("/config/base_url"), "/config/base_url");
        assert_eq!(graphql_path("/grants/1"), "/grants/1");
        assert_eq!(graphql_path("/limit"), "/first");
        assert_eq!(graphql_path(""), "");
    }

    #[test]
    fn depth_ignores_of_type_and_expands_fragments() {
        let doc = async_graphql::parser::parse_query(
            "query { a { b { ...F } } } fragment F on T { c { ofType { ofType { name } } } }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(document_depth(&doc), 4);
    }
}
