//! The [`ConnectorScheduler`]: one poll loop per enabled connector.
//!
//! Each loop polls its connector every `schedule` (ISO 8601), starting from the saved
//! cursor and repeating while the plugin reports `more` — one call at a time per
//! connector (concurrency 1). Loops start at a phase derived from the connector's id
//! within its interval (at most a minute), so 1,000 connectors on `PT1M` started together
//! are spread evenly over the minute instead of firing at once; a connector that is
//! enabled polls at once.
//!
//! The scheduler is the management service's [`ConnectorLifecycle`]: enabling starts a
//! loop, a configuration change restarts it, and disabling or deleting aborts the loop
//! (an in-flight `poll` or delivery is dropped, nothing of it committed), waits for it to
//! end and closes the connector's delivery gate — all before the management call
//! returns. After that no event of the connector reaches a sink.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::delivery::{DeliveryError, Pipeline};
use super::observe::IngestObservation;
use crate::management::ManagementService;
use crate::management::lifecycle::ConnectorLifecycle;
use crate::management::model::ConnectorRecord;
use crate::management::parse_iso8601_duration;
use crate::runtime::ConnectorSandbox;

/// Scheduler settings (`[ingest]` of the server configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerConfig {
    /// Multiplies every connector's schedule (`0.01` turns `PT1M` into 600 ms: demos,
    /// tests and benchmarks).
    pub schedule_scale: f64,
    /// Most `poll` calls one cycle makes while the plugin keeps reporting `more`.
    pub max_polls_per_cycle: u32,
    /// Startup spreads first polls over at most this long (and at most the interval).
    pub max_startup_spread: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            schedule_scale: 1.0,
            max_polls_per_cycle: 1_000,
            max_startup_spread: Duration::from_secs(60),
        }
    }
}

/// Counters of the scheduler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SchedulerStats {
    /// Connectors with a running poll loop.
    pub running: usize,
    /// `poll` calls made.
    pub polls: u64,
    /// `poll` calls that failed.
    pub poll_errors: u64,
    /// Poll cycles completed.
    pub cycles: u64,
}

type Key = (String, String);

struct Running {
    handle: tokio::task::JoinHandle<()>,
}

/// Polls every enabled connector on its schedule. Share it via `Arc`; register it on the
/// service with [`ConnectorScheduler::attach`].
pub struct ConnectorScheduler {
    me: std::sync::Weak<ConnectorScheduler>,
    service: Arc<ManagementService>,
    pipeline: Arc<Pipeline>,
    config: SchedulerConfig,
    tasks: tokio::sync::Mutex<HashMap<Key, Running>>,
    running: std::sync::atomic::AtomicUsize,
    shut_down: AtomicBool,
    polls: AtomicU64,
    poll_errors: AtomicU64,
    cycles: AtomicU64,
}

impl std::fmt::Debug for ConnectorScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorScheduler")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A stable pseudo-random fraction in [0, 1) from a connector's identity.
fn phase_fraction(org: &str, id: &str) -> f64 {
    let h = blake3::hash(format!("{org}/{id}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

impl ConnectorScheduler {
    /// A scheduler over `service` delivering through `pipeline`.
    pub fn new(
        service: Arc<ManagementService>,
        pipeline: Arc<Pipeline>,
        config: SchedulerConfig,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| ConnectorScheduler {
            me: me.clone(),
            service,
            pipeline,
            config,
            tasks: tokio::sync::Mutex::new(HashMap::new()),
            running: std::sync::atomic::AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
            polls: AtomicU64::new(0),
            poll_errors: AtomicU64::new(0),
            cycles: AtomicU64::new(0),
        })
    }

    /// Register as the service's lifecycle hook.
    pub fn attach(self: &Arc<Self>) {
        let hook: Arc<dyn ConnectorLifecycle> = self.clone();
        self.service.set_lifecycle(Arc::downgrade(&hook));
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Counters.
    pub fn stats(&self) -> SchedulerStats {
        SchedulerStats {
            running: self.running.load(Ordering::Relaxed),
            polls: self.polls.load(Ordering::Relaxed),
            poll_errors: self.poll_errors.load(Ordering::Relaxed),
            cycles: self.cycles.load(Ordering::Relaxed),
        }
    }

    /// The poll interval of a connector (its schedule times the scale).
    pub fn interval(&self, rec: &ConnectorRecord) -> Duration {
        let secs = parse_iso8601_duration(&rec.spec.schedule).unwrap_or(300);
        Duration::from_secs_f64((secs as f64 * self.config.schedule_scale).max(0.001))
    }

    /// Start every enabled connector from its saved cursor (server start), first polls
    /// spread over the schedule.
    pub async fn resume_all(self: &Arc<Self>) -> usize {
        let all = match self.service.all_connectors() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot list connectors; ingestion not resumed");
                return 0;
            }
        };
        let mut started = 0;
        for rec in all.into_iter().filter(|r| r.enabled) {
            let interval = self.interval(&rec);
            let spread = interval.min(self.config.max_startup_spread);
            let delay = spread.mul_f64(phase_fraction(&rec.org, &rec.id));
            self.start(&rec, delay).await;
            started += 1;
        }
        started
    }

    /// Stop every loop (graceful shutdown): in-flight polls and deliveries are dropped
    /// uncommitted, to be re-polled after the restart.
    pub async fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        let tasks: Vec<Running> = self.tasks.lock().await.drain().map(|(_, r)| r).collect();
        for t in &tasks {
            t.handle.abort();
        }
        for t in tasks {
            let _ = t.handle.await;
        }
        self.running.store(0, Ordering::Relaxed);
    }

    async fn start(self: &Arc<Self>, rec: &ConnectorRecord, first_delay: Duration) {
        if self.shut_down.load(Ordering::SeqCst) {
            return;
        }
        let key = (rec.org.clone(), rec.id.clone());
        let mut tasks = self.tasks.lock().await;
        if let Some(old) = tasks.remove(&key) {
            old.handle.abort();
            let _ = old.handle.await;
            self.running.fetch_sub(1, Ordering::Relaxed);
        }
        let generation = self.pipeline.open_gate(&rec.org, &rec.id).await;
        let sandbox = match self.service.connector_sandbox(rec) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(org = %rec.org, connector = %rec.id, plugin = %rec.spec.plugin.id, error = %e, "connector cannot run");
                return;
            }
        };
        let this = self.clone();
        let rec = rec.clone();
        let span = tracing::info_span!("ingest", org = %rec.org, connector = %rec.id, plugin = %rec.spec.plugin.id);
        let handle = tokio::spawn(tracing::Instrument::instrument(
            async move { this.run(rec, sandbox, generation, first_delay).await },
            span,
        ));
        tasks.insert(key, Running { handle });
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    async fn stop(&self, org: &str, id: &str) {
        let mut tasks = self.tasks.lock().await;
        if let Some(old) = tasks.remove(&(org.to_string(), id.to_string())) {
            old.handle.abort();
            let _ = old.handle.await;
            self.running.fetch_sub(1, Ordering::Relaxed);
        }
        // Also cancels and waits out a pushed delivery in flight.
        self.pipeline.close_gate(org, id).await;
    }

    async fn run(
        self: Arc<Self>,
        rec: ConnectorRecord,
        sandbox: ConnectorSandbox,
        generation: u64,
        first_delay: Duration,
    ) {
        let interval = self.interval(&rec);
        let mut next = tokio::time::Instant::now() + first_delay;
        loop {
            tokio::time::sleep_until(next).await;
            if let Some(hold) = self.pipeline.observer().hold_until(&rec.org, &rec.id) {
                let now = Instant::now();
                if hold > now {
                    next = tokio::time::Instant::now() + (hold - now);
                    continue;
                }
            }
            if self.cycle(&rec, &sandbox, generation).await.is_err() {
                // Stopped under us: the lifecycle aborts this task too.
                return;
            }
            self.cycles.fetch_add(1, Ordering::Relaxed);
            next += interval;
            let now = tokio::time::Instant::now();
            if next < now {
                // Missed ticks (a long cycle or a slow sink) are not made up in a burst.
                next = now + interval;
            }
        }
    }

    /// One cycle: poll from the saved cursor, deliver, repeat while `more`.
    async fn cycle(
        &self,
        rec: &ConnectorRecord,
        sandbox: &ConnectorSandbox,
        generation: u64,
    ) -> Result<(), DeliveryError> {
        let (org, id) = (rec.org.as_str(), rec.id.as_str());
        let mut cursor = match self.pipeline.cursor(org, id) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the saved cursor; skipping this cycle");
                return Ok(());
            }
        };
        for _ in 0..self.config.max_polls_per_cycle.max(1) {
            let started = Instant::now();
            let result = sandbox.poll(&rec.spec.config, cursor.as_deref()).await;
            let latency = started.elapsed();
            self.polls.fetch_add(1, Ordering::Relaxed);
            let batch = match result {
                Ok(b) => b,
                Err(error) => {
                    self.poll_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(code = error.code(), error = %error, "poll failed");
                    self.pipeline
                        .report(org, id, IngestObservation::PollFailed { error, latency });
                    return Ok(());
                }
            };
            let returned = batch.events.len();
            let more = batch.more;
            let next_cursor = batch.cursor;
            match self
                .pipeline
                .deliver_polled(
                    org,
                    id,
                    generation,
                    cursor.as_deref(),
                    next_cursor.as_deref(),
                    batch.events,
                )
                .await
            {
                Ok(report) => self.pipeline.report(
                    org,
                    id,
                    IngestObservation::PollOk {
                        events: returned,
                        duplicates: report.duplicates,
                        latency,
                        more,
                    },
                ),
                Err(e @ DeliveryError::Stopped { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "delivery failed; the batch will be polled again");
                    return Ok(());
                }
            }
            if next_cursor.is_some() {
                cursor = next_cursor;
            }
            if !more {
                break;
            }
            // A quota that ran out (or a 429) in the middle of a chain of pages holds the
            // rest of it until the reset, like a new cycle would be held.
            if self
                .pipeline
                .observer()
                .hold_until(org, id)
                .is_some_and(|hold| hold > Instant::now())
            {
                break;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ConnectorLifecycle for ConnectorScheduler {
    async fn connector_changed(&self, rec: &ConnectorRecord) {
        if rec.enabled {
            // `start` needs an `Arc<Self>`; the service holds us through a weak pointer
            // that only upgrades while the scheduler is alive.
            if let Some(this) = self.me.upgrade() {
                this.start(rec, Duration::ZERO).await;
            }
        } else {
            self.stop(&rec.org, &rec.id).await;
        }
    }

    async fn connector_deleted(&self, org: &str, id: &str) {
        self.stop(org, id).await;
        if let Err(e) = self.pipeline.purge(org, id).await {
            tracing::error!(org = %org, connector = %id, error = %e, "cannot remove the deleted connector's dedup marks and state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_phases_spread_a_thousand_connectors_over_the_minute() {
        let mut per_second = [0usize; 60];
        for i in 0..1000 {
            let f = phase_fraction("org-a", &format!("con_{i:016x}"));
            assert!((0.0..1.0).contains(&f));
            per_second[(f * 60.0) as usize] += 1;
        }
        // 16.7 per second on average; a hash-derived phase keeps every second populated
        // and no second carries more than a small multiple of the mean.
        assert!(per_second.iter().all(|n| *n > 0), "{per_second:?}");
        assert!(per_second.iter().all(|n| *n <= 40), "{per_second:?}");
        // Stable across restarts: the same connector gets the same phase.
        assert_eq!(phase_fraction("o", "c"), phase_fraction("o", "c"));
    }
}
