//! `nvd-cve`: a Portcullis connector for the NVD CVE API 2.0.
//!
//! Configuration, cursor, mapping and budget are described in this crate's README.
//! The logic lives in [`config`], [`engine`], [`record`], [`cpe`] and [`budget`],
//! which use no host import directly and are unit-tested natively; this file is the
//! thin glue that binds them to the host's `http`, `clock`, `state` and `log` imports.

pub mod budget;
pub mod config;
pub mod cpe;
pub mod engine;
pub mod record;

#[cfg(test)]
mod tests;

use portcullis_sdk::clock::{Clock, HostClock};
use portcullis_sdk::http::HostTransport;
use portcullis_sdk::prelude::*;
use portcullis_sdk::state;

use crate::budget::KeyValue;
use crate::config::{CREDENTIAL_SLOT, Config, DEFAULT_BASE_URL};
use crate::engine::Env;

/// The configuration JSON Schema (draft 2020-12) declared in the manifest.
pub const CONFIG_SCHEMA: &str = include_str!("config.schema.json");

/// The plugin manifest. Hosts: the real service, plus any host for mirrors and
/// proxies (`base_url`); the admin's grant narrows it to the one in use.
pub fn manifest() -> Manifest {
    let schema = serde_json::from_str(CONFIG_SCHEMA)
        // A compile-time constant checked by the unit tests; should it ever fail to
        // parse, declare an object schema rather than trap in `describe`.
        .unwrap_or_else(|_| json!({"type": "object"}));
    Manifest::new(
        engine::PLUGIN_ID,
        "NVD CVE API 2.0",
        env!("CARGO_PKG_VERSION"),
        Category::Vulnerability,
    )
    .description(
        "CVE records from the NIST National Vulnerability Database (CVE API 2.0): an initial \
         download or backfill, then incremental lastModStartDate/lastModEndDate windows of at \
         most 120 days, offset paging, CVSS v2/v3.0/v3.1/v4.0, CWE, CPE 2.3 and CISA KEV \
         fields, within NVD's request budget. Also maps pushed NVD JSON. This product uses \
         data from the NVD API but is not endorsed or certified by the NVD.",
    )
    .config_schema(schema)
    .host(DEFAULT_BASE_URL)
    .host("*://*:*")
    .credential_slot(CredentialSlot::new(
        CREDENTIAL_SLOT,
        "Optional NVD API key (kind api-key, header `apiKey`); raises NVD's limit from 5 to \
         50 requests per rolling 30 s. Set use_api_key to true when one is bound.",
        [CredentialKind::ApiKey],
    ))
    .accepts_push(true)
}

/// The host's `state` import.
struct HostState;

impl KeyValue for HostState {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        state::get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> std::result::Result<(), String> {
        state::set(key, value).map_err(|e| e.0)
    }
}

fn env() -> Env<'static> {
    Env {
        transport: &HostTransport,
        clock: &HostClock,
        store: &HostState,
    }
}

/// The exported connector.
pub struct NvdCve;

impl Connector for NvdCve {
    fn describe() -> Manifest {
        manifest()
    }

    fn validate_config(config: &Value) -> Result<()> {
        Config::parse(config).map(|_| ())
    }

    fn test_connection(config: &Value) -> Result<TestReport> {
        let cfg = Config::parse(config)?;
        engine::test_connection(&cfg, env())
    }

    fn poll(config: &Value, cursor: Option<String>) -> Result<Batch> {
        let cfg = Config::parse(config)?;
        let outcome = engine::poll(&cfg, cursor.as_deref(), env())?;
        outcome.warnings.log("poll");
        Ok(outcome.batch)
    }

    fn normalize(config: &Value, input: &str) -> Result<Vec<Event>> {
        Config::parse(config)?;
        let (events, warnings) = engine::normalize(input, HostClock.now())?;
        warnings.log("normalize");
        Ok(events)
    }
}

portcullis_sdk::export_connector!(NvdCve);
