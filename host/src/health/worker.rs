//! The background health worker: persists state changes (with a transition history)
//! and applies the crash-loop policy through the management service (audited),
//! re-evaluates time-driven conditions (staleness) every second, and runs the periodic
//! `test-connection` probe of enabled connectors (spread over the interval, never during
//! a hold-off, a few at a time).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::config::secs;
use crate::management::ManagementService;

/// How often time-driven conditions are re-evaluated.
const TICK: Duration = Duration::from_secs(1);
/// Probes running at once.
const PROBE_CONCURRENCY: usize = 4;

/// Run the worker until the service is dropped.
pub fn spawn(service: Weak<ManagementService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let probes = Arc::new(tokio::sync::Semaphore::new(PROBE_CONCURRENCY));
        let mut next_probe: HashMap<(String, String), Instant> = HashMap::new();
        loop {
            let monitor = match service.upgrade() {
                Some(svc) => svc.health().clone(),
                None => return,
            };
            tokio::select! {
                _ = monitor.events_queued() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            let Some(svc) = service.upgrade() else { return };
            monitor.tick();
            for event in monitor.take_events() {
                if let Err(e) = svc.apply_health_event(event).await {
                    tracing::error!(error = %e, "cannot persist a health change");
                }
            }
            probe_due(&svc, &probes, &mut next_probe);
        }
    })
}

/// Start the probes that are due.
fn probe_due(
    svc: &Arc<ManagementService>,
    probes: &Arc<tokio::sync::Semaphore>,
    next_probe: &mut HashMap<(String, String), Instant>,
) {
    let monitor = svc.health();
    let interval = secs(monitor.config().probe_interval_secs);
    if interval.is_zero() {
        return;
    }
    let now = Instant::now();
    let tracked = monitor.tracked_enabled();
    next_probe.retain(|k, _| tracked.iter().any(|(o, c)| k.0 == *o && k.1 == *c));
    for (org, id) in tracked {
        let due = next_probe
            .entry((org.clone(), id.clone()))
            // First probe somewhere in the first interval: 1,000 connectors do not probe
            // at once.
            .or_insert_with(|| now + interval.mul_f64(spread()));
        if *due > now || monitor.hold_until(&org, &id).is_some() {
            continue;
        }
        let Ok(permit) = probes.clone().try_acquire_owned() else {
            return;
        };
        *due = now + interval;
        let svc = svc.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = svc.probe_connector(&org, &id).await {
                tracing::debug!(org, connector = id, error = %e, "health probe not run");
            }
        });
    }
}

fn spread() -> f64 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
}
