//! The connector configuration, parsed and checked in one pass that reports every
//! problem with its RFC 6901 path. The host checks the declared JSON Schema
//! (`config.schema.json`) in `validate-config`; this parser repeats those checks (so
//! `poll` never relies on them) and adds what a schema cannot: URL parsing and the
//! ISO 8601 time.

use portcullis_sdk::config;
use portcullis_sdk::json_type_name;
use portcullis_sdk::pointer;
use portcullis_sdk::prelude::*;
use serde_json::Map;
use url::Url;

/// The credential slot every request names; the host authenticates it (OAuth 2.0
/// client credentials, RFC 6749 §4.4, sent as a bearer token per RFC 6750).
pub const CREDENTIAL_SLOT: &str = "api";

/// The real service: "The base URL for all API calls follows the pattern
/// `https://api.threathawk.cybersilo.tech/v1/`".
pub const DEFAULT_BASE_URL: &str = "https://api.threathawk.cybersilo.tech/v1";

/// Alerts per page when `page_size` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Window overlap when `overlap_secs` is not given.
pub const DEFAULT_OVERLAP_SECS: u32 = 1;
/// Largest `overlap_secs` accepted (one day).
pub const MAX_OVERLAP_SECS: u32 = 86_400;

/// ThreatHawk's severity levels, lowest first ("info, low, medium, high, critical").
pub const SEVERITIES: &[&str] = &["info", "low", "medium", "high", "critical"];

/// Top-level keys.
pub const KEYS: &[&str] = &[
    "base_url",
    "status",
    "severity",
    "initial_created_after",
    "page_size",
    "overlap_secs",
];

/// A checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The API base URL as configured (or the default).
    pub base_url: Url,
    /// `<base_url>/alerts`.
    pub alerts_url: Url,
    /// `status` filter.
    pub status: Option<String>,
    /// `severity` filter (one of [`SEVERITIES`]).
    pub severity: Option<String>,
    /// `created_after` of the first window.
    pub initial_created_after: Option<Timestamp>,
    /// `limit` per page.
    pub page_size: u32,
    /// How far before the newest alert seen a new window starts, in milliseconds.
    pub overlap_ms: i64,
}

fn status_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

struct Checker {
    errors: ConfigErrors,
}

impl Checker {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(path, message);
    }

    fn string<'a>(&mut self, obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
        config::string(&mut self.errors, obj, "", key)
    }

    fn integer(&mut self, obj: &Map<String, Value>, key: &str, min: u32, max: u32) -> Option<u32> {
        let path = pointer::join("", key);
        match obj.get(key)? {
            Value::Number(n) => match n.as_u64() {
                Some(v) if v >= u64::from(min) && v <= u64::from(max) => u32::try_from(v).ok(),
                _ => {
                    self.err(
                        &path,
                        format!("must be an integer from {min} to {max}, found {n}"),
                    );
                    None
                }
            },
            other => {
                self.err(
                    &path,
                    format!("must be an integer, found {}", json_type_name(other)),
                );
                None
            }
        }
    }
}

fn parse_base_url(c: &mut Checker, obj: &Map<String, Value>) -> Option<(Url, Url)> {
    let text = match obj.get("base_url") {
        None => DEFAULT_BASE_URL,
        Some(_) => c.string(obj, "base_url")?,
    };
    let url = match Url::parse(text.trim()) {
        Ok(u) => u,
        Err(e) => {
            c.err("/base_url", format!("not a valid URL: {e}"));
            return None;
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        c.err("/base_url", "must be an http or https URL");
        return None;
    }
    if url.host_str().is_none_or(str::is_empty) {
        c.err("/base_url", "must name a host");
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() {
        c.err("/base_url", "must not contain a query or fragment");
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        c.err(
            "/base_url",
            "must not contain user information: bind the OAuth client credentials to the `api` slot instead",
        );
        return None;
    }
    let alerts = format!("{}/alerts", url.as_str().trim_end_matches('/'));
    match Url::parse(&alerts) {
        Ok(a) => Some((url, a)),
        Err(e) => {
            c.err(
                "/base_url",
                format!("<base_url>/alerts is not a valid URL: {e}"),
            );
            None
        }
    }
}

impl Config {
    /// Parses and checks `doc`, reporting every problem.
    pub fn parse(doc: &Value) -> Result<Config> {
        let mut c = Checker {
            errors: ConfigErrors::new(),
        };
        let obj = config::root_object(doc)?;
        config::unknown_keys(&mut c.errors, obj, "", KEYS);
        let urls = parse_base_url(&mut c, obj);
        let status = c.string(obj, "status").and_then(|s| {
            if status_ok(s) {
                Some(s.to_string())
            } else {
                c.err(
                    "/status",
                    format!(
                        "{s:?} is not a status name (a letter, then up to 63 letters, digits, `_` or `-`; e.g. open, investigating)"
                    ),
                );
                None
            }
        });
        let severity = c.string(obj, "severity").and_then(|s| {
            if SEVERITIES.contains(&s) {
                Some(s.to_string())
            } else {
                c.err(
                    "/severity",
                    format!(
                        "{s:?} is not a ThreatHawk severity (one of: {})",
                        SEVERITIES.join(", ")
                    ),
                );
                None
            }
        });
        let initial =
            c.string(obj, "initial_created_after")
                .and_then(|s| match Timestamp::parse(s) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        c.err("/initial_created_after", e.to_string());
                        None
                    }
                });
        let page_size = c
            .integer(obj, "page_size", 1, MAX_PAGE_SIZE)
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let overlap = c
            .integer(obj, "overlap_secs", 0, MAX_OVERLAP_SECS)
            .unwrap_or(DEFAULT_OVERLAP_SECS);

        if !c.errors.is_empty() {
            return Err(Error::Config(c.errors.into_iter().collect()));
        }
        let Some((base_url, alerts_url)) = urls else {
            // Every `None` above recorded an error; answer rather than panic.
            return Err(Error::config("/base_url", "invalid"));
        };
        Ok(Config {
            base_url,
            alerts_url,
            status,
            severity,
            initial_created_after: initial,
            page_size,
            overlap_ms: i64::from(overlap) * 1000,
        })
    }
}
