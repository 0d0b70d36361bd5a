//! # Portcullis host
//!
//! Portcullis runs security data-source connectors (SIEMs, threat-intel feeds, OSINT,
//! blockchain monitors, vulnerability databases, custom REST APIs) as sandboxed
//! WebAssembly components that implement the WIT world `portcullis:connector/connector`.
//!
//! The crate is organised by concern:
//!
//! - [`runtime`] — the sandbox: engine, precompiled-component cache, limits, the host
//!   side of the WIT imports, and typed calls into a plugin's exports.
//! - [`broker`] — the only way out of the sandbox: the [`broker::HttpBroker`]
//!   interceptor, the egress policy (host patterns, IP policy) and credential injection.
//! - [`capability_granter`] — the one place deciding whether a capability is allowed:
//!   declared by the plugin's manifest **and** granted by the operator.
//! - [`manifest`] and [`event`] — the host-side, serialisable forms of what plugins
//!   describe and produce.
//! - [`health`] — connector health (reason-coded states, hysteresis, crash loops), the
//!   host-side upstream hold-off (rate limits, backoff) and metrics.
//! - [`config_schema`] — validation of connector configuration against the JSON Schema
//!   a plugin declares.
//! - [`ui`] — the admin panel at `/`: server-rendered pages, cookie sessions with CSRF
//!   tokens, role-based rendering.

pub mod api;
pub mod broker;
pub mod capability_granter;
pub mod config_schema;
pub mod demo;
pub mod event;
pub mod health;
pub mod ingest;
pub mod management;
pub mod manifest;
pub mod runtime;
pub mod server;
pub mod store;
pub mod ui;
pub mod vault;

pub use runtime::{
    CallError, ConnectorEnv, ConnectorSandbox, LoadError, LoadedPlugin, Runtime, RuntimeConfig,
    RuntimeLimits,
};
