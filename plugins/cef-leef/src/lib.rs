//! `cef-leef`: a Portcullis push connector that normalises syslog-delivered CEF and
//! LEEF lines into unified, OCSF-aligned events.
//!
//! All parsing and mapping lives in [`engine`] (pure Rust, no host import, compiled
//! natively for the unit tests and the native benchmark). This file is the thin glue:
//! the manifest, the configuration check, and the conversion of an
//! [`engine::Normalized`] into the SDK's [`Event`]; the export itself is compiled for
//! `wasm32` only.

pub mod engine;

#[cfg(test)]
mod tests;

use portcullis_sdk::prelude::*;

use crate::engine::{Instant, Kind, Normalized, ObsKind, Options};

/// The plugin id (= package name).
pub const PLUGIN_ID: &str = "cef-leef";

/// The configuration JSON Schema (draft 2020-12) declared in the manifest.
pub const CONFIG_SCHEMA: &str = include_str!("config.schema.json");

/// The plugin manifest.
pub fn manifest() -> Manifest {
    let schema = serde_json::from_str(CONFIG_SCHEMA)
        // A compile-time constant checked by the unit tests; should it ever fail to
        // parse, declare an object schema rather than trap in `describe`.
        .unwrap_or_else(|_| json!({"type": "object"}));
    Manifest::new(
        PLUGIN_ID,
        "CEF / LEEF syslog normaliser",
        env!("CARGO_PKG_VERSION"),
        Category::Siem,
    )
    .description(
        "Normalises pushed syslog lines (optional RFC 3164 / RFC 5424 header) carrying ArcSight \
         CEF (versions 0 and 1) or IBM QRadar LEEF (1.0 and 2.0) records into OCSF-aligned \
         events with observables. Push only: it reaches no host.",
    )
    .config_schema(schema)
    .accepts_push(true)
}

/// Checks the configuration; every problem with its JSON pointer.
pub fn options(config: &Value) -> Result<Options> {
    Options::from_json(config).map_err(|errors| {
        Error::Config(
            errors
                .into_iter()
                .map(|(path, message)| FieldError::new(path, message))
                .collect(),
        )
    })
}

/// The connection test of a push-only plugin: the configuration, nothing else.
pub fn config_report(config: &Value) -> TestReport {
    let stage = match options(config) {
        Ok(_) => TestStage::passed(
            "config",
            "configuration is valid; push-only plugin: there is no upstream to contact",
            Some(0),
        ),
        Err(e) => TestStage::failed("config", e.to_string(), Some(0)),
    };
    TestReport {
        stages: vec![stage],
        sample: Vec::new(),
    }
}

/// Normalises one pushed line received at `now` (Unix milliseconds).
pub fn normalize_line(opts: &Options, input: &str, now_ms: u64) -> Result<Event> {
    let now = i64::try_from(now_ms)
        .ok()
        .and_then(Instant::from_millis)
        .unwrap_or(Instant { secs: 0, nanos: 0 });
    engine::normalize(opts, input, now)
        .map(to_event)
        .map_err(|e| Error::parse(e.to_string()))
}

/// Converts the engine's event into the SDK's.
pub fn to_event(n: Normalized) -> Event {
    Event {
        id: n.id,
        time: n.time,
        kind: match n.kind {
            Kind::Alert => EventKind::Alert,
            Kind::Log => EventKind::Log,
            Kind::Indicator => EventKind::Indicator,
            Kind::Vulnerability => EventKind::Vulnerability,
            Kind::Transaction => EventKind::Transaction,
            Kind::Asset => EventKind::Asset,
            Kind::Finding => EventKind::Finding,
        },
        severity: Severity::from_id(n.severity_id).unwrap_or_default(),
        title: n.title,
        observables: n
            .observables
            .into_iter()
            .map(|(k, v)| {
                let kind = match k {
                    ObsKind::Ip => ObservableKind::Ip,
                    ObsKind::Hostname => ObservableKind::Hostname,
                    ObsKind::Url => ObservableKind::Url,
                    ObsKind::Md5 => ObservableKind::Md5,
                    ObsKind::Sha1 => ObservableKind::Sha1,
                    ObsKind::Sha256 => ObservableKind::Sha256,
                    ObsKind::Sha512 => ObservableKind::Sha512,
                    ObsKind::User => ObservableKind::User,
                };
                Observable::new(kind, v)
            })
            .collect(),
        attributes: n.attributes,
        raw: n.raw,
    }
}

/// The exported connector.
pub struct CefLeef;

impl Connector for CefLeef {
    fn describe() -> Manifest {
        manifest()
    }

    fn validate_config(config: &Value) -> Result<()> {
        options(config).map(|_| ())
    }

    fn test_connection(config: &Value) -> Result<TestReport> {
        Ok(config_report(config))
    }

    fn poll(config: &Value, cursor: Option<String>) -> Result<Batch> {
        // Push only: nothing to pull. The configuration is still checked so a broken
        // connector is noticed on its first scheduled poll.
        options(config)?;
        Ok(Batch {
            events: Vec::new(),
            cursor,
            more: false,
        })
    }

    fn normalize(config: &Value, input: &str) -> Result<Vec<Event>> {
        let opts = options(config)?;
        let now = portcullis_sdk::clock::now_unix_ms();
        normalize_line(&opts, input, now).map(|e| vec![e])
    }
}

#[cfg(target_arch = "wasm32")]
portcullis_sdk::export_connector!(CefLeef);
