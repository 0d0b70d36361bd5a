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
use portcullis_sdk::json_type_name;
use portcullis_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::budget::{self, KeyValue};
use crate::config::{CREDENTIAL_SLOT, Config};
use crate::record::normalize_cve;
use crate::warnings::Warnings;

/// The plugin id (= package name).
pub const PLUGIN_ID: &str = env!("CARGO_PKG_NAME");

/// The NVD header carrying the API key (set by the host from the credential).
pub const API_KEY_HEADER: &str = "apiKey";

/// Per-request timeout asked of the host (NVD pages of 2000 CVEs can be slow).
const REQUEST_TIMEOUT_MS: u32 = 60_000;

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
    },
    /// Between windows: the next one starts at `since`.
    Idle {
        /// Lower bound of the next window (RFC 3339).
        since: String,
    },
}

/// A cursor with its times parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    Full {
        started: Timestamp,
        next: u64,
        total: Option<u64>,
    },
    Window {
        from: Timestamp,
        to: Timestamp,
        next: u64,
        total: Option<u64>,
    },
    Idle {
        since: Timestamp,
    },
}

impl Position {
    fn to_cursor(self) -> Cursor {
        match self {
            Position::Full {
                started,
                next,
                total,
            } => Cursor::Full {
                started: started.to_rfc3339(),
                next,
                total,
            },
            Position::Window {
                from,
                to,
                next,
                total,
            } => Cursor::Window {
                from: from.to_rfc3339(),
                to: to.to_rfc3339(),
                next,
                total,
            },
            Position::Idle { since } => Cursor::Idle {
                since: since.to_rfc3339(),
            },
        }
    }

    fn next_index(&self) -> u64 {
        match self {
            Position::Full { next, .. } | Position::Window { next, .. } => *next,
            Position::Idle { .. } => 0,
        }
    }

    fn saved_total(&self) -> Option<u64> {
        match self {
            Position::Full { total, .. } | Position::Window { total, .. } => *total,
            Position::Idle { .. } => None,
        }
    }
}

/// Where ingestion starts without a cursor.
fn initial(cfg: &Config, now: Timestamp) -> Position {
    match cfg.start {
        Some(since) => Position::Idle { since },
        None => Position::Full {
            started: now,
            next: 0,
            total: None,
        },
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
            Ok(match c {
                Cursor::Full {
                    started,
                    next,
                    total,
                } => Position::Full {
                    started: t(&started)?,
                    next,
                    total,
                },
                Cursor::Window {
                    from,
                    to,
                    next,
                    total,
                } => {
                    let (from, to) = (t(&from)?, t(&to)?);
                    if to < from || to.millis_since(&from) > cfg.window_millis() {
                        return Err(format!(
                            "window {} .. {} is not within {} days",
                            from, to, cfg.window_days
                        ));
                    }
                    Position::Window {
                        from,
                        to,
                        next,
                        total,
                    }
                }
                Cursor::Idle { since } => Position::Idle { since: t(&since)? },
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

fn page_request(cfg: &Config, pos: &Position, results_per_page: u32) -> Request {
    let mut req = Request::get(cfg.endpoint.as_str())
        .header("Accept", "application/json")
        .timeout_ms(REQUEST_TIMEOUT_MS);
    if let Position::Window { from, to, .. } = pos {
        req = req
            .query("lastModStartDate", nvd_date(*from))
            .query("lastModEndDate", nvd_date(*to));
    }
    req = req
        .query("resultsPerPage", results_per_page.to_string())
        .query("startIndex", pos.next_index().to_string());
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

/// One parsed response page.
struct Page {
    /// `totalResults`, when the response carries it.
    total: Option<u64>,
    /// The `vulnerabilities` array.
    items: Vec<Value>,
}

fn parse_page(resp: &Response) -> Result<Page> {
    let body: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| Error::parse(format!("response from {} is not valid JSON: {e}", resp.url)))?;
    let Value::Object(mut obj) = body else {
        return Err(Error::parse(format!(
            "response from {} is {}, not an NVD CVE API object",
            resp.url,
            json_type_name(&body)
        )));
    };
    let items = match obj.remove("vulnerabilities") {
        Some(Value::Array(a)) => a,
        Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(Error::parse(format!(
                "`vulnerabilities` in the response from {} is {}, not an array",
                resp.url,
                json_type_name(&other)
            )));
        }
        None => {
            return Err(Error::parse(format!(
                "the response from {} has no `vulnerabilities` array",
                resp.url
            )));
        }
    };
    let total = obj.get("totalResults").and_then(Value::as_u64);
    Ok(Page { total, items })
}

/// Maps the `vulnerabilities[]` entries of a page; bad entries are skipped with a
/// warning naming their index.
fn map_items(items: &[Value], now: Timestamp, w: &mut Warnings) -> Vec<Event> {
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(cve) = item.get("cve") else {
            w.add(format!(
                "vulnerabilities[{i}] skipped: no `cve` object (found {})",
                json_type_name(item)
            ));
            continue;
        };
        match normalize_cve(cve, now, w) {
            Ok(e) => events.push(e),
            Err(reason) => w.add(format!("vulnerabilities[{i}] skipped: {reason}")),
        }
    }
    events
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

/// One step of pull ingestion: fetches exactly one page.
pub fn poll(cfg: &Config, cursor: Option<&str>, env: Env<'_>) -> Result<PollOutcome> {
    let mut w = Warnings::default();
    let now = env.clock.now();
    let now_ms = env.clock.now_unix_ms();
    let pos = match resume(cfg, cursor, now, &mut w) {
        Position::Idle { since } if now <= since => {
            // Nothing can have changed after `now`: no request.
            return Ok(PollOutcome {
                batch: Batch {
                    events: Vec::new(),
                    cursor: Some(cursor_text(Position::Idle { since })?),
                    more: false,
                },
                warnings: w,
            });
        }
        Position::Idle { since } => Position::Window {
            from: since,
            to: since
                .checked_add_millis(cfg.window_millis())
                .map_or(now, |end| end.min(now)),
            next: 0,
            total: None,
        },
        other => other,
    };

    budget::acquire(&cfg.rate_limit, env.store, now_ms, &mut w)?;
    let req = page_request(cfg, &pos, cfg.results_per_page);
    let resp = req.send_with(env.transport)?;
    let resp = check_status(cfg, resp, env.store, now_ms, &mut w)?;
    let page = parse_page(&resp)?;
    let events = map_items(&page.items, now, &mut w);

    let start = pos.next_index();
    let count = u64::try_from(page.items.len()).unwrap_or(u64::MAX);
    let mut next = start.saturating_add(count);
    if let (Some(before), Some(total)) = (pos.saved_total(), page.total)
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
    }
    let done = match page.total {
        _ if count == 0 => true,
        Some(total) => next >= total,
        None => {
            w.add("the response has no `totalResults`; paging until a short page");
            count < u64::from(cfg.results_per_page)
        }
    };
    let (after, more) = match (pos, done) {
        (Position::Full { started, .. }, false) => (
            Position::Full {
                started,
                next,
                total: page.total,
            },
            true,
        ),
        (Position::Window { from, to, .. }, false) => (
            Position::Window {
                from,
                to,
                next,
                total: page.total,
            },
            true,
        ),
        // The full download is over: catch up on what changed meanwhile.
        (Position::Full { started, .. }, true) => (Position::Idle { since: started }, true),
        // A window cut short by the 120-day limit means more backlog right now.
        (Position::Window { from, to, .. }, true) => (
            Position::Idle { since: to },
            to.millis_since(&from) >= cfg.window_millis() && to < now,
        ),
        (Position::Idle { since }, _) => (Position::Idle { since }, false),
    };
    Ok(PollOutcome {
        batch: Batch {
            events,
            cursor: Some(cursor_text(after)?),
            more,
        },
        warnings: w,
    })
}

/// One request with `resultsPerPage=1`: stage `auth` (did NVD accept the request,
/// with or without a key?) and stage `sample` (did a record come back and normalise?).
pub fn test_connection(cfg: &Config, env: Env<'_>) -> Result<TestReport> {
    let mut w = Warnings::default();
    let now = env.clock.now();
    let now_ms = env.clock.now_unix_ms();
    budget::acquire(&cfg.rate_limit, env.store, now_ms, &mut w)?;
    let pos = Position::Full {
        started: now,
        next: 0,
        total: None,
    };
    let req = page_request(cfg, &pos, 1);
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
        return Ok(failed(
            format!("NVD rejected the API key ({})", describe_status(&resp)),
            "authentication failed",
        ));
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
    let sample = check_status(cfg, resp, env.store, now_ms, &mut w)
        .and_then(|r| parse_page(&r))
        .map(|page| {
            let events = map_items(&page.items, now, &mut w);
            (page, events)
        });
    let sample_ms = Some(env.clock.monotonic_ms().saturating_sub(started));
    Ok(match sample {
        Ok((page, events)) if events.len() == page.items.len() => {
            let total = page
                .total
                .map_or_else(|| "an unknown number of".to_string(), |t| t.to_string());
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
        Ok((page, _)) => {
            let reasons: Vec<&str> = w.entries().iter().map(|(m, _)| m.as_str()).collect();
            TestReport {
                stages: vec![
                    auth,
                    TestStage::failed(
                        "sample",
                        format!(
                            "{} record(s) returned but not normalised: {}",
                            page.items.len(),
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
    let value: Value = serde_json::from_str(input)
        .map_err(|e| Error::parse(format!("pushed input is not valid JSON: {e}")))?;
    let mut w = Warnings::default();
    if let Some(items) = value.get("vulnerabilities") {
        let Some(items) = items.as_array() else {
            return Err(Error::parse(format!(
                "`vulnerabilities` is {}, not an array",
                json_type_name(items)
            )));
        };
        let events = map_items(items, now, &mut w);
        return Ok((events, w));
    }
    let cve = value.get("cve").unwrap_or(&value);
    let event = normalize_cve(cve, now, &mut w)
        .map_err(|e| Error::parse(format!("pushed record not usable: {e}")))?;
    Ok((vec![event], w))
}
