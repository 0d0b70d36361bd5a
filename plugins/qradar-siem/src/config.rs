//! The connector configuration, parsed and checked in one pass that reports every
//! problem with its RFC 6901 path. The host also validates the JSON Schema the plugin
//! declares (`config.schema.json`); this parser repeats the type checks (the plugin
//! never relies on the host) and adds what a schema cannot express: URL parsing,
//! the `https` rule, timestamps and the shape of the extra filter.

use portcullis_sdk::config;
use portcullis_sdk::json_type_name;
use portcullis_sdk::pointer;
use portcullis_sdk::prelude::*;
use serde_json::Map;
use url::Url;

/// The credential slot every request is authenticated with.
pub const CREDENTIAL_SLOT: &str = "api";

/// `Version` header sent when `api_version` is not configured. 16.0 is the REST API
/// of QRadar 7.4.3 and is still supported by 7.5.0 up to Update Package 2; consoles
/// on later update packages should set their own version.
pub const DEFAULT_API_VERSION: &str = "16.0";

/// Offenses per `Range` page when `page_size` is not configured.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest accepted `page_size`.
pub const MAX_PAGE_SIZE: u64 = 1000;
/// Default `settle_seconds`.
pub const DEFAULT_SETTLE_SECONDS: u64 = 60;
/// Largest accepted `settle_seconds`.
pub const MAX_SETTLE_SECONDS: u64 = 3600;
/// Longest accepted extra `filter`, in characters.
pub const MAX_FILTER_CHARS: usize = 2000;

/// Which offense field the event severity is derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeverityBasis {
    /// `magnitude`: QRadar's overall priority (from relevance, severity, credibility).
    Magnitude,
    /// `severity`: the potential damage to the target.
    Severity,
}

impl SeverityBasis {
    /// The offense field name.
    pub fn field(&self) -> &'static str {
        match self {
            SeverityBasis::Magnitude => "magnitude",
            SeverityBasis::Severity => "severity",
        }
    }
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The console (or gateway) URL, without a trailing slash; API paths are appended.
    pub base_url: Url,
    /// Value of the `Version` header.
    pub api_version: String,
    /// Offenses per `Range` page.
    pub page_size: u64,
    /// Exclusive lower bound (epoch ms) of `last_updated_time` for the first window.
    pub start_time_ms: Option<i64>,
    /// Extra QRadar filter expression, ANDed with the window bounds.
    pub filter: Option<String>,
    /// How far behind "now" a window ends, in milliseconds.
    pub settle_ms: i64,
    /// Field the event severity comes from.
    pub severity_basis: SeverityBasis,
    /// Look source and local destination address ids up as IPs.
    pub resolve_addresses: bool,
    /// Look rule ids up as rule names.
    pub resolve_rule_names: bool,
}

impl Config {
    /// `base_url` followed by `path` (which starts with `/`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }
}

const TOP_LEVEL: &[&str] = &[
    "base_url",
    "insecure_http",
    "api_version",
    "page_size",
    "start_time",
    "filter",
    "settle_seconds",
    "severity_from",
    "resolve_addresses",
    "resolve_rule_names",
];

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

    fn boolean(&mut self, obj: &Map<String, Value>, key: &str, default: bool) -> bool {
        match obj.get(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.err(
                    &pointer::join("", key),
                    format!("must be true or false, found {}", json_type_name(other)),
                );
                default
            }
        }
    }

    fn integer(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        min: u64,
        max: u64,
        default: u64,
    ) -> u64 {
        let path = pointer::join("", key);
        match obj.get(key) {
            None => default,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => v,
                _ => {
                    self.err(
                        &path,
                        format!("must be a whole number from {min} to {max}, found {n}"),
                    );
                    default
                }
            },
            Some(other) => {
                self.err(
                    &path,
                    format!("must be a whole number, found {}", json_type_name(other)),
                );
                default
            }
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
        config::unknown_keys(&mut c.errors, obj, "", TOP_LEVEL);

        let insecure_http = c.boolean(obj, "insecure_http", false);
        let base_url = parse_base_url(&mut c, obj, insecure_http);
        let api_version = parse_api_version(&mut c, obj);
        let page_size = c.integer(obj, "page_size", 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE);
        let start_time_ms = parse_start_time(&mut c, obj);
        let filter = parse_filter(&mut c, obj);
        let settle_seconds = c.integer(
            obj,
            "settle_seconds",
            0,
            MAX_SETTLE_SECONDS,
            DEFAULT_SETTLE_SECONDS,
        );
        let severity_basis = match c.string(obj, "severity_from") {
            None | Some("magnitude") => SeverityBasis::Magnitude,
            Some("severity") => SeverityBasis::Severity,
            Some(other) => {
                c.err(
                    "/severity_from",
                    format!("must be \"magnitude\" or \"severity\", found {other:?}"),
                );
                SeverityBasis::Magnitude
            }
        };
        let resolve_addresses = c.boolean(obj, "resolve_addresses", true);
        let resolve_rule_names = c.boolean(obj, "resolve_rule_names", true);

        if !c.errors.is_empty() {
            return Err(Error::Config(c.errors.into_iter().collect()));
        }
        let Some(base_url) = base_url else {
            // Every `None` recorded an error above; answer rather than panic.
            return Err(Error::config("/base_url", "required"));
        };
        Ok(Config {
            base_url,
            api_version,
            page_size,
            start_time_ms,
            filter,
            // At most 3600 s, so the product always fits.
            settle_ms: i64::try_from(settle_seconds.saturating_mul(1000)).unwrap_or(0),
            severity_basis,
            resolve_addresses,
            resolve_rule_names,
        })
    }
}

fn parse_base_url(c: &mut Checker, obj: &Map<String, Value>, insecure_http: bool) -> Option<Url> {
    let Some(raw) = c.string(obj, "base_url") else {
        if !obj.contains_key("base_url") {
            c.err(
                "/base_url",
                "required: QRadar is on-premises, give the console URL (e.g. https://qradar.example.com)",
            );
        }
        return None;
    };
    let url = match Url::parse(raw.trim()) {
        Ok(u) => u,
        Err(e) => {
            c.err("/base_url", format!("not a valid URL: {e}"));
            return None;
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if insecure_http => {}
        "http" => {
            c.err(
                "/base_url",
                "must be an https URL: the SEC token must not cross the network in clear text \
                 (set insecure_http to true only for a lab console or a simulator)",
            );
            return None;
        }
        other => {
            c.err(
                "/base_url",
                format!("must be an https URL, found scheme {other:?}"),
            );
            return None;
        }
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
            "must not contain user information: bind the SEC token to the `api` credential slot",
        );
        return None;
    }
    let path = url.path().trim_end_matches('/');
    if path == "/api" || path.ends_with("/api") {
        c.err(
            "/base_url",
            "give the console URL without the trailing /api (the plugin appends /api/siem/...)",
        );
        return None;
    }
    Some(url)
}

fn parse_api_version(c: &mut Checker, obj: &Map<String, Value>) -> String {
    let Some(v) = c.string(obj, "api_version") else {
        return DEFAULT_API_VERSION.to_string();
    };
    let v = v.trim();
    let valid = v.split_once('.').is_some_and(|(major, minor)| {
        (1..=3).contains(&major.len())
            && (1..=2).contains(&minor.len())
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.bytes().all(|b| b.is_ascii_digit())
    });
    if !valid {
        c.err(
            "/api_version",
            format!("must be a QRadar REST API version such as \"16.0\" or \"13.1\", found {v:?}"),
        );
    }
    v.to_string()
}

fn parse_start_time(c: &mut Checker, obj: &Map<String, Value>) -> Option<i64> {
    let v = obj.get("start_time")?;
    let parsed = match v {
        Value::String(s) => Timestamp::parse(s).map_err(|e| e.to_string()),
        Value::Number(n) => match n.as_i64() {
            Some(ms) if ms >= 0 => Timestamp::from_unix_millis(ms).map_err(|e| e.to_string()),
            _ => Err(format!(
                "{n} is not a non-negative whole number of epoch milliseconds"
            )),
        },
        other => Err(format!(
            "must be an ISO 8601 time or epoch milliseconds, found {}",
            json_type_name(other)
        )),
    };
    match parsed {
        Ok(t) if t.unix_millis() >= 0 => Some(t.unix_millis()),
        Ok(_) => {
            c.err("/start_time", "must not be before 1970-01-01T00:00:00Z");
            None
        }
        Err(e) => {
            c.err("/start_time", e);
            None
        }
    }
}

fn parse_filter(c: &mut Checker, obj: &Map<String, Value>) -> Option<String> {
    let raw = c.string(obj, "filter")?;
    let f = raw.trim();
    if f.is_empty() {
        c.err(
            "/filter",
            "must not be empty (omit it to take every offense)",
        );
        return None;
    }
    if f.chars().count() > MAX_FILTER_CHARS {
        c.err(
            "/filter",
            format!("longer than {MAX_FILTER_CHARS} characters"),
        );
        return None;
    }
    if let Some((pos, ch)) = f.char_indices().find(|(_, ch)| ch.is_control()) {
        c.err(
            "/filter",
            format!("control character {ch:?} at position {pos}"),
        );
        return None;
    }
    if let Some((pos, what)) = unbalanced(f) {
        c.err("/filter", format!("{what} at position {pos}"));
        return None;
    }
    Some(f.to_string())
}

/// Byte position of the first parenthesis or quote that does not balance (quoted text
/// ignored), so that ANDing `(<filter>)` with the window bounds cannot change their
/// meaning.
fn unbalanced(f: &str) -> Option<(usize, &'static str)> {
    let mut open: Vec<usize> = Vec::new();
    let mut quote: Option<(char, usize)> = None;
    for (i, ch) in f.char_indices() {
        match (quote, ch) {
            (Some((q, _)), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some((ch, i)),
            (None, '(') => open.push(i),
            (None, ')') => {
                if open.pop().is_none() {
                    return Some((i, "unmatched closing parenthesis"));
                }
            }
            (None, _) => {}
        }
    }
    if let Some((_, start)) = quote {
        return Some((start, "unterminated quoted string"));
    }
    open.first().map(|&i| (i, "unclosed parenthesis"))
}
