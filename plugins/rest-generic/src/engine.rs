//! The connector's logic, free of host imports: HTTP goes through a [`Transport`] and
//! time through a [`Clock`], so everything here runs in native unit tests.

use portcullis_sdk::clock::Clock;
use portcullis_sdk::http::{HttpError, Request, Response, Transport};
use portcullis_sdk::json_type_name;
use portcullis_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{Config, Mapped, Pagination};

/// The plugin id (= package name).
pub const PLUGIN_ID: &str = env!("CARGO_PKG_NAME");

/// How many sample events a connection test returns.
const SAMPLE_EVENTS: usize = 3;

/// The cursor the host persists between polls (JSON text).
///
/// `since` is the lower bound of the current window, `next` the position of the next
/// page inside it (absolute URL for link-header, token for cursor, index for offset;
/// `null` between windows), `window_start` the time the current window started, and
/// `newest` the newest record time seen so far in it (which becomes the next `since`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cursor {
    /// Lower bound of the current window (RFC 3339).
    pub since: Option<String>,
    /// Next page: URL, token or offset.
    pub next: Option<Value>,
    /// When the current window started (RFC 3339); null between windows.
    pub window_start: Option<String>,
    /// Newest record time seen in the current window (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
}

pub use portcullis_sdk::warnings::Warnings;

/// What `poll` produced.
#[derive(Clone, Debug, PartialEq)]
pub struct PollOutcome {
    /// Events, next cursor and whether more is ready.
    pub batch: Batch,
    /// Records skipped and other oddities, for the log.
    pub warnings: Warnings,
}

/// Where in a window the next request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Page {
    First,
    Url(Url),
    Token(String),
    Offset(u64),
}

impl Page {
    fn to_json(&self) -> Value {
        match self {
            Page::First => Value::Null,
            Page::Url(u) => Value::String(u.to_string()),
            Page::Token(t) => Value::String(t.clone()),
            Page::Offset(n) => Value::from(*n),
        }
    }
}

struct State {
    since: Option<Timestamp>,
    window_start: Timestamp,
    newest: Option<Timestamp>,
    page: Page,
}

fn parse_time_field(value: Option<&str>, what: &str, w: &mut Warnings) -> Option<Timestamp> {
    let s = value?;
    match Timestamp::parse(s) {
        Ok(t) => Some(t),
        Err(e) => {
            w.add(format!("saved cursor field {what} ignored: {e}"));
            None
        }
    }
}

/// Reads the saved cursor; an unreadable one starts a fresh window (duplicates are
/// removed by id downstream, nothing is skipped).
fn resume(cfg: &Config, cursor: Option<&str>, now: Timestamp, w: &mut Warnings) -> State {
    let cur = match cursor {
        None => Cursor::default(),
        Some(text) => match serde_json::from_str::<Cursor>(text) {
            Ok(c) => c,
            Err(e) => {
                w.add(format!(
                    "saved cursor is unreadable ({e}); starting a new window"
                ));
                Cursor::default()
            }
        },
    };
    let since = parse_time_field(cur.since.as_deref(), "since", w)
        .or_else(|| cfg.window.as_ref().and_then(|win| win.initial));
    let page = match (&cfg.pagination, cur.next) {
        (_, None | Some(Value::Null)) => Page::First,
        (Pagination::LinkHeader, Some(Value::String(u))) => match Url::parse(&u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Page::Url(url),
            _ => {
                w.add("saved next-page URL is invalid; restarting the window");
                Page::First
            }
        },
        (Pagination::Cursor { .. }, Some(Value::String(t))) if !t.is_empty() => Page::Token(t),
        (Pagination::Offset { .. }, Some(Value::Number(n))) if n.as_u64().is_some() => {
            Page::Offset(n.as_u64().unwrap_or(0))
        }
        _ => {
            w.add(
                "saved next-page position does not fit the pagination type; restarting the window",
            );
            Page::First
        }
    };
    if page == Page::First {
        return State {
            since,
            window_start: now,
            newest: None,
            page,
        };
    }
    State {
        since,
        window_start: parse_time_field(cur.window_start.as_deref(), "window_start", w)
            .unwrap_or(now),
        newest: parse_time_field(cur.newest.as_deref(), "newest", w),
        page,
    }
}

fn build_request(cfg: &Config, state: &State) -> Request {
    let mut req = match &state.page {
        // A next link already carries every parameter the upstream wants.
        Page::Url(url) => Request::get(url.as_str()),
        page => {
            let mut r = Request::get(cfg.endpoint.as_str());
            for (k, v) in &cfg.query {
                r = r.query(k, v);
            }
            if let Some(win) = &cfg.window {
                if let Some(since) = state.since {
                    r = r.query(&win.param, since.to_rfc3339());
                }
                if let Some(end) = &win.end_param {
                    r = r.query(end, state.window_start.to_rfc3339());
                }
            }
            if let Some((param, size)) = &cfg.page_size {
                r = r.query(param, size.to_string());
            }
            match (&cfg.pagination, page) {
                (Pagination::Cursor { param, .. }, Page::Token(t)) => r.query(param, t),
                (Pagination::Offset { start_param, .. }, Page::Offset(n)) => {
                    r.query(start_param, n.to_string())
                }
                (Pagination::Offset { start_param, .. }, _) => r.query(start_param, "0"),
                _ => r,
            }
        }
    };
    for (k, v) in &cfg.headers {
        req = req.header(k, v);
    }
    if let Some(slot) = &cfg.credential {
        req = req.credential(slot);
    }
    req
}

/// `HTTP <status>: <upstream message>` (just `HTTP <status>` for an empty body).
fn status_message(resp: &Response) -> String {
    if resp.body.iter().all(u8::is_ascii_whitespace) {
        format!("HTTP {}", resp.status)
    } else {
        format!("HTTP {}: {}", resp.status, resp.error_message())
    }
}

/// Maps a non-2xx response to the error the host expects.
fn check_status(resp: Response) -> Result<Response> {
    if resp.is_success() {
        return Ok(resp);
    }
    let message = resp.error_message();
    Err(match resp.status {
        401 | 403 => Error::auth(status_message(&resp)),
        429 => Error::rate_limited(resp.retry_after_secs(), message),
        s => Error::upstream(Some(s), message),
    })
}

fn parse_body(resp: &Response) -> Result<Value> {
    serde_json::from_slice(&resp.body)
        .map_err(|e| Error::parse(format!("response from {} is not valid JSON: {e}", resp.url)))
}

/// The records array of a response body (`null` counts as an empty page).
fn records<'a>(cfg: &Config, body: &'a Value) -> Result<&'a [Value]> {
    match body.pointer(&cfg.records) {
        None => Err(Error::parse(format!(
            "records pointer {:?} not found in the response",
            cfg.records
        ))),
        Some(Value::Array(a)) => Ok(a),
        Some(Value::Null) => Ok(&[]),
        Some(other) => Err(Error::parse(format!(
            "records pointer {:?} refers to {}, not an array",
            cfg.records,
            json_type_name(other)
        ))),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn resolve<T: Copy + std::str::FromStr>(mapped: &Mapped<T>, record: &Value) -> T {
    match mapped {
        Mapped::Fixed(t) => *t,
        Mapped::FromRecord {
            pointer,
            map,
            default,
        } => {
            let Some(key) = record.pointer(pointer).and_then(scalar_text) else {
                return *default;
            };
            map.iter()
                .find(|(k, _)| *k == key)
                .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key)))
                .map(|(_, t)| *t)
                .or_else(|| key.parse().ok())
                .unwrap_or(*default)
        }
    }
}

/// Maps one record to an event; also returns the record's own time, if it had one.
/// `Err` carries why the record was skipped.
pub fn map_record(
    cfg: &Config,
    record: &Value,
    now: Timestamp,
    w: &mut Warnings,
) -> std::result::Result<(Event, Option<Timestamp>), String> {
    let id = match record.pointer(&cfg.id) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(format!(
                "record skipped: id at {:?} is {}, not a non-empty string or number",
                cfg.id,
                json_type_name(other)
            ));
        }
        None => return Err(format!("record skipped: no id at {:?}", cfg.id)),
    };
    let record_time = cfg.time.as_ref().and_then(|p| match record.pointer(p) {
        None | Some(Value::Null) => {
            w.add(format!(
                "record has no time at {p:?}; using the current time"
            ));
            None
        }
        Some(v) => match Timestamp::from_json(v) {
            Ok(t) => Some(t),
            Err(_) => {
                w.add(format!(
                    "record time at {p:?} unusable (not ISO 8601 / RFC 3339 or epoch seconds/milliseconds); using the current time"
                ));
                None
            }
        },
    });
    let title = cfg
        .title
        .as_ref()
        .and_then(|p| record.pointer(p))
        .and_then(scalar_text)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| format!("{PLUGIN_ID} record {id}"));
    let mut builder = EventBuilder::new(id)
        .maybe_time(record_time)
        .kind(resolve(&cfg.kind, record))
        .severity(resolve(&cfg.severity, record))
        .title(title)
        .attributes(record.clone())
        .raw_json(record);
    for (kind, p) in &cfg.observables {
        match record.pointer(p) {
            Some(Value::Array(items)) => {
                for item in items {
                    if let Some(v) = scalar_text(item) {
                        builder = builder.observable(*kind, v);
                    }
                }
            }
            Some(v) => {
                if let Some(v) = scalar_text(v) {
                    builder = builder.observable(*kind, v);
                }
            }
            None => {}
        }
    }
    Ok((builder.build_at(now), record_time))
}

fn map_records(
    cfg: &Config,
    records: &[Value],
    now: Timestamp,
    w: &mut Warnings,
) -> (Vec<Event>, Option<Timestamp>) {
    let mut events = Vec::with_capacity(records.len());
    let mut newest: Option<Timestamp> = None;
    for r in records {
        match map_record(cfg, r, now, w) {
            Ok((event, time)) => {
                events.push(event);
                newest = newest.max(time);
            }
            Err(reason) => w.add(reason),
        }
    }
    (events, newest)
}

fn number_at(body: &Value, pointer: &str) -> Option<u64> {
    match body.pointer(pointer)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The page after this one in the same window, if any. An empty page always ends
/// the window (APIs that always return a next link or token would loop otherwise).
fn next_page(
    cfg: &Config,
    state: &State,
    request_url: Option<&Url>,
    resp: &Response,
    body: &Value,
    count: usize,
    w: &mut Warnings,
) -> Option<Page> {
    if count == 0 {
        return None;
    }
    match &cfg.pagination {
        Pagination::None => None,
        Pagination::LinkHeader => {
            let next = resp.next_link()?;
            if !matches!(next.scheme(), "http" | "https") {
                w.add("ignored a next link that is not http(s)");
                return None;
            }
            if Some(&next) == request_url {
                w.add("the next link points to the page just fetched; ending the window");
                return None;
            }
            Some(Page::Url(next))
        }
        Pagination::Cursor { next, .. } => {
            let token = body.pointer(next).and_then(scalar_text)?;
            if token.is_empty() {
                return None;
            }
            if state.page == Page::Token(token.clone()) {
                w.add("the upstream returned the same cursor again; ending the window");
                return None;
            }
            Some(Page::Token(token))
        }
        Pagination::Offset { total, .. } => {
            let start = match state.page {
                Page::Offset(n) => n,
                _ => 0,
            };
            let next = start.saturating_add(u64::try_from(count).unwrap_or(u64::MAX));
            let total = total.as_deref().and_then(|p| number_at(body, p));
            let more = match (total, &cfg.page_size) {
                (Some(t), _) => next < t,
                (None, Some((_, size))) => u64::try_from(count).unwrap_or(u64::MAX) >= *size,
                (None, None) => true,
            };
            more.then_some(Page::Offset(next))
        }
    }
}

/// One step of pull ingestion: fetches exactly one page.
pub fn poll(
    cfg: &Config,
    cursor: Option<&str>,
    transport: &dyn Transport,
    clock: &dyn Clock,
) -> Result<PollOutcome> {
    let mut w = Warnings::default();
    let now = clock.now();
    let state = resume(cfg, cursor, now, &mut w);
    let req = build_request(cfg, &state);
    let request_url = req.full_url().ok();
    let resp = check_status(req.send_with(transport)?)?;
    let body = parse_body(&resp)?;
    let recs = records(cfg, &body)?;
    let (events, page_newest) = map_records(cfg, recs, now, &mut w);
    let newest = state.newest.max(page_newest);
    let next = next_page(
        cfg,
        &state,
        request_url.as_ref(),
        &resp,
        &body,
        recs.len(),
        &mut w,
    );
    let fmt = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339());
    let (cursor, more) = match next {
        Some(page) => (
            Cursor {
                since: fmt(state.since),
                next: Some(page.to_json()),
                window_start: Some(state.window_start.to_rfc3339()),
                newest: fmt(newest),
            },
            true,
        ),
        None => {
            // The next window starts at the newest record seen, never later than the
            // moment this window started (future-dated records must not skip data)
            // and never earlier than the bound already reached.
            let end = newest.map_or(state.window_start, |n| n.min(state.window_start));
            (
                Cursor {
                    since: fmt(state.since.max(Some(end))),
                    next: None,
                    window_start: None,
                    newest: None,
                },
                false,
            )
        }
    };
    let cursor = serde_json::to_string(&cursor)
        .map_err(|e| Error::other(format!("cannot serialise the cursor: {e}")))?;
    Ok(PollOutcome {
        batch: Batch {
            events,
            cursor: Some(cursor),
            more,
        },
        warnings: w,
    })
}

/// Runs the first request of a fresh poll: stage `auth` (was the request accepted?)
/// and stage `sample` (were records parsed?), with up to 3 sample events.
pub fn test_connection(
    cfg: &Config,
    transport: &dyn Transport,
    clock: &dyn Clock,
) -> Result<TestReport> {
    let mut w = Warnings::default();
    let now = clock.now();
    let state = resume(cfg, None, now, &mut w);
    let req = build_request(cfg, &state);
    let started = clock.monotonic_ms();
    let sent = req.send_with(transport);
    let auth_ms = clock.monotonic_ms().saturating_sub(started);
    let not_run = |why: &str| TestStage::failed("sample", format!("not run: {why}"), None);
    let resp = match sent {
        Err(HttpError::Credential(m)) => {
            return Ok(TestReport {
                stages: vec![
                    TestStage::failed(
                        "auth",
                        format!("the host could not apply the credential: {m}"),
                        Some(auth_ms),
                    ),
                    not_run("authentication failed"),
                ],
                sample: vec![],
            });
        }
        Err(e) => {
            return Ok(TestReport {
                stages: vec![
                    TestStage::failed("auth", format!("request failed: {e}"), Some(auth_ms)),
                    not_run("the first request failed"),
                ],
                sample: vec![],
            });
        }
        Ok(r) => r,
    };
    match resp.status {
        401 | 403 => {
            return Ok(TestReport {
                stages: vec![
                    TestStage::failed("auth", status_message(&resp), Some(auth_ms)),
                    not_run("authentication failed"),
                ],
                sample: vec![],
            });
        }
        429 => {
            return Err(Error::rate_limited(
                resp.retry_after_secs(),
                resp.error_message(),
            ));
        }
        _ => {}
    }
    let auth = TestStage::passed(
        "auth",
        match &cfg.credential {
            Some(slot) => format!(
                "request with credential {slot:?} accepted (HTTP {})",
                resp.status
            ),
            None => format!(
                "no credential configured; upstream answered HTTP {}",
                resp.status
            ),
        },
        Some(auth_ms),
    );
    let sample = (|| -> Result<(usize, Vec<Event>)> {
        let resp = check_status(resp)?;
        let body = parse_body(&resp)?;
        let recs = records(cfg, &body)?;
        let (events, _) = map_records(cfg, recs, now, &mut w);
        Ok((recs.len(), events))
    })();
    let sample_ms = Some(clock.monotonic_ms().saturating_sub(started));
    Ok(match sample {
        Ok((count, events)) => {
            let skipped = count - events.len();
            let mut message = format!("{count} records parsed, {} mapped to events", events.len());
            if skipped > 0 {
                let reasons: Vec<&str> = w.entries().iter().map(|(m, _)| m.as_str()).collect();
                message.push_str(&format!(" ({skipped} skipped: {})", reasons.join("; ")));
            }
            TestReport {
                stages: vec![auth, TestStage::passed("sample", message, sample_ms)],
                sample: events.into_iter().take(SAMPLE_EVENTS).collect(),
            }
        }
        Err(e) => TestReport {
            stages: vec![auth, TestStage::failed("sample", e.to_string(), sample_ms)],
            sample: vec![],
        },
    })
}

/// Maps pushed input, one JSON record or a JSON array of records, to events.
pub fn normalize(cfg: &Config, input: &str, now: Timestamp) -> Result<(Vec<Event>, Warnings)> {
    let value: Value = serde_json::from_str(input)
        .map_err(|e| Error::parse(format!("pushed input is not valid JSON: {e}")))?;
    let mut w = Warnings::default();
    let events = match &value {
        Value::Array(items) => map_records(cfg, items, now, &mut w).0,
        single => map_records(cfg, std::slice::from_ref(single), now, &mut w).0,
    };
    Ok((events, w))
}
