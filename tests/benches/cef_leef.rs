//! `cef-leef` throughput: the same CEF/LEEF lines through
//!
//! - `native`: the plugin's parser and mapping (`plugins/cef-leef/src/engine`, the
//!   very source files, compiled into this bench) doing what the guest does per
//!   line: parse the configuration text, normalise, serialise the attributes;
//! - `bare_wasmtime`: the built component in a bare wasmtime embedding, one
//!   instance per batch, `normalize` called once per line (guest work plus the
//!   canonical-ABI copies, no Portcullis host logic);
//! - `sandbox`: `ConnectorSandbox::normalize(&config, &lines)` of the real host
//!   (one instance per batch, plus the host's event validation and conversion).
//!
//! One run, same input: every line of the CEF and LEEF conformance samples that
//! parses, cycled to a batch of `BATCH` lines. Criterion reports both events/s and
//! MiB/s (`Throughput::ElementsAndBytes`). Run with
//! `cargo bench -p portcullis-e2e --bench cef_leef`; results go in the plugin README.
#![allow(clippy::unwrap_used, missing_docs)]

// The plugin's engine, compiled from its own source files. Under `cargo clippy
// --all-targets` this target also sees the engine's `#[cfg(test)]` modules, whose
// test functions the bench harness does not use.
#[path = "../../plugins/cef-leef/src/engine/mod.rs"]
#[allow(dead_code, unused_imports)]
mod engine;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis::runtime::bindings::latest as wit;
use portcullis::{ConnectorEnv, Runtime, RuntimeConfig};
use portcullis_e2e::artifacts::CEF_LEEF;
use serde_json::Value;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const BATCH: usize = 8192;
const CONFIG: &str = "{}";

const SAMPLES: &[&str] = &[
    "cef/beats_decode_cef_samples.log",
    "cef/elastic_integrations_cef_test-cef.log",
    "cef/tenzir_checkpoint.log",
    "cef/tenzir_read_cef_basic.input.log",
    "cef/tenzir_read_cef_invalid.stdin.log",
    "leef/tenzir_integration_leef1.log",
    "leef/tenzir_integration_leef2_pan_x7C.log",
    "leef/tenzir_integration_zscaler-nss_leef1_over_syslog.log",
    "leef/tenzir_read_leef_minimal.input.log",
    "leef/tenzir_read_leef_invalid.stdin.log",
    "leef/tenzir_read_leef_types_caret.stdin.log",
    "leef/tenzir_read_leef_raw.stdin.log",
];

fn now() -> engine::Instant {
    engine::Instant::from_millis(1_718_452_800_000).unwrap()
}

/// The valid sample lines, cycled to `BATCH` lines.
fn corpus() -> Vec<String> {
    let opts = engine::Options::default();
    let mut good = Vec::new();
    for rel in SAMPLES {
        let text = std::fs::read_to_string(portcullis_e2e::conformance_dir().join(rel)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if engine::normalize(&opts, line, now()).is_ok() {
                good.push(line.to_string());
            }
        }
    }
    assert!(good.len() > 30, "{}", good.len());
    good.iter().cycle().take(BATCH).cloned().collect()
}

/// What the guest does per `normalize` call, natively: parse the configuration text
/// (the SDK glue), check it, normalise the line, serialise the attributes (the WIT
/// event carries them as JSON text).
fn native_line(line: &str) -> usize {
    let config: Value = serde_json::from_str(CONFIG).unwrap();
    let opts = engine::Options::from_json(&config).unwrap();
    let n = engine::normalize(&opts, line, now()).unwrap();
    let attributes = Value::Object(n.attributes).to_string();
    black_box(&n.observables);
    attributes.len() + n.id.len() + n.time.len() + n.title.len() + n.raw.len()
}

/// Host state of the bare-wasmtime embedding: empty WASI, trivial imports.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

use wit::portcullis::connector::{clock, http, log, state, types};
impl types::Host for Bare {}
impl http::Host for Bare {
    async fn send(
        &mut self,
        _req: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        Ok(Err(http::HttpError::Denied("bare".into())))
    }
}
impl log::Host for Bare {
    fn log(&mut self, _: log::Level, _: String, _: Vec<(String, String)>) -> wasmtime::Result<()> {
        Ok(())
    }
}
impl clock::Host for Bare {
    fn now(&mut self) -> wasmtime::Result<String> {
        Ok("2024-06-15T12:00:00.000Z".into())
    }
    fn now_unix_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(1_718_452_800_000)
    }
    fn monotonic_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(0)
    }
}
impl state::Host for Bare {
    fn get(&mut self, _: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn set(&mut self, _: String, _: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(Ok(()))
    }
    fn delete(&mut self, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

fn benches(c: &mut Criterion) {
    let lines = corpus();
    let bytes: usize = lines.iter().map(String::len).sum();
    eprintln!(
        "cef_leef corpus: {} lines, {} bytes ({:.1} bytes/line)",
        lines.len(),
        bytes,
        bytes as f64 / lines.len() as f64
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let component_bytes = portcullis_e2e::read_artifact(CEF_LEEF);

    // The real host.
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = rt.block_on(runtime.load(&component_bytes)).unwrap();
    let sandbox = plugin.bind(ConnectorEnv::isolated("bench")).unwrap();
    let config: Value = serde_json::from_str(CONFIG).unwrap();

    // Bare wasmtime on the same component.
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model(true);
    cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
        wasmtime::PoolingAllocationConfig::default(),
    ));
    let engine = Engine::new(&cfg).unwrap();
    let component = Component::new(&engine, &component_bytes).unwrap();
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wit::Connector::add_to_linker::<Bare, HasSelf<Bare>>(&mut linker, |s| s).unwrap();
    let pre = wit::ConnectorPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();

    // Every variant must agree on what it produced (one event per line).
    assert_eq!(
        lines
            .iter()
            .map(|l| native_line(l))
            .filter(|n| *n > 0)
            .count(),
        BATCH
    );
    let results = rt.block_on(sandbox.normalize(&config, &lines));
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|e| e.len() == 1))
    );

    let mut g = c.benchmark_group("cef_leef_normalize");
    g.throughput(Throughput::ElementsAndBytes {
        elements: lines.len() as u64,
        bytes: bytes as u64,
    });
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("native", |b| {
        b.iter(|| lines.iter().map(|l| native_line(l)).sum::<usize>())
    });
    g.bench_function("bare_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let mut store = Store::new(
                &engine,
                Bare {
                    wasi: WasiCtx::builder().build(),
                    table: ResourceTable::new(),
                },
            );
            let inst = pre.instantiate_async(&mut store).await.unwrap();
            let mut n = 0;
            for line in &lines {
                let events = inst
                    .portcullis_connector_plugin()
                    .call_normalize(&mut store, CONFIG, line)
                    .await
                    .unwrap()
                    .unwrap();
                n += events.len();
            }
            assert_eq!(n, BATCH);
        })
    });
    g.bench_function("sandbox", |b| {
        b.to_async(&rt).iter(|| async {
            let r = sandbox.normalize(&config, &lines).await;
            assert_eq!(r.len(), BATCH);
            r
        })
    });
    g.finish();
}

criterion_group! {
    name = cef_leef;
    config = Criterion::default().warm_up_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(cef_leef);
