//! The connector configuration: parsed and checked in one pass that reports every
//! problem with its RFC 6901 path (`docs/internal-contracts.md`, `rest-generic`).
//!
//! The host validates the JSON Schema the plugin declares (`config.schema.json`);
//! this parser does the same type checks (so the plugin never relies on it) plus what
//! a schema cannot: pointer syntax, URL parsing and joining, the credential slot name,
//! pagination/page-size coherence and parameter-name clashes.

use portcullis_sdk::config;
use portcullis_sdk::json_type_name;
use portcullis_sdk::pointer;
use portcullis_sdk::prelude::*;
use serde_json::Map;
use url::Url;

/// The only credential slot this plugin declares.
pub const CREDENTIAL_SLOT: &str = "api";

/// A checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `base_url` joined with `path` (may carry a query from `path`).
    pub endpoint: Url,
    /// Fixed query parameters.
    pub query: Vec<(String, String)>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Pointer to the records array in a response (`""` = the body).
    pub records: String,
    /// Pointer to a record's id.
    pub id: String,
    /// Pointer to a record's time.
    pub time: Option<String>,
    /// Pointer to a record's title.
    pub title: Option<String>,
    /// Incremental window.
    pub window: Option<Window>,
    /// How to fetch the next page.
    pub pagination: Pagination,
    /// Page size to request, and the parameter carrying it.
    pub page_size: Option<(String, u64)>,
    /// Credential slot to authenticate with.
    pub credential: Option<String>,
    /// Event kind.
    pub kind: Mapped<EventKind>,
    /// Event severity.
    pub severity: Mapped<Severity>,
    /// Observables to extract.
    pub observables: Vec<(ObservableKind, String)>,
}

/// The incremental window settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Query parameter carrying the lower bound.
    pub param: String,
    /// Lower bound of the first window (else the parameter is omitted then).
    pub initial: Option<Timestamp>,
    /// Query parameter carrying the upper bound (the window's start time).
    pub end_param: Option<String>,
}

/// Pagination style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pagination {
    /// Follow the RFC 8288 `rel="next"` link.
    LinkHeader,
    /// A token from the body, sent back in a query parameter.
    Cursor {
        /// Query parameter carrying the token.
        param: String,
        /// Pointer to the next token in the response body.
        next: String,
    },
    /// A start index in a query parameter.
    Offset {
        /// Query parameter carrying the start index.
        start_param: String,
        /// Pointer to the total number of results in the response body.
        total: Option<String>,
    },
    /// A single page.
    None,
}

/// A value that is fixed or taken from each record through a map.
#[derive(Clone, Debug, PartialEq)]
pub enum Mapped<T> {
    /// Always this value.
    Fixed(T),
    /// Looked up from the record.
    FromRecord {
        /// Pointer to the record field.
        pointer: String,
        /// Upstream value → our value.
        map: Vec<(String, T)>,
        /// When nothing matches.
        default: T,
    },
}

const TOP_LEVEL: &[&str] = &[
    "base_url",
    "path",
    "query",
    "headers",
    "records",
    "id",
    "time",
    "title",
    "window",
    "pagination",
    "page_size",
    "page_size_param",
    "credential",
    "kind",
    "severity",
    "observables",
];

/// Headers the plugin refuses in `headers`: credentials go through the slot, and the
/// others are set by the host's HTTP client.
const REFUSED_HEADERS: &[(&str, &str)] = &[
    (
        "authorization",
        "credentials do not belong in the configuration: bind one to the `api` slot and set `credential`",
    ),
    (
        "proxy-authorization",
        "credentials do not belong in the configuration",
    ),
    ("cookie", "credentials do not belong in the configuration"),
    ("host", "set by the host"),
    ("content-length", "set by the host"),
    ("transfer-encoding", "set by the host"),
    ("connection", "set by the host"),
];

/// Collects errors while walking the document.
struct Checker {
    errors: ConfigErrors,
}

impl Checker {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(path, message);
    }

    /// Reports keys of `obj` outside `allowed`.
    fn unknown_keys(&mut self, obj: &Map<String, Value>, base: &str, allowed: &[&str]) {
        config::unknown_keys(&mut self.errors, obj, base, allowed);
    }

    fn string<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
    ) -> Option<&'a str> {
        if required && !obj.contains_key(key) {
            self.err(&pointer::join(base, key), "required");
            return None;
        }
        config::string(&mut self.errors, obj, base, key)
    }

    fn non_empty(
        &mut self,
        obj: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let s = self.string(obj, base, key, required)?;
        if s.trim().is_empty() {
            self.err(&pointer::join(base, key), "must not be empty");
            return None;
        }
        Some(s.to_string())
    }

    fn pointer(
        &mut self,
        obj: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let s = self.string(obj, base, key, required)?;
        match pointer::validate(s) {
            Ok(()) => Some(s.to_string()),
            Err(e) => {
                self.err(&pointer::join(base, key), e);
                None
            }
        }
    }

    fn object<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.err(
                    path,
                    format!("must be an object, found {}", json_type_name(other)),
                );
                None
            }
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Config {
    /// Parses and checks `doc`, reporting every problem.
    pub fn parse(doc: &Value) -> Result<Config> {
        let mut c = Checker {
            errors: ConfigErrors::new(),
        };
        let Some(obj) = c.object(doc, "") else {
            return Err(Error::Config(c.errors.into_iter().collect()));
        };
        c.unknown_keys(obj, "", TOP_LEVEL);

        let endpoint = parse_endpoint(&mut c, obj);
        let query = parse_query(&mut c, obj);
        let headers = parse_headers(&mut c, obj);
        let records = c.pointer(obj, "", "records", false).unwrap_or_default();
        let id = c.pointer(obj, "", "id", true);
        let time = c.pointer(obj, "", "time", false);
        let title = c.pointer(obj, "", "title", false);
        let window = obj.get("window").and_then(|v| parse_window(&mut c, v));
        let pagination = match obj.get("pagination") {
            None => Some(Pagination::None),
            Some(v) => parse_pagination(&mut c, v),
        };
        let page_size = parse_page_size(&mut c, obj, pagination.as_ref());
        let credential = c.string(obj, "", "credential", false).map(str::to_string);
        if let Some(slot) = &credential
            && slot != CREDENTIAL_SLOT
        {
            c.err(
                "/credential",
                format!("unknown credential slot {slot:?}: this plugin declares only {CREDENTIAL_SLOT:?}"),
            );
        }
        let kind = parse_mapped(&mut c, obj, "kind", EventKind::Log);
        let severity = parse_mapped(&mut c, obj, "severity", Severity::Unknown);
        let observables = parse_observables(&mut c, obj);

        check_param_clashes(
            &mut c,
            &query,
            window.as_ref(),
            pagination.as_ref(),
            page_size.as_ref(),
        );

        if !c.errors.is_empty() {
            return Err(Error::Config(c.errors.into_iter().collect()));
        }
        match (endpoint, id, pagination, kind, severity) {
            (Some(endpoint), Some(id), Some(pagination), Some(kind), Some(severity)) => {
                Ok(Config {
                    endpoint,
                    query,
                    headers,
                    records,
                    id,
                    time,
                    title,
                    window,
                    pagination,
                    page_size,
                    credential,
                    kind,
                    severity,
                    observables,
                })
            }
            // Every `None` above recorded an error, so this is unreachable in practice;
            // answer with a document-level error rather than panic.
            _ => Err(Error::config("", "configuration incomplete")),
        }
    }
}

fn parse_endpoint(c: &mut Checker, obj: &Map<String, Value>) -> Option<Url> {
    let base = c.string(obj, "", "base_url", true);
    let path = c.string(obj, "", "path", true);
    let base = base.and_then(|b| match Url::parse(b) {
        Err(e) => {
            c.err("/base_url", format!("not a valid URL: {e}"));
            None
        }
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            c.err("/base_url", "must be an http or https URL");
            None
        }
        Ok(u) if u.query().is_some() || u.fragment().is_some() => {
            c.err(
                "/base_url",
                "must not contain a query or fragment (use `query` for parameters)",
            );
            None
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            c.err(
                "/base_url",
                "must not contain user information: bind a credential to the `api` slot instead",
            );
            None
        }
        Ok(u) => Some(u),
    });
    let path = path.and_then(|p| {
        if p.contains('#') {
            c.err("/path", "must not contain a fragment");
            None
        } else if p.starts_with("//") || p.contains("://") {
            c.err("/path", "must be a path below base_url, not a URL");
            None
        } else {
            Some(p)
        }
    });
    let (base, path) = (base?, path?);
    let mut joined = base.as_str().trim_end_matches('/').to_string();
    if !path.is_empty() && !path.starts_with('/') && !path.starts_with('?') {
        joined.push('/');
    }
    joined.push_str(path);
    match Url::parse(&joined) {
        Ok(u) => Some(u),
        Err(e) => {
            c.err("/path", format!("base_url + path is not a valid URL: {e}"));
            None
        }
    }
}

fn parse_query(c: &mut Checker, obj: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(v) = obj.get("query") else {
        return out;
    };
    let Some(m) = c.object(v, "/query") else {
        return out;
    };
    for (k, v) in m {
        let path = pointer::join("/query", k);
        if k.is_empty() {
            c.err(&path, "parameter name must not be empty");
            continue;
        }
        match v {
            Value::String(s) => out.push((k.clone(), s.clone())),
            Value::Number(n) => out.push((k.clone(), n.to_string())),
            Value::Bool(b) => out.push((k.clone(), b.to_string())),
            other => c.err(
                &path,
                format!(
                    "must be a string, number or boolean, found {}",
                    json_type_name(other)
                ),
            ),
        }
    }
    out
}

fn parse_headers(c: &mut Checker, obj: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(v) = obj.get("headers") else {
        return out;
    };
    let Some(m) = c.object(v, "/headers") else {
        return out;
    };
    for (k, v) in m {
        let path = pointer::join("/headers", k);
        if !is_token(k) {
            c.err(&path, "not a valid HTTP header name");
            continue;
        }
        if let Some((_, why)) = REFUSED_HEADERS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
        {
            c.err(&path, format!("header not allowed here: {why}"));
            continue;
        }
        match v {
            Value::String(s) if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) => {
                c.err(&path, "header value must not contain CR, LF or NUL");
            }
            Value::String(s) => out.push((k.clone(), s.clone())),
            other => c.err(
                &path,
                format!("must be a string, found {}", json_type_name(other)),
            ),
        }
    }
    out
}

fn parse_window(c: &mut Checker, v: &Value) -> Option<Window> {
    let m = c.object(v, "/window")?;
    c.unknown_keys(m, "/window", &["param", "initial", "end_param"]);
    let param = c.non_empty(m, "/window", "param", true);
    let initial =
        c.string(m, "/window", "initial", false)
            .and_then(|s| match Timestamp::parse(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    c.err("/window/initial", e.to_string());
                    None
                }
            });
    let end_param = c.non_empty(m, "/window", "end_param", false);
    Some(Window {
        param: param?,
        initial,
        end_param,
    })
}

fn parse_pagination(c: &mut Checker, v: &Value) -> Option<Pagination> {
    let m = c.object(v, "/pagination")?;
    let ty = c.string(m, "/pagination", "type", true)?;
    match ty {
        "link-header" => {
            c.unknown_keys(m, "/pagination", &["type"]);
            Some(Pagination::LinkHeader)
        }
        "none" => {
            c.unknown_keys(m, "/pagination", &["type"]);
            Some(Pagination::None)
        }
        "cursor" => {
            c.unknown_keys(m, "/pagination", &["type", "param", "next"]);
            let param = c.non_empty(m, "/pagination", "param", true);
            let next = c.pointer(m, "/pagination", "next", true);
            if next.as_deref() == Some("") {
                c.err(
                    "/pagination/next",
                    "must point into the body, not be the whole body",
                );
                return None;
            }
            Some(Pagination::Cursor {
                param: param?,
                next: next?,
            })
        }
        "offset" => {
            c.unknown_keys(
                m,
                "/pagination",
                &["type", "start_param", "size_param", "total"],
            );
            let start_param = c.non_empty(m, "/pagination", "start_param", true);
            // `size_param` is read by `parse_page_size`.
            c.non_empty(m, "/pagination", "size_param", false);
            let total = c.pointer(m, "/pagination", "total", false);
            Some(Pagination::Offset {
                start_param: start_param?,
                total,
            })
        }
        other => {
            c.err(
                "/pagination/type",
                format!("unknown pagination type {other:?} (expected link-header, cursor, offset or none)"),
            );
            None
        }
    }
}

fn parse_page_size(
    c: &mut Checker,
    obj: &Map<String, Value>,
    pagination: Option<&Pagination>,
) -> Option<(String, u64)> {
    let size = match obj.get("page_size") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=u64::from(u32::MAX)).contains(&n) => Some(n),
            _ => {
                c.err("/page_size", "must be a positive integer");
                None
            }
        },
    };
    let explicit = c.non_empty(obj, "", "page_size_param", false);
    let offset_size = match (pagination, obj.get("pagination")) {
        (Some(Pagination::Offset { .. }), Some(Value::Object(p))) => p
            .get("size_param")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string),
        _ => None,
    };
    if let (Some(e), Some(o)) = (&explicit, &offset_size)
        && e != o
    {
        c.err(
            "/page_size_param",
            format!("conflicts with pagination.size_param {o:?}; set only one of them"),
        );
    }
    let explicit_set = explicit.is_some();
    let param = explicit.or(offset_size);
    match (size, param) {
        (Some(n), Some(p)) => Some((p, n)),
        (Some(_), None) => {
            c.err(
                "/page_size",
                "page_size needs page_size_param (or pagination.size_param with offset pagination) to name the query parameter",
            );
            None
        }
        (None, _) => {
            if explicit_set && !obj.contains_key("page_size") {
                c.err(
                    "/page_size_param",
                    "page_size_param is set but page_size is not",
                );
            }
            None
        }
    }
}

fn parse_mapped<T>(
    c: &mut Checker,
    obj: &Map<String, Value>,
    key: &str,
    fallback: T,
) -> Option<Mapped<T>>
where
    T: std::str::FromStr + Copy,
    T::Err: std::fmt::Display,
{
    let base = pointer::join("", key);
    let parse_name = |c: &mut Checker, path: &str, v: &Value| -> Option<T> {
        match v {
            Value::String(s) => match s.parse::<T>() {
                Ok(t) => Some(t),
                Err(e) => {
                    c.err(path, e.to_string());
                    None
                }
            },
            other => {
                c.err(
                    path,
                    format!("must be a string, found {}", json_type_name(other)),
                );
                None
            }
        }
    };
    match obj.get(key) {
        None => Some(Mapped::Fixed(fallback)),
        Some(v @ Value::String(_)) => parse_name(c, &base, v).map(Mapped::Fixed),
        Some(Value::Object(m)) => {
            c.unknown_keys(m, &base, &["pointer", "map", "default"]);
            let ptr = c.pointer(m, &base, "pointer", true);
            let mut map = Vec::new();
            if let Some(mv) = m.get("map") {
                let map_path = pointer::join(&base, "map");
                if let Some(mm) = c.object(mv, &map_path) {
                    for (k, v) in mm {
                        if let Some(t) = parse_name(c, &pointer::join(&map_path, k), v) {
                            map.push((k.clone(), t));
                        }
                    }
                }
            }
            let default = match m.get("default") {
                None => Some(fallback),
                Some(v) => parse_name(c, &pointer::join(&base, "default"), v),
            };
            Some(Mapped::FromRecord {
                pointer: ptr?,
                map,
                default: default?,
            })
        }
        Some(other) => {
            c.err(
                &base,
                format!(
                    "must be a name or an object {{pointer, map, default}}, found {}",
                    json_type_name(other)
                ),
            );
            None
        }
    }
}

fn parse_observables(c: &mut Checker, obj: &Map<String, Value>) -> Vec<(ObservableKind, String)> {
    let mut out = Vec::new();
    let Some(v) = obj.get("observables") else {
        return out;
    };
    let Some(items) = v.as_array() else {
        c.err(
            "/observables",
            format!("must be an array, found {}", json_type_name(v)),
        );
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let base = pointer::join_index("/observables", i);
        let Some(m) = c.object(item, &base) else {
            continue;
        };
        c.unknown_keys(m, &base, &["kind", "pointer"]);
        let kind =
            c.string(m, &base, "kind", true)
                .and_then(|k| match k.parse::<ObservableKind>() {
                    Ok(k) => Some(k),
                    Err(e) => {
                        c.err(&pointer::join(&base, "kind"), e.to_string());
                        None
                    }
                });
        let ptr = c.pointer(m, &base, "pointer", true);
        if let (Some(k), Some(p)) = (kind, ptr) {
            out.push((k, p));
        }
    }
    out
}

/// A fixed query parameter must not be one the plugin sets itself.
fn check_param_clashes(
    c: &mut Checker,
    query: &[(String, String)],
    window: Option<&Window>,
    pagination: Option<&Pagination>,
    page_size: Option<&(String, u64)>,
) {
    let mut managed: Vec<(&str, &str)> = Vec::new();
    if let Some(w) = window {
        managed.push((&w.param, "/window/param"));
        if let Some(e) = &w.end_param {
            managed.push((e, "/window/end_param"));
        }
    }
    match pagination {
        Some(Pagination::Cursor { param, .. }) => managed.push((param, "/pagination/param")),
        Some(Pagination::Offset { start_param, .. }) => {
            managed.push((start_param, "/pagination/start_param"))
        }
        _ => {}
    }
    if let Some((p, _)) = page_size {
        managed.push((p, "/page_size_param"));
    }
    for (name, _) in query {
        if let Some((_, owner)) = managed.iter().find(|(m, _)| *m == name.as_str()) {
            c.err(
                &pointer::join("/query", name),
                format!("parameter {name:?} is set by the plugin ({owner}); remove it from query"),
            );
        }
    }
    for (i, (a, pa)) in managed.iter().enumerate() {
        if let Some((_, pb)) = managed.iter().skip(i + 1).find(|(b, _)| b == a) {
            c.err(pb, format!("parameter {a:?} is already used by {pa}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(doc: Value) -> Vec<(String, String)> {
        match Config::parse(&doc) {
            Err(Error::Config(list)) => list.into_iter().map(|e| (e.path, e.message)).collect(),
            other => panic!("expected config errors, got {other:?}"),
        }
    }

    fn paths(doc: Value) -> Vec<String> {
        errors(doc).into_iter().map(|(p, _)| p).collect()
    }

    fn ok(doc: Value) -> Config {
        Config::parse(&doc).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn contract_example_parses() {
        let cfg = ok(json!({
            "base_url": "https://api.example.com",
            "path": "/v1/alerts",
            "query": {"status": "open", "limit_days": 7, "verbose": true},
            "headers": {"Accept": "application/json"},
            "records": "/data",
            "id": "/id",
            "time": "/created_at",
            "title": "/name",
            "window": {"param": "since", "initial": "2024-01-01T00:00:00Z", "end_param": "until"},
            "pagination": {"type": "link-header"},
            "page_size": 100,
            "page_size_param": "per_page",
            "credential": "api",
            "kind": "alert",
            "severity": {"pointer": "/sev", "map": {"P1": "critical", "3": "medium"}, "default": "unknown"},
            "observables": [{"kind": "ip", "pointer": "/src_ip"}]
        }));
        assert_eq!(cfg.endpoint.as_str(), "https://api.example.com/v1/alerts");
        assert_eq!(
            cfg.query,
            [
                ("limit_days".to_string(), "7".to_string()),
                ("status".to_string(), "open".to_string()),
                ("verbose".to_string(), "true".to_string())
            ]
        );
        assert_eq!(cfg.page_size, Some(("per_page".to_string(), 100)));
        assert_eq!(cfg.kind, Mapped::Fixed(EventKind::Alert));
        assert_eq!(
            cfg.severity,
            Mapped::FromRecord {
                pointer: "/sev".into(),
                map: vec![
                    ("3".into(), Severity::Medium),
                    ("P1".into(), Severity::Critical)
                ],
                default: Severity::Unknown
            }
        );
        let w = cfg.window.unwrap_or_else(|| panic!("window"));
        assert_eq!(
            w.initial.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(w.end_param.as_deref(), Some("until"));
        assert_eq!(
            cfg.observables,
            [(ObservableKind::Ip, "/src_ip".to_string())]
        );
    }

    #[test]
    fn minimal_defaults() {
        let cfg = ok(json!({"base_url": "http://h.test:8080/api/", "path": "items", "id": "/id"}));
        assert_eq!(cfg.endpoint.as_str(), "http://h.test:8080/api/items");
        assert_eq!(cfg.records, "");
        assert_eq!(cfg.pagination, Pagination::None);
        assert_eq!(cfg.kind, Mapped::Fixed(EventKind::Log));
        assert_eq!(cfg.severity, Mapped::Fixed(Severity::Unknown));
        assert!(cfg.credential.is_none() && cfg.window.is_none() && cfg.page_size.is_none());
        let cfg = ok(json!({"base_url": "https://h.test", "path": "/x?fixed=1", "id": "/id"}));
        assert_eq!(cfg.endpoint.as_str(), "https://h.test/x?fixed=1");
    }

    #[test]
    fn pagination_variants() {
        let base = |p: Value| json!({"base_url": "https://h.test", "path": "/", "id": "/id", "pagination": p});
        assert_eq!(
            ok(base(
                json!({"type": "cursor", "param": "cursor", "next": "/meta/next_cursor"})
            ))
            .pagination,
            Pagination::Cursor {
                param: "cursor".into(),
                next: "/meta/next_cursor".into()
            }
        );
        let cfg = ok(base(
            json!({"type": "offset", "start_param": "startIndex", "size_param": "resultsPerPage", "total": "/totalResults"}),
        ));
        assert_eq!(
            cfg.pagination,
            Pagination::Offset {
                start_param: "startIndex".into(),
                total: Some("/totalResults".into())
            }
        );
        assert_eq!(
            cfg.page_size, None,
            "no page_size: the size parameter is not sent"
        );
        let mut doc = base(
            json!({"type": "offset", "start_param": "startIndex", "size_param": "resultsPerPage"}),
        );
        doc["page_size"] = json!(2000);
        assert_eq!(
            ok(doc).page_size,
            Some(("resultsPerPage".to_string(), 2000))
        );
        assert_eq!(
            ok(base(json!({"type": "none"}))).pagination,
            Pagination::None
        );
    }

    #[test]
    fn reports_every_error_with_paths() {
        let got = paths(json!({
            "base_url": "ftp://h.test",
            "path": 3,
            "query": {"a": [1], "since": "x"},
            "headers": {"Authorization": "Bearer x", "Bad Name": "v", "X-Ok": 1},
            "records": "data",
            "id": "/i~d",
            "time": "/t",
            "window": {"param": "since", "initial": "yesterday", "extra": 1},
            "pagination": {"type": "cursor", "param": ""},
            "page_size": 0,
            "credential": "other",
            "kind": "event",
            "severity": {"map": {"x": "loud"}, "default": 3},
            "observables": [{"kind": "ipv4", "pointer": "src"}, "x"],
            "surprise": true
        }));
        let expected = [
            "/surprise",
            "/base_url",
            "/path",
            "/query/a",
            "/headers/Authorization",
            "/headers/Bad Name",
            "/headers/X-Ok",
            "/records",
            "/id",
            "/window/extra",
            "/window/initial",
            "/pagination/param",
            "/pagination/next",
            "/page_size",
            "/credential",
            "/kind",
            "/severity/pointer",
            "/severity/map/x",
            "/severity/default",
            "/observables/0/kind",
            "/observables/0/pointer",
            "/observables/1",
            "/query/since",
        ];
        for p in expected {
            assert!(
                got.iter().any(|g| g == p),
                "missing error at {p}; got {got:?}"
            );
        }
        assert_eq!(got.len(), expected.len(), "{got:?}");
    }

    #[test]
    fn document_must_be_object_and_required_fields() {
        assert_eq!(paths(json!([1])), [""]);
        assert_eq!(paths(json!({})), ["/base_url", "/path", "/id"]);
    }

    #[test]
    fn url_rules() {
        let e = |b: &str, p: &str| paths(json!({"base_url": b, "path": p, "id": "/id"}));
        assert_eq!(e("not a url", "/x"), ["/base_url"]);
        assert_eq!(e("https://h.test/?a=1", "/x"), ["/base_url"]);
        assert_eq!(e("https://u:p@h.test", "/x"), ["/base_url"]);
        assert_eq!(e("https://h.test", "https://evil.test/x"), ["/path"]);
        assert_eq!(e("https://h.test", "//evil.test/x"), ["/path"]);
        assert_eq!(e("https://h.test", "/x#frag"), ["/path"]);
    }

    #[test]
    fn page_size_rules() {
        let e = |extra: Value| {
            let mut doc = json!({"base_url": "https://h.test", "path": "/", "id": "/id"});
            if let (Some(d), Some(x)) = (doc.as_object_mut(), extra.as_object()) {
                d.extend(x.clone());
            }
            paths(doc)
        };
        assert_eq!(e(json!({"page_size": 10})), ["/page_size"]);
        assert_eq!(
            e(json!({"page_size": 1.5, "page_size_param": "n"})),
            ["/page_size"]
        );
        assert_eq!(e(json!({"page_size_param": "n"})), ["/page_size_param"]);
        assert_eq!(
            e(
                json!({"page_size_param": "n", "pagination": {"type": "offset", "start_param": "s"}})
            ),
            ["/page_size_param"]
        );
        assert!(
            Config::parse(
                &json!({"base_url": "https://h.test", "path": "/", "id": "/id",
                "pagination": {"type": "offset", "start_param": "s", "size_param": "n"}})
            )
            .is_ok()
        );
        assert_eq!(
            e(json!({"page_size": 5, "page_size_param": "n",
                     "pagination": {"type": "offset", "start_param": "s", "size_param": "m"}})),
            ["/page_size_param"]
        );
        assert_eq!(
            e(json!({"page_size": 5, "page_size_param": "s",
                     "pagination": {"type": "offset", "start_param": "s"}})),
            ["/page_size_param"]
        );
        assert_eq!(
            e(json!({"window": {"param": "t", "end_param": "t"}})),
            ["/window/end_param"]
        );
        assert_eq!(
            e(json!({"pagination": {"type": "pages"}})),
            ["/pagination/type"]
        );
        assert_eq!(
            e(json!({"pagination": {"type": "link-header", "next": "/x"}})),
            ["/pagination/next"]
        );
        assert_eq!(
            e(json!({"pagination": {"type": "cursor", "param": "c", "next": ""}})),
            ["/pagination/next"]
        );
    }

    #[test]
    fn pointer_paths_are_escaped() {
        let got = paths(json!({
            "base_url": "https://h.test", "path": "/", "id": "/id",
            "query": {"a/b~c": null}
        }));
        assert_eq!(got, ["/query/a~1b~0c"]);
    }
}
