//! Hostile plugins in the real host: loops stop at the deadline, memory bombs at the cap,
//! traps stay inside their call, log floods are rate-limited, WASI finds nothing, and bad
//! components are refused at load with a message saying why.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::*;
use portcullis::runtime::plugin_log::LogOrigin;
use portcullis::runtime::{CacheOutcome, LoadError};
use portcullis::{CallError, Runtime, RuntimeConfig, RuntimeLimits};
use portcullis_e2e::artifacts::{
    FS_PROBE, LOG_FLOOD, LOOP_FOREVER, MEMORY_BOMB, NOOP, REST_GENERIC, TRAP,
};
use portcullis_e2e::simulators::PagedApiConfig;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let rt = runtime_with(false, short_limits(Duration::from_millis(500), 64));
    let plugin = load(&rt, LOOP_FOREVER).await;
    let b = bind(&plugin, "looper", &[], Default::default());
    let started = Instant::now();
    let err = b.sandbox.poll(&json!({}), None).await.unwrap_err();
    assert!(
        matches!(err, CallError::Timeout(d) if d == Duration::from_millis(500)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The runtime is still usable afterwards.
    let noop = load(&rt, NOOP).await;
    let n = bind(&noop, "n", &[], Default::default());
    n.sandbox.poll(&json!({}), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_is_stopped_at_the_cap() {
    let rt = runtime_with(false, short_limits(Duration::from_secs(20), 16));
    let plugin = load(&rt, MEMORY_BOMB).await;
    let b = bind(&plugin, "bomb", &[], Default::default());
    let err = b.sandbox.poll(&json!({}), None).await.unwrap_err();
    assert!(
        matches!(err, CallError::MemoryLimit { limit } if limit == 16 * 1024 * 1024),
        "{err:?}"
    );
    assert_eq!(err.code(), "memory-limit");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trapping_plugin_leaves_concurrent_connectors_unaffected() {
    let api = portcullis_e2e::paged_api(PagedApiConfig::default());
    let base = api.base_url();
    let rt = runtime(true);
    let trap = load(&rt, TRAP).await;
    let rest = load(&rt, REST_GENERIC).await;
    let config = json!({
        "base_url": base, "path": "/alerts", "records": "", "id": "/id", "time": "/created_at",
        "pagination": {"type": "link-header"}, "page_size": 25, "page_size_param": "per_page"
    });
    let short = runtime_with(true, short_limits(Duration::from_millis(800), 64));
    let looper_short = load(&short, LOOP_FOREVER).await;

    let mut tasks = Vec::new();
    for i in 0..4 {
        let t = bind(&trap, &format!("trap-{i}"), &[], Default::default());
        tasks.push(tokio::spawn(async move {
            let e = t.sandbox.poll(&json!({}), None).await.unwrap_err();
            assert!(matches!(e, CallError::Trap(_)), "{e:?}");
            "trap"
        }));
    }
    let l = bind(&looper_short, "loop", &[], Default::default());
    tasks.push(tokio::spawn(async move {
        let e = l.sandbox.poll(&json!({}), None).await.unwrap_err();
        assert!(matches!(e, CallError::Timeout(_)), "{e:?}");
        "loop"
    }));
    let mut healthy = Vec::new();
    for i in 0..3 {
        let r = bind(&rest, &format!("rest-{i}"), &[&base], Default::default());
        let config = config.clone();
        healthy.push(tokio::spawn(async move {
            let (events, _, batches) = poll_follow(&r.sandbox, &config, None, 10).await;
            (events.len(), batches)
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for h in healthy {
        assert_eq!(h.await.unwrap(), (100, 4));
    }
    // The trapping plugin's panic message reached its log, tagged with its connector.
    let t = bind(&trap, "trap-x", &[], Default::default());
    let _ = t.sandbox.poll(&json!({}), None).await;
    assert!(t.logs.lines().iter().any(|l| l.origin == LogOrigin::Stderr
        && l.message.contains("panic")
        && l.connector == "trap-x"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_flood_is_rate_limited() {
    let rt = runtime_with(
        false,
        RuntimeLimits {
            log_burst: 50,
            log_lines_per_sec: 10,
            ..RuntimeLimits::default()
        },
    );
    let plugin = load(&rt, LOG_FLOOD).await;
    let b = bind(&plugin, "flood", &[], Default::default());
    let started = Instant::now();
    b.sandbox
        .poll(&json!({"count": 200000}), None)
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let lines = b.logs.lines();
    let from_plugin = lines
        .iter()
        .filter(|l| l.origin == LogOrigin::Plugin)
        .count();
    assert!(from_plugin >= 50, "the burst is admitted");
    assert!(
        (from_plugin as f64) <= 50.0 + 10.0 * secs + 1.0,
        "{from_plugin} lines in {secs:.2}s"
    );
    let note = lines.iter().find(|l| l.origin == LogOrigin::Host).unwrap();
    let suppressed: usize = note
        .fields
        .iter()
        .find(|(k, _)| k == "suppressed")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert_eq!(suppressed + from_plugin, 200000);
}

#[tokio::test(flavor = "multi_thread")]
async fn wasi_gives_the_guest_nothing() {
    let rt = runtime(true);
    let plugin = load(&rt, FS_PROBE).await;
    let b = bind(&plugin, "fs", &[], Default::default());
    let sim = portcullis_e2e::helper_server();
    let batch = b
        .sandbox
        .poll(&json!({"tcp": sim.addr().to_string()}), None)
        .await
        .unwrap();
    for e in &batch.events {
        let probe = e.attributes["probe"].as_str().unwrap();
        let ok = e.attributes["ok"].as_bool().unwrap();
        match probe {
            "stdout" | "stderr" => assert!(ok),
            _ => assert!(
                !ok,
                "probe {probe} found something: {}",
                e.attributes["detail"]
            ),
        }
    }
    let probes: Vec<&str> = batch
        .events
        .iter()
        .map(|e| e.attributes["probe"].as_str().unwrap())
        .collect();
    for p in [
        "read-root",
        "read-cwd",
        "read-etc-passwd",
        "env",
        "args",
        "stdin",
        "tcp",
    ] {
        assert!(probes.contains(&p), "probe {p} did not run: {probes:?}");
    }
    assert!(sim.log().is_empty(), "a raw socket reached the simulator");
    // What the guest wrote to stdout/stderr went to the plugin log, not the host's stdout.
    let lines = b.logs.lines();
    assert!(lines.iter().any(|l| l.origin == LogOrigin::Stdout));
    assert!(lines.iter().any(|l| l.origin == LogOrigin::Stderr));
}

fn wat_component(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_components_are_refused_with_clear_messages() {
    let rt = runtime(false);
    let good = portcullis_e2e::read_artifact(NOOP);

    let err = rt.load(b"").await.unwrap_err();
    assert!(matches!(err, LoadError::Empty), "{err}");

    let err = rt.load(b"#!/bin/sh\necho not wasm\n").await.unwrap_err();
    assert!(
        err.to_string().contains("not a WebAssembly component"),
        "{err}"
    );

    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let err = rt.load(&core).await.unwrap_err();
    assert!(err.to_string().contains("core WebAssembly module"), "{err}");

    let truncated = &good[..good.len() / 2];
    let err = rt.load(truncated).await.unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)), "{err}");
    assert!(
        err.to_string().contains("invalid or truncated component"),
        "{err}"
    );

    let unknown = wat_component(
        r#"(component
            (import "evil:net/raw-socket@1.0.0" (instance (export "connect" (func))))
            (import "wasi:http/outgoing-handler@0.2.0" (instance))
            (instance (export "portcullis:connector/plugin@0.1.0"))
        )"#,
    );
    let err = rt.load(&unknown).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LoadError::UnknownImports(_)), "{msg}");
    assert!(
        msg.contains("evil:net/raw-socket@1.0.0")
            && msg.contains("wasi:http/outgoing-handler@0.2.0"),
        "{msg}"
    );

    let future =
        wat_component(r#"(component (instance (export "portcullis:connector/plugin@0.2.0")))"#);
    let err = rt.load(&future).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("portcullis:connector@0.2.0") && msg.contains("portcullis:connector@0.1.0"),
        "{msg}"
    );

    let not_connector = wat_component(r#"(component (instance (export "acme:other/api@1.0.0")))"#);
    let err = rt.load(&not_connector).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("does not export `portcullis:connector/plugin`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn components_are_precompiled_once_and_tampered_artifacts_are_rejected() {
    let dir = portcullis_e2e::temp_dir();
    let bytes = portcullis_e2e::read_artifact(NOOP);
    let make = || {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    let first = make().load(&bytes).await.unwrap();
    assert_eq!(first.info().cache, CacheOutcome::Compiled);
    let second = make().load(&bytes).await.unwrap();
    assert_eq!(second.info().cache, CacheOutcome::Hit);
    assert_eq!(first.info().sha256, second.info().sha256);

    // Flip a byte in the stored artifact: the host refuses to deserialize it and recompiles.
    let artifact = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    assert!(
        artifact
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&first.info().sha256)
    );
    let mut data = std::fs::read(&artifact).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&artifact, data).unwrap();
    let third = make().load(&bytes).await.unwrap();
    assert_eq!(third.info().cache, CacheOutcome::Compiled);
    let b = bind(&third, "n", &[], Default::default());
    b.sandbox.poll(&json!({}), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_reports_version_imports_and_capabilities() {
    let rt = runtime(false);
    let plugin = load(&rt, REST_GENERIC).await;
    let info = plugin.info();
    assert_eq!(info.api_version, "0.1.0");
    assert_eq!(info.manifest.id, "rest-generic");
    assert_eq!(
        info.manifest.category,
        portcullis::manifest::Category::CustomApi
    );
    assert!(
        info.imports
            .iter()
            .any(|i| i == "portcullis:connector/http@0.1.0")
    );
    assert_eq!(info.manifest.credential_slots[0].name, "api");
    assert_eq!(info.sha256.len(), 64);
}
