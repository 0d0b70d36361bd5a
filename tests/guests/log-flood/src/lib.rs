//! `log-flood`: a hostile connector whose `poll` logs `config.count` lines
//! (default 100000) at info level through the host's `log` import, then
//! returns an empty batch. The host must rate-limit and stay responsive.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "connector" });

use exports::portcullis::connector::plugin::Guest;
use portcullis::connector::log::{self, Level};
use portcullis::connector::types::{
    Batch, Category, Error, Event, FieldError, Manifest, TestReport, TestStage,
};

const DEFAULT_COUNT: u64 = 100_000;

struct LogFlood;

fn parse_count(config: &str) -> Result<u64, Error> {
    let field_error = |path: &str, message: String| {
        Error::Config(vec![FieldError {
            path: path.to_string(),
            message,
        }])
    };
    let value: serde_json::Value = serde_json::from_str(config)
        .map_err(|e| field_error("", format!("config is not JSON: {e}")))?;
    match value.get("count") {
        None => Ok(DEFAULT_COUNT),
        Some(count) => count
            .as_u64()
            .ok_or_else(|| field_error("/count", "must be a non-negative integer".to_string())),
    }
}

impl Guest for LogFlood {
    fn describe() -> Manifest {
        Manifest {
            id: env!("CARGO_PKG_NAME").to_string(),
            name: "Log-flood test guest".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            category: Category::CustomApi,
            description: "Hostile: poll logs `count` lines (default 100000) at info level."
                .to_string(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            hosts: Vec::new(),
            credential_slots: Vec::new(),
            accepts_push: false,
        }
    }

    fn validate_config(config: String) -> Result<(), Error> {
        parse_count(&config).map(|_| ())
    }

    fn test_connection(config: String) -> Result<TestReport, Error> {
        parse_count(&config)?;
        Ok(TestReport {
            stages: vec![TestStage {
                name: "sample".to_string(),
                ok: true,
                message: "only poll floods".to_string(),
                latency_ms: Some(0),
            }],
            sample: Vec::new(),
        })
    }

    fn poll(config: String, cursor: Option<String>) -> Result<Batch, Error> {
        let count = parse_count(&config)?;
        for i in 0..count {
            let index = i.to_string();
            log::log(
                Level::Info,
                &format!("log-flood line {index} of {count}"),
                &[("line".to_string(), index)],
            );
        }
        Ok(Batch {
            events: Vec::new(),
            cursor,
            more: false,
        })
    }

    fn normalize(_config: String, _input: String) -> Result<Vec<Event>, Error> {
        Err(Error::Other(
            "log-flood does not accept pushed input".to_string(),
        ))
    }
}

export!(LogFlood);
