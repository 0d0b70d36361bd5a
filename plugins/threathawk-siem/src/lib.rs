//! `threathawk-siem`: a Portcullis connector for ThreatHawk SIEM alerts.
//!
//! Follows the ThreatHawk API as CyberSilo documents it (see README.md): OAuth 2.0
//! client credentials (done by the host: the plugin only names the `api` slot),
//! `GET <base_url>/alerts` with the `status`, `severity` and `created_after` filters and
//! cursor pagination, `X-RateLimit-*` headers, `429` with `Retry-After`, `400`/`422`
//! with a `fields` array. The logic lives in [`config`], [`engine`] and [`mapping`],
//! which use no host import and are unit-tested natively; this file is the glue.

pub mod config;
pub mod engine;
pub mod mapping;

#[cfg(test)]
mod tests;

use portcullis_sdk::clock::HostClock;
use portcullis_sdk::http::HostTransport;
use portcullis_sdk::log;
use portcullis_sdk::prelude::*;
use portcullis_sdk::warnings::Warnings;

use crate::config::{CREDENTIAL_SLOT, Config, DEFAULT_BASE_URL};

/// The configuration JSON Schema (draft 2020-12) declared in the manifest.
pub const CONFIG_SCHEMA: &str = include_str!("config.schema.json");

/// The plugin manifest.
pub fn manifest() -> Manifest {
    let schema = serde_json::from_str(CONFIG_SCHEMA)
        // A compile-time constant checked by the unit tests; never trap in `describe`.
        .unwrap_or_else(|_| json!({"type": "object"}));
    Manifest::new(
        engine::PLUGIN_ID,
        "ThreatHawk SIEM",
        env!("CARGO_PKG_VERSION"),
        Category::Siem,
    )
    .description(format!(
        "Pulls ThreatHawk SIEM alerts (GET <base_url>/alerts, default {DEFAULT_BASE_URL}) \
         incrementally by created_after and cursor pagination, with optional status and \
         severity filters, and maps them to alert events: OCSF severity, matched rules, \
         affected assets, MITRE ATT&CK techniques, raw event ids, IPs, hosts, users and \
         file hashes."
    ))
    .config_schema(schema)
    // `base_url` is configurable (proxies, API gateways, private deployments), so any
    // origin may be asked for; the operator's grant narrows it to the base_url's origin.
    .host("https://api.threathawk.cybersilo.tech")
    .host("*://*:*")
    .credential_slot(
        CredentialSlot::new(
            CREDENTIAL_SLOT,
            "ThreatHawk API client (Settings > API Management): OAuth 2.0 client credentials \
             with read access to alerts; the host fetches and refreshes the token",
            [CredentialKind::Oauth2ClientCredentials],
        )
        .required(),
    )
}

fn log_outcome(operation: &str, warnings: &Warnings, notes: &[String]) {
    warnings.log(operation);
    for note in notes {
        log::log(log::Level::Info, note, &[("operation", operation)]);
    }
}

/// The exported connector.
pub struct ThreatHawk;

impl Connector for ThreatHawk {
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
        let mut notes = outcome.notes;
        if outcome.repeated > 0 {
            notes.push(format!(
                "{} alert(s) in the window overlap were already emitted and were skipped",
                outcome.repeated
            ));
        }
        log_outcome("poll", &outcome.warnings, &notes);
        Ok(outcome.batch)
    }
}

portcullis_sdk::export_connector!(ThreatHawk);
