//! Outbound HTTP through the host (the only way out of the sandbox).
//!
//! The host enforces the egress policy and authenticates requests that name a
//! credential slot; the plugin never sees the secret.
//!
//! ```no_run
//! use portcullis_sdk::http::Request;
//!
//! # fn main() -> Result<(), portcullis_sdk::Error> {
//! let response = Request::get("https://api.example.com/v1/alerts")
//!     .query("status", "open")
//!     .header("Accept", "application/json")
//!     .credential("api")
//!     .timeout_ms(10_000)
//!     .send()?
//!     .error_for_status()?;
//! let body: serde_json::Value = response.json()?;
//! # Ok(()) }
//! ```
//!
//! Code that should run in native unit tests takes a [`Transport`] and calls
//! [`Request::send_with`]; [`crate::testing::MockTransport`] answers from a script.

use std::fmt;

use serde::de::DeserializeOwned;
use url::Url;

use crate::error::Error;
use crate::link::{self, Link};
use crate::time::Timestamp;

/// HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
}

impl Method {
    /// The method name in upper case.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the host did not deliver a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Refused by the egress policy (host not granted, private address, credential
    /// not bound to that host, forbidden header).
    Denied(String),
    /// The request is malformed (bad URL, bad header).
    InvalidRequest(String),
    /// The credential could not be applied (unbound slot, token endpoint error).
    Credential(String),
    /// The call's deadline or the request timeout passed.
    Timeout,
    /// The response body exceeded the host's cap (bytes).
    TooLarge(u64),
    /// The per-call request budget is spent.
    BudgetExhausted(u32),
    /// Connection, TLS or protocol failure.
    Transport(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied(m) => write!(f, "denied: {m}"),
            HttpError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            HttpError::Credential(m) => write!(f, "credential error: {m}"),
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::TooLarge(n) => write!(f, "response larger than {n} bytes"),
            HttpError::BudgetExhausted(n) => write!(f, "request budget of {n} exhausted"),
            HttpError::Transport(m) => write!(f, "transport error: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Header fields in order; names are compared ASCII case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a field.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Replaces every field named `name` with one field.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.0.push((name, value.into()));
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields as name/value pairs.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

impl From<Vec<(String, String)>> for Headers {
    fn from(v: Vec<(String, String)>) -> Self {
        Headers(v)
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }
}

/// An outbound request, built fluently and sent through the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Absolute `http`/`https` URL, before [`Request::query`] parameters are added.
    pub url: String,
    /// Query parameters appended to the URL when sent.
    pub query: Vec<(String, String)>,
    /// Header fields.
    pub headers: Headers,
    /// Body.
    pub body: Option<Vec<u8>>,
    /// Credential slot the host authenticates the request with.
    pub credential: Option<String>,
    /// Per-request timeout (the host caps it by the call's deadline).
    pub timeout_ms: Option<u32>,
}

impl Request {
    /// A request with `method` to `url`.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            query: Vec::new(),
            headers: Headers::new(),
            body: None,
            credential: None,
            timeout_ms: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Appends a query parameter (percent-encoded when sent).
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Appends a header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Names the credential slot the host authenticates this request with.
    pub fn credential(mut self, slot: impl Into<String>) -> Self {
        self.credential = Some(slot.into());
        self
    }

    /// Sets a per-request timeout.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.headers.set("Content-Type", "application/json");
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// The URL that will be requested: [`Request::url`] with the query parameters
    /// appended. Fails when the URL is not an absolute `http`/`https` URL.
    pub fn full_url(&self) -> Result<Url, HttpError> {
        let mut url = Url::parse(&self.url)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL {:?}: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest(format!(
                "URL {:?} is not http or https",
                self.url
            )));
        }
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends the request through the host's `http` import.
    pub fn send(&self) -> Result<Response, HttpError> {
        self.send_with(&HostTransport)
    }

    /// Sends the request through `transport` (the host, or a test double).
    pub fn send_with(&self, transport: &dyn Transport) -> Result<Response, HttpError> {
        transport.send(self)
    }
}

/// Something that delivers requests: the host ([`HostTransport`]) or a test double
/// such as [`crate::testing::MockTransport`].
pub trait Transport {
    /// Sends `request` and waits for the whole response.
    fn send(&self, request: &Request) -> Result<Response, HttpError>;
}

/// The host's `http` import. Only usable inside a plugin (on other targets the
/// import is unreachable and panics).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostTransport;

impl Transport for HostTransport {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        use crate::__bindings::portcullis::connector::http as wit;
        let url = request.full_url()?;
        let method = match request.method {
            Method::Get => wit::Method::Get,
            Method::Head => wit::Method::Head,
            Method::Post => wit::Method::Post,
            Method::Put => wit::Method::Put,
            Method::Patch => wit::Method::Patch,
            Method::Delete => wit::Method::Delete,
            Method::Options => wit::Method::Options,
        };
        let req = wit::Request {
            method,
            url: url.into(),
            headers: request.headers.clone().into_vec(),
            body: request.body.clone(),
            credential: request.credential.clone(),
            timeout_ms: request.timeout_ms,
        };
        match wit::send(&req) {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: Headers::from(r.headers),
                body: r.body,
                url: r.url,
            }),
            Err(e) => Err(match e {
                wit::HttpError::Denied(m) => HttpError::Denied(m),
                wit::HttpError::InvalidRequest(m) => HttpError::InvalidRequest(m),
                wit::HttpError::Credential(m) => HttpError::Credential(m),
                wit::HttpError::Timeout => HttpError::Timeout,
                wit::HttpError::TooLarge(n) => HttpError::TooLarge(n),
                wit::HttpError::BudgetExhausted(n) => HttpError::BudgetExhausted(n),
                wit::HttpError::Transport(m) => HttpError::Transport(m),
            }),
        }
    }
}

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Header fields (the host removes credential material).
    pub headers: Headers,
    /// Body bytes.
    pub body: Vec<u8>,
    /// URL of the final response after redirects.
    pub url: String,
}

/// Longest upstream message kept in errors, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

impl Response {
    /// A response with `status` and `body` from `url`, no headers (for tests).
    pub fn new(status: u16, url: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Headers::new(),
            body: body.into(),
            url: url.into(),
        }
    }

    /// Adds a header field (builder style, for tests).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::parse(format!("response from {} is not UTF-8: {e}", self.url)))
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`; a [`Error::Parse`] naming the URL otherwise.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::parse(format!(
                "response from {} is not the expected JSON: {e}",
                self.url
            ))
        })
    }

    /// The final URL parsed, when it is a valid URL.
    pub fn final_url(&self) -> Option<Url> {
        Url::parse(&self.url).ok()
    }

    /// Every `Link` header value parsed, targets resolved against the final URL.
    pub fn links(&self) -> Vec<Link> {
        link::parse_all(self.headers.get_all("link"), self.final_url().as_ref())
    }

    /// The absolute target of the first `rel="next"` link, if any.
    pub fn next_link(&self) -> Option<Url> {
        link::find(&self.links(), "next").and_then(|l| l.url.clone())
    }

    /// Seconds to wait according to `Retry-After`: delta-seconds, or an HTTP date
    /// measured from the response's own `Date` header (no clock needed).
    pub fn retry_after_secs(&self) -> Option<u64> {
        let v = self.header("retry-after")?.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Some(secs);
        }
        let at = Timestamp::parse_http_date(v).ok()?;
        let date = Timestamp::parse_http_date(self.header("date")?).ok()?;
        let ms = at.millis_since(&date).max(0);
        u64::try_from((ms + 999) / 1000).ok()
    }

    /// A short message describing an error response, in the upstream's words when the
    /// body carries one (`message`, `error_description`, `error.message`, `error`,
    /// `detail`, `title`, `errors[0].message`), else the start of the body, else
    /// `HTTP <status>`.
    pub fn error_message(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            for p in [
                "/message",
                "/error_description",
                "/error/message",
                "/error",
                "/detail",
                "/title",
                "/errors/0/message",
                "/errors/0/detail",
                "/errors/0",
            ] {
                if let Some(s) = v.pointer(p).and_then(|m| m.as_str())
                    && !s.trim().is_empty()
                {
                    return truncate(s.trim());
                }
            }
        }
        let trimmed = text.trim();
        if trimmed.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            truncate(trimmed)
        }
    }

    /// `Ok(self)` for 1xx–3xx; otherwise the matching error: 401/403 →
    /// [`Error::Auth`], 429 → [`Error::RateLimited`] with `Retry-After`, any other
    /// status → [`Error::Upstream`] with the status, all with the upstream's message.
    pub fn error_for_status(self) -> Result<Self, Error> {
        match self.status {
            s if s < 400 => Ok(self),
            401 | 403 => Err(Error::auth(format!(
                "HTTP {}: {}",
                self.status,
                self.error_message()
            ))),
            429 => Err(Error::rate_limited(
                self.retry_after_secs(),
                self.error_message(),
            )),
            s => Err(Error::upstream(Some(s), self.error_message())),
        }
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_MESSAGE_CHARS).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url_appends_encoded_query() {
        let r = Request::get("https://a.test/x?keep=1")
            .query("q", "a b&c")
            .query("since", "2024-01-01T00:00:00Z");
        assert_eq!(
            r.full_url().map(String::from).ok().as_deref(),
            Some("https://a.test/x?keep=1&q=a+b%26c&since=2024-01-01T00%3A00%3A00Z")
        );
        assert!(matches!(
            Request::get("ftp://a.test/").full_url(),
            Err(HttpError::InvalidRequest(_))
        ));
        assert!(matches!(
            Request::get("/relative").full_url(),
            Err(HttpError::InvalidRequest(_))
        ));
    }

    #[test]
    fn builder_fields() {
        let r = Request::post("https://a.test/")
            .header("X-A", "1")
            .credential("api")
            .timeout_ms(500)
            .json(&serde_json::json!({"a": 1}));
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.headers.get("content-type"), Some("application/json"));
        assert_eq!(r.headers.get("x-a"), Some("1"));
        assert_eq!(r.credential.as_deref(), Some("api"));
        assert_eq!(r.timeout_ms, Some(500));
        assert_eq!(r.body.as_deref(), Some(&b"{\"a\":1}"[..]));
    }

    #[test]
    fn headers_case_insensitive() {
        let h: Headers = [("Link", "<a>"), ("link", "<b>"), ("X", "1")]
            .into_iter()
            .collect();
        assert_eq!(h.get("LINK"), Some("<a>"));
        assert_eq!(h.get_all("Link").collect::<Vec<_>>(), ["<a>", "<b>"]);
        assert!(!h.contains("y"));
        let mut h = h;
        h.set("LINK", "<c>");
        assert_eq!(h.get_all("link").collect::<Vec<_>>(), ["<c>"]);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn response_helpers() {
        let r = Response::new(200, "https://a.test/items?page=1", r#"{"a":[1,2]}"#)
            .with_header("Link", "</items?page=2>; rel=\"next\"")
            .with_header("LINK", "</items?page=9>; rel=\"last\"");
        let v: serde_json::Value = r.json().unwrap_or_default();
        assert_eq!(v["a"][1], 2);
        assert_eq!(
            r.next_link().map(String::from).as_deref(),
            Some("https://a.test/items?page=2")
        );
        assert_eq!(r.links().len(), 2);
        let bad = Response::new(200, "https://a.test/", "nope");
        let err = bad.json::<serde_json::Value>().err();
        assert!(matches!(err, Some(Error::Parse(m)) if m.contains("https://a.test/")));
    }

    #[test]
    fn status_mapping() {
        let auth = Response::new(401, "u", r#"{"message":"Bad credentials"}"#).error_for_status();
        assert_eq!(auth.err(), Some(Error::auth("HTTP 401: Bad credentials")));
        let rl = Response::new(429, "u", "slow down")
            .with_header("Retry-After", "120")
            .error_for_status();
        assert_eq!(rl.err(), Some(Error::rate_limited(Some(120), "slow down")));
        let rl = Response::new(429, "u", "")
            .with_header("Retry-After", "Wed, 21 Oct 2015 07:28:30 GMT")
            .with_header("Date", "Wed, 21 Oct 2015 07:28:00 GMT")
            .error_for_status();
        assert_eq!(rl.err(), Some(Error::rate_limited(Some(30), "HTTP 429")));
        let up =
            Response::new(503, "u", r#"{"error":{"message":"maintenance"}}"#).error_for_status();
        assert_eq!(up.err(), Some(Error::upstream(Some(503), "maintenance")));
        let up = Response::new(500, "u", "x".repeat(1000)).error_for_status();
        assert!(
            matches!(up, Err(Error::Upstream { message, .. }) if message.chars().count() == 301)
        );
        assert!(Response::new(304, "u", "").error_for_status().is_ok());
        let nf = Response::new(404, "u", r#"{"errors":[{"message":"no such path"}]}"#);
        assert_eq!(nf.error_message(), "no such path");
    }
}
