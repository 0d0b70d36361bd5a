//! The connector's logic, free of host imports: HTTP goes through a [`Transport`] and
//! time through a [`Clock`], so everything here runs in native unit tests.
//!
//! Incremental ingestion works in windows over `last_updated_time` (epoch ms):
//! a window covers `(since, upper]`, where `upper` is fixed when the window opens
//! (now minus `settle_seconds`) and the next window starts at `upper`. Inside a
//! window, offenses sorted by `+last_updated_time,+id` are paged with
//! `Range: items=x-y`, one page per `poll`, the cursor saved after every page.
//!
//! An offense updated while its window is being paged moves out of the window (its
//! new update time is beyond `upper`; the next window picks it up), which shifts
//! every later position down by one. To notice, each page after the first asks for
//! one item of overlap (the last offense of the previous page) and checks it is still
//! there. When it is not, the window is re-based: its lower bound becomes the last
//! emitted update time (inclusive, leaving out the offenses already emitted at that
//! exact millisecond) and paging restarts at item 0 — nothing is skipped.

use std::collections::BTreeSet;

use portcullis_sdk::clock::Clock;
use portcullis_sdk::http::{HttpError, Transport};
use portcullis_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{self, ContentRange, Lower};
use crate::config::Config;
use crate::mapping::{self, Lookups};

/// The plugin id (= package name).
pub const PLUGIN_ID: &str = env!("CARGO_PKG_NAME");

/// Most offense ids remembered at the window's newest update time (for a re-base).
const MAX_TIE_IDS: usize = 1000;
/// Most ids per `id in (...)` lookup request.
const LOOKUP_CHUNK: usize = 50;

pub use portcullis_sdk::warnings::Warnings;

/// The last offense of a page, as QRadar sent its `id` and `last_updated_time`
/// (compared verbatim on the next page's overlap item).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// `id` as received.
    pub id: Value,
    /// `last_updated_time` as received.
    pub t: Value,
}

/// The lower bound of a re-based window: `last_updated_time >= t`, leaving out the
/// offenses already emitted at `t`. Fixed until the window ends, so the result set
/// (and with it every position) stays the same from page to page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// Inclusive lower bound (epoch ms).
    pub t: i64,
    /// Offense ids left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<u64>,
}

/// Paging state of the window in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    /// Inclusive upper bound of `last_updated_time` (epoch ms).
    pub upper: i64,
    /// Zero-based position of the next offense to fetch.
    pub offset: u64,
    /// Set by a re-base: the lower bound replacing `since` for the rest of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<Floor>,
    /// The last offense fetched, for the overlap check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// Newest usable `last_updated_time` emitted in this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<i64>,
    /// Offense ids emitted with `last_updated_time == newest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub newest_ids: Vec<u64>,
}

/// The cursor the host persists between polls (JSON text).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Exclusive lower bound of `last_updated_time` for the current or next window
    /// (epoch ms); `null` before the first window completes without `start_time`.
    pub since: Option<i64>,
    /// The window being paged, `null` between windows.
    pub window: Option<WindowState>,
}

/// What `poll` produced.
#[derive(Clone, Debug, PartialEq)]
pub struct PollOutcome {
    /// Events, next cursor and whether more is ready.
    pub batch: Batch,
    /// Skipped records, degraded lookups and other oddities, for the log.
    pub warnings: Warnings,
}

fn read_cursor(cfg: &Config, cursor: Option<&str>, w: &mut Warnings) -> Cursor {
    let fresh = Cursor {
        since: cfg.start_time_ms,
        window: None,
    };
    let Some(text) = cursor else {
        return fresh;
    };
    match serde_json::from_str::<Cursor>(text) {
        Ok(c) => c,
        Err(e) => {
            // Offense updates are deduplicated by event id downstream, so starting over
            // re-sends data but loses none.
            w.add(format!(
                "saved cursor is unreadable ({e}); starting again from the configured start_time"
            ));
            fresh
        }
    }
}

fn lower_bound(since: Option<i64>, win: &WindowState) -> Lower {
    match (&win.floor, since) {
        (Some(f), _) => Lower::From {
            t: f.t,
            exclude: f.exclude.clone(),
        },
        (None, Some(s)) => Lower::After(s),
        (None, None) => Lower::None,
    }
}

/// One fetched page: its records (the overlap item removed) and whether the window
/// has more after it.
struct Page {
    records: Vec<Value>,
    more: bool,
}

fn content_range(resp: &portcullis_sdk::http::Response, w: &mut Warnings) -> Option<ContentRange> {
    let value = resp.header("content-range")?;
    let parsed = api::parse_content_range(value);
    if parsed.is_none() {
        w.add(format!(
            "unreadable Content-Range {value:?}; paging by page fullness instead"
        ));
    }
    parsed
}

fn mark_of(record: &Value) -> Mark {
    Mark {
        id: record.get("id").cloned().unwrap_or(Value::Null),
        t: record
            .get("last_updated_time")
            .cloned()
            .unwrap_or(Value::Null),
    }
}

/// Fetches the page at `win.offset`, re-basing the window (at most once per call)
/// when the overlap item shows that positions shifted.
fn fetch_page(
    cfg: &Config,
    since: Option<i64>,
    win: &mut WindowState,
    transport: &dyn Transport,
    w: &mut Warnings,
) -> Result<Page> {
    let mut rebased = false;
    loop {
        let overlap = win.offset > 0 && win.mark.is_some();
        let first = if overlap { win.offset - 1 } else { win.offset };
        let last = win.offset + cfg.page_size - 1;
        let filter = api::window_filter(cfg.filter.as_deref(), &lower_bound(since, win), win.upper);
        let resp = api::offenses_request(cfg, Some(&filter), first, last).send_with(transport)?;
        let resp = api::check_status(resp)?;
        let range = content_range(&resp, w);
        let mut records = api::json_array(&resp, "GET /api/siem/offenses")?;
        let received = records.len() as u64;
        if overlap {
            let still_there = records
                .first()
                .is_some_and(|r| Some(&mark_of(r)) == win.mark.as_ref());
            if still_there {
                records.remove(0);
            } else if !rebased {
                rebased = true;
                w.add(
                    "offenses changed while the window was being paged; re-reading it from the last offense emitted",
                );
                if let Some(t) = win.newest {
                    win.floor = Some(Floor {
                        t,
                        exclude: win.newest_ids.clone(),
                    });
                }
                win.offset = 0;
                if win.floor.is_none() {
                    // Nothing usable emitted yet: start the window over (duplicates are
                    // removed by event id downstream).
                    win.mark = None;
                    win.newest_ids.clear();
                }
                continue;
            } else {
                // Shifted again straight after a re-base: accept the page as it is
                // (the next page checks again).
                w.add("offenses keep changing under the window; continuing without re-checking this page");
            }
        }
        let end = first + received; // exclusive
        let more = match range {
            Some(ContentRange { total, .. }) => end < total && received > 0,
            None => received >= last + 1 - first,
        };
        return Ok(Page { records, more });
    }
}

/// Looks `ids` up at `path` (`filter=id in (...)`), reading `field` of each item.
/// A missing capability (403), an endpoint the version lacks (404) or a refused
/// parameter (422) degrades to ids only, with a warning; every other failure fails
/// the poll so that it is retried.
fn lookup(
    cfg: &Config,
    path: &str,
    field: &str,
    ids: &BTreeSet<u64>,
    transport: &dyn Transport,
    w: &mut Warnings,
) -> Result<std::collections::HashMap<u64, String>> {
    let mut out = std::collections::HashMap::new();
    let ids: Vec<u64> = ids.iter().copied().collect();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let req = api::get(cfg, path)
            .query("filter", api::ids_filter(chunk))
            .query("fields", format!("id,{field}"))
            .header("Range", api::range_header(0, chunk.len() as u64 - 1));
        let resp = req.send_with(transport)?;
        if matches!(resp.status, 403 | 404 | 422) {
            w.add(format!(
                "GET {path} refused (HTTP {}: {}); events keep the ids only",
                resp.status,
                api::error_message(&resp)
            ));
            return Ok(out);
        }
        let resp = api::check_status(resp)?;
        for item in api::json_array(&resp, &format!("GET {path}"))? {
            let (Some(id), Some(value)) = (
                item.get("id").and_then(Value::as_u64),
                item.get(field).and_then(Value::as_str),
            ) else {
                w.add(format!(
                    "GET {path}: item without a numeric id and a {field}"
                ));
                continue;
            };
            out.insert(id, value.to_string());
        }
    }
    Ok(out)
}

fn resolve(
    cfg: &Config,
    offenses: &[&Value],
    transport: &dyn Transport,
    w: &mut Warnings,
) -> Result<Lookups> {
    let mut lookups = Lookups::default();
    if cfg.resolve_addresses {
        let sources: BTreeSet<u64> = offenses
            .iter()
            .flat_map(|o| mapping::source_address_ids(o))
            .collect();
        let destinations: BTreeSet<u64> = offenses
            .iter()
            .flat_map(|o| mapping::destination_address_ids(o))
            .collect();
        lookups.source_ips = lookup(
            cfg,
            api::SOURCE_ADDRESSES_PATH,
            "source_ip",
            &sources,
            transport,
            w,
        )?;
        lookups.destination_ips = lookup(
            cfg,
            api::LOCAL_DESTINATION_ADDRESSES_PATH,
            "local_destination_ip",
            &destinations,
            transport,
            w,
        )?;
    }
    if cfg.resolve_rule_names {
        let rules: BTreeSet<u64> = offenses.iter().flat_map(|o| mapping::rule_ids(o)).collect();
        lookups.rule_names = lookup(cfg, api::RULES_PATH, "name", &rules, transport, w)?;
    }
    Ok(lookups)
}

/// Maps a page to events (offenses without a usable id or update time are skipped
/// with a warning) and records the window's newest update time.
fn map_page(
    cfg: &Config,
    records: &[Value],
    since: Option<i64>,
    win: &mut WindowState,
    transport: &dyn Transport,
    w: &mut Warnings,
) -> Result<Vec<Event>> {
    let mut usable: Vec<(&Value, u64, i64)> = Vec::new();
    for r in records {
        match mapping::offense_key(r) {
            Ok((id, t)) => {
                if t > win.upper || since.is_some_and(|s| t <= s && win.floor.is_none()) {
                    w.add(
                        "QRadar returned an offense outside the requested last_updated_time bounds",
                    );
                }
                usable.push((r, id, t));
            }
            Err(why) => w.add(format!("offense skipped: {why}")),
        }
    }
    let offenses: Vec<&Value> = usable.iter().map(|(r, _, _)| *r).collect();
    let lookups = resolve(cfg, &offenses, transport, w)?;
    let mut events = Vec::with_capacity(usable.len());
    for (r, id, t) in usable {
        match mapping::map_offense(r, id, t, cfg.severity_basis, &lookups) {
            Ok(e) => events.push(e),
            Err(e) => {
                w.add(format!("offense skipped: {e}"));
                continue;
            }
        }
        match win.newest {
            Some(n) if n == t => {
                if win.newest_ids.len() < MAX_TIE_IDS {
                    win.newest_ids.push(id);
                }
            }
            Some(n) if n > t => {}
            _ => {
                win.newest = Some(t);
                win.newest_ids = vec![id];
            }
        }
    }
    Ok(events)
}

/// One step of pull ingestion: fetches exactly one page of offenses (plus the
/// address and rule lookups for it).
pub fn poll(
    cfg: &Config,
    cursor: Option<&str>,
    transport: &dyn Transport,
    clock: &dyn Clock,
) -> Result<PollOutcome> {
    let mut w = Warnings::default();
    let cur = read_cursor(cfg, cursor, &mut w);
    let since = cur.since;
    let mut win = match cur.window {
        Some(win) => win,
        None => {
            let now = i64::try_from(clock.now_unix_ms()).unwrap_or(i64::MAX);
            let upper = now.saturating_sub(cfg.settle_ms);
            if since.is_some_and(|s| upper <= s) {
                // Nothing can have settled since the last window.
                let cursor = serialize(&Cursor {
                    since,
                    window: None,
                })?;
                return Ok(PollOutcome {
                    batch: Batch {
                        events: Vec::new(),
                        cursor: Some(cursor),
                        more: false,
                    },
                    warnings: w,
                });
            }
            WindowState {
                upper,
                offset: 0,
                floor: None,
                mark: None,
                newest: None,
                newest_ids: Vec::new(),
            }
        }
    };

    let page = fetch_page(cfg, since, &mut win, transport, &mut w)?;
    let events = map_page(cfg, &page.records, since, &mut win, transport, &mut w)?;
    win.offset += page.records.len() as u64;
    if let Some(last) = page.records.last() {
        win.mark = Some(mark_of(last));
    }
    let next = if page.more {
        Cursor {
            since,
            window: Some(win),
        }
    } else {
        Cursor {
            since: Some(win.upper),
            window: None,
        }
    };
    Ok(PollOutcome {
        batch: Batch {
            events,
            cursor: Some(serialize(&next)?),
            more: page.more,
        },
        warnings: w,
    })
}

fn serialize(cursor: &Cursor) -> Result<String> {
    serde_json::to_string(cursor)
        .map_err(|e| Error::other(format!("cannot serialise the cursor: {e}")))
}

/// One `GET /api/siem/offenses` with `Range: items=0-0` (the most recently updated
/// offense that passes the configured filter): stage `auth` (was the SEC token or
/// gateway token accepted?) and stage `sample` (did QRadar answer a readable offense
/// list?), with the offense mapped as a sample event (addresses and rule names are
/// not looked up here, to keep the test to one request).
pub fn test_connection(
    cfg: &Config,
    transport: &dyn Transport,
    clock: &dyn Clock,
) -> Result<TestReport> {
    let mut req = api::get(cfg, api::OFFENSES_PATH)
        .query("fields", api::OFFENSE_FIELDS.join(","))
        .query("sort", "-last_updated_time")
        .header("Range", api::range_header(0, 0));
    if let Some(f) = &cfg.filter {
        req = req.query("filter", f);
    }
    let started = clock.monotonic_ms();
    let sent = req.send_with(transport);
    let took = Some(clock.monotonic_ms().saturating_sub(started));
    let not_run = |why: &str| TestStage::failed("sample", format!("not run: {why}"), None);
    let resp = match sent {
        Ok(r) => r,
        Err(HttpError::Credential(m)) => {
            return Ok(TestReport {
                stages: vec![
                    TestStage::failed(
                        "auth",
                        format!("the host could not apply the credential in slot \"api\": {m}"),
                        took,
                    ),
                    not_run("authentication failed"),
                ],
                sample: vec![],
            });
        }
        Err(e) => {
            return Ok(TestReport {
                stages: vec![
                    TestStage::failed("auth", format!("request to QRadar failed: {e}"), took),
                    not_run("QRadar could not be reached"),
                ],
                sample: vec![],
            });
        }
    };
    match resp.status {
        401 | 403 => {
            return Ok(TestReport {
                stages: vec![
                    TestStage::failed(
                        "auth",
                        format!("HTTP {}: {}", resp.status, api::error_message(&resp)),
                        took,
                    ),
                    not_run("authentication failed"),
                ],
                sample: vec![],
            });
        }
        429 => {
            return Err(Error::rate_limited(
                resp.retry_after_secs(),
                api::error_message(&resp),
            ));
        }
        _ => {}
    }
    let auth = TestStage::passed(
        "auth",
        format!(
            "QRadar accepted the credential (HTTP {}, API version {})",
            resp.status, cfg.api_version
        ),
        took,
    );
    let mut w = Warnings::default();
    let sample = (|| -> Result<(Option<u64>, Vec<Event>)> {
        let resp = api::check_status(resp)?;
        let total = content_range(&resp, &mut w).map(|r| r.total);
        let records = api::json_array(&resp, "GET /api/siem/offenses")?;
        let mut events = Vec::new();
        for r in &records {
            match mapping::offense_key(r) {
                Ok((id, t)) => events.push(mapping::map_offense(
                    r,
                    id,
                    t,
                    cfg.severity_basis,
                    &Lookups::default(),
                )?),
                Err(why) => w.add(format!("offense skipped: {why}")),
            }
        }
        Ok((total, events))
    })();
    let sample_ms = Some(clock.monotonic_ms().saturating_sub(started));
    Ok(match sample {
        Ok((total, events)) => {
            let visible = match total {
                Some(n) => format!("{n} offenses visible"),
                None => "offense count not reported (no Content-Range)".to_string(),
            };
            let detail = match events.first() {
                Some(e) => format!("; most recently updated: {:?} ({})", e.title, e.time),
                None if w.is_empty() => String::new(),
                None => format!(
                    "; {}",
                    w.entries()
                        .iter()
                        .map(|(m, _)| m.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            };
            TestReport {
                stages: vec![
                    auth,
                    TestStage::passed("sample", format!("{visible}{detail}"), sample_ms),
                ],
                sample: events,
            }
        }
        Err(e) => TestReport {
            stages: vec![auth, TestStage::failed("sample", e.to_string(), sample_ms)],
            sample: vec![],
        },
    })
}
