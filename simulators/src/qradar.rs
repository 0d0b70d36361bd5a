//! An IBM QRadar console's REST API, as IBM's public documentation describes it
//! (REST API overview: authentication, filter / sort / paging syntax and the error
//! message envelope; endpoint references for `GET /siem/offenses`,
//! `GET /siem/source_addresses`, `GET /siem/local_destination_addresses` and
//! `GET /analytics/rules`).
//!
//! Every endpoint is a `GET` list endpoint and behaves the same way:
//! - authentication: the authorized-service token in the `SEC` header
//!   ([`QRadarAuth::Sec`]), or, for an OAuth-protected API gateway in front of the
//!   console, a bearer token issued by an [`crate::OAuthServer`]
//!   ([`QRadarAuth::OAuthGateway`], answering `401` with `WWW-Authenticate: Bearer
//!   error="invalid_token"` like a resource server); a path listed in
//!   [`QRadarConfig::forbidden_paths`] answers `403` (capability missing);
//! - the `Version` header, when sent, must name a supported API version
//!   ([`SUPPORTED_VERSIONS`]); without it the latest version answers;
//! - `filter` ([`Filter`]), `sort` (`+field` / `-field`, comma-separated, applied
//!   in order) and `fields` (top-level names, subfields in parentheses:
//!   `rules(id)`) query parameters, validated against the endpoint's fields;
//! - paging with the `Range: items=x-y` request header (zero-based, inclusive,
//!   whitespace tolerated as in the documentation's examples), answered by
//!   `Content-Range: items x-y/total`, or `items */total` when the range starts
//!   beyond the last record (then with an empty list);
//! - errors in QRadar's envelope `{"http_response": {"code", "message"}, "code",
//!   "description", "details", "message"}`, e.g. `422` code `1010` for a bad filter,
//!   `1030` for a bad sort, `30` for an unknown field, `36` for a bad `Range`.
//!
//! Where the documentation is silent the simulator makes a choice, listed here so a
//! test never mistakes it for QRadar's documented behaviour: a wrong (rather than
//! missing) SEC token gets the same `401` envelope with its own message; an
//! unsupported `Version` is a `422` with code `1005` ("A request parameter is not
//! valid."); `Content-Range` is only sent when a `Range` was requested.

// Request checks return the finished error `Response` as their `Err`; these are
// built once per request, so the size of the variant does not matter.
#![allow(clippy::result_large_err)]

mod filter;

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

pub use filter::{Filter, FilterError};

use crate::oauth::{TokenRegistry, TokenStatus};
use crate::server::{RequestLog, SimServer, form_pairs};

/// `GET /api/siem/offenses`.
pub const OFFENSES_PATH: &str = "/api/siem/offenses";
/// `GET /api/siem/source_addresses`.
pub const SOURCE_ADDRESSES_PATH: &str = "/api/siem/source_addresses";
/// `GET /api/siem/local_destination_addresses`.
pub const LOCAL_DESTINATION_ADDRESSES_PATH: &str = "/api/siem/local_destination_addresses";
/// `GET /api/analytics/rules`.
pub const RULES_PATH: &str = "/api/analytics/rules";

/// REST API versions the simulated console accepts in the `Version` header (those
/// IBM lists as supported by QRadar 7.4.0 to 7.5.0 UP6).
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "12.0", "12.1", "13.0", "13.1", "14.0", "15.0", "16.0", "17.0", "18.0", "19.0", "20.0",
];

/// `last_updated_time` of generated offense 1: 2024-01-01T00:00:00Z.
pub const DATASET_START_MS: i64 = 1_704_067_200_000;
/// Milliseconds between the update times of consecutive generated offenses.
pub const DATASET_INTERVAL_MS: i64 = 60_000;

/// Every field of an offense (`GET /siem/offenses` response description).
pub const OFFENSE_FIELDS: &[&str] = &[
    "assigned_to",
    "categories",
    "category_count",
    "close_time",
    "closing_reason_id",
    "closing_user",
    "credibility",
    "description",
    "destination_networks",
    "device_count",
    "domain_id",
    "event_count",
    "first_persisted_time",
    "flow_count",
    "follow_up",
    "id",
    "inactive",
    "last_persisted_time",
    "last_updated_time",
    "local_destination_address_ids",
    "local_destination_count",
    "log_sources",
    "magnitude",
    "offense_source",
    "offense_type",
    "policy_category_count",
    "protected",
    "relevance",
    "remote_destination_count",
    "rules",
    "security_category_count",
    "severity",
    "source_address_ids",
    "source_count",
    "source_network",
    "start_time",
    "status",
    "username_count",
];

const SOURCE_ADDRESS_FIELDS: &[&str] = &[
    "domain_id",
    "event_flow_count",
    "first_event_flow_seen",
    "id",
    "last_event_flow_seen",
    "local_destination_address_ids",
    "magnitude",
    "network",
    "offense_ids",
    "source_ip",
];

const LOCAL_DESTINATION_FIELDS: &[&str] = &[
    "domain_id",
    "event_flow_count",
    "first_event_flow_seen",
    "id",
    "last_event_flow_seen",
    "local_destination_ip",
    "magnitude",
    "network",
    "offense_ids",
    "source_address_ids",
];

const RULE_FIELDS: &[&str] = &[
    "average_capacity",
    "base_capacity",
    "base_host_id",
    "capacity_timestamp",
    "creation_date",
    "enabled",
    "id",
    "identifier",
    "linked_rule_identifier",
    "modification_date",
    "name",
    "origin",
    "owner",
    "type",
];

/// How the console (or the gateway in front of it) authenticates requests.
#[derive(Clone, Debug, Default)]
pub enum QRadarAuth {
    /// Every request is accepted.
    #[default]
    None,
    /// An authorized-service token in the `SEC` header, exactly this value.
    Sec(String),
    /// An API gateway accepting bearer tokens issued by an [`crate::OAuthServer`].
    OAuthGateway(TokenRegistry),
}

/// A failure injected into the next authenticated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QRadarFailure {
    /// An error in QRadar's envelope with this HTTP status, unique code, message and
    /// description.
    Error {
        status: u16,
        code: i64,
        message: String,
        description: String,
    },
    /// `429` with `Retry-After`, as a gateway or proxy in front of the console
    /// answers (QRadar's own error table lists no 429).
    TooManyRequests { retry_after_secs: u64 },
}

impl QRadarFailure {
    /// `503` "The server is currently unavailable." (code 0).
    pub fn service_unavailable() -> Self {
        QRadarFailure::Error {
            status: 503,
            code: 0,
            message: "The QRadar API service is starting up or restarting.".into(),
            description: String::new(),
        }
    }

    /// `500` code 1020, as `GET /siem/offenses` documents it.
    pub fn server_error() -> Self {
        QRadarFailure::Error {
            status: 500,
            code: 1020,
            message: "An error occurred while the offense list was being retrieved.".into(),
            description: "An error occurred while the offense list was being retrieved.".into(),
        }
    }

    /// `409` code 1008 (state conflict).
    pub fn conflict() -> Self {
        QRadarFailure::Error {
            status: 409,
            code: 1008,
            message: "Request cannot be completed due to the state of the offense.".into(),
            description: "Request cannot be completed due to the state of the offense.".into(),
        }
    }
}

/// The records a console serves.
#[derive(Clone, Debug, Default)]
pub struct QRadarDataset {
    pub offenses: Vec<Value>,
    pub source_addresses: Vec<Value>,
    pub local_destination_addresses: Vec<Value>,
    pub rules: Vec<Value>,
}

/// Source addresses in the generated dataset (ids 1..=20).
pub const GENERATED_SOURCE_ADDRESSES: u64 = 20;
/// Local destination addresses in the generated dataset (ids 1..=10).
pub const GENERATED_DESTINATION_ADDRESSES: u64 = 10;
/// Rules of the generated dataset (id, name).
pub const GENERATED_RULES: &[(u64, &str)] = &[
    (100_101, "Multiple Login Failures for the Same User"),
    (
        100_102,
        "Login Failures Followed By Success to the same Destination IP",
    ),
    (100_103, "Excessive Firewall Denies Between Hosts"),
    (100_104, "Local Host Sending Malware Traffic"),
    (
        100_105,
        "Potential Data Exfiltration by Large Outbound Transfer",
    ),
];

/// IP of generated source address `id`: `10.1.0.<id>`, every fourth one an IPv6
/// documentation address `2001:db8::<id>`.
pub fn generated_source_ip(id: u64) -> String {
    if id.is_multiple_of(4) {
        format!("2001:db8::{id}")
    } else {
        format!("10.1.0.{id}")
    }
}

/// IP of generated local destination address `id`: `192.168.10.<id>`.
pub fn generated_destination_ip(id: u64) -> String {
    format!("192.168.10.{id}")
}

/// Source address id of generated offense `index`.
pub fn generated_source_address_id(index: u64) -> u64 {
    index % GENERATED_SOURCE_ADDRESSES + 1
}

/// Local destination address ids of generated offense `index`.
pub fn generated_destination_address_ids(index: u64) -> Vec<u64> {
    let a = index % GENERATED_DESTINATION_ADDRESSES + 1;
    let b = (index + 3) % GENERATED_DESTINATION_ADDRESSES + 1;
    vec![a, b]
}

/// Rule id of generated offense `index`.
pub fn generated_rule(index: u64) -> (u64, &'static str) {
    GENERATED_RULES[(index % GENERATED_RULES.len() as u64) as usize]
}

/// Generated offense `index` (its id), last updated at `updated_ms`, with every
/// documented field: magnitude cycling 1..=10, offense types cycling Source IP (0),
/// Username (3), Hostname (7) and Event Name (2) with a matching `offense_source`,
/// every seventh offense `CLOSED`.
pub fn generated_offense(index: u64, updated_ms: i64) -> Value {
    let source_id = generated_source_address_id(index);
    let destinations = generated_destination_address_ids(index);
    let (rule_id, rule_name) = generated_rule(index);
    let (offense_type, offense_source, categories) = match index % 4 {
        0 => (
            0,
            generated_source_ip(source_id),
            json!(["Misc Exploit", "Suspicious Activity"]),
        ),
        1 => (
            3,
            format!("user{}", index % 7),
            json!(["User Login Failure", "Authentication"]),
        ),
        2 => (
            7,
            format!("ws-{}.corp.example", index % 13),
            json!(["Firewall Deny", "Access Denied"]),
        ),
        _ => (
            2,
            "Failure Audit: An account failed to log on".to_string(),
            json!(["User Login Failure"]),
        ),
    };
    let closed = index.is_multiple_of(7);
    let magnitude = index % 10 + 1;
    let start = updated_ms - 3_600_000;
    json!({
        "assigned_to": if index.is_multiple_of(3) { json!("admin") } else { Value::Null },
        "categories": categories,
        "category_count": categories.as_array().map_or(0, Vec::len),
        "close_time": if closed { json!(updated_ms) } else { Value::Null },
        "closing_reason_id": if closed { json!(1) } else { Value::Null },
        "closing_user": if closed { json!("admin") } else { Value::Null },
        "credibility": (index + 2) % 10 + 1,
        "description": format!("{rule_name}\n preceded by Login Failures Followed By Success\n containing Failure Audit: An account failed to log on\n"),
        "destination_networks": ["Net-10-172-192.Net_192_168_0_0"],
        "device_count": 1,
        "domain_id": 0,
        "event_count": 10 + index,
        "first_persisted_time": start,
        "flow_count": index % 3,
        "follow_up": false,
        "id": index,
        "inactive": false,
        "last_persisted_time": updated_ms,
        "last_updated_time": updated_ms,
        "local_destination_address_ids": destinations,
        "local_destination_count": destinations.len(),
        "log_sources": [{"id": 63, "name": "Microsoft Windows Security Event Log @ dc01", "type_id": 12, "type_name": "Microsoft Windows Security Event Log"}],
        "magnitude": magnitude,
        "offense_source": offense_source,
        "offense_type": offense_type,
        "policy_category_count": 0,
        "protected": false,
        "relevance": (index + 5) % 10 + 1,
        "remote_destination_count": 0,
        "rules": [{"id": rule_id, "type": "CRE_RULE"}],
        "security_category_count": categories.as_array().map_or(0, Vec::len),
        "severity": (index + 7) % 10 + 1,
        "source_address_ids": [source_id],
        "source_count": 1,
        "source_network": "other",
        "start_time": start,
        "status": if closed { "CLOSED" } else { "OPEN" },
        "username_count": if offense_type == 3 { 1 } else { 0 },
    })
}

impl QRadarDataset {
    /// Offenses `1..=n`, updated [`DATASET_INTERVAL_MS`] apart from
    /// [`DATASET_START_MS`], with the source addresses, local destination addresses
    /// and rules they refer to.
    pub fn generate(n: u64) -> Self {
        let offenses: Vec<Value> = (1..=n)
            .map(|i| generated_offense(i, DATASET_START_MS + (i as i64) * DATASET_INTERVAL_MS))
            .collect();
        let offense_ids_with = |key: &str, id: u64| -> Vec<u64> {
            offenses
                .iter()
                .filter(|o| {
                    o[key]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|v| v.as_u64() == Some(id)))
                })
                .filter_map(|o| o["id"].as_u64())
                .collect()
        };
        let source_addresses = (1..=GENERATED_SOURCE_ADDRESSES)
            .map(|id| {
                json!({
                    "domain_id": 0,
                    "event_flow_count": 100 + id,
                    "first_event_flow_seen": DATASET_START_MS,
                    "id": id,
                    "last_event_flow_seen": DATASET_START_MS + (n as i64) * DATASET_INTERVAL_MS,
                    "local_destination_address_ids": [],
                    "magnitude": id % 10,
                    "network": "other",
                    "offense_ids": offense_ids_with("source_address_ids", id),
                    "source_ip": generated_source_ip(id),
                })
            })
            .collect();
        let local_destination_addresses = (1..=GENERATED_DESTINATION_ADDRESSES)
            .map(|id| {
                json!({
                    "domain_id": 0,
                    "event_flow_count": 50 + id,
                    "first_event_flow_seen": DATASET_START_MS,
                    "id": id,
                    "last_event_flow_seen": DATASET_START_MS + (n as i64) * DATASET_INTERVAL_MS,
                    "local_destination_ip": generated_destination_ip(id),
                    "magnitude": id % 10,
                    "network": "Net-10-172-192.Net_192_168_0_0",
                    "offense_ids": offense_ids_with("local_destination_address_ids", id),
                    "source_address_ids": [],
                })
            })
            .collect();
        let rules = GENERATED_RULES
            .iter()
            .map(|(id, name)| {
                json!({
                    "average_capacity": 0,
                    "base_capacity": 0,
                    "base_host_id": 0,
                    "capacity_timestamp": 0,
                    "creation_date": DATASET_START_MS - 86_400_000,
                    "enabled": true,
                    "id": id,
                    "identifier": format!("SYSTEM-{id}"),
                    "linked_rule_identifier": Value::Null,
                    "modification_date": DATASET_START_MS - 86_400_000,
                    "name": name,
                    "origin": "SYSTEM",
                    "owner": "admin",
                    "type": "EVENT",
                })
            })
            .collect();
        QRadarDataset {
            offenses,
            source_addresses,
            local_destination_addresses,
            rules,
        }
    }
}

/// How a [`QRadarServer`] behaves.
#[derive(Clone, Debug)]
pub struct QRadarConfig {
    pub auth: QRadarAuth,
    /// Default: [`QRadarDataset::generate`]`(25)`.
    pub dataset: QRadarDataset,
    /// Endpoint paths the token lacks the capability for (answered `403`, code 26).
    pub forbidden_paths: Vec<String>,
    /// Put the presented SEC token into `401` messages and an `X-Sim-Echo-SEC`
    /// response header (a misbehaving upstream, for redaction tests).
    pub echo_sec: bool,
}

impl Default for QRadarConfig {
    fn default() -> Self {
        QRadarConfig {
            auth: QRadarAuth::None,
            dataset: QRadarDataset::generate(25),
            forbidden_paths: Vec::new(),
            echo_sec: false,
        }
    }
}

#[derive(Debug)]
struct QState {
    config: Mutex<QRadarConfig>,
    failures: Mutex<std::collections::VecDeque<QRadarFailure>>,
}

/// A running simulated QRadar console (see the module docs).
#[derive(Debug)]
pub struct QRadarServer {
    state: Arc<QState>,
    server: SimServer,
}

#[derive(Clone, Copy, Debug)]
enum Collection {
    Offenses,
    SourceAddresses,
    LocalDestinations,
    Rules,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Collection::Offenses => OFFENSES_PATH,
            Collection::SourceAddresses => SOURCE_ADDRESSES_PATH,
            Collection::LocalDestinations => LOCAL_DESTINATION_ADDRESSES_PATH,
            Collection::Rules => RULES_PATH,
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            Collection::Offenses => OFFENSE_FIELDS,
            Collection::SourceAddresses => SOURCE_ADDRESS_FIELDS,
            Collection::LocalDestinations => LOCAL_DESTINATION_FIELDS,
            Collection::Rules => RULE_FIELDS,
        }
    }

    fn items(self, data: &QRadarDataset) -> &[Value] {
        match self {
            Collection::Offenses => &data.offenses,
            Collection::SourceAddresses => &data.source_addresses,
            Collection::LocalDestinations => &data.local_destination_addresses,
            Collection::Rules => &data.rules,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

impl QRadarServer {
    /// Starts the console on `127.0.0.1:0`.
    pub fn start(config: QRadarConfig) -> io::Result<Self> {
        let state = Arc::new(QState {
            config: Mutex::new(config),
            failures: Mutex::new(std::collections::VecDeque::new()),
        });
        let route = |c: Collection| {
            get(
                move |State(s): State<Arc<QState>>, headers: HeaderMap, uri: Uri| async move {
                    list(&s, &headers, &uri, c)
                },
            )
        };
        let router = Router::new()
            .route(OFFENSES_PATH, route(Collection::Offenses))
            .route(SOURCE_ADDRESSES_PATH, route(Collection::SourceAddresses))
            .route(
                LOCAL_DESTINATION_ADDRESSES_PATH,
                route(Collection::LocalDestinations),
            )
            .route(RULES_PATH, route(Collection::Rules))
            .fallback(|| async {
                qradar_error(404, 1002, "The requested resource could not be found.", "")
            })
            .with_state(state.clone());
        Ok(Self {
            state,
            server: SimServer::start("qradar", router)?,
        })
    }

    /// `http://127.0.0.1:<port>` (the console URL; the API is under `/api`).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// Every request received so far.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// The requests to `GET /api/siem/offenses`.
    pub fn offense_requests(&self) -> Vec<crate::RecordedRequest> {
        self.server.log().requests_to(OFFENSES_PATH)
    }

    /// Replaces the authentication scheme (e.g. to revoke a token).
    pub fn set_auth(&self, auth: QRadarAuth) {
        self.state.config.lock().auth = auth;
    }

    /// Sets the paths answered `403` (capability missing).
    pub fn set_forbidden_paths(&self, paths: &[&str]) {
        self.state.config.lock().forbidden_paths = paths.iter().map(|p| p.to_string()).collect();
    }

    /// The offenses, in storage order.
    pub fn offenses(&self) -> Vec<Value> {
        self.state.config.lock().dataset.offenses.clone()
    }

    /// Adds offenses (new data arriving).
    pub fn add_offenses(&self, offenses: impl IntoIterator<Item = Value>) {
        self.state.config.lock().dataset.offenses.extend(offenses);
    }

    /// Adds `n` generated offenses with the next ids, last updated one millisecond
    /// apart ending now. Returns their ids.
    pub fn add_generated(&self, n: u64) -> Vec<u64> {
        let mut config = self.state.config.lock();
        let next = config
            .dataset
            .offenses
            .iter()
            .filter_map(|o| o["id"].as_u64())
            .max()
            .unwrap_or(0)
            + 1;
        let now = now_ms();
        let ids: Vec<u64> = (next..next + n).collect();
        for (i, id) in ids.iter().enumerate() {
            let t = now - (n as i64 - 1 - i as i64);
            config.dataset.offenses.push(generated_offense(*id, t));
        }
        ids
    }

    /// Marks offense `id` updated now (new `last_updated_time` and
    /// `last_persisted_time`, one more event). `false` when there is no such offense.
    pub fn touch_offense(&self, id: u64) -> bool {
        let now = now_ms();
        self.update_offense(id, |o| {
            o["last_updated_time"] = json!(now);
            o["last_persisted_time"] = json!(now);
            o["event_count"] = json!(o["event_count"].as_u64().unwrap_or(0) + 1);
        })
    }

    /// Changes offense `id` in place. `false` when there is no such offense.
    pub fn update_offense(&self, id: u64, f: impl FnOnce(&mut Value)) -> bool {
        let mut config = self.state.config.lock();
        match config
            .dataset
            .offenses
            .iter_mut()
            .find(|o| o["id"].as_u64() == Some(id))
        {
            Some(o) => {
                f(o);
                true
            }
            None => false,
        }
    }

    /// Queues a failure for the next authenticated request.
    pub fn fail_next(&self, failure: QRadarFailure) {
        self.state.failures.lock().push_back(failure);
    }

    /// Failures queued and not yet served.
    pub fn pending_failures(&self) -> usize {
        self.state.failures.lock().len()
    }
}

// ---------------------------------------------------------------------------
// Responses

/// The HTTP response message QRadar's error table gives for `status`.
fn http_message(status: u16) -> &'static str {
    match status {
        400 => "Invalid syntax for this request was provided.",
        401 => "You are unauthorized to access the requested resource. Please log in.",
        403 => "Your account is not authorized to access the requested resource.",
        404 => {
            "We could not find the resource you requested. Please refer to the documentation for the list of resources."
        }
        405 => "This method type is not currently supported.",
        406 => "Acceptance header is invalid for this endpoint resource.",
        409 => {
            "The request could not be completed due to a conflict with the current state of the resource."
        }
        422 => "The request was well-formed but was unable to be followed due to semantic errors.",
        429 => "Too many requests.",
        500 => "Unexpected internal server error.",
        503 => "The server is currently unavailable.",
        _ => "Unexpected error.",
    }
}

/// A response in QRadar's error envelope.
pub fn qradar_error(status: u16, code: i64, message: &str, description: &str) -> Response {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status_code,
        axum::Json(json!({
            "http_response": {"code": status, "message": http_message(status)},
            "code": code,
            "description": description,
            "details": {},
            "message": message,
        })),
    )
        .into_response()
}

fn unprocessable(code: i64, message: &str, description: &str) -> Response {
    qradar_error(422, code, message, description)
}

fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
    response
}

// ---------------------------------------------------------------------------
// Request handling

fn authenticate(config: &QRadarConfig, headers: &HeaderMap) -> Result<(), Response> {
    match &config.auth {
        QRadarAuth::None => Ok(()),
        QRadarAuth::Sec(expected) => {
            let values: Vec<&str> = headers
                .get_all("sec")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            match values.as_slice() {
                [] => Err(qradar_error(
                    401,
                    18,
                    "No SEC header present in request. Please provide it via \"SEC: token\". You may also use BASIC authentication parameters if this host supports it. e.g. \"Authorization: Basic base64Encoding\"",
                    "",
                )),
                [token] if token == expected => Ok(()),
                [token] => {
                    let message = if config.echo_sec {
                        format!("The SEC token {token} is not valid.")
                    } else {
                        "The SEC token provided is not valid.".to_string()
                    };
                    Err(qradar_error(401, 18, &message, ""))
                }
                _ => Err(qradar_error(
                    401,
                    18,
                    "More than one SEC header present in request.",
                    "",
                )),
            }
        }
        QRadarAuth::OAuthGateway(tokens) => {
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string());
            let reject = |error: Option<&str>, description: &str| {
                let mut challenge = "Bearer realm=\"qradar-gateway\"".to_string();
                if let Some(e) = error {
                    challenge.push_str(&format!(
                        ", error=\"{e}\", error_description=\"{description}\""
                    ));
                }
                with_header(
                    (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": error.unwrap_or("unauthorized"), "error_description": description})),
                    )
                        .into_response(),
                    "www-authenticate",
                    &challenge,
                )
            };
            match token {
                None => Err(reject(None, "Bearer token required")),
                Some(t) => match tokens.check(&t) {
                    TokenStatus::Valid(_) => Ok(()),
                    TokenStatus::Expired => {
                        Err(reject(Some("invalid_token"), "The access token expired"))
                    }
                    TokenStatus::Revoked => Err(reject(
                        Some("invalid_token"),
                        "The access token has been revoked",
                    )),
                    TokenStatus::Unknown => {
                        Err(reject(Some("invalid_token"), "The access token is invalid"))
                    }
                },
            }
        }
    }
}

fn check_version(headers: &HeaderMap) -> Result<(), Response> {
    let Some(value) = headers.get("version") else {
        return Ok(());
    };
    let v = value.to_str().unwrap_or_default().trim();
    if SUPPORTED_VERSIONS.contains(&v) {
        return Ok(());
    }
    let major = v.split('.').next().and_then(|m| m.parse::<u32>().ok());
    let message = match major {
        Some(m) if m < 12 => format!(
            "Version ({v}) from header parameter (Version) has been removed and is no longer valid. Please refer to documentation for list of valid versions."
        ),
        _ => format!(
            "Version ({v}) from header parameter (Version) is not a valid version. Please refer to documentation for list of valid versions."
        ),
    };
    Err(unprocessable(
        1005,
        &message,
        "A request parameter is not valid.",
    ))
}

fn failure_response(failure: QRadarFailure) -> Response {
    match failure {
        QRadarFailure::Error {
            status,
            code,
            message,
            description,
        } => qradar_error(status, code, &message, &description),
        QRadarFailure::TooManyRequests { retry_after_secs } => with_header(
            qradar_error(429, 0, "Too many requests; slow down.", ""),
            "retry-after",
            &retry_after_secs.to_string(),
        ),
    }
}

/// `Range: items=x-y` → `(x, y)`.
fn parse_range(value: &str) -> Result<(u64, u64), Response> {
    let bad = || {
        unprocessable(
            36,
            "Failed to parse Range header. The syntax of the Range header must follow this pattern: items=x-y",
            "",
        )
    };
    let rest = value.trim().strip_prefix("items").ok_or_else(bad)?;
    let rest = rest.trim_start().strip_prefix('=').ok_or_else(bad)?;
    let (first, last) = rest.split_once('-').ok_or_else(bad)?;
    let first: u64 = first.trim().parse().map_err(|_| bad())?;
    let last: u64 = last.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(unprocessable(
            36,
            "Range of pages specified in \"Range\" header is negative. Non-negative page range must be specified.",
            "",
        ));
    }
    Ok((first, last))
}

/// `sort=+a,-b` → `[(a, ascending), (b, descending)]`.
fn parse_sort(value: &str, known: &[&str]) -> Result<Vec<(String, bool)>, Response> {
    let mut keys = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        let (field, ascending) = match part.as_bytes().first() {
            Some(b'+') => (&part[1..], true),
            Some(b'-') => (&part[1..], false),
            _ => (part, true),
        };
        if !known.contains(&field) {
            return Err(unprocessable(
                1030,
                &format!("The sort field \"{field}\" is not valid for this endpoint."),
                "The sort field or order is not valid.",
            ));
        }
        keys.push((field.to_string(), ascending));
    }
    Ok(keys)
}

fn cmp_json(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(Ordering::Equal),
        },
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// One requested field with its optional subfields.
type FieldSpec = (String, Option<Vec<String>>);

/// `fields=id,rules(id),x` → top-level names, each with its optional subfields.
fn parse_fields(value: &str, known: &[&str]) -> Result<Vec<FieldSpec>, Response> {
    let unknown = |name: &str| {
        unprocessable(
            30,
            &format!(
                "Specified field \"{name}\" is not recognized by this endpoint for media type \"application/json\""
            ),
            "",
        )
    };
    let mut out = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let end = rest.find([',', '(']).unwrap_or(rest.len());
        let name = rest[..end].trim();
        if !known.contains(&name) {
            return Err(unknown(name));
        }
        rest = &rest[end..];
        let sub = if let Some(inner) = rest.strip_prefix('(') {
            let close = inner.find(')').ok_or_else(|| unknown(name))?;
            let subs = inner[..close]
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            rest = &inner[close + 1..];
            Some(subs)
        } else {
            None
        };
        out.push((name.to_string(), sub));
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

fn project(item: &Value, fields: &[FieldSpec]) -> Value {
    let mut out = Map::new();
    for (name, sub) in fields {
        let Some(v) = item.get(name) else { continue };
        let pick = |o: &Value| -> Value {
            match (o, sub) {
                (Value::Object(m), Some(keys)) => Value::Object(
                    m.iter()
                        .filter(|(k, _)| keys.contains(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                _ => o.clone(),
            }
        };
        let projected = match v {
            Value::Array(items) => Value::Array(items.iter().map(pick).collect()),
            other => pick(other),
        };
        out.insert(name.clone(), projected);
    }
    Value::Object(out)
}

fn list(state: &QState, headers: &HeaderMap, uri: &Uri, c: Collection) -> Response {
    let (config_auth_ok, forbidden, echo, items) = {
        let config = state.config.lock();
        (
            authenticate(&config, headers),
            config.forbidden_paths.iter().any(|p| p == c.path()),
            config.echo_sec,
            c.items(&config.dataset).to_vec(),
        )
    };
    if let Err(response) = config_auth_ok {
        return response;
    }
    if forbidden {
        return qradar_error(
            403,
            26,
            "User has insufficient capabilities to access this endpoint resource",
            "",
        );
    }
    if let Err(response) = check_version(headers) {
        return response;
    }
    if let Some(failure) = state.failures.lock().pop_front() {
        return failure_response(failure);
    }

    let query = uri.query().map(form_pairs).unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let known = c.fields();

    let mut selected: Vec<Value> = match param("filter") {
        None => items,
        Some(text) => {
            let filter = match Filter::parse(text) {
                Ok(f) => f,
                Err(e) => {
                    return unprocessable(
                        1010,
                        &format!("Invalid filter \"{text}\": {e}"),
                        "The filter parameter is not valid.",
                    );
                }
            };
            if let Some(field) = filter.fields().into_iter().find(|f| !known.contains(f)) {
                return unprocessable(
                    1010,
                    &format!(
                        "The field \"{field}\" in the filter is not recognized by this endpoint."
                    ),
                    "The filter parameter is not valid.",
                );
            }
            items.into_iter().filter(|i| filter.matches(i)).collect()
        }
    };
    if let Some(text) = param("sort") {
        let keys = match parse_sort(text, known) {
            Ok(k) => k,
            Err(response) => return response,
        };
        selected.sort_by(|a, b| {
            for (field, ascending) in &keys {
                let ord = cmp_json(a.get(field), b.get(field));
                let ord = if *ascending { ord } else { ord.reverse() };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let fields = match param("fields").map(|f| parse_fields(f, known)) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(response)) => return response,
    };

    let total = selected.len() as u64;
    let range = match headers.get("range").map(|v| v.to_str().unwrap_or("")) {
        None => None,
        Some(text) => match parse_range(text) {
            Ok(r) => Some(r),
            Err(response) => return response,
        },
    };
    let (page, content_range) = match range {
        None => (selected, None),
        Some((first, _)) if first >= total => (Vec::new(), Some(format!("items */{total}"))),
        Some((first, last)) => {
            let last = last.min(total - 1);
            let page: Vec<Value> = selected
                .into_iter()
                .skip(first as usize)
                .take((last - first + 1) as usize)
                .collect();
            (page, Some(format!("items {first}-{last}/{total}")))
        }
    };
    let body: Vec<Value> = match &fields {
        None => page,
        Some(f) => page.iter().map(|i| project(i, f)).collect(),
    };
    let mut response = (StatusCode::OK, axum::Json(Value::Array(body))).into_response();
    if let Some(cr) = content_range {
        response = with_header(response, "content-range", &cr);
    }
    if echo && let Some(sec) = headers.get("sec").and_then(|v| v.to_str().ok()) {
        response = with_header(response, "x-sim-echo-sec", sec);
    }
    response
}
