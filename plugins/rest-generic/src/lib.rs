//! `rest-generic`: a Portcullis connector for any JSON REST API.
//!
//! Configuration, cursor and behaviour are specified in `docs/internal-contracts.md`
//! (section `rest-generic`). The logic lives in [`config`] and [`engine`], which use
//! no host import directly and are unit-tested natively; this file is the thin glue
//! that binds them to the host's `http`, `clock` and `log` imports.

pub mod config;
pub mod engine;

#[cfg(test)]
mod tests;

use portcullis_sdk::clock::{Clock, HostClock};
use portcullis_sdk::http::HostTransport;
use portcullis_sdk::prelude::*;

use crate::config::{CREDENTIAL_SLOT, Config};

/// The configuration JSON Schema (draft 2020-12) declared in the manifest.
pub const CONFIG_SCHEMA: &str = include_str!("config.schema.json");

/// The plugin manifest.
pub fn manifest() -> Manifest {
    let schema = serde_json::from_str(CONFIG_SCHEMA)
        // The schema is a compile-time constant checked by the unit tests; should it
        // ever fail to parse, declare an object schema rather than trap in `describe`.
        .unwrap_or_else(|_| json!({"type": "object"}));
    Manifest::new(
        engine::PLUGIN_ID,
        "Generic REST API",
        env!("CARGO_PKG_VERSION"),
        Category::CustomApi,
    )
    .description(
        "Pulls JSON records from any REST API: configurable endpoint, incremental time \
         window, Link-header, cursor or offset pagination, and record-to-event mapping. \
         Also maps pushed JSON records.",
    )
    .config_schema(schema)
    .host("*://*:*")
    .credential_slot(CredentialSlot::new(
        CREDENTIAL_SLOT,
        "Credential for the API (bearer token, OAuth 2.0 client credentials, API key or basic)",
        CredentialKind::ALL.iter().copied(),
    ))
    .accepts_push(true)
}

/// The exported connector.
pub struct RestGeneric;

impl Connector for RestGeneric {
    fn describe() -> Manifest {
        manifest()
    }

    fn validate_config(config: &Value) -> Result<()> {
        Config::parse(config).map(|_| ())
    }

    fn test_connection(config: &Value) -> Result<TestReport> {
        let cfg = Config::parse(config)?;
        engine::test_connection(&cfg, &HostTransport, &HostClock)
    }

    fn poll(config: &Value, cursor: Option<String>) -> Result<Batch> {
        let cfg = Config::parse(config)?;
        let outcome = engine::poll(&cfg, cursor.as_deref(), &HostTransport, &HostClock)?;
        outcome.warnings.log("poll");
        Ok(outcome.batch)
    }

    fn normalize(config: &Value, input: &str) -> Result<Vec<Event>> {
        let cfg = Config::parse(config)?;
        let (events, warnings) = engine::normalize(&cfg, input, HostClock.now())?;
        warnings.log("normalize");
        Ok(events)
    }
}

portcullis_sdk::export_connector!(RestGeneric);
