//! The test guests do what they claim, checked in a minimal wasmtime embedding
//! that the test fully controls (not the Portcullis host: the host's own e2e
//! tests check that it contains them). Each hostile behaviour is observed from
//! outside: the loop is only stopped by an epoch interrupt, the memory bomb
//! grows memory up to the limit, the probes really find what a permissive
//! WASI context exposes and nothing under an empty one.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use portcullis_e2e::{artifacts, read_artifact, temp_dir};
use serde_json::Value;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({ path: "../wit/v0.1.0", world: "connector" });
}

use bindings::Connector;
use bindings::exports::portcullis::connector::plugin::{Batch, Error, Manifest};
use bindings::portcullis::connector::types::{Category, CredentialKind};
use bindings::portcullis::connector::{clock, http, log, state, types};

struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    monotonic_calls: u64,
    logs: Vec<(String, Vec<(String, String)>)>,
    sent: Vec<http::Request>,
    state: HashMap<String, Vec<u8>>,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for Host {}

impl http::Host for Host {
    fn send(&mut self, req: http::Request) -> Result<http::Response, http::HttpError> {
        let index = self.sent.len();
        let url = req.url.clone();
        self.sent.push(req);
        match index {
            0 => Ok(http::Response {
                status: 200,
                headers: vec![("content-type".to_string(), "text/plain".to_string())],
                body: vec![b'x'; 5000],
                url: format!("{url}#final"),
            }),
            _ => Err(http::HttpError::Denied(format!("{url} is not granted"))),
        }
    }
}

impl log::Host for Host {
    fn log(&mut self, _level: log::Level, message: String, fields: Vec<(String, String)>) {
        self.logs.push((message, fields));
    }
}

impl clock::Host for Host {
    fn now(&mut self) -> String {
        "2024-01-01T00:00:00.000Z".to_string()
    }
    fn now_unix_ms(&mut self) -> u64 {
        1_704_067_200_000
    }
    fn monotonic_ms(&mut self) -> u64 {
        self.monotonic_calls += 1;
        self.monotonic_calls
    }
}

impl state::Host for Host {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.state.get(&key).cloned()
    }
    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.state.insert(key, value);
        Ok(())
    }
    fn delete(&mut self, key: String) {
        self.state.remove(&key);
    }
}

struct Guest {
    engine: Engine,
    store: Store<Host>,
    connector: Connector,
}

const MEMORY_CAP: usize = 32 << 20;

/// One engine for the whole test binary, and each component compiled once.
fn engine_and_component(path: &'static str) -> (Engine, Component) {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    static COMPONENTS: OnceLock<Mutex<HashMap<&'static str, Component>>> = OnceLock::new();
    let engine = ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.wasm_component_model(true).epoch_interruption(true);
            Engine::new(&config).expect("engine")
        })
        .clone();
    let mut components = COMPONENTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let component = components
        .entry(path)
        .or_insert_with(|| Component::new(&engine, read_artifact(path)).expect("compile component"))
        .clone();
    (engine, component)
}

fn instantiate(path: &'static str, wasi: WasiCtx) -> Guest {
    let (engine, component) = engine_and_component(path);
    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("link wasi");
    Connector::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host).expect("link");
    let mut store = Store::new(
        &engine,
        Host {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(MEMORY_CAP).build(),
            monotonic_calls: 0,
            logs: Vec::new(),
            sent: Vec::new(),
            state: HashMap::new(),
        },
    );
    store.limiter(|host| &mut host.limits);
    // Far enough that only an explicit interrupt ends a call.
    store.set_epoch_deadline(1_000_000);
    let connector = Connector::instantiate(&mut store, &component, &linker).expect("instantiate");
    Guest {
        engine,
        store,
        connector,
    }
}

fn empty_wasi() -> WasiCtx {
    WasiCtxBuilder::new().build()
}

impl Guest {
    fn describe(&mut self) -> Manifest {
        self.connector
            .portcullis_connector_plugin()
            .call_describe(&mut self.store)
            .expect("describe")
    }

    fn poll(&mut self, config: &str) -> wasmtime::Result<Result<Batch, Error>> {
        self.connector
            .portcullis_connector_plugin()
            .call_poll(&mut self.store, config, None)
    }

    fn poll_ok(&mut self, config: &str) -> Batch {
        match self.poll(config) {
            Ok(Ok(batch)) => batch,
            Ok(Err(error)) => panic!("poll returned {error:?}"),
            Err(trap) => panic!("poll trapped: {trap:?}"),
        }
    }
}

fn trap_code(result: wasmtime::Result<Result<Batch, Error>>) -> Trap {
    match result {
        Err(error) => *error
            .downcast_ref::<Trap>()
            .unwrap_or_else(|| panic!("not a trap: {error:?}")),
        Ok(outcome) => panic!("expected a trap, got {outcome:?}"),
    }
}

fn attributes(batch: &Batch) -> HashMap<String, Value> {
    batch
        .events
        .iter()
        .map(|event| {
            (
                event.id.clone(),
                serde_json::from_str(&event.attributes).expect("attributes are JSON"),
            )
        })
        .collect()
}

#[test]
fn every_guest_describes_itself_as_documented() {
    for (name, path) in artifacts::ALL_GUESTS {
        let manifest = instantiate(path, empty_wasi()).describe();
        if *name == "noop-next" {
            // The next version of `noop`, for upgrade tests: same id, more capabilities.
            assert_eq!(manifest.id, "noop");
            assert_eq!(manifest.version, "0.2.0");
            assert_eq!(manifest.hosts, ["https://api.noop.example"]);
            assert_eq!(manifest.credential_slots.len(), 1);
            continue;
        }
        assert_eq!(manifest.id, *name);
        assert_eq!(manifest.version, "0.1.0");
        assert_eq!(manifest.category, Category::CustomApi);
        assert_eq!(manifest.config_schema, r#"{"type":"object"}"#);
        if *name == "egress-probe" {
            assert_eq!(
                manifest.hosts,
                [
                    "http://127.0.0.1:*",
                    "http://localhost:*",
                    "http://169.254.169.254",
                    "http://[::ffff:127.0.0.1]:*",
                    "http://declared.test:*",
                ]
            );
            assert_eq!(manifest.credential_slots.len(), 1);
            let slot = &manifest.credential_slots[0];
            assert_eq!(slot.name, "api");
            assert!(!slot.required);
            assert_eq!(
                slot.kinds,
                [
                    CredentialKind::Bearer,
                    CredentialKind::Oauth2ClientCredentials,
                    CredentialKind::ApiKey,
                    CredentialKind::Basic,
                ]
            );
        } else {
            assert!(manifest.hosts.is_empty(), "{name}: {:?}", manifest.hosts);
            assert!(manifest.credential_slots.is_empty());
        }
        assert_eq!(manifest.accepts_push, *name == "noop");
    }
}

#[test]
fn noop_normalize_calls_the_clock_n_times() {
    let mut guest = instantiate(artifacts::NOOP, empty_wasi());
    let plugin = guest.connector.portcullis_connector_plugin();
    let events = plugin
        .call_normalize(&mut guest.store, "{}", "250")
        .expect("normalize")
        .expect("ok");
    assert!(events.is_empty());
    assert_eq!(guest.store.data().monotonic_calls, 250);
    let outcome = plugin
        .call_normalize(&mut guest.store, "{}", "many")
        .expect("normalize");
    assert!(matches!(outcome, Err(Error::Parse(_))), "{outcome:?}");
    let batch = guest.poll_ok("{}");
    assert!(batch.events.is_empty() && !batch.more);
}

#[test]
fn loop_forever_runs_until_the_epoch_interrupts_it() {
    let mut guest = instantiate(artifacts::LOOP_FOREVER, empty_wasi());
    // The engine is shared: other stores' deadlines are far away.
    guest.store.set_epoch_deadline(1);
    let engine = guest.engine.clone();
    let ticker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        engine.increment_epoch();
    });
    let started = std::time::Instant::now();
    assert_eq!(trap_code(guest.poll("{}")), Trap::Interrupt);
    assert!(started.elapsed() >= Duration::from_millis(300));
    ticker.join().expect("ticker");
}

#[test]
fn memory_bomb_grows_memory_until_the_limit() {
    // Default: the failed allocation aborts the guest.
    let mut guest = instantiate(artifacts::MEMORY_BOMB, empty_wasi());
    assert_eq!(trap_code(guest.poll("{}")), Trap::UnreachableCodeReached);

    // Graceful: it reports how much it had allocated (and touched) by then.
    let mut guest = instantiate(artifacts::MEMORY_BOMB, empty_wasi());
    let outcome = guest.poll(r#"{"graceful": true}"#).expect("no trap");
    let Err(Error::Other(message)) = outcome else {
        panic!("expected error::other, got {outcome:?}");
    };
    let allocated: usize = message
        .strip_prefix("allocation failed after ")
        .and_then(|rest| rest.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message {message}"));
    assert!(
        (MEMORY_CAP / 2..MEMORY_CAP).contains(&allocated),
        "allocated {allocated} of a {MEMORY_CAP}-byte cap"
    );
}

#[test]
fn trap_traps_in_every_documented_way() {
    let mut guest = instantiate(artifacts::TRAP, empty_wasi());
    assert_eq!(guest.describe().id, "trap");
    let plugin = guest.connector.portcullis_connector_plugin();
    assert!(
        plugin
            .call_validate_config(&mut guest.store, r#"{"kind":"panic"}"#)
            .expect("validate")
            .is_ok()
    );
    assert_eq!(trap_code(guest.poll("{}")), Trap::UnreachableCodeReached);
    let mut guest = instantiate(artifacts::TRAP, empty_wasi());
    assert_eq!(
        trap_code(guest.poll(r#"{"kind":"unreachable"}"#)),
        Trap::UnreachableCodeReached
    );
    // Rust keeps its frames on a shadow stack at the bottom of linear memory;
    // running past it is an out-of-bounds access. Either way: a trap.
    let mut guest = instantiate(artifacts::TRAP, empty_wasi());
    let code = trap_code(guest.poll(r#"{"kind":"stack-overflow"}"#));
    assert!(
        matches!(code, Trap::MemoryOutOfBounds | Trap::StackOverflow),
        "{code:?}"
    );
}

#[test]
fn log_flood_logs_count_lines() {
    let mut guest = instantiate(artifacts::LOG_FLOOD, empty_wasi());
    let batch = guest.poll_ok(r#"{"count": 1500}"#);
    assert!(batch.events.is_empty());
    let logs = &guest.store.data().logs;
    assert_eq!(logs.len(), 1500);
    assert_eq!(logs[0].0, "log-flood line 0 of 1500");
    assert_eq!(logs[1499].1, [("line".to_string(), "1499".to_string())]);
}

#[test]
fn fs_probe_finds_nothing_in_an_empty_context() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let target = listener.local_addr().expect("addr");
    let mut guest = instantiate(artifacts::FS_PROBE, empty_wasi());
    let batch = guest.poll_ok(&format!(r#"{{"tcp": "{target}"}}"#));
    let probes = attributes(&batch);
    for name in [
        "read-root",
        "read-cwd",
        "read-etc-passwd",
        "env",
        "args",
        "stdin",
        "tcp",
    ] {
        let probe = &probes[&format!("probe-{name}")];
        assert_eq!(probe["probe"], name);
        assert_eq!(probe["ok"], false, "{name}: {}", probe["detail"]);
        assert!(probe["detail"].is_string());
    }
    // Writing to the (discarding) stdout/stderr succeeds; nothing escapes.
    assert_eq!(probes["probe-stdout"]["ok"], true);
    assert_eq!(probes["probe-stderr"]["ok"], true);
    assert!(
        listener.accept().is_err(),
        "the guest reached the TCP listener"
    );
}

#[test]
fn fs_probe_detects_what_a_permissive_context_exposes() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("visible.txt"), "hello").expect("write");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let target = listener.local_addr().expect("addr");
    let wasi = WasiCtxBuilder::new()
        .env("PROBE_SECRET", "value")
        .arg("fs-probe")
        .inherit_network()
        .allow_tcp(true)
        .preopened_dir(dir.path(), ".", FsPerms::ReadOnly)
        .expect("preopen")
        .build();
    let mut guest = instantiate(artifacts::FS_PROBE, wasi);
    let batch = guest.poll_ok(&format!(r#"{{"tcp": "{target}"}}"#));
    let probes = attributes(&batch);
    for name in ["read-cwd", "env", "args", "tcp"] {
        assert_eq!(
            probes[&format!("probe-{name}")]["ok"],
            true,
            "{name}: {}",
            probes[&format!("probe-{name}")]["detail"]
        );
    }
    let cwd = probes["probe-read-cwd"]["detail"].as_str().expect("detail");
    assert!(cwd.contains("visible.txt"), "{cwd}");
    let env = probes["probe-env"]["detail"].as_str().expect("detail");
    assert!(
        env.contains("PROBE_SECRET") && !env.contains("value"),
        "{env}"
    );
    listener.set_nonblocking(false).expect("blocking");
    listener.accept().expect("the guest connected");
}

#[test]
fn egress_probe_sends_each_request_and_reports_the_outcome() {
    let mut guest = instantiate(artifacts::EGRESS_PROBE, empty_wasi());
    let config = serde_json::json!({"requests": [
        {"url": "http://127.0.0.1:9/a", "method": "post", "credential": "api",
         "headers": [["x-one", "1"]], "body": "payload", "timeout_ms": 1500},
        {"url": "http://169.254.169.254/latest"},
    ]});
    let batch = guest.poll_ok(&config.to_string());
    let sent = &guest.store.data().sent;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].method, http::Method::Post);
    assert_eq!(sent[0].url, "http://127.0.0.1:9/a");
    assert_eq!(sent[0].headers, [("x-one".to_string(), "1".to_string())]);
    assert_eq!(sent[0].body.as_deref(), Some(&b"payload"[..]));
    assert_eq!(sent[0].credential.as_deref(), Some("api"));
    assert_eq!(sent[0].timeout_ms, Some(1500));
    assert_eq!(sent[1].method, http::Method::Get);
    assert_eq!(sent[1].credential, None);

    let events = attributes(&batch);
    let ok = &events["req-0"];
    assert_eq!(ok["url"], "http://127.0.0.1:9/a");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["body"].as_str().map(str::len), Some(4096));
    assert_eq!(ok["final_url"], "http://127.0.0.1:9/a#final");
    assert!(ok.get("error").is_none());
    let denied = &events["req-1"];
    assert_eq!(denied["error"]["kind"], "denied");
    assert!(
        denied["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not granted"))
    );
    assert_eq!(denied["body"], "");
    assert!(denied.get("status").is_none());

    // A bad request list is a config error with the field's pointer.
    let plugin = guest.connector.portcullis_connector_plugin();
    let outcome = plugin
        .call_validate_config(&mut guest.store, r#"{"requests": [{"method": "BREW"}]}"#)
        .expect("validate");
    let Err(Error::Config(errors)) = outcome else {
        panic!("expected config errors, got {outcome:?}");
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/requests/0/url", "/requests/0/method"]);
}
