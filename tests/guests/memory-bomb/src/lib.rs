//! `memory-bomb`: a hostile connector whose `poll` allocates and touches memory
//! until allocation fails.
//!
//! Config (JSON object, all optional):
//! - `chunk_bytes` (default 1 MiB): size of each allocation;
//! - `graceful` (default false): when allocation fails, return
//!   `error::other("allocation failed after N bytes")` instead of aborting. By
//!   default the failed allocation aborts (`handle_alloc_error`), i.e. the
//!   guest traps, as an ordinary Rust program does when it runs out of memory.
//!
//! Every page of every chunk is written with a non-zero byte, so the memory is
//! really committed, and the chunks are kept alive (black-boxed) until the end.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "connector" });

use std::alloc::Layout;
use std::hint::black_box;

use exports::portcullis::connector::plugin::Guest;
use portcullis::connector::types::{
    Batch, Category, Error, Event, FieldError, Manifest, TestReport, TestStage,
};

const DEFAULT_CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

struct MemoryBomb;

struct Config {
    chunk_bytes: usize,
    graceful: bool,
}

fn parse_config(config: &str) -> Result<Config, Error> {
    let value: serde_json::Value = serde_json::from_str(config).map_err(|e| {
        Error::Config(vec![FieldError {
            path: String::new(),
            message: format!("config is not JSON: {e}"),
        }])
    })?;
    let chunk_bytes = match value.get("chunk_bytes") {
        None => DEFAULT_CHUNK,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 && n <= (64 << 20) => n as usize,
            _ => {
                return Err(Error::Config(vec![FieldError {
                    path: "/chunk_bytes".to_string(),
                    message: "must be an integer in 1..=67108864".to_string(),
                }]));
            }
        },
    };
    let graceful = match value.get("graceful") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            Error::Config(vec![FieldError {
                path: "/graceful".to_string(),
                message: "must be a boolean".to_string(),
            }])
        })?,
    };
    Ok(Config {
        chunk_bytes,
        graceful,
    })
}

/// Allocates one chunk and writes a non-zero byte to each of its pages.
/// `None` when the allocator could not get the memory.
fn allocate_touched(size: usize) -> Option<Vec<u8>> {
    let mut chunk: Vec<u8> = Vec::new();
    chunk.try_reserve_exact(size).ok()?;
    // `resize` with a non-zero value writes every byte: every page is touched.
    chunk.resize(size, 0xA5);
    // Make the writes observable so they cannot be elided.
    let mut i = 0;
    while i < size {
        black_box(chunk[i]);
        i += PAGE;
    }
    Some(chunk)
}

impl Guest for MemoryBomb {
    fn describe() -> Manifest {
        Manifest {
            id: env!("CARGO_PKG_NAME").to_string(),
            name: "Memory-bomb test guest".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            category: Category::CustomApi,
            description: "Hostile: poll allocates and touches memory until allocation fails."
                .to_string(),
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
                message: "only poll allocates".to_string(),
                latency_ms: Some(0),
            }],
            sample: Vec::new(),
        })
    }

    fn poll(config: String, _cursor: Option<String>) -> Result<Batch, Error> {
        let config = parse_config(&config)?;
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let mut total: u64 = 0;
        loop {
            // Reserve room for the bookkeeping first, so that the only
            // allocation that can fail below is the chunk itself.
            if kept.try_reserve(1).is_err() {
                return out_of_memory(&config, kept, total, PAGE);
            }
            match allocate_touched(config.chunk_bytes) {
                Some(chunk) => {
                    total += chunk.len() as u64;
                    kept.push(black_box(chunk));
                }
                None => return out_of_memory(&config, kept, total, config.chunk_bytes),
            }
        }
    }

    fn normalize(_config: String, _input: String) -> Result<Vec<Event>, Error> {
        Err(Error::Other(
            "memory-bomb does not accept pushed input".to_string(),
        ))
    }
}

fn out_of_memory(
    config: &Config,
    kept: Vec<Vec<u8>>,
    total: u64,
    wanted: usize,
) -> Result<Batch, Error> {
    if config.graceful {
        // Free everything first: building and returning the error allocates.
        drop(kept);
        Err(Error::Other(format!(
            "allocation failed after {total} bytes"
        )))
    } else {
        match Layout::from_size_align(wanted, 1) {
            Ok(layout) => std::alloc::handle_alloc_error(layout),
            Err(_) => std::process::abort(),
        }
    }
}

export!(MemoryBomb);
