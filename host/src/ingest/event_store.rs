//! The embedded event store: the default sink of every organisation, in the host's sled
//! store, queried by `GET /v1/orgs/{org}/events`.
//!
//! Keys (all under the org, so one org's listing never walks another's events):
//! - `ev/{org}/{time_us:020}/{connector}/{event_id}` → the event (JSON): listing by event
//!   time is a range scan, newest or oldest first, paged by the last key returned;
//! - `evid/{org}/{connector}/{event_id}` → the primary key: redelivering an event (after a
//!   crash before the cursor was committed) is a no-op, so the store never holds an event
//!   twice;
//! - `evage/{seq:020}` → `{bytes} {primary key}`: ingestion order (seq is the ingestion
//!   time in microseconds, made unique), which retention walks oldest first, by age
//!   (`retention_days`) and by size (`max_bytes`, the sum of stored event sizes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::sink::{EventSink, SinkBatch, SinkError};
use crate::event::{Event, EventKind};
use crate::store::{KvStore, StoreError, WriteOp};

/// Retention of the event store (`[events]` of the server configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Events ingested longer ago than this are removed (`None`: kept by age).
    pub max_age: Option<std::time::Duration>,
    /// The oldest-ingested events are removed while the stored events exceed this many
    /// bytes (`None`: no size bound).
    pub max_bytes: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Some(std::time::Duration::from_secs(30 * 86_400)),
            max_bytes: Some(1 << 30),
        }
    }
}

/// An event as stored and listed: the event plus when the host stored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredEvent {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// When the event store took it (RFC 3339).
    pub ingested_at: String,
}

/// Filters and paging of an event listing.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events of this connector.
    pub connector: Option<String>,
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// Only events with this OCSF `severity_id`.
    pub severity_id: Option<u8>,
    /// Event time ≥ this (µs since the epoch).
    pub since_us: Option<i64>,
    /// Event time < this (µs since the epoch).
    pub until_us: Option<i64>,
    /// Only events with an observable of this value.
    pub observable: Option<String>,
    /// Oldest first (default newest first).
    pub ascending: bool,
    /// Page size.
    pub limit: usize,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// One page of events.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events.
    pub items: Vec<StoredEvent>,
    /// Cursor of the next page (`None`: no more).
    pub next_cursor: Option<String>,
}

/// Why a listing failed.
#[derive(Debug, thiserror::Error)]
pub enum EventQueryError {
    /// The cursor is not one this org's listing produced.
    #[error("cursor is not a cursor of this listing")]
    BadCursor,
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Keys scanned at most per listing request before answering with a cursor (bounds the
/// work a selective filter can cause).
const MAX_SCAN_PER_REQUEST: usize = 20_000;
const SCAN_CHUNK: usize = 512;

/// Counters of the event store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventStoreStats {
    /// Events stored.
    pub events: u64,
    /// Bytes of stored events.
    pub bytes: u64,
}

/// The embedded event store.
pub struct EventStore {
    store: Arc<dyn KvStore>,
    retention: Retention,
    bytes: AtomicU64,
    events: AtomicU64,
    last_seq: AtomicU64,
    /// Serialises retention passes.
    pruning: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("retention", &self.retention)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn time_us(ev: &Event) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&ev.time)
        .map(|t| t.timestamp_micros())
        .unwrap_or(0)
        .max(0)
}

fn primary_key(org: &str, t_us: i64, connector: &str, event_id: &str) -> String {
    format!("ev/{org}/{t_us:020}/{connector}/{event_id}")
}

fn id_key(org: &str, connector: &str, event_id: &str) -> String {
    format!("evid/{org}/{connector}/{event_id}")
}

/// `ev/{org}/{time}/{connector}/{event_id}` → (org, time, connector, event id).
fn split_primary(key: &str) -> Option<(&str, i64, &str, &str)> {
    let rest = key.strip_prefix("ev/")?;
    let mut parts = rest.splitn(4, '/');
    let org = parts.next()?;
    let t = parts.next()?.parse().ok()?;
    let connector = parts.next()?;
    let id = parts.next()?;
    Some((org, t, connector, id))
}

fn now_us() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0)
}

impl EventStore {
    /// The event store over `store`; reads its counters from the retention index.
    pub fn open(store: Arc<dyn KvStore>, retention: Retention) -> Result<Self, StoreError> {
        let mut bytes = 0u64;
        let mut events = 0u64;
        let mut last_seq = 0u64;
        for (k, v) in store.scan_prefix("evage/")? {
            events += 1;
            bytes += parse_age_value(&v).map(|(b, _)| b).unwrap_or(0);
            if let Some(seq) = k.strip_prefix("evage/").and_then(|s| s.parse().ok()) {
                last_seq = last_seq.max(seq);
            }
        }
        Ok(EventStore {
            store,
            retention,
            bytes: AtomicU64::new(bytes),
            events: AtomicU64::new(events),
            last_seq: AtomicU64::new(last_seq),
            pruning: parking_lot::Mutex::new(()),
        })
    }

    /// Events and bytes stored.
    pub fn stats(&self) -> EventStoreStats {
        EventStoreStats {
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// The retention settings.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    fn next_seq(&self) -> u64 {
        let now = now_us();
        let mut cur = self.last_seq.load(Ordering::Relaxed);
        loop {
            let next = now.max(cur + 1);
            match self
                .last_seq
                .compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Store `events` of `connector` of `org`; events already stored (same connector and
    /// id) are skipped. Returns how many were new. One atomic write.
    pub fn put(&self, org: &str, connector: &str, events: &[Event]) -> Result<usize, StoreError> {
        let mut ops = Vec::with_capacity(events.len() * 3);
        let mut added_bytes = 0u64;
        let mut seen = std::collections::HashSet::new();
        let ingested_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for ev in events {
            if !seen.insert(ev.id.as_str()) {
                continue;
            }
            let idk = id_key(org, connector, &ev.id);
            if self.store.get(&idk)?.is_some() {
                continue;
            }
            let pk = primary_key(org, time_us(ev), connector, &ev.id);
            let stored = StoredEvent {
                event: ev.clone(),
                ingested_at: ingested_at.clone(),
            };
            let value = serde_json::to_vec(&stored).map_err(|e| StoreError::Corrupt {
                key: pk.clone(),
                message: e.to_string(),
            })?;
            let size = (value.len() + pk.len()) as u64;
            let seq = self.next_seq();
            ops.push(WriteOp::Put(
                format!("evage/{seq:020}"),
                format!("{size} {pk}").into_bytes(),
            ));
            ops.push(WriteOp::Put(idk, pk.clone().into_bytes()));
            ops.push(WriteOp::Put(pk, value));
            added_bytes += size;
        }
        let added = ops.len() / 3;
        if added == 0 {
            return Ok(0);
        }
        self.store.apply(ops)?;
        self.bytes.fetch_add(added_bytes, Ordering::Relaxed);
        self.events.fetch_add(added as u64, Ordering::Relaxed);
        if self
            .retention
            .max_bytes
            .is_some_and(|m| self.bytes.load(Ordering::Relaxed) > m)
        {
            self.prune()?;
        }
        Ok(added)
    }

    /// Whether the event `event_id` of `connector` is stored.
    pub fn contains(&self, org: &str, connector: &str, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.store.get(&id_key(org, connector, event_id))?.is_some())
    }

    /// Apply retention now: remove events ingested before the age bound, then the
    /// oldest-ingested while over the size bound. Returns how many were removed.
    pub fn prune(&self) -> Result<usize, StoreError> {
        let Some(_guard) = self.pruning.try_lock() else {
            return Ok(0);
        };
        let cutoff = self
            .retention
            .max_age
            .map(|a| now_us().saturating_sub(u64::try_from(a.as_micros()).unwrap_or(u64::MAX)));
        let mut removed = 0;
        loop {
            let over_size = self
                .retention
                .max_bytes
                .is_some_and(|m| self.bytes.load(Ordering::Relaxed) > m);
            let page = self.store.scan_page("evage/", None, SCAN_CHUNK, false)?;
            if page.is_empty() {
                break;
            }
            let mut ops = Vec::new();
            let mut freed = 0u64;
            let mut dropped = 0u64;
            let mut done = false;
            let mut bytes_left = self.bytes.load(Ordering::Relaxed);
            for (k, v) in page {
                let seq: u64 = k
                    .strip_prefix("evage/")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let too_old = cutoff.is_some_and(|c| seq < c);
                let too_big = over_size && self.retention.max_bytes.is_some_and(|m| bytes_left > m);
                if !too_old && !too_big {
                    done = true;
                    break;
                }
                let (size, pk) = parse_age_value(&v).unwrap_or((0, String::new()));
                if let Some((org, _, connector, id)) = split_primary(&pk) {
                    ops.push(WriteOp::Delete(id_key(org, connector, id)));
                }
                if !pk.is_empty() {
                    ops.push(WriteOp::Delete(pk));
                }
                ops.push(WriteOp::Delete(k));
                freed += size;
                dropped += 1;
                bytes_left = bytes_left.saturating_sub(size);
            }
            if dropped > 0 {
                self.store.apply(ops)?;
                self.bytes.fetch_sub(
                    freed.min(self.bytes.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
                self.events.fetch_sub(
                    dropped.min(self.events.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
                removed += dropped as usize;
            }
            if done || dropped == 0 {
                break;
            }
        }
        Ok(removed)
    }

    /// One page of `org`'s events, filtered.
    pub fn list(&self, org: &str, q: &EventQuery) -> Result<EventPage, EventQueryError> {
        let prefix = format!("ev/{org}/");
        let limit = q.limit.max(1);
        let mut after = match &q.cursor {
            Some(c) => {
                let key = URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|k| k.starts_with(&prefix))
                    .ok_or(EventQueryError::BadCursor)?;
                Some(key)
            }
            None => match (q.ascending, q.since_us, q.until_us) {
                // Oldest first from `since`: start right before the first key of that µs.
                (true, Some(s), _) => Some(format!("{prefix}{:020}", s.max(0))),
                // Newest first from `until` (exclusive).
                (false, _, Some(u)) => Some(format!("{prefix}{:020}", u.max(0))),
                _ => None,
            },
        };
        let mut items = Vec::new();
        let mut scanned = 0usize;
        loop {
            let page = self
                .store
                .scan_page(&prefix, after.as_deref(), SCAN_CHUNK, !q.ascending)?;
            let exhausted = page.len() < SCAN_CHUNK;
            for (k, v) in page {
                scanned += 1;
                let Some((_, t, connector, _)) = split_primary(&k) else {
                    after = Some(k);
                    continue;
                };
                let past_end = if q.ascending {
                    q.until_us.is_some_and(|u| t >= u)
                } else {
                    q.since_us.is_some_and(|s| t < s)
                };
                if past_end {
                    return Ok(EventPage {
                        items,
                        next_cursor: None,
                    });
                }
                let before_start = if q.ascending {
                    false
                } else {
                    q.until_us.is_some_and(|u| t >= u)
                };
                let wanted = !before_start
                    && q.connector.as_deref().is_none_or(|c| c == connector)
                    && self.matches(&v, q);
                if wanted {
                    let ev: StoredEvent =
                        serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                            key: k.clone(),
                            message: e.to_string(),
                        })?;
                    items.push(ev);
                }
                after = Some(k);
                if items.len() >= limit || scanned >= MAX_SCAN_PER_REQUEST {
                    return Ok(EventPage {
                        items,
                        next_cursor: after.map(|a| URL_SAFE_NO_PAD.encode(a)),
                    });
                }
            }
            if exhausted {
                return Ok(EventPage {
                    items,
                    next_cursor: None,
                });
            }
        }
    }

    /// Filters that need the event body (decoded only when one is set).
    fn matches(&self, value: &[u8], q: &EventQuery) -> bool {
        if q.kind.is_none() && q.severity_id.is_none() && q.observable.is_none() {
            return true;
        }
        let Ok(ev) = serde_json::from_slice::<StoredEvent>(value) else {
            return false;
        };
        q.kind.is_none_or(|k| ev.event.kind == k)
            && q.severity_id.is_none_or(|s| ev.event.severity_id == s)
            && q.observable
                .as_deref()
                .is_none_or(|o| ev.event.observables.iter().any(|x| x.value == o))
    }
}

fn parse_age_value(v: &[u8]) -> Option<(u64, String)> {
    let s = std::str::from_utf8(v).ok()?;
    let (size, pk) = s.split_once(' ')?;
    Some((size.parse().ok()?, pk.to_string()))
}

#[async_trait::async_trait]
impl EventSink for EventStore {
    fn name(&self) -> &str {
        "event-store"
    }

    async fn deliver(&self, batch: &SinkBatch) -> Result<(), SinkError> {
        self.put(&batch.org, &batch.connector_id, &batch.events)
            .map(|_| ())
            .map_err(|e| SinkError::Unavailable {
                sink: "event-store".into(),
                message: e.to_string(),
                retry_after: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Observable;
    use crate::store::SledStore;

    pub(crate) fn event(id: &str, time: &str, kind: EventKind, sev: u8, ip: &str) -> Event {
        Event {
            id: id.into(),
            time: time.into(),
            kind,
            severity_id: sev,
            severity: "x".into(),
            title: format!("event {id}"),
            source: "c1".into(),
            observables: vec![Observable {
                kind: "ip".into(),
                value: ip.into(),
            }],
            attributes: serde_json::json!({}),
            raw: "{}".into(),
        }
    }

    fn open(dir: &std::path::Path, retention: Retention) -> (Arc<dyn KvStore>, EventStore) {
        let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir).unwrap());
        let es = EventStore::open(store.clone(), retention).unwrap();
        (store, es)
    }

    fn ids(page: &EventPage) -> Vec<&str> {
        page.items.iter().map(|e| e.event.id.as_str()).collect()
    }

    #[test]
    fn idempotent_by_id_and_lists_in_time_order_with_paging_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let (_s, es) = open(dir.path(), Retention::default());
        let evs: Vec<Event> = (0..10)
            .map(|i| {
                event(
                    &format!("e{i}"),
                    &format!("2024-01-01T00:00:{:02}Z", 10 - i),
                    if i % 2 == 0 {
                        EventKind::Alert
                    } else {
                        EventKind::Log
                    },
                    (i % 5) as u8,
                    &format!("10.0.0.{i}"),
                )
            })
            .collect();
        assert_eq!(es.put("o1", "c1", &evs).unwrap(), 10);
        assert_eq!(
            es.put("o1", "c1", &evs).unwrap(),
            0,
            "redelivery is a no-op"
        );
        assert_eq!(es.put("o2", "c9", &evs[..2]).unwrap(), 2);
        assert_eq!(es.stats().events, 12);

        let mut q = EventQuery {
            limit: 4,
            ..EventQuery::default()
        };
        let p1 = es.list("o1", &q).unwrap();
        assert_eq!(ids(&p1), ["e0", "e1", "e2", "e3"], "newest first");
        q.cursor = p1.next_cursor.clone();
        let p2 = es.list("o1", &q).unwrap();
        assert_eq!(ids(&p2), ["e4", "e5", "e6", "e7"]);
        q.cursor = p2.next_cursor.clone();
        let p3 = es.list("o1", &q).unwrap();
        assert_eq!(ids(&p3), ["e8", "e9"]);
        assert!(p3.next_cursor.is_none());

        let asc = es
            .list(
                "o1",
                &EventQuery {
                    ascending: true,
                    limit: 3,
                    ..EventQuery::default()
                },
            )
            .unwrap();
        assert_eq!(ids(&asc), ["e9", "e8", "e7"]);

        let alerts = es
            .list(
                "o1",
                &EventQuery {
                    kind: Some(EventKind::Alert),
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .unwrap();
        assert_eq!(ids(&alerts), ["e0", "e2", "e4", "e6", "e8"]);
        let by_ip = es
            .list(
                "o1",
                &EventQuery {
                    observable: Some("10.0.0.7".into()),
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .unwrap();
        assert_eq!(ids(&by_ip), ["e7"]);
        let sev = es
            .list(
                "o1",
                &EventQuery {
                    severity_id: Some(3),
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .unwrap();
        assert_eq!(ids(&sev), ["e3", "e8"]);
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        for ascending in [false, true] {
            let window = es
                .list(
                    "o1",
                    &EventQuery {
                        since_us: Some(t("2024-01-01T00:00:03Z")),
                        until_us: Some(t("2024-01-01T00:00:06Z")),
                        ascending,
                        limit: 100,
                        ..EventQuery::default()
                    },
                )
                .unwrap();
            let mut got = ids(&window);
            got.sort();
            assert_eq!(got, ["e5", "e6", "e7"], "since inclusive, until exclusive");
        }
        // Another org's listing never shows o1's events, and o1's cursor is refused there.
        let o2 = es
            .list(
                "o2",
                &EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .unwrap();
        assert_eq!(ids(&o2), ["e0", "e1"]);
        assert!(matches!(
            es.list(
                "o2",
                &EventQuery {
                    cursor: p1.next_cursor,
                    limit: 10,
                    ..EventQuery::default()
                }
            ),
            Err(EventQueryError::BadCursor)
        ));
    }

    #[test]
    fn retention_by_size_drops_oldest_ingested_and_counters_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (store, es) = open(
            dir.path(),
            Retention {
                max_age: None,
                max_bytes: Some(4_000),
            },
        );
        for i in 0..40 {
            es.put(
                "o1",
                "c1",
                &[event(
                    &format!("e{i}"),
                    "2024-01-01T00:00:00Z",
                    EventKind::Log,
                    1,
                    "1.2.3.4",
                )],
            )
            .unwrap();
        }
        let stats = es.stats();
        assert!(stats.bytes <= 4_000, "{stats:?}");
        assert!(stats.events < 40 && stats.events > 5, "{stats:?}");
        assert!(!es.contains("o1", "c1", "e0").unwrap(), "oldest dropped");
        assert!(es.contains("o1", "c1", "e39").unwrap(), "newest kept");
        let listed = es
            .list(
                "o1",
                &EventQuery {
                    limit: 1000,
                    ..EventQuery::default()
                },
            )
            .unwrap();
        assert_eq!(listed.items.len() as u64, stats.events);
        drop(es);
        let es = EventStore::open(store, Retention::default()).unwrap();
        assert_eq!(es.stats(), stats);
    }

    #[test]
    fn retention_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, es) = open(
            dir.path(),
            Retention {
                max_age: Some(std::time::Duration::from_millis(50)),
                max_bytes: None,
            },
        );
        es.put(
            "o1",
            "c1",
            &[event("old", "2024-01-01T00:00:00Z", EventKind::Log, 1, "x")],
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(120));
        es.put(
            "o1",
            "c1",
            &[event("new", "2024-01-01T00:00:00Z", EventKind::Log, 1, "x")],
        )
        .unwrap();
        assert_eq!(es.prune().unwrap(), 1);
        assert!(!es.contains("o1", "c1", "old").unwrap());
        assert!(es.contains("o1", "c1", "new").unwrap());
        assert_eq!(es.stats().events, 1);
    }
}
