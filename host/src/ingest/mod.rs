//! Ingestion: what moves events from connectors (pull via `poll`, push via syslog and
//! webhooks through `normalize`) through dedup into the org's sinks, committing the
//! connector's cursor only after every sink acknowledged the batch.
//!
//! - [`sink`] — the [`sink::EventSink`] contract every sink implements.

pub mod sink;
