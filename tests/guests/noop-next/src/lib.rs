//! `noop-next`: version 0.2.0 of the `noop` plugin id, asking for more than 0.1.0 did (one
//! host and one credential slot), so upgrades and their capability diff can be tested.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "connector" });

use exports::portcullis::connector::plugin::Guest;
use portcullis::connector::types::{
    Batch, Category, CredentialKind, CredentialSlot, Error, Event, Manifest, TestReport, TestStage,
};

struct NoopNext;

impl Guest for NoopNext {
    fn describe() -> Manifest {
        Manifest {
            id: "noop".to_string(),
            name: "No-op test guest".to_string(),
            version: "0.2.0".to_string(),
            category: Category::CustomApi,
            description: "noop, version 0.2.0: also asks for a host and a credential slot."
                .to_string(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            hosts: vec!["https://api.noop.example".to_string()],
            credential_slots: vec![CredentialSlot {
                name: "api".to_string(),
                description: "API token".to_string(),
                kinds: vec![CredentialKind::Bearer],
                required: false,
            }],
            accepts_push: false,
        }
    }

    fn validate_config(_config: String) -> Result<(), Error> {
        Ok(())
    }

    fn test_connection(_config: String) -> Result<TestReport, Error> {
        Ok(TestReport {
            stages: vec![TestStage {
                name: "sample".to_string(),
                ok: true,
                message: "noop 0.2.0 has nothing to query".to_string(),
                latency_ms: Some(0),
            }],
            sample: Vec::new(),
        })
    }

    fn poll(_config: String, cursor: Option<String>) -> Result<Batch, Error> {
        Ok(Batch {
            events: Vec::new(),
            cursor,
            more: false,
        })
    }

    fn normalize(_config: String, _input: String) -> Result<Vec<Event>, Error> {
        Err(Error::Other(
            "noop 0.2.0 accepts no pushed input".to_string(),
        ))
    }
}

export!(NoopNext);
