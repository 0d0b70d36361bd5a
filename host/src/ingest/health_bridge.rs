//! Ingestion's reports into the [`HealthMonitor`]: the one translation from
//! [`IngestObservation`] to [`Observation`], with the upstream responses the broker
//! recorded during the call.

use std::time::Instant;

use super::observe::{IngestObservation, IngestObserver};
use crate::health::{HealthMonitor, Observation};

impl IngestObserver for HealthMonitor {
    fn observe(&self, org: &str, connector: &str, obs: IngestObservation) {
        let upstream = || self.recorder(org, connector).drain();
        let translated = match obs {
            IngestObservation::PollOk {
                events,
                duplicates,
                latency,
                more: _,
            } => Observation::PollSucceeded {
                events: events.saturating_sub(duplicates) as u64,
                duplicates: duplicates as u64,
                latency,
                upstream: upstream(),
            },
            IngestObservation::PollFailed { error, latency } => {
                Observation::poll_failed(&error, latency, upstream())
            }
            IngestObservation::Backpressure(active) => Observation::SinkBackpressure {
                sink: "pipeline".into(),
                active,
            },
            IngestObservation::Delivered { events, .. } => Observation::EventsDelivered {
                count: events as u64,
            },
            IngestObservation::SinkFailed { .. } => return,
        };
        HealthMonitor::observe(self, org, connector, translated);
    }

    fn hold_until(&self, org: &str, connector: &str) -> Option<Instant> {
        HealthMonitor::hold_until(self, org, connector)
    }
}
