//! A resource server with a dataset of JSON records and three paging styles,
//! configurable authentication, rate limiting and injected failures.
//!
//! Data endpoints (all `GET`; all honour the window parameters
//! [`PagedApiConfig::since_param`] (`created_at >= since`) and
//! [`PagedApiConfig::until_param`] (`created_at < until`), ISO 8601 / RFC 3339):
//! - [`LINK_PATH`] `/alerts?page=&per_page=` — a JSON array per page, paged by
//!   an RFC 8288 `Link` header the way GitHub does it: 1-based `page`,
//!   `per_page` (default 30, max 100), `prev`/`next`/`last`/`first` links that
//!   keep the other query parameters; see [`LinkOptions`];
//! - [`CURSOR_PATH`] `/events?cursor=&limit=` — `{"data": [...], "meta":
//!   {"next_cursor": "<opaque>" | null}}`, `limit` default 25, max 100;
//! - [`NVD_PATH`] `/rest/json/cves/2.0?startIndex=&resultsPerPage=` — the NVD
//!   CVE API 2.0 shape (`resultsPerPage` default and max 2000), serving the real
//!   NVD records given in [`PagedApiConfig::nvd_records`] (else CVEs synthesised
//!   from the records); also `cveId`, and the NVD date-range pairs
//!   `lastModStartDate`/`lastModEndDate` and `pubStartDate`/`pubEndDate` (both of
//!   a pair required, at most [`PagedApiConfig::nvd_max_range_days`] apart). NVD
//!   reports a bad parameter as `404` with a `message` header and no body;
//! - [`ALL_PATH`] `/records` — `{"data": [...]}`, every record, no paging.
//!
//! In this order every data request is authenticated ([`Auth`]), counted
//! against the rate limit ([`RateLimit`]), then subjected to the next queued
//! [`Failure`]. The helper endpoints of [`crate::helpers`] are served too,
//! without auth, rate limit or failures.

// Request checks return the finished error `Response` as their `Err`; these
// are built once per request, so the size of the variant does not matter.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::dataset::{
    generate_records, generated_record, nvd_timestamp, parse_time, record_time, synthetic_cve,
};
use crate::nvd_throttle::{NvdThrottle, ThrottleState};
use crate::oauth::{OAuthServer, TokenRegistry, TokenStatus};
use crate::server::{RequestLog, SimServer, form_pairs};

/// Link-header paging (GitHub style).
pub const LINK_PATH: &str = "/alerts";
/// Cursor paging.
pub const CURSOR_PATH: &str = "/events";
/// Offset paging, NVD CVE API 2.0.
pub const NVD_PATH: &str = "/rest/json/cves/2.0";
/// Every record, no paging.
pub const ALL_PATH: &str = "/records";

const REALM: &str = "portcullis-sim";

/// How the API authenticates data requests.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// Every request is accepted.
    #[default]
    None,
    /// `Authorization: Bearer <token>` with exactly this token (RFC 6750 §2.1).
    Bearer(String),
    /// `Authorization: Bearer <token>` with a token issued by an
    /// [`OAuthServer`], not expired or revoked, holding `required_scope` if set
    /// (else `403 insufficient_scope`).
    OAuth {
        tokens: TokenRegistry,
        required_scope: Option<String>,
    },
    /// Header `name` with exactly `value` (any prefix included in `value`).
    ApiKeyHeader { name: String, value: String },
    /// Query parameter `name` with exactly `value`.
    ApiKeyQuery { name: String, value: String },
    /// HTTP Basic (RFC 7617).
    Basic { username: String, password: String },
}

impl Auth {
    /// Tokens issued by `server`, any scope.
    pub fn oauth(server: &OAuthServer) -> Self {
        Self::OAuth {
            tokens: server.tokens(),
            required_scope: None,
        }
    }

    /// Tokens issued by `server` that hold `scope`.
    pub fn oauth_with_scope(server: &OAuthServer, scope: &str) -> Self {
        Self::OAuth {
            tokens: server.tokens(),
            required_scope: Some(scope.to_string()),
        }
    }
}

/// On which pages the `next` link is a relative reference (`</alerts?page=3>`)
/// rather than an absolute URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RelativeNext {
    #[default]
    Never,
    Always,
    /// On pages 2, 4, 6, ...: absolute and relative alternate.
    EvenPages,
    /// On the listed pages (1-based).
    Pages(Vec<usize>),
}

impl RelativeNext {
    fn applies(&self, page: usize) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::EvenPages => page.is_multiple_of(2),
            Self::Pages(pages) => pages.contains(&page),
        }
    }
}

/// Options of the Link-header endpoint.
#[derive(Clone, Debug)]
pub struct LinkOptions {
    pub relative_next: RelativeNext,
    /// Send the links as two `Link` header fields (`prev`/`next` in the first,
    /// `last`/`first` in the second) instead of one.
    pub split_header: bool,
    pub default_per_page: usize,
    pub max_per_page: usize,
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self {
            relative_next: RelativeNext::Never,
            split_header: false,
            default_per_page: 30,
            max_per_page: 100,
        }
    }
}

/// A fixed-window rate limit over the data endpoints. Every data response
/// carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
/// (Unix seconds when the window ends, as GitHub sends it).
#[derive(Clone, Debug)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
    /// Past the limit, answer `429` with `Retry-After` (else only report).
    pub enforce: bool,
}

/// A failure injected into the next data request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `500` with `{"error": {"code": 500, "message": "injected server error"}}`.
    ServerError,
    /// `429` with `Retry-After: <secs>` and `{"message": "API rate limit exceeded"}`.
    RateLimited { retry_after_secs: u64 },
    /// Any status with a JSON (or other text) body.
    Status { status: u16, body: String },
    /// Wait this long, then answer normally.
    Delay(Duration),
}

/// How a [`PagedApi`] behaves.
#[derive(Clone, Debug)]
pub struct PagedApiConfig {
    pub auth: Auth,
    /// The dataset (generic endpoints); default: 100 generated records.
    pub records: Vec<Value>,
    /// `cve` objects for the NVD endpoint (e.g. from
    /// [`crate::load_nvd_dir`]); `None` synthesises one per record.
    pub nvd_records: Option<Vec<Value>>,
    pub link: LinkOptions,
    pub cursor_default_limit: usize,
    pub cursor_max_limit: usize,
    pub nvd_max_results_per_page: usize,
    /// NVD refuses date ranges longer than 120 days; `None` lifts the limit.
    pub nvd_max_range_days: Option<i64>,
    pub since_param: String,
    pub until_param: String,
    pub rate_limit: Option<RateLimit>,
}

impl Default for PagedApiConfig {
    fn default() -> Self {
        Self {
            auth: Auth::None,
            records: generate_records(100),
            nvd_records: None,
            link: LinkOptions::default(),
            cursor_default_limit: 25,
            cursor_max_limit: 100,
            nvd_max_results_per_page: 2000,
            nvd_max_range_days: Some(120),
            since_param: "since".to_string(),
            until_param: "until".to_string(),
            rate_limit: None,
        }
    }
}

#[derive(Debug)]
struct RateWindow {
    started: Instant,
    started_unix: u64,
    used: u32,
}

#[derive(Debug)]
struct ApiState {
    config: Mutex<PagedApiConfig>,
    failures: Mutex<VecDeque<Failure>>,
    window: Mutex<Option<RateWindow>>,
    base_url: OnceLock<String>,
    nvd_throttle: Mutex<Option<ThrottleState>>,
}

/// A running paged resource server (see the module docs).
#[derive(Debug)]
pub struct PagedApi {
    state: Arc<ApiState>,
    server: SimServer,
}

impl PagedApi {
    /// Starts the server on `127.0.0.1:0`.
    pub fn start(config: PagedApiConfig) -> io::Result<Self> {
        let state = Arc::new(ApiState {
            config: Mutex::new(config),
            failures: Mutex::new(VecDeque::new()),
            window: Mutex::new(None),
            base_url: OnceLock::new(),
            nvd_throttle: Mutex::new(None),
        });
        let router = Router::new()
            .route(LINK_PATH, get(link_page))
            .route(CURSOR_PATH, get(cursor_page))
            .route(NVD_PATH, get(nvd_page))
            .route(ALL_PATH, get(all_records))
            .merge(crate::helpers::router())
            .with_state(state.clone());
        let server = SimServer::start("paged-api", router)?;
        let _ = state.base_url.set(server.base_url());
        Ok(Self { state, server })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `base_url()` followed by `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.server.base_url())
    }

    /// URL of the Link-header endpoint.
    pub fn link_url(&self) -> String {
        self.url(LINK_PATH)
    }

    /// URL of the cursor endpoint.
    pub fn cursor_url(&self) -> String {
        self.url(CURSOR_PATH)
    }

    /// URL of the NVD endpoint.
    pub fn nvd_url(&self) -> String {
        self.url(NVD_PATH)
    }

    /// URL of the unpaged endpoint.
    pub fn records_url(&self) -> String {
        self.url(ALL_PATH)
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// The requests received so far (data and helper endpoints).
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// Replaces the authentication scheme (e.g. to rotate a key).
    pub fn set_auth(&self, auth: Auth) {
        self.state.config.lock().auth = auth;
    }

    /// The current dataset.
    pub fn records(&self) -> Vec<Value> {
        self.state.config.lock().records.clone()
    }

    /// Replaces the dataset.
    pub fn set_records(&self, records: Vec<Value>) {
        self.state.config.lock().records = records;
    }

    /// Appends records (new data arriving upstream).
    pub fn append_records(&self, records: impl IntoIterator<Item = Value>) {
        self.state.config.lock().records.extend(records);
    }

    /// Appends `n` generated records continuing the numbering (and times) of
    /// the dataset: with `k` records present, records `k+1..=k+n`.
    pub fn append_generated(&self, n: usize) {
        let mut config = self.state.config.lock();
        let start = config.records.len() + 1;
        config
            .records
            .extend((start..start + n).map(generated_record));
    }

    /// Queues a failure for the next data request.
    pub fn fail_next(&self, failure: Failure) {
        self.state.failures.lock().push_back(failure);
    }

    /// Queues `n` copies of a failure.
    pub fn fail_next_n(&self, n: usize, failure: Failure) {
        let mut failures = self.state.failures.lock();
        failures.extend(std::iter::repeat_n(failure, n));
    }

    /// Failures queued and not yet served.
    pub fn pending_failures(&self) -> usize {
        self.state.failures.lock().len()
    }

    /// Turns NVD's firewall throttling on the NVD endpoint on (`Some`) or off
    /// (see [`crate::nvd_throttle`]); it applies before authentication.
    pub fn set_nvd_throttle(&self, throttle: Option<NvdThrottle>) {
        *self.state.nvd_throttle.lock() = throttle.map(ThrottleState::new);
    }
}

// ---------------------------------------------------------------------------
// Responses

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"message": message}))).into_response()
}

/// NVD's error style: `404`, `message` header, empty body.
fn nvd_error(message: &str) -> Response {
    let mut response = StatusCode::NOT_FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(message) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("message"), value);
    }
    response
}

fn with_header(mut response: Response, name: HeaderName, value: &str) -> Response {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            response.headers_mut().append(name, value);
            response
        }
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulator built an invalid header value",
        ),
    }
}

fn bearer_challenge(
    status: StatusCode,
    error: Option<(&str, &str)>,
    scope: Option<&str>,
) -> Response {
    let mut challenge = format!("Bearer realm=\"{REALM}\"");
    if let Some((code, description)) = error {
        challenge.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    if let Some(scope) = scope {
        challenge.push_str(&format!(", scope=\"{scope}\""));
    }
    let message = error.map_or("Requires authentication", |(_, description)| description);
    with_header(
        json_error(status, message),
        header::WWW_AUTHENTICATE,
        &challenge,
    )
}

// ---------------------------------------------------------------------------
// Authentication

fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, Response> {
    let values: Vec<&HeaderValue> = headers.get_all(header::AUTHORIZATION).iter().collect();
    let value = match values.as_slice() {
        [] => return Ok(None),
        [value] => *value,
        _ => {
            return Err(bearer_challenge(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", "More than one Authorization header")),
                None,
            ));
        }
    };
    let Ok(value) = value.to_str() else {
        return Err(bearer_challenge(
            StatusCode::BAD_REQUEST,
            Some(("invalid_request", "Malformed Authorization header")),
            None,
        ));
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Not bearer authentication at all: as if none was sent.
        return Ok(None);
    }
    // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let well_formed = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !well_formed {
        return Err(bearer_challenge(
            StatusCode::BAD_REQUEST,
            Some(("invalid_request", "Malformed bearer token")),
            None,
        ));
    }
    Ok(Some(token.to_string()))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn check_auth(
    auth: &Auth,
    headers: &HeaderMap,
    query: &[(String, String)],
    nvd: bool,
) -> Result<(), Response> {
    match auth {
        Auth::None => Ok(()),
        Auth::Bearer(expected) => match bearer_token(headers)? {
            None => Err(bearer_challenge(StatusCode::UNAUTHORIZED, None, None)),
            Some(token) if token == *expected => Ok(()),
            Some(_) => Err(bearer_challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", "The access token is invalid")),
                None,
            )),
        },
        Auth::OAuth {
            tokens,
            required_scope,
        } => {
            let Some(token) = bearer_token(headers)? else {
                return Err(bearer_challenge(StatusCode::UNAUTHORIZED, None, None));
            };
            let invalid = |description| {
                Err(bearer_challenge(
                    StatusCode::UNAUTHORIZED,
                    Some(("invalid_token", description)),
                    None,
                ))
            };
            match tokens.check(&token) {
                TokenStatus::Unknown => invalid("The access token is invalid"),
                TokenStatus::Expired => invalid("The access token expired"),
                TokenStatus::Revoked => invalid("The access token has been revoked"),
                TokenStatus::Valid(issued) => match required_scope {
                    Some(scope) if !issued.scope.contains(scope) => Err(bearer_challenge(
                        StatusCode::FORBIDDEN,
                        Some((
                            "insufficient_scope",
                            "The request requires higher privileges than provided by the access token",
                        )),
                        Some(scope),
                    )),
                    _ => Ok(()),
                },
            }
        }
        Auth::ApiKeyHeader { name, value } => {
            let sent: Vec<&[u8]> = headers
                .get_all(name.as_str())
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            match sent.as_slice() {
                [one] if *one == value.as_bytes() => Ok(()),
                // NVD answers a wrong key with 404 and `message: Invalid apiKey.`
                [_] if nvd => Err(nvd_error("Invalid apiKey.")),
                [] => Err(json_error(
                    StatusCode::UNAUTHORIZED,
                    "Requires authentication",
                )),
                _ => Err(json_error(StatusCode::UNAUTHORIZED, "Bad credentials")),
            }
        }
        Auth::ApiKeyQuery { name, value } => {
            let sent: Vec<&str> = query
                .iter()
                .filter(|(key, _)| key == name)
                .map(|(_, v)| v.as_str())
                .collect();
            match sent.as_slice() {
                [one] if one == value => Ok(()),
                [] => Err(json_error(
                    StatusCode::UNAUTHORIZED,
                    "Requires authentication",
                )),
                _ => Err(json_error(StatusCode::UNAUTHORIZED, "Bad credentials")),
            }
        }
        Auth::Basic { username, password } => match basic_credentials(headers) {
            Some((user, pass)) if user == *username && pass == *password => Ok(()),
            _ => Err(with_header(
                json_error(StatusCode::UNAUTHORIZED, "Bad credentials"),
                header::WWW_AUTHENTICATE,
                &format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
            )),
        },
    }
}

// ---------------------------------------------------------------------------
// Rate limit and failures

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

fn rate_limited(retry_after_secs: u64) -> Response {
    with_header(
        json_error(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded"),
        header::RETRY_AFTER,
        &retry_after_secs.to_string(),
    )
}

/// Authenticates, applies the rate limit and the next injected failure.
/// `Ok` carries the rate-limit headers for the successful response.
async fn guard(
    state: &ApiState,
    headers: &HeaderMap,
    query: &[(String, String)],
    nvd: bool,
) -> Result<Option<RateHeaders>, Response> {
    let (auth, rate_limit) = {
        let config = state.config.lock();
        (config.auth.clone(), config.rate_limit.clone())
    };
    check_auth(&auth, headers, query, nvd)?;

    let rate = rate_limit.map(|limit| {
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
        let reset_unix = current.started_unix + limit.window.as_secs().max(1);
        let allowed = current.used < limit.limit;
        if allowed || !limit.enforce {
            current.used = current.used.saturating_add(1);
        }
        let headers = RateHeaders {
            limit: limit.limit,
            remaining: limit.limit.saturating_sub(current.used),
            reset_unix,
        };
        let retry_after = (limit
            .window
            .saturating_sub(now.duration_since(current.started)))
        .as_secs_f64()
        .ceil()
        .max(1.0) as u64;
        (headers, !allowed && limit.enforce, retry_after)
    });
    if let Some((headers, true, retry_after)) = &rate {
        return Err(headers.apply(rate_limited(*retry_after)));
    }
    let rate = rate.map(|(headers, _, _)| headers);
    let apply = |response: Response| match &rate {
        Some(headers) => headers.apply(response),
        None => response,
    };

    let failure = state.failures.lock().pop_front();
    match failure {
        None => {}
        Some(Failure::ServerError) => {
            return Err(apply(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"error": {"code": 500, "message": "injected server error"}})),
                )
                    .into_response(),
            ));
        }
        Some(Failure::RateLimited { retry_after_secs }) => {
            return Err(apply(rate_limited(retry_after_secs)));
        }
        Some(Failure::Status { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            return Err(apply(
                (status, [(header::CONTENT_TYPE, content_type)], body).into_response(),
            ));
        }
        Some(Failure::Delay(delay)) => tokio::time::sleep(delay).await,
    }
    Ok(rate)
}

// ---------------------------------------------------------------------------
// Query helpers

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn usize_param(query: &[(String, String)], name: &str) -> Result<Option<usize>, Response> {
    match param(query, name) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            json_error(
                StatusCode::BAD_REQUEST,
                &format!("`{name}` must be a non-negative integer"),
            )
        }),
    }
}

struct Window {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl Window {
    fn parse(
        query: &[(String, String)],
        since_param: &str,
        until_param: &str,
    ) -> Result<Self, String> {
        let bound = |name: &str| match param(query, name) {
            None => Ok(None),
            Some(text) => parse_time(text)
                .map(Some)
                .ok_or_else(|| format!("`{name}` is not an ISO 8601 date-time: {text}")),
        };
        Ok(Self {
            since: bound(since_param)?,
            until: bound(until_param)?,
        })
    }

    fn contains(&self, time: Option<DateTime<Utc>>) -> bool {
        match time {
            Some(time) => {
                self.since.is_none_or(|since| time >= since)
                    && self.until.is_none_or(|until| time < until)
            }
            // Records without a time are outside every bounded window.
            None => self.since.is_none() && self.until.is_none(),
        }
    }
}

/// The records inside the request's window.
fn windowed(state: &ApiState, query: &[(String, String)]) -> Result<Vec<Value>, Response> {
    let config = state.config.lock();
    let window = Window::parse(query, &config.since_param, &config.until_param)
        .map_err(|message| json_error(StatusCode::BAD_REQUEST, &message))?;
    Ok(config
        .records
        .iter()
        .filter(|record| window.contains(record_time(record)))
        .cloned()
        .collect())
}

fn origin(state: &ApiState, headers: &HeaderMap) -> String {
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("http://{host}"),
        None => state.base_url.get().cloned().unwrap_or_default(),
    }
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query().map(form_pairs).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Handlers

async fn link_page(State(state): State<Arc<ApiState>>, headers: HeaderMap, uri: Uri) -> Response {
    let query = query_pairs(&uri);
    let rate = match guard(&state, &headers, &query, false).await {
        Ok(rate) => rate,
        Err(response) => return response,
    };
    let options = state.config.lock().link.clone();
    let (page, per_page) = match (usize_param(&query, "page"), usize_param(&query, "per_page")) {
        (Ok(page), Ok(per_page)) => (
            page.unwrap_or(1).max(1),
            per_page
                .unwrap_or(options.default_per_page)
                .clamp(1, options.max_per_page.max(1)),
        ),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    let records = match windowed(&state, &query) {
        Ok(records) => records,
        Err(response) => return response,
    };
    let last_page = records.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = records
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();

    let origin = origin(&state, &headers);
    let link = |target: usize, relative: bool, rel: &str| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        let mut page_written = false;
        for (key, value) in &query {
            if key == "page" {
                if !page_written {
                    serializer.append_pair("page", &target.to_string());
                    page_written = true;
                }
            } else {
                serializer.append_pair(key, value);
            }
        }
        if !page_written {
            serializer.append_pair("page", &target.to_string());
        }
        let reference = format!("{LINK_PATH}?{}", serializer.finish());
        let prefix = if relative { "" } else { origin.as_str() };
        format!("<{prefix}{reference}>; rel=\"{rel}\"")
    };
    let mut navigation = Vec::new();
    let mut bounds = Vec::new();
    if page > 1 {
        navigation.push(link((page - 1).min(last_page), false, "prev"));
    }
    if page < last_page {
        navigation.push(link(page + 1, options.relative_next.applies(page), "next"));
        bounds.push(link(last_page, false, "last"));
    }
    if page > 1 {
        bounds.push(link(1, false, "first"));
    }
    let mut response = axum::Json(items).into_response();
    let fields: Vec<String> = if options.split_header {
        [navigation, bounds]
            .into_iter()
            .filter(|group| !group.is_empty())
            .map(|group| group.join(", "))
            .collect()
    } else {
        let all: Vec<String> = navigation.into_iter().chain(bounds).collect();
        if all.is_empty() {
            Vec::new()
        } else {
            vec![all.join(", ")]
        }
    };
    for field in fields {
        response = with_header(response, header::LINK, &field);
    }
    match rate {
        Some(rate) => rate.apply(response),
        None => response,
    }
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

async fn cursor_page(State(state): State<Arc<ApiState>>, headers: HeaderMap, uri: Uri) -> Response {
    let query = query_pairs(&uri);
    let rate = match guard(&state, &headers, &query, false).await {
        Ok(rate) => rate,
        Err(response) => return response,
    };
    let (default_limit, max_limit) = {
        let config = state.config.lock();
        (config.cursor_default_limit, config.cursor_max_limit)
    };
    let limit = match usize_param(&query, "limit") {
        Ok(limit) => limit.unwrap_or(default_limit).clamp(1, max_limit.max(1)),
        Err(response) => return response,
    };
    let offset = match param(&query, "cursor") {
        None | Some("") => 0,
        Some(cursor) => match decode_cursor(cursor) {
            Some(offset) => offset,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "invalid_cursor", "message": "unknown cursor"})),
                )
                    .into_response();
            }
        },
    };
    let records = match windowed(&state, &query) {
        Ok(records) => records,
        Err(response) => return response,
    };
    let total = records.len();
    let data: Vec<Value> = records.into_iter().skip(offset).take(limit).collect();
    let next = offset.saturating_add(limit);
    let next_cursor = (next < total).then(|| encode_cursor(next));
    let response =
        axum::Json(json!({"data": data, "meta": {"next_cursor": next_cursor}})).into_response();
    match rate {
        Some(rate) => rate.apply(response),
        None => response,
    }
}

/// An inclusive time range.
type TimeRange = (DateTime<Utc>, DateTime<Utc>);

/// An NVD date-range pair; `Ok(None)` when neither is given.
fn nvd_range(
    query: &[(String, String)],
    start: &str,
    end: &str,
    max_days: Option<i64>,
) -> Result<Option<TimeRange>, Response> {
    match (param(query, start), param(query, end)) {
        (None, None) => Ok(None),
        (Some(from), Some(to)) => {
            let from =
                parse_time(from).ok_or_else(|| nvd_error(&format!("Invalid {start} parameter")))?;
            let to =
                parse_time(to).ok_or_else(|| nvd_error(&format!("Invalid {end} parameter")))?;
            if to < from {
                return Err(nvd_error(&format!("{end} must be after {start}")));
            }
            if let Some(days) = max_days
                && to - from > TimeDelta::days(days)
            {
                return Err(nvd_error(&format!(
                    "The {start} and {end} range cannot exceed {days} days"
                )));
            }
            Ok(Some((from, to)))
        }
        _ => Err(nvd_error(&format!(
            "Both {start} and {end} are required when either is present"
        ))),
    }
}

async fn nvd_page(State(state): State<Arc<ApiState>>, headers: HeaderMap, uri: Uri) -> Response {
    let throttled = state
        .nvd_throttle
        .lock()
        .as_mut()
        .and_then(|throttle| throttle.check(&headers));
    if let Some(response) = throttled {
        return response;
    }
    let query = query_pairs(&uri);
    let rate = match guard(&state, &headers, &query, true).await {
        Ok(rate) => rate,
        Err(response) => return response,
    };
    let (cves, max_per_page, max_days, since_param, until_param) = {
        let config = state.config.lock();
        let cves = match &config.nvd_records {
            Some(cves) => cves.clone(),
            None => config
                .records
                .iter()
                .enumerate()
                .map(|(i, record)| synthetic_cve(i + 1, record))
                .collect(),
        };
        (
            cves,
            config.nvd_max_results_per_page,
            config.nvd_max_range_days,
            config.since_param.clone(),
            config.until_param.clone(),
        )
    };
    let number = |name: &str, default: usize| match param(&query, name) {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| nvd_error(&format!("Invalid {name} parameter"))),
    };
    let (start_index, per_page) = match (
        number("startIndex", 0),
        number("resultsPerPage", max_per_page),
    ) {
        (Ok(start), Ok(per_page)) => (start, per_page.min(max_per_page)),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    let ranges = (
        nvd_range(&query, "lastModStartDate", "lastModEndDate", max_days),
        nvd_range(&query, "pubStartDate", "pubEndDate", max_days),
    );
    let (last_mod, published) = match ranges {
        (Ok(last_mod), Ok(published)) => (last_mod, published),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    let window = match Window::parse(&query, &since_param, &until_param) {
        Ok(window) => window,
        Err(message) => return nvd_error(&message),
    };
    let cve_id = param(&query, "cveId");
    let time_of = |cve: &Value, field: &str| cve[field].as_str().and_then(parse_time);
    let in_range = |time: Option<DateTime<Utc>>, range: Option<TimeRange>| match range {
        None => true,
        Some((from, to)) => time.is_some_and(|t| t >= from && t <= to),
    };
    let matching: Vec<Value> = cves
        .into_iter()
        .filter(|cve| cve_id.is_none_or(|id| cve["id"].as_str() == Some(id)))
        .filter(|cve| in_range(time_of(cve, "lastModified"), last_mod))
        .filter(|cve| in_range(time_of(cve, "published"), published))
        .filter(|cve| window.contains(time_of(cve, "lastModified")))
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(start_index)
        .take(per_page)
        .map(|cve| json!({"cve": cve}))
        .collect();
    let response = axum::Json(json!({
        "resultsPerPage": page.len(),
        "startIndex": start_index,
        "totalResults": total,
        "format": "NVD_CVE",
        "version": "2.0",
        "timestamp": nvd_timestamp(Utc::now()),
        "vulnerabilities": page,
    }))
    .into_response();
    match rate {
        Some(rate) => rate.apply(response),
        None => response,
    }
}

async fn all_records(State(state): State<Arc<ApiState>>, headers: HeaderMap, uri: Uri) -> Response {
    let query = query_pairs(&uri);
    let rate = match guard(&state, &headers, &query, false).await {
        Ok(rate) => rate,
        Err(response) => return response,
    };
    let response = match windowed(&state, &query) {
        Ok(records) => axum::Json(json!({"data": records})).into_response(),
        Err(response) => response,
    };
    match rate {
        Some(rate) => rate.apply(response),
        None => response,
    }
}
