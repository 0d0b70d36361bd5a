//! The ThreatHawk SIEM API (CyberSilo, "How to use the ThreatHawk API for custom
//! security integrations", `shared/seeds/003_5fcc38daf35f9844.txt`), as far as the
//! alert-reading integration uses it.
//!
//! What the article documents, and this simulator does:
//! - OAuth 2.0 client credentials grant; tokens valid 3600 s by default; every API call
//!   carries `Authorization: Bearer <token>`. The token endpoint is an
//!   [`OAuthServer`] (RFC 6749 §4.4; the article names no path, so it keeps
//!   `/oauth/token`) started alongside; keys are scoped, so `GET /v1/alerts` needs a
//!   token holding [`ThreatHawkConfig::required_scope`] (`alerts:read`).
//! - Versioned base URL `<origin>/v1/`; `GET /v1/alerts` filtered by `status`,
//!   `severity` and `created_after` (ISO 8601, exclusive), cursor-paginated.
//! - Every API response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//!   `X-RateLimit-Reset` (Unix seconds when the window resets); past the limit the
//!   answer is `429` with `Retry-After` (seconds until the reset). The default limit is
//!   the article's enterprise figure, 10,000 requests per minute.
//! - `400` for malformed parameters and `422` for semantically invalid ones, each with
//!   a JSON body `{"error", "message", "fields": [<parameter names>]}`.
//! - Alerts carry severity (`info low medium high critical`), status (`open`,
//!   `investigating`, `resolved`, `closed`), matched rules, affected assets, raw event
//!   ids, the MITRE ATT&CK mapping and the raw event payload.
//!
//! What the article leaves open, chosen here (and in the plugin's README): the list
//! envelope `{"data": [...], "pagination": {"limit", "has_more", "next_cursor"}}`,
//! the `limit` (default 50, max 500) and `cursor` parameter names, ascending
//! `created_at` order (ties by id), and the alert field names of [`threathawk_alert`].
//! A page cursor is bound to the filters it was issued for and can be expired with
//! [`ThreatHawkServer::expire_cursors`] (then `422` with `fields: ["cursor"]`).
//!
//! **Replay mode** ([`ThreatHawkServer::set_replay`]) is the misbehaving SIEM of the
//! duplicate-flood story: `created_after` is ignored, so every new poll window is
//! served the same alerts, with the same ids, again.
//!
//! **Event ingestion** (`POST /v1/events`, the article's "most frequently used
//! integration point", used by Portcullis' HTTP forward sink): a JSON array of events,
//! each requiring `timestamp`, `source`, `event_type` and `payload` (else `400` with
//! `fields` naming `[i].field`); up to 10,000 events per request (more: `413`);
//! `Content-Encoding: gzip` accepted (any other coding: `415`); the token needs
//! [`EVENTS_SCOPE`] (`events:write`). The article's `Idempotency-Key` header "ensures that
//! retried requests don't create duplicate events": a key seen before with the same body
//! answers the first response again with `Idempotent-Replayed: true` and ingests nothing;
//! the same key with a different body is `422`. Success is `202` with
//! `{"accepted": <n>}` (the article leaves the body open). Failures queued with
//! [`ThreatHawkServer::fail_next`] apply here too, after auth and rate limit;
//! [`ThreatHawkServer::set_ingest_delay`] makes every ingestion request slow.
//!
//! Order per request: authentication, rate limit, the next injected [`Failure`],
//! parameter validation, data. Every request is recorded in [`ThreatHawkServer::log`].

// Request checks return the finished error `Response` as their `Err`.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, VecDeque};
use std::io;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::dataset::parse_time;
use crate::oauth::{OAuthConfig, OAuthServer, TokenRegistry, TokenStatus, random_u64};
use crate::paged::{Failure, RateLimit};
use crate::server::{RecordedRequest, RequestLog, SimServer, form_pairs};

/// The versioned API prefix (the article: base URL `https://api.threathawk.cybersilo.tech/v1/`).
pub const API_PREFIX: &str = "/v1";
/// The alert list endpoint.
pub const ALERTS_PATH: &str = "/v1/alerts";
/// The event ingestion endpoint.
pub const EVENTS_PATH: &str = "/v1/events";
/// The scope posting events needs.
pub const EVENTS_SCOPE: &str = "events:write";
/// Most events one ingestion request may carry (the article's batch limit).
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// ThreatHawk severity levels, lowest first.
pub const ALERT_SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];
/// Alert statuses the simulator knows.
pub const ALERT_STATUSES: [&str; 4] = ["open", "investigating", "resolved", "closed"];
/// The scope reading alerts needs.
pub const ALERTS_SCOPE: &str = "alerts:read";
/// `created_at` of generated alert 1 (the article's example date).
pub const FIRST_ALERT_AT: &str = "2025-02-10T00:00:00Z";

const REALM: &str = "ThreatHawk";

/// How a [`ThreatHawkServer`] behaves.
#[derive(Clone, Debug)]
pub struct ThreatHawkConfig {
    /// The token endpoint's client, scopes and token lifetime (default 3600 s).
    pub oauth: OAuthConfig,
    /// Scope a token needs for `GET /v1/alerts` (`None`: any token).
    pub required_scope: Option<String>,
    /// The alerts (default: 120 from [`threathawk_alerts`]).
    pub alerts: Vec<Value>,
    pub default_limit: usize,
    pub max_limit: usize,
    /// Fixed-window limit over the API; the headers are always sent.
    pub rate_limit: RateLimit,
    /// Ignore `created_after`: every window gets the same alerts again.
    pub replay: bool,
}

impl Default for ThreatHawkConfig {
    fn default() -> Self {
        Self {
            oauth: OAuthConfig::default(),
            required_scope: Some(ALERTS_SCOPE.to_string()),
            alerts: threathawk_alerts(120),
            default_limit: 50,
            max_limit: 500,
            rate_limit: RateLimit {
                limit: 10_000,
                window: Duration::from_secs(60),
                enforce: true,
            },
            replay: false,
        }
    }
}

const TECHNIQUES: [(&str, &str, &str, &str, &str); 6] = [
    (
        "TA0006",
        "Credential Access",
        "T1110.003",
        "Password Spraying",
        "Password spraying",
    ),
    (
        "TA0002",
        "Execution",
        "T1059.001",
        "PowerShell",
        "Encoded PowerShell command",
    ),
    (
        "TA0001",
        "Initial Access",
        "T1566.001",
        "Spearphishing Attachment",
        "Malicious attachment opened",
    ),
    (
        "TA0011",
        "Command and Control",
        "T1071.001",
        "Web Protocols",
        "Beaconing to a rare external host",
    ),
    (
        "TA0040",
        "Impact",
        "T1486",
        "Data Encrypted for Impact",
        "Mass file encryption",
    ),
    (
        "TA0008",
        "Lateral Movement",
        "T1021.002",
        "SMB/Windows Admin Shares",
        "Admin share access",
    ),
];
const SOURCES: [&str; 6] = [
    "vpn-gateway",
    "edr",
    "email-gateway",
    "proxy",
    "file-server",
    "windows-security",
];
const PROCESSES: [&str; 6] = [
    "vpnd",
    "powershell.exe",
    "outlook.exe",
    "chrome.exe",
    "svchost.exe",
    "net.exe",
];
const USERS: [&str; 5] = ["jdoe", "asmith", "svc-backup", "mlopez", "kchen"];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn first_alert_at() -> DateTime<Utc> {
    parse_time(FIRST_ALERT_AT).unwrap_or(DateTime::UNIX_EPOCH)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `created_at` of generated alert `index` (1-based): two alerts per minute
/// from [`FIRST_ALERT_AT`], so consecutive odd/even alerts share a timestamp.
pub fn threathawk_alert_time(index: usize) -> DateTime<Utc> {
    let minutes = i64::try_from(index.saturating_sub(1) / 2).unwrap_or(i64::MAX / 120);
    first_alert_at() + TimeDelta::minutes(minutes)
}

/// Generated alert number `index` (1-based), deterministic:
///
/// ```text
/// {"id": "alrt-000001", "title": "...", "description": "...",
///  "severity": "low", "status": "open",
///  "created_at": "2025-02-10T00:00:00Z", "updated_at": "2025-02-10T00:05:00Z",
///  "source": "edr",
///  "matched_rules": [{"id": "rule-0002", "name": "...", "severity": "low"}],
///  "affected_assets": [{"asset_id": "asset-0002", "hostname": "ws-0002.corp.example",
///                       "ip": "10.20.0.2", "type": "workstation", "owner": "asmith"}],
///  "raw_event_ids": ["evt-00000011", "evt-00000012"],
///  "mitre_attack": [{"tactic_id": "TA0002", "tactic": "Execution",
///                    "technique_id": "T1059.001", "technique": "PowerShell"}],
///  "raw_event": {"event_code": 4601, "src_ip": "203.0.113.2", "dest_ip": "10.20.0.2",
///                "user": "asmith", "process": {"name": "powershell.exe", "sha256": "<64 hex>"}}}
/// ```
///
/// Severity cycles `low medium high critical info` (index mod 5), status
/// `open investigating resolved` (index mod 3, every 7th `closed`), the ATT&CK
/// technique over six real ones (index mod 6); addresses are in 10.20.0.0/16 and the
/// documentation range 203.0.113.0/24.
pub fn threathawk_alert(index: usize) -> Value {
    let (tactic_id, tactic, technique_id, technique, what) = TECHNIQUES[index % TECHNIQUES.len()];
    let severity = ALERT_SEVERITIES[index % ALERT_SEVERITIES.len()];
    let status = if index.is_multiple_of(7) {
        "closed"
    } else {
        ["resolved", "open", "investigating"][index % 3]
    };
    let n = index % 50 + 1;
    let host = format!("ws-{n:04}.corp.example");
    let asset_ip = format!("10.20.{}.{}", (index / 250) % 256, index % 250 + 1);
    let src_ip = format!("203.0.113.{}", index % 254 + 1);
    let user = USERS[index % USERS.len()];
    let seed = u64::try_from(index).unwrap_or(u64::MAX);
    let sha256: String = (0..4)
        .map(|k| format!("{:016x}", splitmix(seed.wrapping_mul(4).wrapping_add(k))))
        .collect();
    let created = threathawk_alert_time(index);
    json!({
        "id": format!("alrt-{index:06}"),
        "title": format!("{what} on {host}"),
        "description": format!("{technique} ({technique_id}) detected on {host} for user {user} from {src_ip}"),
        "severity": severity,
        "status": status,
        "created_at": rfc3339(created),
        "updated_at": rfc3339(created + TimeDelta::minutes(5)),
        "source": SOURCES[index % SOURCES.len()],
        "matched_rules": [{
            "id": format!("rule-{:04}", index % TECHNIQUES.len() + 1),
            "name": format!("{what} ({technique_id})"),
            "severity": severity,
        }],
        "affected_assets": [{
            "asset_id": format!("asset-{n:04}"),
            "hostname": host,
            "ip": asset_ip,
            "type": "workstation",
            "owner": user,
        }],
        "raw_event_ids": [
            format!("evt-{:08}", index * 10 + 1),
            format!("evt-{:08}", index * 10 + 2),
        ],
        "mitre_attack": [{
            "tactic_id": tactic_id,
            "tactic": tactic,
            "technique_id": technique_id,
            "technique": technique,
        }],
        "raw_event": {
            "event_code": 4600 + (index % 100),
            "src_ip": src_ip,
            "dest_ip": asset_ip,
            "user": user,
            "process": {"name": PROCESSES[index % PROCESSES.len()], "sha256": sha256},
        },
    })
}

/// Generated alerts `1..=n`, oldest first.
pub fn threathawk_alerts(n: usize) -> Vec<Value> {
    (1..=n).map(threathawk_alert).collect()
}

struct RateWindow {
    started: Instant,
    started_unix: u64,
    used: u32,
}

struct ThState {
    config: Mutex<ThreatHawkConfig>,
    tokens: TokenRegistry,
    window: Mutex<Option<RateWindow>>,
    failures: Mutex<VecDeque<Failure>>,
    generation: AtomicU64,
    ingest: Mutex<IngestState>,
}

/// What `POST /v1/events` has taken in.
#[derive(Default)]
struct IngestState {
    /// Accepted events, in order.
    events: Vec<Value>,
    /// Idempotency key → (sha of body, status, response body).
    keys: HashMap<String, (Vec<u8>, StatusCode, Value)>,
    /// Replayed requests answered from `keys`.
    replays: usize,
    delay: Duration,
}

/// A running ThreatHawk API (see the module docs) with its OAuth token endpoint.
pub struct ThreatHawkServer {
    oauth: OAuthServer,
    state: Arc<ThState>,
    server: SimServer,
}

impl std::fmt::Debug for ThreatHawkServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatHawkServer")
            .field("api", &self.server.base_url())
            .field("token_url", &self.oauth.token_url())
            .finish_non_exhaustive()
    }
}

impl ThreatHawkServer {
    /// Starts the token endpoint and the API, each on `127.0.0.1:0`.
    pub fn start(config: ThreatHawkConfig) -> io::Result<Self> {
        let oauth = OAuthServer::start(config.oauth.clone())?;
        let state = Arc::new(ThState {
            config: Mutex::new(config),
            tokens: oauth.tokens(),
            window: Mutex::new(None),
            failures: Mutex::new(VecDeque::new()),
            generation: AtomicU64::new(random_u64() >> 16),
            ingest: Mutex::new(IngestState::default()),
        });
        let router = Router::new()
            .route(ALERTS_PATH, get(list_alerts))
            .route(EVENTS_PATH, post(ingest_events))
            .fallback(not_found)
            .with_state(state.clone());
        Ok(Self {
            oauth,
            state,
            server: SimServer::start("threathawk", router)?,
        })
    }

    /// The API's origin, `http://127.0.0.1:<port>` (for grants and credential hosts).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The API base URL as the article defines it: `<origin>/v1`.
    pub fn api_url(&self) -> String {
        format!("{}{API_PREFIX}", self.server.base_url())
    }

    /// `<origin>/v1/alerts`.
    pub fn alerts_url(&self) -> String {
        format!("{}{ALERTS_PATH}", self.server.base_url())
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        self.oauth.token_url()
    }

    /// The token endpoint's server (token counts, revocation, its request log).
    pub fn oauth(&self) -> &OAuthServer {
        &self.oauth
    }

    /// The API's bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// Requests the API received (not the token endpoint's: see [`Self::oauth`]).
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// Requests to `GET /v1/alerts`, in order.
    pub fn alert_requests(&self) -> Vec<RecordedRequest> {
        self.server.log().requests_to(ALERTS_PATH)
    }

    /// The alerts served.
    pub fn alerts(&self) -> Vec<Value> {
        self.state.config.lock().alerts.clone()
    }

    /// Replaces the alerts.
    pub fn set_alerts(&self, alerts: Vec<Value>) {
        self.state.config.lock().alerts = alerts;
    }

    /// Adds alerts.
    pub fn append_alerts(&self, alerts: impl IntoIterator<Item = Value>) {
        self.state.config.lock().alerts.extend(alerts);
    }

    /// Adds the next `n` generated alerts (numbered after the current count).
    pub fn append_generated(&self, n: usize) {
        let mut config = self.state.config.lock();
        let start = config.alerts.len() + 1;
        config
            .alerts
            .extend((start..start + n).map(threathawk_alert));
    }

    /// Turns replay mode on or off.
    pub fn set_replay(&self, replay: bool) {
        self.state.config.lock().replay = replay;
    }

    /// Replaces the rate limit; the current window starts over.
    pub fn set_rate_limit(&self, limit: RateLimit) {
        self.state.config.lock().rate_limit = limit;
        *self.state.window.lock() = None;
    }

    /// Queues a failure for the next API request that passes auth and rate limit.
    pub fn fail_next(&self, failure: Failure) {
        self.state.failures.lock().push_back(failure);
    }

    /// `<origin>/v1/events`.
    pub fn events_url(&self) -> String {
        format!("{}{EVENTS_PATH}", self.server.base_url())
    }

    /// Events accepted by `POST /v1/events`, in order (replays add nothing).
    pub fn ingested_events(&self) -> Vec<Value> {
        self.state.ingest.lock().events.clone()
    }

    /// Requests to `POST /v1/events` answered from the idempotency store.
    pub fn idempotent_replays(&self) -> usize {
        self.state.ingest.lock().replays
    }

    /// Requests to `POST /v1/events`, in order.
    pub fn ingest_requests(&self) -> Vec<RecordedRequest> {
        self.server.log().requests_to(EVENTS_PATH)
    }

    /// Makes every `POST /v1/events` wait this long before answering (a slow SIEM).
    pub fn set_ingest_delay(&self, delay: Duration) {
        self.state.ingest.lock().delay = delay;
    }

    /// Invalidates every page cursor issued so far (`422`, `fields: ["cursor"]`).
    pub fn expire_cursors(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// Responses

fn error_body(status: StatusCode, error: &str, message: &str, fields: &[&str]) -> Response {
    let mut body = json!({"error": error, "message": message});
    if !fields.is_empty() {
        body["fields"] = json!(fields);
    }
    (status, axum::Json(body)).into_response()
}

fn with_header(mut response: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
    response
}

async fn not_found() -> Response {
    error_body(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint in this simulator (only GET /v1/alerts and POST /v1/events)",
        &[],
    )
}

/// RFC 6750 §3 challenge.
fn challenge(status: StatusCode, error: Option<(&str, &str)>, scope: Option<&str>) -> Response {
    let mut value = format!("Bearer realm=\"{REALM}\"");
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    if let Some(scope) = scope {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    let (code, message) = match (status, error) {
        (StatusCode::FORBIDDEN, Some((_, d))) => ("forbidden", d),
        (_, Some((_, d))) => ("unauthorized", d),
        (_, None) => ("unauthorized", "Bearer token required"),
    };
    with_header(
        error_body(status, code, message, &[]),
        header::WWW_AUTHENTICATE,
        &value,
    )
}

fn authenticate(state: &ThState, headers: &HeaderMap) -> Result<(), Response> {
    let required = state.config.lock().required_scope.clone();
    authenticate_for(
        state,
        headers,
        required.as_deref(),
        "The API key's scopes do not include read access to alerts",
    )
}

fn authenticate_for(
    state: &ThState,
    headers: &HeaderMap,
    required: Option<&str>,
    scope_message: &str,
) -> Result<(), Response> {
    let values: Vec<&HeaderValue> = headers.get_all(header::AUTHORIZATION).iter().collect();
    let value = match values.as_slice() {
        [] => return Err(challenge(StatusCode::UNAUTHORIZED, None, None)),
        [one] => one.to_str().unwrap_or(""),
        _ => {
            return Err(challenge(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", "More than one Authorization header")),
                None,
            ));
        }
    };
    let token = match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim()
        }
        _ => {
            return Err(challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_request", "Authorization must be a Bearer token")),
                None,
            ));
        }
    };
    let invalid = |description| {
        Err(challenge(
            StatusCode::UNAUTHORIZED,
            Some(("invalid_token", description)),
            None,
        ))
    };
    match state.tokens.check(token) {
        TokenStatus::Unknown => invalid("The access token is invalid"),
        TokenStatus::Expired => invalid("The access token expired"),
        TokenStatus::Revoked => invalid("The access token has been revoked"),
        TokenStatus::Valid(issued) => match required {
            Some(scope) if !issued.scope.iter().any(|s| s == scope) => Err(challenge(
                StatusCode::FORBIDDEN,
                Some(("insufficient_scope", scope_message)),
                Some(scope),
            )),
            _ => Ok(()),
        },
    }
}

struct RateHeaders {
    limit: u32,
    remaining: u32,
    reset_unix: u64,
}

impl RateHeaders {
    fn apply(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset_unix));
        response
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Counts the request; `Err` is the finished `429`.
fn rate_limit(state: &ThState) -> Result<RateHeaders, Response> {
    let limit = state.config.lock().rate_limit.clone();
    let mut window = state.window.lock();
    let now = Instant::now();
    let current = match window.as_mut() {
        Some(current) if now.duration_since(current.started) < limit.window => current,
        _ => window.insert(RateWindow {
            started: now,
            started_unix: unix_now(),
            used: 0,
        }),
    };
    let allowed = current.used < limit.limit;
    if allowed || !limit.enforce {
        current.used = current.used.saturating_add(1);
    }
    let headers = RateHeaders {
        limit: limit.limit,
        remaining: limit.limit.saturating_sub(current.used),
        reset_unix: current.started_unix + limit.window.as_secs().max(1),
    };
    if allowed || !limit.enforce {
        return Ok(headers);
    }
    let retry_after = (limit
        .window
        .saturating_sub(now.duration_since(current.started)))
    .as_secs_f64()
    .ceil()
    .max(1.0) as u64;
    Err(headers.apply(too_many(
        retry_after,
        &format!(
            "Rate limit of {} requests per {} s exceeded",
            limit.limit,
            limit.window.as_secs().max(1)
        ),
    )))
}

fn too_many(retry_after: u64, message: &str) -> Response {
    let mut response = error_body(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message, &[]);
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn injected(failure: Failure) -> Option<Response> {
    match failure {
        Failure::ServerError => Some(error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "injected server error",
            &[],
        )),
        Failure::RateLimited { retry_after_secs } => {
            Some(too_many(retry_after_secs, "Rate limit exceeded (injected)"))
        }
        Failure::Status { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            Some((status, [(header::CONTENT_TYPE, content_type)], body).into_response())
        }
        Failure::Delay(_) => None,
    }
}

// ---------------------------------------------------------------------------
// GET /v1/alerts

/// The filters a cursor is bound to.
fn fingerprint(
    status: Option<&str>,
    severity: Option<&str>,
    created_after: Option<DateTime<Utc>>,
) -> String {
    format!(
        "{}|{}|{}",
        status.unwrap_or(""),
        severity.unwrap_or(""),
        created_after
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .unwrap_or_default()
    )
}

fn encode_cursor(generation: u64, offset: usize, filters: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!({"g": generation, "o": offset, "f": filters}).to_string())
}

fn decode_cursor(token: &str) -> Option<(u64, usize, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some((
        v["g"].as_u64()?,
        usize::try_from(v["o"].as_u64()?).ok()?,
        v["f"].as_str()?.to_string(),
    ))
}

fn alert_time(alert: &Value) -> Option<DateTime<Utc>> {
    alert["created_at"].as_str().and_then(parse_time)
}

async fn list_alerts(State(state): State<Arc<ThState>>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(response) = authenticate(&state, &headers) {
        return response;
    }
    let rate = match rate_limit(&state) {
        Ok(rate) => rate,
        Err(response) => return response,
    };
    let failure = state.failures.lock().pop_front();
    if let Some(failure) = failure {
        if let Failure::Delay(delay) = &failure {
            tokio::time::sleep(*delay).await;
        }
        if let Some(response) = injected(failure) {
            return rate.apply(response);
        }
    }
    rate.apply(alerts_page(&state, &uri))
}

fn alerts_page(state: &ThState, uri: &Uri) -> Response {
    let query = uri.query().map(form_pairs).unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (alerts, default_limit, max_limit, replay) = {
        let config = state.config.lock();
        (
            config.alerts.clone(),
            config.default_limit,
            config.max_limit,
            config.replay,
        )
    };
    // 400: malformed; 422: well-formed but not acceptable.
    let mut malformed: Vec<(&str, String)> = Vec::new();
    let mut invalid: Vec<(&str, String)> = Vec::new();
    let limit = match param("limit") {
        None => default_limit,
        Some(text) => match text.parse::<usize>() {
            Err(_) => {
                malformed.push(("limit", format!("`{text}` is not an integer")));
                default_limit
            }
            Ok(n) if n == 0 || n > max_limit => {
                invalid.push(("limit", format!("must be between 1 and {max_limit}")));
                default_limit
            }
            Ok(n) => n,
        },
    };
    let status = param("status");
    if let Some(s) = status
        && !ALERT_STATUSES.contains(&s)
    {
        invalid.push((
            "status",
            format!("`{s}` is not one of {}", ALERT_STATUSES.join(", ")),
        ));
    }
    let severity = param("severity");
    if let Some(s) = severity
        && !ALERT_SEVERITIES.contains(&s)
    {
        invalid.push((
            "severity",
            format!("`{s}` is not one of {}", ALERT_SEVERITIES.join(", ")),
        ));
    }
    let created_after = match param("created_after") {
        None => None,
        Some(text) => match parse_time(text) {
            Some(t) => Some(t),
            None => {
                malformed.push((
                    "created_after",
                    format!("`{text}` is not an ISO 8601 date-time"),
                ));
                None
            }
        },
    };
    let filters = fingerprint(status, severity, created_after);
    let generation = state.generation.load(Ordering::SeqCst);
    let offset = match param("cursor") {
        None => 0,
        Some(token) => match decode_cursor(token) {
            None => {
                malformed.push(("cursor", "malformed cursor".to_string()));
                0
            }
            Some((g, _, _)) if g != generation => {
                invalid.push((
                    "cursor",
                    "cursor expired; start again without it".to_string(),
                ));
                0
            }
            Some((_, _, f)) if f != filters => {
                invalid.push((
                    "cursor",
                    "cursor was issued for different filters".to_string(),
                ));
                0
            }
            Some((_, offset, _)) => offset,
        },
    };
    for (list, status_code, error) in [
        (&malformed, StatusCode::BAD_REQUEST, "bad_request"),
        (
            &invalid,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
    ] {
        if !list.is_empty() {
            let message: Vec<String> = list.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            let fields: Vec<&str> = list.iter().map(|(f, _)| *f).collect();
            return error_body(status_code, error, &message.join("; "), &fields);
        }
    }

    let mut matching: Vec<(Option<DateTime<Utc>>, &Value)> = alerts
        .iter()
        .filter(|a| status.is_none_or(|s| a["status"].as_str() == Some(s)))
        .filter(|a| severity.is_none_or(|s| a["severity"].as_str() == Some(s)))
        .map(|a| (alert_time(a), a))
        .filter(|(t, _)| replay || created_after.is_none_or(|after| t.is_some_and(|t| t > after)))
        .collect();
    matching.sort_by(|(ta, a), (tb, b)| {
        ta.cmp(tb)
            .then_with(|| a["id"].to_string().cmp(&b["id"].to_string()))
    });
    let end = offset.saturating_add(limit).min(matching.len());
    let page: Vec<&Value> = matching
        .get(offset.min(matching.len())..end)
        .unwrap_or_default()
        .iter()
        .map(|(_, a)| *a)
        .collect();
    let has_more = end < matching.len();
    let next_cursor = has_more.then(|| encode_cursor(generation, end, &filters));
    (
        StatusCode::OK,
        axum::Json(json!({
            "data": page,
            "pagination": {"limit": limit, "has_more": has_more, "next_cursor": next_cursor},
        })),
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// POST /v1/events

async fn ingest_events(
    State(state): State<Arc<ThState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(response) = authenticate_for(
        &state,
        &headers,
        Some(EVENTS_SCOPE),
        "The API key's scopes do not include write access to events",
    ) {
        return response;
    }
    let rate = match rate_limit(&state) {
        Ok(rate) => rate,
        Err(response) => return response,
    };
    let delay = state.ingest.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let failure = state.failures.lock().pop_front();
    if let Some(failure) = failure {
        if let Failure::Delay(delay) = &failure {
            tokio::time::sleep(*delay).await;
        }
        if let Some(response) = injected(failure) {
            return rate.apply(response);
        }
    }
    rate.apply(ingest(&state, &headers, &body))
}

fn ingest(state: &ThState, headers: &HeaderMap, body: &[u8]) -> Response {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let decoded = match encoding.as_deref() {
        None | Some("identity") => body.to_vec(),
        Some("gzip") => {
            let mut out = Vec::new();
            let mut limited =
                flate2::read::GzDecoder::new(body).take(crate::server::MAX_REQUEST_BODY as u64 * 8);
            if let Err(e) = limited.read_to_end(&mut out) {
                return error_body(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("body is not valid gzip: {e}"),
                    &[],
                );
            }
            out
        }
        Some(other) => {
            return error_body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                &format!("Content-Encoding {other} is not supported (gzip is)"),
                &[],
            );
        }
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut ingest = state.ingest.lock();
    if let Some(key) = &key
        && let Some((seen_body, status, response)) = ingest.keys.get(key).cloned()
    {
        if seen_body != decoded {
            return error_body(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable_entity",
                "Idempotency-Key was already used with a different request body",
                &["Idempotency-Key"],
            );
        }
        ingest.replays += 1;
        let mut response = (status, axum::Json(response)).into_response();
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return response;
    }
    let events: Vec<Value> = match serde_json::from_slice::<Value>(&decoded) {
        Ok(Value::Array(events)) => events,
        Ok(_) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body must be a JSON array of events",
                &[],
            );
        }
        Err(e) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("malformed JSON: {e}"),
                &[],
            );
        }
    };
    if events.len() > MAX_EVENTS_PER_REQUEST {
        return error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("at most {MAX_EVENTS_PER_REQUEST} events per request"),
            &[],
        );
    }
    let mut missing: Vec<String> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        for field in ["timestamp", "source", "event_type", "payload"] {
            let ok = match (field, event.get(field)) {
                ("payload", Some(v)) => !v.is_null(),
                (_, Some(Value::String(s))) => !s.is_empty(),
                _ => false,
            };
            if !ok {
                missing.push(format!("[{i}].{field}"));
            }
        }
    }
    if !missing.is_empty() {
        let fields: Vec<&str> = missing.iter().map(String::as_str).collect();
        return error_body(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "events require timestamp, source, event_type and payload",
            &fields,
        );
    }
    let response = json!({"accepted": events.len()});
    ingest.events.extend(events);
    if let Some(key) = key {
        ingest
            .keys
            .insert(key, (decoded, StatusCode::ACCEPTED, response.clone()));
    }
    (StatusCode::ACCEPTED, axum::Json(response)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_alerts_are_deterministic_and_documented() {
        let a = threathawk_alert(1);
        assert_eq!(a, threathawk_alert(1));
        assert_eq!(a["id"], "alrt-000001");
        assert_eq!(a["created_at"], FIRST_ALERT_AT);
        assert_eq!(threathawk_alert(2)["created_at"], FIRST_ALERT_AT);
        assert_eq!(threathawk_alert(3)["created_at"], "2025-02-10T00:01:00Z");
        assert_eq!(a["severity"], "low");
        assert_eq!(a["status"], "open");
        let sha = a["raw_event"]["process"]["sha256"].as_str().unwrap_or("");
        assert_eq!(sha.len(), 64);
        assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()));
        let severities: std::collections::HashSet<String> = threathawk_alerts(10)
            .iter()
            .filter_map(|a| a["severity"].as_str().map(str::to_string))
            .collect();
        assert_eq!(severities.len(), 5);
    }

    #[test]
    fn cursors_round_trip() {
        let token = encode_cursor(7, 40, "open||");
        assert_eq!(decode_cursor(&token), Some((7, 40, "open||".to_string())));
        assert_eq!(decode_cursor("!!"), None);
    }
}
