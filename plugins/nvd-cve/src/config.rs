//! The connector configuration, parsed and checked in one pass that reports every
//! problem with its RFC 6901 path. The host also validates the JSON Schema the
//! plugin declares (`config.schema.json`); this parser repeats the type checks so the
//! plugin never relies on it, and adds what a schema cannot express (URL parsing).

use portcullis_sdk::config;
use portcullis_sdk::json_type_name;
use portcullis_sdk::pointer;
use portcullis_sdk::prelude::*;
use serde_json::Map;
use url::Url;

/// The credential slot carrying the NVD API key (kind `api-key`; the host puts it in
/// the `apiKey` request header).
pub const CREDENTIAL_SLOT: &str = "api-key";

/// The real service.
pub const DEFAULT_BASE_URL: &str = "https://services.nvd.nist.gov";

/// Path of the CVE API 2.0 below `base_url`.
pub const CVE_API_PATH: &str = "/rest/json/cves/2.0";

/// NVD's maximum (and default) `resultsPerPage` for the CVE API.
pub const MAX_RESULTS_PER_PAGE: u32 = 2000;

/// NVD's maximum span of a `lastModStartDate`/`lastModEndDate` pair, in days.
pub const MAX_WINDOW_DAYS: u32 = 120;

/// Published limits: 5 requests per rolling 30 s without a key, 50 with one.
pub const DEFAULT_REQUESTS_WITHOUT_KEY: u32 = 5;
/// See [`DEFAULT_REQUESTS_WITHOUT_KEY`].
pub const DEFAULT_REQUESTS_WITH_KEY: u32 = 50;
/// Length of the rolling window, seconds.
pub const DEFAULT_WINDOW_SECS: u32 = 30;
/// How long to stay away after NVD throttled us (HTTP 403) without a `Retry-After`:
/// NVD's advice is to "wait up to 1 minute" before new connections.
pub const DEFAULT_THROTTLE_BACKOFF_SECS: u32 = 60;

/// Upper bounds accepted for the budget (the request log lives in the `state` space).
const MAX_BUDGET_REQUESTS: u64 = 1000;
const MAX_BUDGET_WINDOW_SECS: u64 = 86_400;
const MAX_BACKOFF_SECS: u64 = 3600;

/// The rolling request budget the plugin enforces on itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub window_secs: u32,
    /// Pause after a throttling answer that names no `Retry-After`.
    pub throttle_backoff_secs: u32,
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `base_url` joined with [`CVE_API_PATH`].
    pub endpoint: Url,
    /// Whether requests go through the [`CREDENTIAL_SLOT`] (an API key is bound).
    pub use_api_key: bool,
    /// `resultsPerPage` sent with every page request.
    pub results_per_page: u32,
    /// Lower bound of the first `lastModStartDate` window; `None` = a full initial
    /// download (no date filter), then incremental windows.
    pub start: Option<Timestamp>,
    /// Span of each window in days (at most [`MAX_WINDOW_DAYS`]).
    pub window_days: u32,
    /// The request budget.
    pub rate_limit: RateLimit,
}

const TOP_LEVEL: &[&str] = &[
    "base_url",
    "use_api_key",
    "results_per_page",
    "start",
    "window_days",
    "rate_limit",
];

const RATE_LIMIT_KEYS: &[&str] = &["requests", "window_secs", "throttle_backoff_secs"];

struct Checker {
    errors: ConfigErrors,
}

impl Checker {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(path, message);
    }

    fn unknown_keys(&mut self, obj: &Map<String, Value>, base: &str, allowed: &[&str]) {
        config::unknown_keys(&mut self.errors, obj, base, allowed);
    }

    fn string<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<&'a str> {
        config::string(&mut self.errors, obj, base, key)
    }

    fn boolean(&mut self, obj: &Map<String, Value>, base: &str, key: &str) -> Option<bool> {
        match obj.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.err(
                    &pointer::join(base, key),
                    format!("must be a boolean, found {}", json_type_name(other)),
                );
                None
            }
        }
    }

    /// An integer field within `min..=max`.
    fn integer(
        &mut self,
        obj: &Map<String, Value>,
        base: &str,
        key: &str,
        min: u64,
        max: u64,
    ) -> Option<u32> {
        let path = pointer::join(base, key);
        let v = obj.get(key)?;
        let Some(n) = v.as_u64().or_else(|| {
            // 20.0 is an integer too (JSON Schema "integer" accepts it).
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }) else {
            let found = match v {
                Value::Number(_) => "a negative or fractional number",
                other => json_type_name(other),
            };
            self.err(&path, format!("must be an integer, found {found}"));
            return None;
        };
        if n < min || n > max {
            self.err(&path, format!("must be between {min} and {max}, found {n}"));
            return None;
        }
        u32::try_from(n).ok()
    }
}

impl Config {
    /// Parses and checks `doc`, reporting every problem.
    pub fn parse(doc: &Value) -> Result<Config> {
        let mut c = Checker {
            errors: ConfigErrors::new(),
        };
        let obj = config::root_object(doc)?;
        c.unknown_keys(obj, "", TOP_LEVEL);

        let endpoint = parse_endpoint(&mut c, obj);
        let use_api_key = c.boolean(obj, "", "use_api_key").unwrap_or(false);
        let results_per_page = c
            .integer(
                obj,
                "",
                "results_per_page",
                1,
                u64::from(MAX_RESULTS_PER_PAGE),
            )
            .unwrap_or(MAX_RESULTS_PER_PAGE);
        let start = c
            .string(obj, "", "start")
            .and_then(|s| match Timestamp::parse(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    c.err("/start", e.to_string());
                    None
                }
            });
        let window_days = c
            .integer(obj, "", "window_days", 1, u64::from(MAX_WINDOW_DAYS))
            .unwrap_or(MAX_WINDOW_DAYS);
        let rate_limit = parse_rate_limit(&mut c, obj, use_api_key);

        c.errors.finish(())?;
        match endpoint {
            Some(endpoint) => Ok(Config {
                endpoint,
                use_api_key,
                results_per_page,
                start,
                window_days,
                rate_limit,
            }),
            // parse_endpoint recorded an error for every `None`; answer rather than panic.
            None => Err(Error::config("/base_url", "invalid base URL")),
        }
    }

    /// The window span in milliseconds.
    pub fn window_millis(&self) -> i64 {
        i64::from(self.window_days) * 86_400_000
    }
}

fn parse_endpoint(c: &mut Checker, obj: &Map<String, Value>) -> Option<Url> {
    let base = match obj.get("base_url") {
        None => DEFAULT_BASE_URL,
        Some(_) => c.string(obj, "", "base_url")?,
    };
    let url = match Url::parse(base) {
        Err(e) => {
            c.err("/base_url", format!("not a valid URL: {e}"));
            return None;
        }
        Ok(u) => u,
    };
    if !matches!(url.scheme(), "http" | "https") {
        c.err("/base_url", "must be an http or https URL");
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() {
        c.err("/base_url", "must not contain a query or fragment");
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        c.err(
            "/base_url",
            "must not contain user information: bind the API key to the `api-key` slot instead",
        );
        return None;
    }
    // A mirror or proxy may serve the API below a path prefix.
    let joined = format!("{}{CVE_API_PATH}", url.as_str().trim_end_matches('/'));
    match Url::parse(&joined) {
        Ok(u) => Some(u),
        Err(e) => {
            c.err(
                "/base_url",
                format!("base_url + {CVE_API_PATH} is not a valid URL: {e}"),
            );
            None
        }
    }
}

fn parse_rate_limit(c: &mut Checker, obj: &Map<String, Value>, with_key: bool) -> RateLimit {
    let mut limit = RateLimit {
        requests: if with_key {
            DEFAULT_REQUESTS_WITH_KEY
        } else {
            DEFAULT_REQUESTS_WITHOUT_KEY
        },
        window_secs: DEFAULT_WINDOW_SECS,
        throttle_backoff_secs: DEFAULT_THROTTLE_BACKOFF_SECS,
    };
    let Some(v) = obj.get("rate_limit") else {
        return limit;
    };
    let Value::Object(m) = v else {
        c.err(
            "/rate_limit",
            format!("must be an object, found {}", json_type_name(v)),
        );
        return limit;
    };
    c.unknown_keys(m, "/rate_limit", RATE_LIMIT_KEYS);
    if let Some(n) = c.integer(m, "/rate_limit", "requests", 1, MAX_BUDGET_REQUESTS) {
        limit.requests = n;
    }
    if let Some(n) = c.integer(m, "/rate_limit", "window_secs", 1, MAX_BUDGET_WINDOW_SECS) {
        limit.window_secs = n;
    }
    if let Some(n) = c.integer(
        m,
        "/rate_limit",
        "throttle_backoff_secs",
        1,
        MAX_BACKOFF_SECS,
    ) {
        limit.throttle_backoff_secs = n;
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(doc: Value) -> Vec<(String, String)> {
        match Config::parse(&doc) {
            Err(Error::Config(list)) => list.into_iter().map(|f| (f.path, f.message)).collect(),
            other => panic!("expected config errors, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::parse(&json!({})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.endpoint.as_str(),
            "https://services.nvd.nist.gov/rest/json/cves/2.0"
        );
        assert!(!c.use_api_key);
        assert_eq!(c.results_per_page, 2000);
        assert_eq!(c.start, None);
        assert_eq!(c.window_days, 120);
        assert_eq!(
            c.rate_limit,
            RateLimit {
                requests: 5,
                window_secs: 30,
                throttle_backoff_secs: 60
            }
        );
        let keyed = Config::parse(&json!({"use_api_key": true})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keyed.rate_limit.requests, 50);
        assert_eq!(keyed.window_millis(), 120 * 86_400_000);
    }

    #[test]
    fn mirror_with_prefix_and_overrides() {
        let c = Config::parse(&json!({
            "base_url": "http://127.0.0.1:8080/nvd/",
            "use_api_key": true,
            "results_per_page": 5.0,
            "start": "2024-01-01",
            "window_days": 30,
            "rate_limit": {"requests": 7, "window_secs": 60, "throttle_backoff_secs": 5}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.endpoint.as_str(),
            "http://127.0.0.1:8080/nvd/rest/json/cves/2.0"
        );
        assert_eq!(c.results_per_page, 5);
        assert_eq!(
            c.start.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(c.window_days, 30);
        assert_eq!(
            c.rate_limit,
            RateLimit {
                requests: 7,
                window_secs: 60,
                throttle_backoff_secs: 5
            }
        );
    }

    #[test]
    fn every_problem_reported_with_its_path() {
        let errs = errors(json!({
            "base_url": "ftp://x",
            "use_api_key": "yes",
            "results_per_page": 2001,
            "start": "last tuesday",
            "window_days": 121,
            "rate_limit": {"requests": 0, "window": 30, "throttle_backoff_secs": -1},
            "apiKey": "secret"
        }));
        let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
        for expected in [
            "/apiKey",
            "/base_url",
            "/use_api_key",
            "/results_per_page",
            "/start",
            "/window_days",
            "/rate_limit/window",
            "/rate_limit/requests",
            "/rate_limit/throttle_backoff_secs",
        ] {
            assert!(paths.contains(&expected), "{expected} missing in {errs:?}");
        }
        assert_eq!(errs.len(), 9, "{errs:?}");
        let rpp = errs
            .iter()
            .find(|(p, _)| p == "/results_per_page")
            .map(|(_, m)| m.as_str());
        assert_eq!(rpp, Some("must be between 1 and 2000, found 2001"));
    }

    #[test]
    fn base_url_checks() {
        for (url, needle) in [
            ("not a url", "not a valid URL"),
            ("https://nvd.test/?x=1", "query"),
            ("https://user:pw@nvd.test", "user information"),
        ] {
            let errs = errors(json!({ "base_url": url }));
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].0, "/base_url");
            assert!(errs[0].1.contains(needle), "{url}: {errs:?}");
        }
        assert_eq!(
            errors(json!({"base_url": 3}))[0].1,
            "must be a string, found a number"
        );
        assert_eq!(
            errors(json!([]))[0],
            (
                String::new(),
                "the configuration must be a JSON object, found an array".to_string()
            )
        );
        assert_eq!(errors(json!({"rate_limit": 5}))[0].0, "/rate_limit");
    }
}
