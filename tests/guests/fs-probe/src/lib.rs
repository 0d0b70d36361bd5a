//! `fs-probe`: a hostile connector that tries every way out of the sandbox that
//! Rust's standard library offers on wasm32-wasip2 (WASI filesystem,
//! environment, arguments, stdio, sockets) and reports what it found.
//!
//! `poll` returns one event per probe, id `probe-<name>`, with attributes
//! `{"probe": name, "ok": bool, "detail": string}`; `ok` means the probe found
//! something or succeeded. Probes: `read-root` (list `/`), `read-cwd` (list
//! `.`), `read-etc-passwd`, `env` (any environment variable), `args` (any
//! argument), `stdin` (any byte readable), `stdout` and `stderr` (writing a
//! line succeeded), and `tcp` (connect to `config.tcp`, only when given).

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "connector" });

use std::io::{Read, Write};
use std::time::Duration;

use exports::portcullis::connector::plugin::Guest;
use portcullis::connector::clock;
use portcullis::connector::types::{
    Batch, Category, Error, Event, EventKind, FieldError, Manifest, Severity, TestReport, TestStage,
};

struct FsProbe;

struct Outcome {
    ok: bool,
    detail: String,
}

impl Outcome {
    fn found(detail: String) -> Self {
        Self { ok: true, detail }
    }
    fn blocked(detail: String) -> Self {
        Self { ok: false, detail }
    }
}

fn parse_tcp_target(config: &str) -> Result<Option<String>, Error> {
    let field_error = |path: &str, message: String| {
        Error::Config(vec![FieldError {
            path: path.to_string(),
            message,
        }])
    };
    let value: serde_json::Value = serde_json::from_str(config)
        .map_err(|e| field_error("", format!("config is not JSON: {e}")))?;
    match value.get("tcp") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(target)) => Ok(Some(target.clone())),
        Some(_) => Err(field_error(
            "/tcp",
            "must be a \"host:port\" string".to_string(),
        )),
    }
}

fn list_dir(path: &str) -> Outcome {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let names: Vec<String> = entries
                .take(20)
                .map(|entry| match entry {
                    Ok(entry) => entry.file_name().to_string_lossy().into_owned(),
                    Err(e) => format!("<error: {e}>"),
                })
                .collect();
            Outcome::found(format!("listed {path}: {names:?}"))
        }
        Err(e) => Outcome::blocked(format!("read_dir({path}) failed: {e}")),
    }
}

fn read_file(path: &str) -> Outcome {
    match std::fs::read(path) {
        Ok(bytes) => Outcome::found(format!("read {} bytes from {path}", bytes.len())),
        Err(e) => Outcome::blocked(format!("read({path}) failed: {e}")),
    }
}

fn env_vars() -> Outcome {
    let names: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        Outcome::blocked("no environment variables visible".to_string())
    } else {
        // Names only: the probe proves access without copying secrets around.
        Outcome::found(format!("{} variables visible: {names:?}", names.len()))
    }
}

fn args() -> Outcome {
    let args: Vec<String> = std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    if args.is_empty() {
        Outcome::blocked("no arguments visible".to_string())
    } else {
        Outcome::found(format!("{} arguments visible: {args:?}", args.len()))
    }
}

fn stdin() -> Outcome {
    let mut buf = [0u8; 256];
    match std::io::stdin().read(&mut buf) {
        Ok(0) => Outcome::blocked("stdin is empty (end of stream)".to_string()),
        Ok(n) => Outcome::found(format!("read {n} bytes from stdin")),
        Err(e) => Outcome::blocked(format!("reading stdin failed: {e}")),
    }
}

fn write_line(mut out: impl Write, stream: &str) -> Outcome {
    let line = format!("fs-probe: line written to {stream}\n");
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Outcome::found(format!("wrote {} bytes to {stream}", line.len())),
        Err(e) => Outcome::blocked(format!("writing {stream} failed: {e}")),
    }
}

fn tcp_connect(target: &str) -> Outcome {
    use std::net::{TcpStream, ToSocketAddrs};
    let addrs = match target.to_socket_addrs() {
        Ok(addrs) => addrs.collect::<Vec<_>>(),
        Err(e) => return Outcome::blocked(format!("resolving {target} failed: {e}")),
    };
    let mut errors = Vec::new();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut stream) => {
                let wrote = stream.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok();
                return Outcome::found(format!("connected to {addr} (request written: {wrote})"));
            }
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    if errors.is_empty() {
        Outcome::blocked(format!("{target} resolved to no address"))
    } else {
        Outcome::blocked(format!("connect failed: {}", errors.join("; ")))
    }
}

fn probe_event(name: &str, outcome: Outcome) -> Event {
    let attributes = serde_json::json!({
        "probe": name,
        "ok": outcome.ok,
        "detail": outcome.detail,
    })
    .to_string();
    Event {
        id: format!("probe-{name}"),
        time: clock::now(),
        kind: EventKind::Finding,
        severity: if outcome.ok {
            Severity::High
        } else {
            Severity::Informational
        },
        title: format!(
            "probe {name}: {}",
            if outcome.ok { "escaped" } else { "contained" }
        ),
        observables: Vec::new(),
        raw: attributes.clone(),
        attributes,
    }
}

impl Guest for FsProbe {
    fn describe() -> Manifest {
        Manifest {
            id: env!("CARGO_PKG_NAME").to_string(),
            name: "Filesystem/stdio/socket probe test guest".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            category: Category::CustomApi,
            description: "Hostile: poll tries the filesystem, environment, arguments, stdio \
                          and raw TCP, and reports one event per probe."
                .to_string(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            hosts: Vec::new(),
            credential_slots: Vec::new(),
            accepts_push: false,
        }
    }

    fn validate_config(config: String) -> Result<(), Error> {
        parse_tcp_target(&config).map(|_| ())
    }

    fn test_connection(config: String) -> Result<TestReport, Error> {
        parse_tcp_target(&config)?;
        Ok(TestReport {
            stages: vec![TestStage {
                name: "sample".to_string(),
                ok: true,
                message: "probes run in poll".to_string(),
                latency_ms: Some(0),
            }],
            sample: Vec::new(),
        })
    }

    fn poll(config: String, _cursor: Option<String>) -> Result<Batch, Error> {
        let tcp = parse_tcp_target(&config)?;
        let mut events = vec![
            probe_event("read-root", list_dir("/")),
            probe_event("read-cwd", list_dir(".")),
            probe_event("read-etc-passwd", read_file("/etc/passwd")),
            probe_event("env", env_vars()),
            probe_event("args", args()),
            probe_event("stdin", stdin()),
            probe_event("stdout", write_line(std::io::stdout(), "stdout")),
            probe_event("stderr", write_line(std::io::stderr(), "stderr")),
        ];
        if let Some(target) = tcp {
            events.push(probe_event("tcp", tcp_connect(&target)));
        }
        Ok(Batch {
            events,
            cursor: None,
            more: false,
        })
    }

    fn normalize(_config: String, _input: String) -> Result<Vec<Event>, Error> {
        Err(Error::Other(
            "fs-probe does not accept pushed input".to_string(),
        ))
    }
}

export!(FsProbe);
