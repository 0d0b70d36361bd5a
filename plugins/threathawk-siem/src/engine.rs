//! The connector's logic, free of host imports: HTTP goes through a [`Transport`] and
//! time through a [`Clock`], so everything here runs in native unit tests.
//!
//! Incremental reading: a *window* is one `created_after` query walked page by page
//! with the upstream's cursor (`cursor` / `pagination.next_cursor`); each `poll` fetches
//! one page and saves the position. When a window ends, the next one starts at the
//! newest `created_at` seen minus `overlap_secs` (never earlier than the current lower
//! bound), and the ids of the alerts seen in that overlap are remembered so they are
//! not emitted a second time. That is correct whether ThreatHawk's `created_after` is
//! inclusive or exclusive (the article does not say) and catches alerts indexed late
//! with a timestamp inside the overlap.

use portcullis_sdk::clock::Clock;
use portcullis_sdk::http::{HttpError, Request, Response, Transport};
use portcullis_sdk::json_type_name;
use portcullis_sdk::prelude::*;
use portcullis_sdk::warnings::Warnings;
use serde::{Deserialize, Serialize};

use crate::config::{CREDENTIAL_SLOT, Config};
use crate::mapping;

/// The plugin id (= package name).
pub const PLUGIN_ID: &str = env!("CARGO_PKG_NAME");
/// Most alert ids remembered for the overlap (keeps the cursor far below the host's
/// cursor size limit; beyond it an alert may be emitted twice, never lost).
pub const MAX_TRACKED: usize = 100;
/// Longer ids are not remembered (same consequence).
pub const MAX_TRACKED_ID_LEN: usize = 128;
/// Longest upstream page cursor accepted.
pub const MAX_PAGE_TOKEN_LEN: usize = 4096;

/// One alert remembered for the overlap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Alert id.
    pub id: String,
    /// Its `created_at` (RFC 3339 UTC).
    pub at: String,
}

/// The cursor the host persists between polls (JSON text).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cursor {
    /// `created_after` of the current window (RFC 3339 UTC); null = no lower bound.
    pub created_after: Option<String>,
    /// Upstream cursor of the next page of the current window; null = window start.
    pub page: Option<String>,
    /// Ids already emitted that this window's query may return again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// Newest `created_at` seen in the current window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// Alerts of the current window within `overlap_secs` of `newest`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<Seen>,
}

/// The parsed position.
#[derive(Clone, Debug, PartialEq)]
struct Window {
    created_after: Option<Timestamp>,
    /// No saved cursor: `created_after` is the configuration's.
    fresh: bool,
    page: Option<String>,
    skip: Vec<String>,
    newest: Option<Timestamp>,
    recent: Vec<(String, Timestamp)>,
}

impl Window {
    fn fresh(cfg: &Config) -> Self {
        Window {
            created_after: cfg.initial_created_after,
            fresh: true,
            page: None,
            skip: Vec::new(),
            newest: None,
            recent: Vec::new(),
        }
    }

    fn seen(&self, id: &str) -> bool {
        self.skip.iter().any(|s| s == id) || self.recent.iter().any(|(s, _)| s == id)
    }

    fn to_cursor(&self) -> Cursor {
        Cursor {
            created_after: self.created_after.map(|t| t.to_rfc3339()),
            page: self.page.clone(),
            skip: self.skip.clone(),
            newest: self.newest.map(|t| t.to_rfc3339()),
            recent: self
                .recent
                .iter()
                .map(|(id, at)| Seen {
                    id: id.clone(),
                    at: at.to_rfc3339(),
                })
                .collect(),
        }
    }
}

fn saved_time(value: Option<&str>, what: &str, w: &mut Warnings) -> Option<Timestamp> {
    let s = value?;
    match Timestamp::parse(s) {
        Ok(t) => Some(t),
        Err(e) => {
            w.add(format!("saved cursor field `{what}` ignored: {e}"));
            None
        }
    }
}

/// Reads the saved cursor. An unreadable one starts again from the configuration
/// (alerts may then repeat, which the pipeline's dedup absorbs; none is skipped).
fn resume(cfg: &Config, cursor: Option<&str>, w: &mut Warnings) -> Window {
    let Some(text) = cursor else {
        return Window::fresh(cfg);
    };
    let cur: Cursor = match serde_json::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            w.add(format!(
                "saved cursor is unreadable ({e}); starting from the configuration"
            ));
            return Window::fresh(cfg);
        }
    };
    let created_after = match cur.created_after.as_deref() {
        None => None,
        Some(s) => match Timestamp::parse(s) {
            Ok(t) => Some(t),
            Err(e) => {
                w.add(format!(
                    "saved cursor field `created_after` unusable ({e}); starting from the configuration"
                ));
                return Window::fresh(cfg);
            }
        },
    };
    let page = match cur.page {
        Some(p) if p.is_empty() => None,
        Some(p) if p.len() > MAX_PAGE_TOKEN_LEN => {
            w.add("saved page cursor is too long; restarting the window");
            None
        }
        other => other,
    };
    // `newest` and `recent` are empty at a window start, except when a window is
    // restarted after its page cursor was refused: then they keep what it already saw.
    let recent = cur
        .recent
        .into_iter()
        .filter_map(|s| saved_time(Some(&s.at), "recent", w).map(|t| (s.id, t)))
        .collect();
    Window {
        created_after,
        fresh: false,
        newest: saved_time(cur.newest.as_deref(), "newest", w),
        page,
        skip: cur.skip,
        recent,
    }
}

/// `GET <base_url>/alerts` with the filters, the window bound, the page cursor and
/// the credential slot.
fn request(cfg: &Config, win: &Window, limit: u32) -> Request {
    let mut r = Request::get(cfg.alerts_url.as_str())
        .header("Accept", "application/json")
        .credential(CREDENTIAL_SLOT)
        .query("limit", limit.to_string());
    if let Some(s) = &cfg.status {
        r = r.query("status", s);
    }
    if let Some(s) = &cfg.severity {
        r = r.query("severity", s);
    }
    if let Some(t) = win.created_after {
        r = r.query("created_after", t.to_rfc3339());
    }
    if let Some(p) = &win.page {
        r = r.query("cursor", p);
    }
    r
}

/// What the `X-RateLimit-*` headers said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateInfo {
    /// `X-RateLimit-Limit`.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u64>,
    /// Seconds until `X-RateLimit-Reset` (sent as Unix seconds or as a delay).
    pub reset_in_secs: Option<u64>,
}

/// Values from 10^9 on are Unix times (2001 onwards); smaller ones delays in seconds.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// Reads the rate-limit headers.
pub fn rate_info(resp: &Response, now: Timestamp) -> RateInfo {
    let num = |name: &str| resp.header(name).and_then(|v| v.trim().parse::<u64>().ok());
    let now_secs = u64::try_from(now.unix_secs()).unwrap_or(0);
    RateInfo {
        limit: num("x-ratelimit-limit"),
        remaining: num("x-ratelimit-remaining"),
        reset_in_secs: num("x-ratelimit-reset").map(|v| {
            if v >= EPOCH_THRESHOLD {
                v.saturating_sub(now_secs)
            } else {
                v
            }
        }),
    }
}

impl RateInfo {
    fn describe(&self) -> Option<String> {
        let remaining = self.remaining?;
        let mut s = format!("{remaining} requests left");
        if let Some(l) = self.limit {
            s.push_str(&format!(" of {l}"));
        }
        if let Some(r) = self.reset_in_secs {
            s.push_str(&format!(", window resets in {r} s"));
        }
        Some(s)
    }
}

/// Seconds to wait after a 429: `Retry-After`, else the rate-limit reset.
pub fn retry_after(resp: &Response, now: Timestamp) -> Option<u64> {
    resp.retry_after_secs()
        .or_else(|| rate_info(resp, now).reset_in_secs)
}

/// The `fields` array of a 400/422 body: field names (strings) or objects with a
/// name (`field` / `name` / `param`) and a message (`message` / `reason` / `detail`);
/// an object mapping names to messages is accepted too.
pub fn upstream_fields(body: &Value) -> Vec<(String, Option<String>)> {
    let str_of = |o: &serde_json::Map<String, Value>, keys: &[&str]| {
        keys.iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_string)
    };
    match body.get("fields") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some((s.clone(), None)),
                Value::Object(o) => str_of(o, &["field", "name", "param"])
                    .map(|f| (f, str_of(o, &["message", "reason", "detail"]))),
                _ => None,
            })
            .collect(),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string)))
            .collect(),
        _ => Vec::new(),
    }
}

fn body_json(resp: &Response) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or(Value::Null)
}

/// The configuration key a rejected query parameter came from.
fn config_path(field: &str, win: &Window) -> Option<&'static str> {
    match field {
        "status" => Some("/status"),
        "severity" => Some("/severity"),
        "limit" => Some("/page_size"),
        "created_after" if win.fresh => Some("/initial_created_after"),
        _ => None,
    }
}

/// A 400/422: a configuration error at the configuration keys the rejected
/// parameters came from, else an upstream error naming the fields.
fn validation_error(resp: &Response, win: &Window) -> Error {
    let message = resp.error_message();
    let fields = upstream_fields(&body_json(resp));
    let mapped: Vec<Option<FieldError>> = fields
        .iter()
        .map(|(f, m)| {
            config_path(f, win).map(|p| {
                FieldError::new(
                    p,
                    format!(
                        "ThreatHawk rejected `{f}` (HTTP {}): {}",
                        resp.status,
                        m.as_deref().unwrap_or(&message)
                    ),
                )
            })
        })
        .collect();
    if !mapped.is_empty() && mapped.iter().all(Option::is_some) {
        return Error::Config(mapped.into_iter().flatten().collect());
    }
    let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
    Error::upstream(
        Some(resp.status),
        if names.is_empty() {
            message
        } else {
            format!("{message} (fields: {})", names.join(", "))
        },
    )
}

/// Whether ThreatHawk refused the page cursor we sent (expired, or not matching).
fn cursor_rejected(resp: &Response, win: &Window) -> bool {
    win.page.is_some()
        && matches!(resp.status, 400 | 422)
        && upstream_fields(&body_json(resp))
            .iter()
            .any(|(f, _)| f == "cursor")
}

fn auth_message(resp: &Response) -> String {
    let mut m = format!("HTTP {}: {}", resp.status, resp.error_message());
    if let Some(code) = resp
        .header("www-authenticate")
        .and_then(|h| h.split("error=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .filter(|c| !c.is_empty())
    {
        m.push_str(&format!(" ({code})"));
    }
    m
}

/// Maps a non-2xx response to the error the host expects.
fn status_error(resp: &Response, win: &Window, now: Timestamp) -> Error {
    match resp.status {
        401 | 403 => Error::auth(auth_message(resp)),
        429 => Error::rate_limited(retry_after(resp, now), resp.error_message()),
        400 | 422 => validation_error(resp, win),
        s => Error::upstream(Some(s), resp.error_message()),
    }
}

/// One page of `GET /alerts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The alerts (`data`).
    pub alerts: Vec<Value>,
    /// `pagination.next_cursor`.
    pub next_cursor: Option<String>,
    /// `pagination.has_more`.
    pub has_more: Option<bool>,
}

/// Parses a 2xx body: `{"data": [...], "pagination": {"next_cursor", "has_more"}}`.
pub fn parse_page(resp: &Response) -> Result<Page> {
    let body: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| Error::parse(format!("response from {} is not valid JSON: {e}", resp.url)))?;
    let Value::Object(obj) = &body else {
        return Err(Error::parse(format!(
            "response from {} is {}, not an object with a `data` array",
            resp.url,
            json_type_name(&body)
        )));
    };
    let alerts = match obj.get("data") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(Error::parse(format!(
                "`data` in the response from {} is {}, not an array",
                resp.url,
                json_type_name(other)
            )));
        }
        None => {
            return Err(Error::parse(format!(
                "the response from {} has no `data` array",
                resp.url
            )));
        }
    };
    let pagination = obj.get("pagination");
    let field = |k: &str| pagination.and_then(|p| p.get(k)).or_else(|| obj.get(k));
    let next_cursor = match field("next_cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s.len() > MAX_PAGE_TOKEN_LEN => {
            return Err(Error::parse(format!(
                "`next_cursor` is {} bytes long (at most {MAX_PAGE_TOKEN_LEN} accepted)",
                s.len()
            )));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(Error::parse(format!(
                "`next_cursor` is {}, not a string",
                json_type_name(other)
            )));
        }
    };
    let has_more = field("has_more").and_then(Value::as_bool);
    Ok(Page {
        alerts,
        next_cursor,
        has_more,
    })
}

/// What `poll` produced.
#[derive(Clone, Debug, PartialEq)]
pub struct PollOutcome {
    /// Events, next cursor and whether more is ready.
    pub batch: Batch,
    /// Skipped alerts and other oddities, for the log (warn).
    pub warnings: Warnings,
    /// Progress worth an info line.
    pub notes: Vec<String>,
    /// Alerts not emitted because they were already emitted (overlap).
    pub repeated: usize,
}

fn encode(cursor: &Cursor) -> Result<String> {
    serde_json::to_string(cursor)
        .map_err(|e| Error::other(format!("cannot serialise the cursor: {e}")))
}

/// Remembers `(id, at)` and moves `newest`.
fn track(win: &mut Window, id: &str, at: Timestamp) {
    win.newest = win.newest.max(Some(at));
    if id.len() <= MAX_TRACKED_ID_LEN && !win.recent.iter().any(|(s, _)| s == id) {
        win.recent.push((id.to_string(), at));
    }
}

/// Keeps the alerts within the overlap of `newest`, at most [`MAX_TRACKED`].
fn prune(win: &mut Window, overlap_ms: i64, w: &mut Warnings) {
    let Some(floor) = win.newest.map(|n| {
        n.checked_add_millis(-overlap_ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }) else {
        return;
    };
    win.recent.retain(|(_, t)| *t >= floor);
    if win.recent.len() > MAX_TRACKED {
        win.recent.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
        win.recent.truncate(MAX_TRACKED);
        w.add(format!(
            "more than {MAX_TRACKED} alerts within the overlap: some of them may be emitted again next window"
        ));
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
    let mut notes = Vec::new();
    let now = clock.now();
    let mut win = resume(cfg, cursor, &mut w);
    let resp = request(cfg, &win, cfg.page_size).send_with(transport)?;
    if !resp.is_success() {
        if cursor_rejected(&resp, &win) {
            // The upstream no longer accepts the page cursor (expired): walk the window
            // again from its first page. Alerts already emitted in it may come again.
            w.add(format!(
                "ThreatHawk rejected the saved page cursor (HTTP {}: {}); restarting the current window",
                resp.status,
                resp.error_message()
            ));
            win.page = None;
            return Ok(PollOutcome {
                batch: Batch {
                    events: Vec::new(),
                    cursor: Some(encode(&win.to_cursor())?),
                    more: true,
                },
                warnings: w,
                notes,
                repeated: 0,
            });
        }
        return Err(status_error(&resp, &win, now));
    }
    let rate = rate_info(&resp, now);
    let page = parse_page(&resp)?;

    let mut events = Vec::with_capacity(page.alerts.len());
    let mut repeated = 0;
    for alert in &page.alerts {
        match mapping::map_alert(alert, now, &mut w) {
            Err(reason) => w.add(reason),
            Ok((event, time)) => {
                let already = win.seen(&event.id);
                if let Some(t) = time {
                    track(&mut win, &event.id, t);
                }
                if already {
                    repeated += 1;
                } else {
                    events.push(event);
                }
            }
        }
    }
    prune(&mut win, cfg.overlap_ms, &mut w);

    // An empty page ends the window whatever else it says (no endless loop on an
    // upstream that always hands out a cursor).
    let next = if page.alerts.is_empty() || page.has_more == Some(false) {
        None
    } else {
        match page.next_cursor {
            Some(t) if win.page.as_ref() == Some(&t) => {
                w.add("ThreatHawk returned the same page cursor again; ending the window");
                None
            }
            Some(t) => Some(t),
            None => {
                if page.has_more == Some(true) {
                    w.add("`has_more` is true but there is no `next_cursor`; ending the window");
                }
                None
            }
        }
    };

    let (cursor, more) = match next {
        Some(token) => {
            win.page = Some(token);
            let paused = rate.remaining == Some(0);
            if paused {
                notes.push(format!(
                    "rate limit budget spent ({}); the rest of the window waits for the next poll",
                    rate.describe().unwrap_or_default()
                ));
            }
            (win.to_cursor(), !paused)
        }
        None => {
            // The next window: from the newest alert seen minus the overlap (never
            // before the current bound), skipping the alerts seen in that overlap.
            let (created_after, skip) = match win.newest {
                Some(newest) => {
                    let floor = newest
                        .checked_add_millis(-cfg.overlap_ms)
                        .unwrap_or(Timestamp::UNIX_EPOCH);
                    (
                        win.created_after.max(Some(floor)),
                        win.recent.iter().map(|(id, _)| id.clone()).collect(),
                    )
                }
                None => (win.created_after, win.skip.clone()),
            };
            let next_window = Window {
                created_after,
                fresh: false,
                page: None,
                skip,
                newest: None,
                recent: Vec::new(),
            };
            (next_window.to_cursor(), false)
        }
    };
    Ok(PollOutcome {
        batch: Batch {
            events,
            cursor: Some(encode(&cursor)?),
            more,
        },
        warnings: w,
        notes,
        repeated,
    })
}

/// Token + one `GET /alerts?limit=1` with the configured filters, reported as stage
/// `auth` (was the request accepted with the host-obtained token?), stage `sample`
/// (was the answer a page of alerts, and does the sample map?) and, when ThreatHawk
/// sent its headers, stage `rate-limit`.
pub fn test_connection(
    cfg: &Config,
    transport: &dyn Transport,
    clock: &dyn Clock,
) -> Result<TestReport> {
    let mut w = Warnings::default();
    let now = clock.now();
    let win = Window::fresh(cfg);
    let started = clock.monotonic_ms();
    let sent = request(cfg, &win, 1).send_with(transport);
    let took = Some(clock.monotonic_ms().saturating_sub(started));
    let not_run = |why: &str| TestStage::failed("sample", format!("not run: {why}"), None);
    let failed_auth = |message: String| TestReport {
        stages: vec![
            TestStage::failed("auth", message, took),
            not_run("authentication failed"),
        ],
        sample: vec![],
    };
    let resp = match sent {
        Err(HttpError::Credential(m)) => {
            return Ok(failed_auth(format!(
                "the host could not obtain or apply the OAuth token for slot {CREDENTIAL_SLOT:?}: {m}"
            )));
        }
        Err(e) => {
            return Ok(TestReport {
                stages: vec![
                    TestStage::failed("auth", format!("request failed: {e}"), took),
                    not_run("ThreatHawk could not be reached"),
                ],
                sample: vec![],
            });
        }
        Ok(r) => r,
    };
    match resp.status {
        401 | 403 => return Ok(failed_auth(auth_message(&resp))),
        429 => {
            return Err(Error::rate_limited(
                retry_after(&resp, now),
                resp.error_message(),
            ));
        }
        _ => {}
    }
    let mut stages = vec![TestStage::passed(
        "auth",
        format!(
            "OAuth token from slot {CREDENTIAL_SLOT:?} accepted (HTTP {})",
            resp.status
        ),
        took,
    )];
    let rate = rate_info(&resp, now);
    let mut sample = Vec::new();
    if resp.is_success() {
        match parse_page(&resp) {
            Ok(page) => {
                let mut skipped = Vec::new();
                for alert in &page.alerts {
                    match mapping::map_alert(alert, now, &mut w) {
                        Ok((event, _)) => sample.push(event),
                        Err(reason) => skipped.push(reason),
                    }
                }
                let mut message = format!(
                    "GET {} returned {} alert(s), {} mapped to events",
                    cfg.alerts_url,
                    page.alerts.len(),
                    sample.len()
                );
                if !skipped.is_empty() {
                    message.push_str(&format!(" ({})", skipped.join("; ")));
                }
                let ok = skipped.is_empty();
                stages.push(if ok {
                    TestStage::passed("sample", message, took)
                } else {
                    TestStage::failed("sample", message, took)
                });
            }
            Err(e) => stages.push(TestStage::failed("sample", e.to_string(), took)),
        }
    } else {
        let e = status_error(&resp, &win, now);
        stages.push(TestStage::failed("sample", e.to_string(), took));
    }
    if let Some(d) = rate.describe() {
        stages.push(TestStage::passed("rate-limit", d, None));
    }
    Ok(TestReport { stages, sample })
}
