//! The delivery pipeline: events of one connector → dedup → every sink of its org → one
//! atomic commit of the cursor and the dedup marks.
//!
//! Guarantees:
//! - **At-least-once, committed after the sinks.** The cursor (`cursor/{org}/{id}`) and
//!   the dedup marks of a batch are written in ONE store batch, only after every sink
//!   acknowledged it. A crash before that commit re-polls from the old cursor; the
//!   redelivered batch passes dedup again (its marks were never committed) and the event
//!   store, idempotent by event id, keeps one copy.
//! - **Dedup by event id, persistent, bounded per connector.** `dedup/{org}/{id}/{event}`
//!   marks an id as delivered; `dedupq/{org}/{id}/{seq}` keeps them in arrival order so
//!   the oldest are evicted beyond the window; `dedupm/{org}/{id}` holds the counters.
//! - **Gated per connector.** Every delivery of a connector (polled or pushed) runs under
//!   that connector's gate lock and checks the gate is open (and, for polls, still the
//!   generation the poll started under). [`Pipeline::close_gate`] cancels an in-flight
//!   delivery and takes the lock: once it returns, nothing more of that connector reaches
//!   a sink until the gate is opened again.
//! - **Bounded.** At most `max_inflight_batches` batches are in the sinks at once; a
//!   connector whose batch waits for a slot stops polling (its poll loop awaits the
//!   delivery) and is reported as backpressured. Each connector holds at most one batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event_store::EventStore;
use super::observe::{IngestObservation, IngestObserver, NoObserver};
use super::sink::{EventSink, SinkBatch, SinkError};
use crate::event::Event;
use crate::management::model::ConnectorRecord;
use crate::store::{KvStore, KvStoreExt, StoreError, WriteOp};

/// Pipeline settings (`[ingest]` of the server configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Event ids remembered per connector for dedup.
    pub dedup_window: u64,
    /// Batches in the sinks at once, all connectors together.
    pub max_inflight_batches: usize,
    /// Longest wait between retries of a sink that is unavailable.
    pub max_retry_delay: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            dedup_window: 10_000,
            max_inflight_batches: 32,
            max_retry_delay: Duration::from_secs(30),
        }
    }
}

/// The outcome of one delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryReport {
    /// New events handed to every sink.
    pub accepted: usize,
    /// Events dropped as already delivered (or repeated within the batch).
    pub duplicates: usize,
}

/// Why a delivery did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The connector is disabled (or was disabled while the batch was in flight).
    #[error("connector {connector} is not enabled")]
    Stopped {
        /// Connector id.
        connector: String,
    },
    /// A sink refused the batch for good; nothing was committed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Storage failure (dedup lookup or commit).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which sinks an org's events go to.
pub trait SinkResolver: Send + Sync {
    /// The sinks of `org` (never empty: the event store at least).
    fn sinks(&self, org: &str) -> Vec<Arc<dyn EventSink>>;
}

/// Every org gets the same sinks.
pub struct StaticSinks(pub Vec<Arc<dyn EventSink>>);

impl SinkResolver for StaticSinks {
    fn sinks(&self, _org: &str) -> Vec<Arc<dyn EventSink>> {
        self.0.clone()
    }
}

/// Counters of the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PipelineStats {
    /// Batches waiting for a delivery slot (the queue).
    pub waiting_batches: usize,
    /// Batches in the sinks now.
    pub inflight_batches: usize,
    /// The bound on `inflight_batches`.
    pub max_inflight_batches: usize,
    /// New events delivered since start.
    pub delivered_events: u64,
    /// Duplicates dropped since start.
    pub duplicates: u64,
    /// Most batches that ever waited at once.
    pub max_waiting_batches: usize,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct DedupMeta {
    /// Sequence number of the next mark.
    next: u64,
    /// Marks kept.
    count: u64,
}

struct GateState {
    open: bool,
    generation: u64,
}

/// One connector's gate: the lock every delivery of the connector holds, and the signal
/// that cancels an in-flight delivery when the connector stops.
struct Gate {
    state: tokio::sync::Mutex<GateState>,
    cancel: tokio::sync::watch::Sender<u64>,
}

/// Where a batch comes from.
enum Origin<'a> {
    Poll {
        generation: u64,
        from_cursor: Option<&'a str>,
        next_cursor: Option<&'a str>,
    },
    Push,
}

/// The delivery pipeline. Share it via `Arc`.
pub struct Pipeline {
    store: Arc<dyn KvStore>,
    event_store: Arc<EventStore>,
    sinks: parking_lot::RwLock<Arc<dyn SinkResolver>>,
    observer: parking_lot::RwLock<Arc<dyn IngestObserver>>,
    gates: parking_lot::Mutex<HashMap<(String, String), Arc<Gate>>>,
    config: PipelineConfig,
    slots: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    max_waiting: AtomicUsize,
    delivered: AtomicU64,
    duplicates: AtomicU64,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// `cursor/{org}/{id}`: the saved cursor of a connector.
pub fn cursor_key(org: &str, connector: &str) -> String {
    format!("cursor/{org}/{connector}")
}

fn dedup_key(org: &str, connector: &str, event_id: &str) -> String {
    format!("dedup/{org}/{connector}/{event_id}")
}

fn dedup_queue_prefix(org: &str, connector: &str) -> String {
    format!("dedupq/{org}/{connector}/")
}

fn dedup_meta_key(org: &str, connector: &str) -> String {
    format!("dedupm/{org}/{connector}")
}

fn batch_id(org: &str, connector: &str, from: Option<&str>, events: &[Event]) -> String {
    let mut h = blake3::Hasher::new();
    for part in [org, connector, from.unwrap_or("")] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    for e in events {
        h.update(e.id.as_bytes());
        h.update(&[0]);
    }
    h.finalize().to_hex()[..32].to_string()
}

impl Pipeline {
    /// A pipeline over `store` whose only sink (until [`Pipeline::set_sink_resolver`]) is
    /// `event_store`.
    pub fn new(
        store: Arc<dyn KvStore>,
        event_store: Arc<EventStore>,
        config: PipelineConfig,
    ) -> Self {
        let default_sinks: Arc<dyn SinkResolver> =
            Arc::new(StaticSinks(vec![event_store.clone() as Arc<dyn EventSink>]));
        Pipeline {
            store,
            event_store,
            sinks: parking_lot::RwLock::new(default_sinks),
            observer: parking_lot::RwLock::new(Arc::new(NoObserver)),
            gates: parking_lot::Mutex::new(HashMap::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(
                config.max_inflight_batches.max(1),
            )),
            config,
            waiting: AtomicUsize::new(0),
            max_waiting: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        }
    }

    /// The embedded event store (the default sink).
    pub fn event_store(&self) -> &Arc<EventStore> {
        &self.event_store
    }

    /// The store cursors and dedup marks live in.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// Route orgs to their sinks (per-org sink configuration).
    pub fn set_sink_resolver(&self, resolver: Arc<dyn SinkResolver>) {
        *self.sinks.write() = resolver;
    }

    /// Report to `observer` (the health monitor).
    pub fn set_observer(&self, observer: Arc<dyn IngestObserver>) {
        *self.observer.write() = observer;
    }

    /// The registered observer.
    pub fn observer(&self) -> Arc<dyn IngestObserver> {
        self.observer.read().clone()
    }

    /// The one place ingestion reports to health.
    pub(crate) fn report(&self, org: &str, connector: &str, obs: IngestObservation) {
        let observer = self.observer.read().clone();
        observer.observe(org, connector, obs);
    }

    /// Queue depth and counters.
    pub fn stats(&self) -> PipelineStats {
        let max = self.config.max_inflight_batches.max(1);
        PipelineStats {
            waiting_batches: self.waiting.load(Ordering::Relaxed),
            inflight_batches: max - self.slots.available_permits().min(max),
            max_inflight_batches: max,
            delivered_events: self.delivered.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            max_waiting_batches: self.max_waiting.load(Ordering::Relaxed),
        }
    }

    /// The saved cursor of a connector.
    pub fn cursor(&self, org: &str, connector: &str) -> Result<Option<String>, StoreError> {
        self.store.get_json(&cursor_key(org, connector))
    }

    fn gate(&self, org: &str, connector: &str) -> Arc<Gate> {
        self.gates
            .lock()
            .entry((org.to_string(), connector.to_string()))
            .or_insert_with(|| {
                Arc::new(Gate {
                    state: tokio::sync::Mutex::new(GateState {
                        open: false,
                        generation: 0,
                    }),
                    cancel: tokio::sync::watch::channel(0).0,
                })
            })
            .clone()
    }

    /// Open a connector's gate (it was enabled); returns the generation polls deliver
    /// under.
    pub async fn open_gate(&self, org: &str, connector: &str) -> u64 {
        let gate = self.gate(org, connector);
        let mut st = gate.state.lock().await;
        st.open = true;
        st.generation += 1;
        st.generation
    }

    /// Close a connector's gate: cancel its in-flight delivery (nothing is committed for
    /// it) and wait until no delivery of it holds the gate. After this returns, no event
    /// of the connector reaches a sink until [`Pipeline::open_gate`].
    pub async fn close_gate(&self, org: &str, connector: &str) {
        let gate = self.gate(org, connector);
        gate.cancel.send_modify(|g| *g += 1);
        let mut st = gate.state.lock().await;
        st.open = false;
        st.generation += 1;
    }

    /// Whether a connector's gate is open.
    pub async fn is_open(&self, org: &str, connector: &str) -> bool {
        self.gate(org, connector).state.lock().await.open
    }

    /// Remove what ingestion kept for a deleted connector: dedup marks and its state space
    /// (the management service deletes the cursor). Closes the gate first.
    pub async fn purge(&self, org: &str, connector: &str) -> Result<(), StoreError> {
        self.close_gate(org, connector).await;
        let mut ops: Vec<WriteOp> = Vec::new();
        for prefix in [
            format!("dedup/{org}/{connector}/"),
            dedup_queue_prefix(org, connector),
            super::state::state_prefix(org, connector),
        ] {
            ops.extend(
                self.store
                    .scan_prefix(&prefix)?
                    .into_iter()
                    .map(|(k, _)| WriteOp::Delete(k)),
            );
        }
        ops.push(WriteOp::Delete(dedup_meta_key(org, connector)));
        self.store.apply(ops)?;
        self.gates
            .lock()
            .remove(&(org.to_string(), connector.to_string()));
        Ok(())
    }

    /// Deliver events pushed to `rec` (syslog, webhook → `normalize`): dedup, every sink,
    /// then the dedup marks. Refused when the connector is not enabled.
    pub async fn deliver_pushed(
        &self,
        rec: &ConnectorRecord,
        events: Vec<Event>,
    ) -> Result<DeliveryReport, DeliveryError> {
        if !rec.enabled {
            return Err(DeliveryError::Stopped {
                connector: rec.id.clone(),
            });
        }
        self.deliver(&rec.org, &rec.id, Origin::Push, events).await
    }

    /// Deliver one polled batch of a connector under the generation its poll loop was
    /// started with; commits `next_cursor` (when `Some`) with the dedup marks.
    pub async fn deliver_polled(
        &self,
        org: &str,
        connector: &str,
        generation: u64,
        from_cursor: Option<&str>,
        next_cursor: Option<&str>,
        events: Vec<Event>,
    ) -> Result<DeliveryReport, DeliveryError> {
        self.deliver(
            org,
            connector,
            Origin::Poll {
                generation,
                from_cursor,
                next_cursor,
            },
            events,
        )
        .await
    }

    async fn deliver(
        &self,
        org: &str,
        connector: &str,
        origin: Origin<'_>,
        events: Vec<Event>,
    ) -> Result<DeliveryReport, DeliveryError> {
        let stopped = || DeliveryError::Stopped {
            connector: connector.to_string(),
        };
        let gate = self.gate(org, connector);
        let mut cancelled = gate.cancel.subscribe();
        let st = gate.state.lock().await;
        let current = match origin {
            Origin::Poll { generation, .. } => st.open && st.generation == generation,
            Origin::Push => st.open,
        };
        if !current {
            return Err(stopped());
        }

        // Dedup against the persistent marks and within the batch.
        let mut seen = HashSet::with_capacity(events.len());
        let mut fresh = Vec::with_capacity(events.len());
        let mut duplicates = 0usize;
        for ev in events {
            if !seen.insert(ev.id.clone())
                || self
                    .store
                    .get(&dedup_key(org, connector, &ev.id))?
                    .is_some()
            {
                duplicates += 1;
            } else {
                fresh.push(ev);
            }
        }

        if !fresh.is_empty() {
            let from = match &origin {
                Origin::Poll { from_cursor, .. } => *from_cursor,
                Origin::Push => None,
            };
            let batch = SinkBatch {
                org: org.to_string(),
                connector_id: connector.to_string(),
                batch_id: batch_id(org, connector, from, &fresh),
                events: fresh,
            };
            let sent = self.send_to_sinks(&batch);
            tokio::select! {
                r = sent => r?,
                _ = cancelled.changed() => return Err(stopped()),
            }
            fresh = batch.events;
        }

        // Commit the cursor and the dedup marks in one atomic batch.
        let mut ops = Vec::with_capacity(fresh.len() * 2 + 4);
        if let Origin::Poll {
            next_cursor: Some(c),
            ..
        } = &origin
        {
            ops.push(WriteOp::put_json(cursor_key(org, connector), c)?);
        }
        if !fresh.is_empty() {
            let meta_key = dedup_meta_key(org, connector);
            let mut meta: DedupMeta = self.store.get_json(&meta_key)?.unwrap_or_default();
            let qprefix = dedup_queue_prefix(org, connector);
            for ev in &fresh {
                ops.push(WriteOp::Put(
                    dedup_key(org, connector, &ev.id),
                    meta.next.to_string().into_bytes(),
                ));
                ops.push(WriteOp::Put(
                    format!("{qprefix}{:020}", meta.next),
                    ev.id.clone().into_bytes(),
                ));
                meta.next += 1;
                meta.count += 1;
            }
            let window = self.config.dedup_window.max(1);
            if meta.count > window {
                let evict = usize::try_from(meta.count - window).unwrap_or(usize::MAX);
                for (k, v) in self.store.scan_page(&qprefix, None, evict, false)? {
                    let id = String::from_utf8_lossy(&v).into_owned();
                    // A mark re-added by this very batch stays (its queue entry is new).
                    if !fresh.iter().any(|e| e.id == id) {
                        ops.push(WriteOp::Delete(dedup_key(org, connector, &id)));
                    }
                    ops.push(WriteOp::Delete(k));
                    meta.count -= 1;
                }
            }
            ops.push(WriteOp::put_json(meta_key, &meta)?);
        }
        if !ops.is_empty() {
            self.store.apply(ops)?;
        }
        drop(st);

        let report = DeliveryReport {
            accepted: fresh.len(),
            duplicates,
        };
        self.delivered
            .fetch_add(report.accepted as u64, Ordering::Relaxed);
        self.duplicates
            .fetch_add(report.duplicates as u64, Ordering::Relaxed);
        self.report(
            org,
            connector,
            IngestObservation::Delivered {
                events: report.accepted,
                duplicates: report.duplicates,
                pushed: matches!(origin, Origin::Push),
            },
        );
        Ok(report)
    }

    /// Hand `batch` to every sink of its org, retrying unavailable sinks with backoff,
    /// within one delivery slot.
    async fn send_to_sinks(&self, batch: &SinkBatch) -> Result<(), SinkError> {
        let org = &batch.org;
        let connector = &batch.connector_id;
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Every slot is busy: this connector waits (and so stops polling).
                let waiting = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
                self.max_waiting.fetch_max(waiting, Ordering::Relaxed);
                self.report(org, connector, IngestObservation::Backpressure(true));
                let _waiting = WaitingGuard(&self.waiting);
                let p = self.slots.clone().acquire_owned().await;
                self.report(org, connector, IngestObservation::Backpressure(false));
                p.map_err(|_| SinkError::Unavailable {
                    sink: "pipeline".into(),
                    message: "shutting down".into(),
                    retry_after: None,
                })?
            }
        };
        let sinks = self.sinks.read().sinks(org);
        let mut pending: Vec<Arc<dyn EventSink>> = sinks;
        let mut delay = Duration::from_millis(200);
        loop {
            let results = futures::future::join_all(pending.iter().map(|s| s.deliver(batch))).await;
            let mut still = Vec::new();
            let mut wait = delay;
            for (sink, r) in pending.iter().zip(results) {
                match r {
                    Ok(()) => {}
                    Err(SinkError::Unavailable {
                        sink: name,
                        message,
                        retry_after,
                    }) => {
                        tracing::warn!(org = %org, connector = %connector, sink = %name, error = %message, "sink unavailable; retrying");
                        self.report(
                            org,
                            connector,
                            IngestObservation::SinkFailed {
                                sink: name,
                                message,
                            },
                        );
                        if let Some(ra) = retry_after {
                            wait = wait.max(ra);
                        }
                        still.push(sink.clone());
                    }
                    Err(e @ SinkError::Rejected { .. }) => {
                        tracing::error!(org = %org, connector = %connector, error = %e, "sink rejected a batch; its cursor stays");
                        self.report(
                            org,
                            connector,
                            IngestObservation::SinkFailed {
                                sink: sink.name().to_string(),
                                message: e.to_string(),
                            },
                        );
                        return Err(e);
                    }
                }
            }
            if still.is_empty() {
                drop(permit);
                return Ok(());
            }
            pending = still;
            tokio::time::sleep(wait.min(self.config.max_retry_delay)).await;
            delay = (delay * 2).min(self.config.max_retry_delay);
        }
    }
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Observable};
    use crate::ingest::event_store::Retention;
    use crate::store::SledStore;

    fn ev(id: &str) -> Event {
        Event {
            id: id.into(),
            time: "2024-01-01T00:00:00Z".into(),
            kind: EventKind::Alert,
            severity_id: 1,
            severity: "Informational".into(),
            title: id.into(),
            source: "c1".into(),
            observables: vec![Observable {
                kind: "ip".into(),
                value: "10.0.0.1".into(),
            }],
            attributes: serde_json::json!({}),
            raw: String::new(),
        }
    }

    fn pipeline(dir: &std::path::Path, window: u64) -> Pipeline {
        let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir).unwrap());
        let es = Arc::new(EventStore::open(store.clone(), Retention::default()).unwrap());
        Pipeline::new(
            store,
            es,
            PipelineConfig {
                dedup_window: window,
                ..PipelineConfig::default()
            },
        )
    }

    #[tokio::test]
    async fn dedups_commits_cursor_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let p = pipeline(dir.path(), 100);
            let g = p.open_gate("o1", "c1").await;
            let r = p
                .deliver_polled(
                    "o1",
                    "c1",
                    g,
                    None,
                    Some("cur-1"),
                    vec![ev("a"), ev("b"), ev("a")],
                )
                .await
                .unwrap();
            assert_eq!(
                r,
                DeliveryReport {
                    accepted: 2,
                    duplicates: 1
                }
            );
            assert_eq!(p.cursor("o1", "c1").unwrap().as_deref(), Some("cur-1"));
            p.store().flush().unwrap();
        }
        let p = pipeline(dir.path(), 100);
        let g = p.open_gate("o1", "c1").await;
        let r = p
            .deliver_polled(
                "o1",
                "c1",
                g,
                Some("cur-1"),
                Some("cur-2"),
                vec![ev("b"), ev("c")],
            )
            .await
            .unwrap();
        assert_eq!(
            r,
            DeliveryReport {
                accepted: 1,
                duplicates: 1
            }
        );
        assert_eq!(p.event_store().stats().events, 3);
        assert_eq!(p.cursor("o1", "c1").unwrap().as_deref(), Some("cur-2"));
    }

    #[tokio::test]
    async fn dedup_window_is_bounded_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path(), 3);
        let g = p.open_gate("o1", "c1").await;
        for id in ["a", "b", "c", "d"] {
            p.deliver_polled("o1", "c1", g, None, None, vec![ev(id)])
                .await
                .unwrap();
        }
        let marks = p.store().scan_prefix("dedup/o1/c1/").unwrap();
        assert_eq!(marks.len(), 3);
        assert!(
            p.store().get("dedup/o1/c1/a").unwrap().is_none(),
            "oldest evicted"
        );
        // `a` is no longer remembered by dedup; the event store still has it once.
        let r = p
            .deliver_polled("o1", "c1", g, None, None, vec![ev("a"), ev("d")])
            .await
            .unwrap();
        assert_eq!(r.accepted, 1);
        assert_eq!(r.duplicates, 1);
        assert_eq!(p.event_store().stats().events, 4);
    }

    #[tokio::test]
    async fn closed_gate_refuses_and_stale_generation_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path(), 100);
        let g1 = p.open_gate("o1", "c1").await;
        p.close_gate("o1", "c1").await;
        assert!(matches!(
            p.deliver_polled("o1", "c1", g1, None, Some("x"), vec![ev("a")])
                .await,
            Err(DeliveryError::Stopped { .. })
        ));
        let g2 = p.open_gate("o1", "c1").await;
        assert!(matches!(
            p.deliver_polled("o1", "c1", g1, None, Some("x"), vec![ev("a")])
                .await,
            Err(DeliveryError::Stopped { .. })
        ));
        p.deliver_polled("o1", "c1", g2, None, Some("y"), vec![ev("a")])
            .await
            .unwrap();
        assert_eq!(p.cursor("o1", "c1").unwrap().as_deref(), Some("y"));
        assert_eq!(p.event_store().stats().events, 1);
    }
}
