//! `noop`: the minimal connector. `poll` returns an empty batch; `normalize`
//! parses its input as an integer N and calls `clock.monotonic-ms` N times
//! (benchmarks use it to measure the cost of host calls).

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "connector" });

use exports::portcullis::connector::plugin::Guest;
use portcullis::connector::clock;
use portcullis::connector::types::{
    Batch, Category, Error, Event, Manifest, TestReport, TestStage,
};

struct Noop;

impl Guest for Noop {
    fn describe() -> Manifest {
        Manifest {
            id: env!("CARGO_PKG_NAME").to_string(),
            name: "No-op test guest".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            category: Category::CustomApi,
            description:
                "Does nothing: empty polls; normalize(N) calls clock.monotonic-ms N times."
                    .to_string(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            hosts: Vec::new(),
            credential_slots: Vec::new(),
            accepts_push: true,
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
                message: "noop has nothing to query".to_string(),
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

    fn normalize(_config: String, input: String) -> Result<Vec<Event>, Error> {
        let n: u64 = input
            .trim()
            .parse()
            .map_err(|e| Error::Parse(format!("input is not an integer: {e}")))?;
        let mut acc = 0u64;
        for _ in 0..n {
            acc = acc.wrapping_add(std::hint::black_box(clock::monotonic_ms()));
        }
        std::hint::black_box(acc);
        Ok(Vec::new())
    }
}

export!(Noop);
