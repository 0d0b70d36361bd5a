//! The contract between the delivery pipeline and a sink (embedded event store, NDJSON
//! file, HTTP forward).
//!
//! Delivery is at-least-once: the pipeline hands a sink a [`SinkBatch`] and commits the
//! connector's cursor only after every sink of the org returned `Ok`. A sink may therefore
//! see the same batch again after a crash or a retry; `batch_id` is stable across such
//! redeliveries (derived from the connector, the cursor it starts from and the event ids),
//! so a sink can make redelivery idempotent (the event store keys events by id; the HTTP
//! forward sends it as `Idempotency-Key`).

use std::time::Duration;

use crate::event::Event;

/// One batch for one connector of one org.
#[derive(Debug, Clone)]
pub struct SinkBatch {
    /// Owning organisation.
    pub org: String,
    /// Source connector.
    pub connector_id: String,
    /// Stable id of this batch (same on redelivery).
    pub batch_id: String,
    /// Events, already deduplicated by id.
    pub events: Vec<Event>,
}

/// Why a sink did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Try again later (5xx, 429, I/O pressure); `retry_after` when the far side said so.
    #[error("sink {sink} unavailable: {message}")]
    Unavailable {
        /// Sink name.
        sink: String,
        /// What happened.
        message: String,
        /// Server-requested delay (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Retrying the same batch cannot help (4xx other than 429, misconfiguration).
    #[error("sink {sink} rejected the batch: {message}")]
    Rejected {
        /// Sink name.
        sink: String,
        /// What happened.
        message: String,
    },
}

/// Where delivered events go. Implementations must be safe to call concurrently for
/// different connectors; the pipeline never calls one sink concurrently for the same
/// connector.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// Short name for health, metrics and logs (`event-store`, `ndjson`, `http-forward`).
    fn name(&self) -> &str;

    /// Take `batch`; `Ok` only once the batch is durable on the sink's side.
    async fn deliver(&self, batch: &SinkBatch) -> Result<(), SinkError>;
}
