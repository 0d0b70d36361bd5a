//! `qradar-siem`: a Portcullis connector for IBM QRadar SIEM offenses.
//!
//! Configuration, cursor, mapping and the documentation followed are described in
//! this crate's `README.md`. The logic lives in [`config`], [`api`], [`mapping`] and
//! [`engine`], which use no host import directly and are unit-tested natively; this
//! file is the thin glue that binds them to the host's `http`, `clock` and `log`
//! imports.

pub mod api;
pub mod config;
pub mod engine;
pub mod mapping;

#[cfg(test)]
mod tests;

use portcullis_sdk::clock::HostClock;
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
        "IBM QRadar SIEM",
        env!("CARGO_PKG_VERSION"),
        Category::Siem,
    )
    .description(
        "Pulls offenses from an on-premises IBM QRadar console (GET /api/siem/offenses) \
         incrementally by last_updated_time with Range paging, resolves source and \
         destination IPs and rule names, and maps each offense update to an alert event.",
    )
    .config_schema(schema)
    // QRadar runs on the customer's premises, so any host; the admin's grant narrows
    // it to the console. `http` only serves `insecure_http` lab setups.
    .host("https://*:*")
    .host("http://*:*")
    .credential_slot(
        CredentialSlot::new(
            CREDENTIAL_SLOT,
            "QRadar authorized service token, sent in the `SEC` header (api-key with header \
             SEC), or OAuth 2.0 client credentials for an API gateway in front of QRadar",
            [
                CredentialKind::ApiKey,
                CredentialKind::Oauth2ClientCredentials,
            ],
        )
        .required(),
    )
    .accepts_push(false)
}

/// The exported connector.
pub struct QRadarSiem;

impl Connector for QRadarSiem {
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
}

portcullis_sdk::export_connector!(QRadarSiem);
