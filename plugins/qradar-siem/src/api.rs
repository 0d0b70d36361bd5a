//! The QRadar REST API as the plugin uses it: endpoint paths, the `Range` /
//! `Content-Range` paging headers, the filter expressions, and the error envelope
//! (`{"http_response": {"code", "message"}, "code", "description", "details",
//! "message"}`) turned into typed errors.

use portcullis_sdk::http::{Request, Response};
use portcullis_sdk::prelude::*;

use crate::config::{CREDENTIAL_SLOT, Config};

/// `GET /api/siem/offenses`.
pub const OFFENSES_PATH: &str = "/api/siem/offenses";
/// `GET /api/siem/source_addresses`.
pub const SOURCE_ADDRESSES_PATH: &str = "/api/siem/source_addresses";
/// `GET /api/siem/local_destination_addresses`.
pub const LOCAL_DESTINATION_ADDRESSES_PATH: &str = "/api/siem/local_destination_addresses";
/// `GET /api/analytics/rules`.
pub const RULES_PATH: &str = "/api/analytics/rules";

/// The offense fields requested with `fields=` (every one documented for
/// `GET /siem/offenses` since REST API 8.0).
pub const OFFENSE_FIELDS: &[&str] = &[
    "id",
    "description",
    "offense_type",
    "offense_source",
    "magnitude",
    "severity",
    "credibility",
    "relevance",
    "status",
    "categories",
    "rules",
    "source_address_ids",
    "local_destination_address_ids",
    "source_network",
    "destination_networks",
    "start_time",
    "last_updated_time",
    "close_time",
    "closing_reason_id",
    "event_count",
    "flow_count",
    "assigned_to",
    "follow_up",
    "protected",
    "domain_id",
    "log_sources",
];

/// Ascending by update time, then id: a total order, so `Range` offsets are stable
/// while nothing changes and a position can be re-found when something does.
pub const OFFENSE_SORT: &str = "+last_updated_time,+id";

/// `Range: items=<first>-<last>` (zero-based, inclusive).
pub fn range_header(first: u64, last: u64) -> String {
    format!("items={first}-{last}")
}

/// A parsed `Content-Range: items x-y/total` (or `items */total` when the requested
/// range lies beyond the last record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// First and last index returned, when any record was.
    pub range: Option<(u64, u64)>,
    /// Records matching the request in total.
    pub total: u64,
}

/// Parses a `Content-Range` header value in QRadar's `items` unit.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("items")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse::<u64>().ok()?;
    let range = range.trim();
    if range == "*" {
        return Some(ContentRange { range: None, total });
    }
    let (first, last) = range.split_once('-')?;
    let first = first.trim().parse::<u64>().ok()?;
    let last = last.trim().parse::<u64>().ok()?;
    if last < first {
        return None;
    }
    Some(ContentRange {
        range: Some((first, last)),
        total,
    })
}

/// A GET to `path` with the headers every QRadar request carries: `Version`,
/// `Accept: application/json` and the credential slot (the host adds `SEC`, or a
/// bearer token for an OAuth gateway).
pub fn get(cfg: &Config, path: &str) -> Request {
    Request::get(cfg.endpoint(path))
        .header("Version", &cfg.api_version)
        .header("Accept", "application/json")
        .credential(CREDENTIAL_SLOT)
}

/// The offenses request for one page.
pub fn offenses_request(cfg: &Config, filter: Option<&str>, first: u64, last: u64) -> Request {
    let mut r = get(cfg, OFFENSES_PATH)
        .query("fields", OFFENSE_FIELDS.join(","))
        .query("sort", OFFENSE_SORT)
        .header("Range", range_header(first, last));
    if let Some(f) = filter {
        r = r.query("filter", f);
    }
    r
}

/// The lower bound of a window's filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lower {
    /// No lower bound (the very first window without `start_time`).
    None,
    /// `last_updated_time > t`.
    After(i64),
    /// `last_updated_time >= t`, leaving out offenses already emitted at `t`.
    From {
        /// Inclusive lower bound.
        t: i64,
        /// Offense ids already emitted with `last_updated_time == t`.
        exclude: Vec<u64>,
    },
}

/// The `filter` of a window: the configured filter (parenthesised) ANDed with the
/// bounds on `last_updated_time`.
pub fn window_filter(extra: Option<&str>, lower: &Lower, upper: i64) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(f) = extra {
        parts.push(format!("({f})"));
    }
    match lower {
        Lower::None => {}
        Lower::After(t) => parts.push(format!("last_updated_time > {t}")),
        Lower::From { t, exclude } => {
            parts.push(format!("last_updated_time >= {t}"));
            if !exclude.is_empty() {
                let ids: Vec<String> = exclude.iter().map(u64::to_string).collect();
                parts.push(format!("id not in ({})", ids.join(",")));
            }
        }
    }
    parts.push(format!("last_updated_time <= {upper}"));
    parts.join(" and ")
}

/// `id in (a,b,c)` for a lookup.
pub fn ids_filter(ids: &[u64]) -> String {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("id in ({})", ids.join(","))
}

/// Longest QRadar message kept, in characters.
const MAX_MESSAGE_CHARS: usize = 400;

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_MESSAGE_CHARS).collect();
        t.push('…');
        t
    }
}

/// QRadar's own words for an error response: the envelope's `message`, its
/// `description` when it adds something, and the unique error `code`; other bodies
/// (a proxy's HTML, plain text) fall back to the SDK's generic extraction.
pub fn error_message(resp: &Response) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(&resp.body) {
        let text = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let message = text("/message");
        let description = text("/description");
        let http_message = text("/http_response/message");
        let code = v.get("code").and_then(Value::as_i64);
        if message.is_some() || description.is_some() || http_message.is_some() {
            let mut out = String::new();
            for part in [message, description, http_message].into_iter().flatten() {
                if out.contains(part) {
                    continue;
                }
                if !out.is_empty() {
                    out.push_str(" — ");
                }
                out.push_str(part);
            }
            if let Some(code) = code {
                out.push_str(&format!(" (QRadar error code {code})"));
            }
            return clip(&out);
        }
    }
    let generic = resp.error_message();
    if generic.trim().is_empty() {
        format!("HTTP {}", resp.status)
    } else {
        clip(&generic)
    }
}

/// Maps a non-2xx response to the error the host expects: 401/403 → auth,
/// 429 → rate-limited (with `Retry-After`), anything else (422 bad parameter or
/// filter, 409 conflict, 500, 503 service unavailable, ...) → upstream with the
/// status and QRadar's message.
pub fn check_status(resp: Response) -> Result<Response> {
    if resp.is_success() {
        return Ok(resp);
    }
    let message = error_message(&resp);
    Err(match resp.status {
        401 | 403 => Error::auth(format!("HTTP {}: {message}", resp.status)),
        429 => Error::rate_limited(resp.retry_after_secs(), message),
        s => Error::upstream(Some(s), message),
    })
}

/// The body of a list endpoint: a JSON array (QRadar answers `[]` when nothing
/// matches).
pub fn json_array(resp: &Response, what: &str) -> Result<Vec<Value>> {
    match serde_json::from_slice::<Value>(&resp.body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(other) => Err(Error::parse(format!(
            "{what}: expected a JSON array, found {}",
            portcullis_sdk::json_type_name(&other)
        ))),
        Err(e) => Err(Error::parse(format!("{what}: response is not JSON: {e}"))),
    }
}
