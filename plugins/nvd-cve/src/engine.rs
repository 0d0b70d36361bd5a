//! The connector's logic, free of host imports: HTTP goes through a [`Transport`],
//! time through a [`Clock`] and the request budget through a [`KeyValue`] store, so
//! everything here runs in native unit tests.
//!
//! Ingestion runs in phases recorded in the cursor:
//! - `full`: without `start`, a first download of every CVE (no date filter), as NVD
//!   recommends for an initial population;
//! - `window`: one `lastModStartDate`/`lastModEndDate` window (both bounds given, at
//!   most `window_days` ≤ 120 days), paged by `startIndex`/`resultsPerPage` until
//!   `startIndex >= totalResults`;
//! - `idle`: between windows; the next window starts where the last one ended.
//!
//! Each `poll` fetches one page and returns the cursor of the next one, so a restart
//! continues mid-window.

use portcullis_sdk::clock::Clock;
use portcullis_sdk::http::{HttpError, Request, Response, Transport};
use portcullis_sdk::prelude::*;
use portcullis_sdk::warnings::Warnings;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::budget::{self, KeyValue};
use crate::config::{CREDENTIAL_SLOT, Config, MAX_WINDOW_DAYS};
use crate::record::normalize_cve;

/// The plugin id (= package name).
pub const PLUGIN_ID: &str = env!("CARGO_PKG_NAME");

/// The NVD header carrying the API key (set by the host from the credential).
pub const API_KEY_HEADER: &str = "apiKey";

/// Per-request timeout asked of the host (NVD pages of 2000 CVEs can be slow).
const REQUEST_TIMEOUT_MS: u32 = 60_000;

/// Most record text one `poll` normalises. The events of a page take several times
/// their text in memory, and the host caps a call's memory (64 MiB by default): a
/// page of 2000 CPE-heavy CVEs would not fit. Past this, the rest of the page is left
/// for the next poll (offset paging allows resuming anywhere) and the page size is
/// reduced; it grows back while pages are light.
pub const MAX_PAGE_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// The cursor the host persists between polls (JSON text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Cursor {
    /// Initial download of every CVE, no date filter.
    Full {
        /// When the download started (RFC 3339): the first window starts there.
        started: String,
        /// `startIndex` of the next page.
        next: u64,
        /// `totalResults` of the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        /// `resultsPerPage` in use when smaller than configured (heavy pages).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page_size: Option<u32>,
    },
    /// Inside one `lastModStartDate`/`lastModEndDate` window.
    Window {
        /// `lastModStartDate` (RFC 3339).
        from: String,
        /// `lastModEndDate` (RFC 3339).
        to: String,
        /// `startIndex` of the next page.
        next: u64,
        /// `totalResults` of the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        /// `resultsPerPage` in use when smaller than configured (heavy pages).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page_size: Option<u32>,
    },
    /// Between windows: the next one starts at `since`.
    Idle {
        /// Lower bound of the next window (RFC 3339).
        since: String,
    },
}

/// What is being paged through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Full { started: Timestamp },
    Window { from: Timestamp, to: Timestamp },
}

/// Where in the phase the next page starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Paging {
    next: u64,
    total: Option<u64>,
    page_size: Option<u32>,
}

/// A cursor with its times parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    Paging(Phase, Paging),
    Idle(Timestamp),
}

impl Position {
    fn to_cursor(self) -> Cursor {
        match self {
            Position::Paging(Phase::Full { started }, p) => Cursor::Full {
                started: started.to_rfc3339(),
                next: p.next,
                total: p.total,
                page_size: p.page_size,
            },
            Position::Paging(Phase::Window { from, to }, p) => Cursor::Window {
                from: from.to_rfc3339(),
                to: to.to_rfc3339(),
                next: p.next,
                total: p.total,
                page_size: p.page_size,
            },
            Position::Idle(since) => Cursor::Idle {
                since: since.to_rfc3339(),
            },
        }
    }
}

/// Where ingestion starts without a cursor.
fn initial(cfg: &Config, now: Timestamp) -> Position {
    match cfg.start {
        Some(since) => Position::Idle(since),
        None => Position::Paging(Phase::Full { started: now }, Paging::default()),
    }
}

/// Reads the saved cursor. An unreadable one starts over from the configuration
/// (nothing is skipped; duplicates are removed by event id downstream).
fn resume(cfg: &Config, cursor: Option<&str>, now: Timestamp, w: &mut Warnings) -> Position {
    let Some(text) = cursor else {
        return initial(cfg, now);
    };
    let parsed = serde_json::from_str::<Cursor>(text)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            let t = |s: &str| Timestamp::parse(s).map_err(|e| e.to_string());
            let paging = |next, total, page_size: Option<u32>| Paging {
                next,
                total,
                page_size: page_size.filter(|n| *n >= 1),
            };
            Ok(match c {
                Cursor::Full {
                    started,
                    next,
                    total,
                    page_size,
                } => Position::Paging(
                    Phase::Full {
                        started: t(&started)?,
                    },
                    paging(next, total, page_size),
                ),
                Cursor::Window {
                    from,
                    to,
                    next,
                    total,
                    page_size,
                } => {
                    let (from, to) = (t(&from)?, t(&to)?);
                    // Checked against NVD's limit, not `window_days`: a window saved
                    // before that setting changed is still a valid request.
                    let max_ms = i64::from(MAX_WINDOW_DAYS) * 86_400_000;
                    if to < from || to.millis_since(&from) > max_ms {
                        return Err(format!(
                            "window {from} .. {to} is not within {MAX_WINDOW_DAYS} days"
                        ));
                    }
                    Position::Paging(Phase::Window { from, to }, paging(next, total, page_size))
                }
                Cursor::Idle { since } => Position::Idle(t(&since)?),
            })
        });
    parsed.unwrap_or_else(|e| {
        w.add(format!(
            "saved cursor is unusable ({e}); starting over from the configuration"
        ));
        initial(cfg, now)
    })
}

/// NVD's extended ISO 8601 form with an explicit offset, as in its own examples
/// (`2021-08-04T13:00:00.000+00:00`).
pub fn nvd_date(t: Timestamp) -> String {
    let s = t.to_rfc3339_millis();
    format!("{}+00:00", s.trim_end_matches('Z'))
}

fn page_request(cfg: &Config, phase: &Phase, start: u64, results_per_page: u32) -> Request {
    let mut req = Request::get(cfg.endpoint.as_str())
        .header("Accept", "application/json")
        .timeout_ms(REQUEST_TIMEOUT_MS);
    if let Phase::Window { from, to } = phase {
        req = req
            .query("lastModStartDate", nvd_date(*from))
            .query("lastModEndDate", nvd_date(*to));
    }
    req = req
        .query("resultsPerPage", results_per_page.to_string())
        .query("startIndex", start.to_string());
    if cfg.use_api_key {
        req = req.credential(CREDENTIAL_SLOT);
    }
    req
}

/// NVD reports errors in a `message` response header (the body is empty).
fn nvd_message(resp: &Response) -> Option<String> {
    resp.header("message")
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

fn is_invalid_key(resp: &Response) -> bool {
    resp.status == 404
        && nvd_message(resp).is_some_and(|m| m.to_ascii_lowercase().contains("invalid apikey"))
}

fn describe_status(resp: &Response) -> String {
    match nvd_message(resp) {
        Some(m) => format!("HTTP {}: {m}", resp.status),
        None if resp.body.iter().all(u8::is_ascii_whitespace) => format!("HTTP {}", resp.status),
        None => format!("HTTP {}: {}", resp.status, resp.error_message()),
    }
}

/// The error for a throttling answer (403, or 429 from a proxy); also blocks the
/// budget so the following polls wait without calling NVD.
fn throttled(
    cfg: &Config,
    resp: &Response,
    store: &dyn KeyValue,
    now_ms: u64,
    w: &mut Warnings,
) -> Error {
    let secs = resp
        .retry_after_secs()
        .unwrap_or(u64::from(cfg.rate_limit.throttle_backoff_secs));
    let message = format!(
        "NVD throttled the request ({}); NVD answers clients over its rate limit with 403",
        describe_status(resp)
    );
    match budget::block(store, now_ms, secs, w) {
        Ok(()) => Error::rate_limited(Some(secs), message),
        Err(e) => e,
    }
}

/// Maps a non-2xx response to the error the host expects.
fn check_status(
    cfg: &Config,
    resp: Response,
    store: &dyn KeyValue,
    now_ms: u64,
    w: &mut Warnings,
) -> Result<Response> {
    if resp.is_success() {
        return Ok(resp);
    }
    Err(match resp.status {
        404 if is_invalid_key(&resp) => Error::auth(format!(
            "NVD rejected the API key bound to slot {CREDENTIAL_SLOT:?} ({}): check or renew the key",
            describe_status(&resp)
        )),
        401 => Error::auth(describe_status(&resp)),
        403 | 429 => throttled(cfg, &resp, store, now_ms, w),
        s => Error::upstream(Some(s), describe_status(&resp)),
    })
}

/// One parsed response page. The entries stay slices of the response body until
/// each is normalised, so a page of 2000 CVEs is never held as one JSON tree.
struct Page<'a> {
    /// `totalResults`, when the response carries it.
    total: Option<u64>,
    /// The `vulnerabilities` entries, unparsed.
    items: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct TopLevel<'a> {
    #[serde(rename = "totalResults", default)]
    total: Option<Value>,
    #[serde(borrow, default)]
    vulnerabilities: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, default)]
    cve: Option<&'a RawValue>,
}

/// A short name for the JSON type of raw text (for messages).
fn raw_type_name(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn parse_top<'a>(text: &'a str, origin: &str) -> Result<TopLevel<'a>> {
    serde_json::from_str::<TopLevel<'_>>(text).map_err(|e| {
        if e.is_data() {
            Error::parse(format!(
                "{origin} is not an NVD CVE API response object: {e}"
            ))
        } else {
            Error::parse(format!("{origin} is not valid JSON: {e}"))
        }
    })
}

fn items_of<'a>(raw: &'a RawValue, origin: &str) -> Result<Vec<&'a RawValue>> {
    serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|_| {
        Error::parse(format!(
            "`vulnerabilities` in {origin} is {}, not an array",
            raw_type_name(raw)
        ))
    })
}

fn parse_page(resp: &Response) -> Result<Page<'_>> {
    let origin = format!("the response from {}", resp.url);
    let text = std::str::from_utf8(&resp.body)
        .map_err(|e| Error::parse(format!("{origin} is not UTF-8: {e}")))?;
    let top = parse_top(text, &origin)?;
    let Some(list) = top.vulnerabilities else {
        return Err(Error::parse(format!(
            "{origin} has no `vulnerabilities` array"
        )));
    };
    Ok(Page {
        total: top.total.as_ref().and_then(Value::as_u64),
        items: items_of(list, &origin)?,
    })
}

/// Maps the `vulnerabilities[]` entries of a page one at a time; bad entries are
/// skipped with a warning naming their index. Stops before the entry that would take
/// the record text past `max_bytes` (the first is always mapped); returns the events
/// and how many entries were consumed.
fn map_items(
    items: &[&RawValue],
    max_bytes: usize,
    now: Timestamp,
    w: &mut Warnings,
) -> (Vec<Event>, usize) {
    let mut events = Vec::with_capacity(items.len());
    let mut bytes = 0usize;
    for (i, item) in items.iter().enumerate() {
        bytes = bytes.saturating_add(item.get().len());
        if i > 0 && bytes > max_bytes {
            return (events, i);
        }
        let cve = match serde_json::from_str::<Item<'_>>(item.get()) {
            Ok(Item { cve: Some(cve) }) => cve,
            Ok(Item { cve: None }) => {
                w.add(format!("vulnerabilities[{i}] skipped: no `cve` object"));
                continue;
            }
            Err(_) => {
                w.add(format!(
                    "vulnerabilities[{i}] skipped: expected an object, found {}",
                    raw_type_name(item)
                ));
                continue;
            }
        };
        let parsed: Value = match serde_json::from_str(cve.get()) {
            Ok(v) => v,
            Err(e) => {
                w.add(format!("vulnerabilities[{i}] skipped: {e}"));
                continue;
            }
        };
        match normalize_cve(&parsed, cve.get(), now, w) {
            Ok(e) => events.push(e),
            Err(reason) => w.add(format!("vulnerabilities[{i}] skipped: {reason}")),
        }
    }
    (events, items.len())
}

/// What the plugin needs from its surroundings.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// HTTP.
    pub transport: &'a dyn Transport,
    /// Time.
    pub clock: &'a dyn Clock,
    /// The connector's `state` space (request budget).
    pub store: &'a dyn KeyValue,
}

/// What `poll` produced.
#[derive(Clone, Debug, PartialEq)]
pub struct PollOutcome {
    /// Events, next cursor and whether more is ready.
    pub batch: Batch,
    /// Skipped records and other oddities, for the log.
    pub warnings: Warnings,
}

fn cursor_text(pos: Position) -> Result<String> {
    serde_json::to_string(&pos.to_cursor())
        .map_err(|e| Error::other(format!("cannot serialise the cursor: {e}")))
}

fn outcome(events: Vec<Event>, after: Position, more: bool, w: Warnings) -> Result<PollOutcome> {
    Ok(PollOutcome {
        batch: Batch {
            events,
            cursor: Some(cursor_text(after)?),
            more,
        },
        warnings: w,
    })
}

/// One step of pull ingestion: fetches exactly one page.
pub fn poll(cfg: &Config, cursor: Option<&str>, env: Env<'_>) -> Result<PollOutcome> {
    let mut w = Warnings::default();
    let now = env.clock.now();
    let now_ms = env.clock.now_unix_ms();
    let (phase, paging) = match resume(cfg, cursor, now, &mut w) {
        // Nothing can have changed after `now`: no request.
        Position::Idle(since) if now <= since => {
            return outcome(Vec::new(), Position::Idle(since), false, w);
        }
        Position::Idle(since) => (
            Phase::Window {
                from: since,
                to: since
                    .checked_add_millis(cfg.window_millis())
                    .map_or(now, |end| end.min(now)),
            },
            Paging::default(),
        ),
        Position::Paging(phase, paging) => (phase, paging),
    };
    let size = paging
        .page_size
        .unwrap_or(cfg.results_per_page)
        .clamp(1, cfg.results_per_page);
    let start = paging.next;

    budget::acquire(&cfg.rate_limit, env.store, now_ms, &mut w)?;
    let req = page_request(cfg, &phase, start, size);
    let resp = match req.send_with(env.transport) {
        Err(HttpError::TooLarge(cap)) if size > 1 => {
            // The page is over the host's response cap: ask for half as many.
            let smaller = size / 2;
            w.add(format!(
                "a page of {size} records exceeded the host's response cap of {cap} bytes; asking for {smaller}"
            ));
            let paging = Paging {
                page_size: Some(smaller),
                ..paging
            };
            return outcome(Vec::new(), Position::Paging(phase, paging), true, w);
        }
        other => other?,
    };
    let resp = check_status(cfg, resp, env.store, now_ms, &mut w)?;
    let page = parse_page(&resp)?;
    let (events, consumed) = map_items(&page.items, MAX_PAGE_TEXT_BYTES, now, &mut w);
    let received = page.items.len();
    let text_bytes: usize = page.items.iter().map(|i| i.get().len()).sum();
    let total = page.total;
    // Release the body before the events are handed over.
    drop(page);
    drop(resp);

    let truncated = consumed < received;
    let page_size = if truncated {
        w.add(format!(
            "page too heavy to map at once: {consumed} of {received} records mapped, the rest on the next poll"
        ));
        Some(u32::try_from(consumed).unwrap_or(1).max(1))
    } else if size < cfg.results_per_page && text_bytes < MAX_PAGE_TEXT_BYTES / 4 {
        // Light pages again: grow back towards the configured size.
        Some(size.saturating_mul(2).min(cfg.results_per_page)).filter(|n| *n < cfg.results_per_page)
    } else {
        paging.page_size
    };
    let count = u64::try_from(consumed).unwrap_or(u64::MAX);
    let mut next = start.saturating_add(count);
    let mut shrunk = false;
    if let (Some(before), Some(total)) = (paging.total, total)
        && total < before
        && start > 0
    {
        // Records left the window while we paged (modified again since): the ones
        // after them moved down by as many places; read those places again.
        let gone = before - total;
        w.add(format!(
            "{gone} records left the window while paging; re-reading the {gone} places before startIndex {start}"
        ));
        next = start.saturating_sub(gone);
        shrunk = true;
    }
    let done = !truncated
        && match total {
            Some(total) if shrunk => next >= total,
            _ if count == 0 => true,
            Some(total) => next >= total,
            None => {
                w.add("the response has no `totalResults`; paging until a short page");
                count < u64::from(size)
            }
        };
    if !done {
        let paging = Paging {
            next,
            total,
            page_size,
        };
        return outcome(events, Position::Paging(phase, paging), true, w);
    }
    match phase {
        // The full download is over: catch up on what changed meanwhile.
        Phase::Full { started } => outcome(events, Position::Idle(started), true, w),
        // A window cut short by the 120-day limit means more backlog right now.
        Phase::Window { from, to } => {
            let more = to.millis_since(&from) >= cfg.window_millis() && to < now;
            outcome(events, Position::Idle(to), more, w)
        }
    }
}

/// One request with `resultsPerPage=1`: stage `auth` (did NVD accept the request,
/// with or without a key?) and stage `sample` (did a record come back and normalise?).
pub fn test_connection(cfg: &Config, env: Env<'_>) -> Result<TestReport> {
    let mut w = Warnings::default();
    let now = env.clock.now();
    let now_ms = env.clock.now_unix_ms();
    budget::acquire(&cfg.rate_limit, env.store, now_ms, &mut w)?;
    let req = page_request(cfg, &Phase::Full { started: now }, 0, 1);
    let started = env.clock.monotonic_ms();
    let sent = req.send_with(env.transport);
    let auth_ms = Some(env.clock.monotonic_ms().saturating_sub(started));
    let not_run = |why: &str| TestStage::failed("sample", format!("not run: {why}"), None);
    let failed = |message: String, why: &str| TestReport {
        stages: vec![TestStage::failed("auth", message, auth_ms), not_run(why)],
        sample: vec![],
    };
    let resp = match sent {
        Err(HttpError::Credential(m)) => {
            return Ok(failed(
                format!(
                    "the host could not apply the API key of slot {CREDENTIAL_SLOT:?}: {m} \
                     (bind an api-key credential with header {API_KEY_HEADER:?}, or set use_api_key to false)"
                ),
                "authentication failed",
            ));
        }
        Err(e) => {
            return Ok(failed(format!("request failed: {e}"), "the request failed"));
        }
        Ok(r) => r,
    };
    if is_invalid_key(&resp) || resp.status == 401 {
        let message = if cfg.use_api_key {
            format!("NVD rejected the API key ({})", describe_status(&resp))
        } else {
            format!(
                "the server requires authentication ({}): bind an API key to slot {CREDENTIAL_SLOT:?} and set use_api_key",
                describe_status(&resp)
            )
        };
        return Ok(failed(message, "authentication failed"));
    }
    if matches!(resp.status, 403 | 429) {
        // Throttled: reported as such (with the delay), like `poll`.
        return Err(throttled(cfg, &resp, env.store, now_ms, &mut w));
    }
    let auth = TestStage::passed(
        "auth",
        if cfg.use_api_key {
            format!(
                "NVD accepted the API key (HTTP {}); budget {} requests per {} s",
                resp.status, cfg.rate_limit.requests, cfg.rate_limit.window_secs
            )
        } else {
            format!(
                "no API key configured; NVD answered HTTP {} at the public rate (budget {} requests per {} s)",
                resp.status, cfg.rate_limit.requests, cfg.rate_limit.window_secs
            )
        },
        auth_ms,
    );
    let sample = check_status(cfg, resp, env.store, now_ms, &mut w).and_then(|r| {
        let page = parse_page(&r)?;
        let (events, _) = map_items(&page.items, usize::MAX, now, &mut w);
        Ok((page.total, page.items.len(), events))
    });
    let sample_ms = Some(env.clock.monotonic_ms().saturating_sub(started));
    Ok(match sample {
        Ok((total, count, events)) if events.len() == count => {
            let total = total.map_or_else(|| "an unknown number of".to_string(), |t| t.to_string());
            let message = match events.first() {
                Some(e) => format!(
                    "{total} CVE records available; fetched and normalised {}",
                    e.title
                ),
                None => format!("{total} CVE records available; none returned"),
            };
            TestReport {
                stages: vec![auth, TestStage::passed("sample", message, sample_ms)],
                sample: events,
            }
        }
        Ok((_, count, _)) => {
            let reasons: Vec<&str> = w.entries().iter().map(|(m, _)| m.as_str()).collect();
            TestReport {
                stages: vec![
                    auth,
                    TestStage::failed(
                        "sample",
                        format!(
                            "{count} record(s) returned but not normalised: {}",
                            reasons.join("; ")
                        ),
                        sample_ms,
                    ),
                ],
                sample: vec![],
            }
        }
        Err(e) => TestReport {
            stages: vec![auth, TestStage::failed("sample", e.to_string(), sample_ms)],
            sample: vec![],
        },
    })
}

/// Maps pushed NVD JSON: a CVE API response page (`{"vulnerabilities": [...]}`), one
/// `{"cve": {...}}` wrapper, or one bare `cve` object (as in NVD-derived feeds).
pub fn normalize(input: &str, now: Timestamp) -> Result<(Vec<Event>, Warnings)> {
    let origin = "pushed input";
    let top = parse_top(input, origin)?;
    let mut w = Warnings::default();
    if let Some(list) = top.vulnerabilities {
        let items = items_of(list, origin)?;
        let (events, _) = map_items(&items, usize::MAX, now, &mut w);
        return Ok((events, w));
    }
    let item: Item<'_> = serde_json::from_str(input)
        .map_err(|e| Error::parse(format!("{origin} is not an object: {e}")))?;
    let raw = item.cve.map_or(input, |c| c.get());
    let cve: Value = serde_json::from_str(raw)
        .map_err(|e| Error::parse(format!("{origin} is not valid JSON: {e}")))?;
    let event = normalize_cve(&cve, raw, now, &mut w)
        .map_err(|e| Error::parse(format!("pushed record not usable: {e}")))?;
    Ok((vec![event], w))
}
