//! `loop-forever`: a hostile connector whose `poll` never returns. The loop has
//! an observable (black-boxed) side effect on every iteration so the optimiser
//! can neither remove it nor prove it terminates; only the host's wall-clock
//! deadline (epoch interruption) can stop it. The other exports behave.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "connector" });

use std::hint::black_box;

use exports::portcullis::connector::plugin::Guest;
use portcullis::connector::types::{
    Batch, Category, Error, Event, Manifest, TestReport, TestStage,
};

struct LoopForever;

impl Guest for LoopForever {
    fn describe() -> Manifest {
        Manifest {
            id: env!("CARGO_PKG_NAME").to_string(),
            name: "Loop-forever test guest".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            category: Category::CustomApi,
            description: "Hostile: poll spins forever and must be stopped by the host's deadline."
                .to_string(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            hosts: Vec::new(),
            credential_slots: Vec::new(),
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
                message: "only poll loops".to_string(),
                latency_ms: Some(0),
            }],
            sample: Vec::new(),
        })
    }

    fn poll(_config: String, _cursor: Option<String>) -> Result<Batch, Error> {
        let mut counter: u64 = 0;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }

    fn normalize(_config: String, _input: String) -> Result<Vec<Event>, Error> {
        Err(Error::Other(
            "loop-forever does not accept pushed input".to_string(),
        ))
    }
}

export!(LoopForever);
