//! `trap`: a hostile connector whose `poll` traps. `describe`, `validate-config`
//! and `test-connection` work normally.
//!
//! Config (JSON object, optional) `kind` selects how `poll` traps:
//! - `"panic"` (default): a Rust panic (the guest aborts: `unreachable` trap);
//! - `"unreachable"`: executes the wasm `unreachable` instruction directly;
//! - `"stack-overflow"`: unbounded recursion until the stack is exhausted (Rust
//!   keeps frames on a shadow stack at the bottom of linear memory, so this is
//!   an out-of-bounds memory trap unless the wasm call stack runs out first).

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "connector" });

use std::hint::black_box;

use exports::portcullis::connector::plugin::Guest;
use portcullis::connector::types::{
    Batch, Category, Error, Event, FieldError, Manifest, TestReport, TestStage,
};

struct Trap;

#[derive(Clone, Copy)]
enum Kind {
    Panic,
    Unreachable,
    StackOverflow,
}

fn parse_config(config: &str) -> Result<Kind, Error> {
    let field_error = |path: &str, message: String| {
        Error::Config(vec![FieldError {
            path: path.to_string(),
            message,
        }])
    };
    let value: serde_json::Value = serde_json::from_str(config)
        .map_err(|e| field_error("", format!("config is not JSON: {e}")))?;
    match value.get("kind") {
        None => Ok(Kind::Panic),
        Some(kind) => match kind.as_str() {
            Some("panic") => Ok(Kind::Panic),
            Some("unreachable") => Ok(Kind::Unreachable),
            Some("stack-overflow") => Ok(Kind::StackOverflow),
            _ => Err(field_error(
                "/kind",
                "must be one of \"panic\", \"unreachable\", \"stack-overflow\"".to_string(),
            )),
        },
    }
}

/// Recurses forever; the black-boxed frame-local array keeps every frame alive
/// and stops the compiler from turning the recursion into a loop.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 16]);
    let below = recurse(black_box(depth + 1));
    black_box(frame[(depth % 16) as usize]).wrapping_add(below)
}

impl Guest for Trap {
    fn describe() -> Manifest {
        Manifest {
            id: env!("CARGO_PKG_NAME").to_string(),
            name: "Trap test guest".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            category: Category::CustomApi,
            description: "Hostile: poll traps (panic, unreachable or stack overflow).".to_string(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            hosts: Vec::new(),
            credential_slots: Vec::new(),
            accepts_push: false,
        }
    }

    fn validate_config(config: String) -> Result<(), Error> {
        parse_config(&config).map(|_| ())
    }

    fn test_connection(config: String) -> Result<TestReport, Error> {
        parse_config(&config)?;
        Ok(TestReport {
            stages: vec![TestStage {
                name: "sample".to_string(),
                ok: true,
                message: "only poll traps".to_string(),
                latency_ms: Some(0),
            }],
            sample: Vec::new(),
        })
    }

    fn poll(config: String, _cursor: Option<String>) -> Result<Batch, Error> {
        match parse_config(&config)? {
            Kind::Panic => panic!("trap guest: deliberate panic in poll"),
            Kind::Unreachable => core::arch::wasm32::unreachable(),
            Kind::StackOverflow => {
                let n = recurse(0);
                Err(Error::Other(format!("recursion returned {n}")))
            }
        }
    }

    fn normalize(_config: String, _input: String) -> Result<Vec<Event>, Error> {
        Err(Error::Other(
            "trap does not accept pushed input".to_string(),
        ))
    }
}

export!(Trap);
