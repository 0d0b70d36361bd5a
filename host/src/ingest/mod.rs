//! Ingestion: what moves events from connectors (pull via `poll`, push via syslog and
//! webhooks through `normalize`) through dedup into the org's sinks, committing the
//! connector's cursor only after every sink acknowledged the batch.
//!
//! - [`sink`] — the [`sink::EventSink`] contract every sink implements.
//! - [`sinks`] — NDJSON and HTTP forward sinks, per-org sink configuration, [`sinks::SinkRegistry`].
//! - [`syslog`] — the syslog receiver (UDP/TCP, RFC 5424/3164, RFC 6587 framing).

pub mod sink;
pub mod sinks;
pub mod syslog;
