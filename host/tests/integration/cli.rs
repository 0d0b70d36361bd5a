//! The `portcullis` binary: `plugin inspect` and `plugin call`, their JSON documents, exit
//! codes and one-line errors, run against the real plugins and local simulators.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use portcullis_e2e::artifacts::{NOOP, REST_GENERIC, TRAP};
use portcullis_e2e::simulators::{Auth, OAuthConfig, PagedApiConfig};
use serde_json::{Value, json};

fn portcullis(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("PORTCULLIS_CACHE_DIR", cache)
        .env_remove("PORTCULLIS_LOG")
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr_last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.display().to_string()
}

#[test]
fn inspect_prints_identity_capabilities_and_digest() {
    let tmp = portcullis_e2e::temp_dir();
    let out = portcullis(&["plugin", "inspect", REST_GENERIC], tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = stdout_json(&out);
    assert_eq!(doc["id"], "rest-generic");
    assert_eq!(doc["api_version"], "0.1.0");
    assert_eq!(doc["category"], "custom-api");
    assert!(!doc["hosts"].as_array().unwrap().is_empty());
    assert_eq!(doc["credential_slots"][0]["name"], "api");
    assert!(
        doc["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "portcullis:connector/http@0.1.0")
    );
    let bytes = std::fs::read(REST_GENERIC).unwrap();
    assert_eq!(doc["size"], bytes.len());
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn inspect_refuses_bad_files_with_one_line() {
    let tmp = portcullis_e2e::temp_dir();
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let truncated = tmp.path().join("truncated.wasm");
    let bytes = std::fs::read(NOOP).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    for (file, needle) in [
        (junk.display().to_string(), "not a WebAssembly component"),
        (
            truncated.display().to_string(),
            "invalid or truncated component",
        ),
        ("/nonexistent/x.wasm".to_string(), "cannot read"),
    ] {
        let out = portcullis(&["plugin", "inspect", &file], tmp.path());
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let line = stderr_last_line(&out);
        assert!(
            line.starts_with("error: ") && line.contains(needle),
            "{line}"
        );
    }
}

#[test]
fn call_poll_follow_walks_every_page_with_host_side_oauth() {
    let tmp = portcullis_e2e::temp_dir();
    let (oauth, api) =
        portcullis_e2e::oauth_protected_api(OAuthConfig::default(), PagedApiConfig::default());
    let base = api.base_url();
    let config = write(
        tmp.path(),
        "config.json",
        &json!({
            "base_url": base, "path": "/alerts", "records": "", "id": "/id", "time": "/created_at",
            "pagination": {"type": "link-header"}, "page_size": 25, "page_size_param": "per_page",
            "credential": "api", "kind": "alert", "window": {"param": "since"}
        }),
    );
    let creds = write(
        tmp.path(),
        "creds.json",
        &json!({"api": {
            "kind": "oauth2-client-credentials", "token_url": oauth.token_url(),
            "client_id": oauth.client_id(), "client_secret": oauth.client_secret(), "hosts": [base]
        }}),
    );
    let out = portcullis(
        &[
            "plugin",
            "call",
            REST_GENERIC,
            "poll",
            "--config",
            &config,
            "--credentials",
            &creds,
            "--grant",
            &base,
            "--follow",
            "--allow-private-network",
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = stdout_json(&out);
    assert_eq!(doc["events"].as_array().unwrap().len(), 100);
    assert_eq!(doc["batches"], 4);
    assert_eq!(doc["more"], false);
    assert!(doc["cursor"].is_string());
    assert_eq!(oauth.token_requests(), 1);
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!all.contains(&oauth.client_secret()));
    assert!(!all.contains(&oauth.last_token().unwrap()));

    // Resume from the printed cursor: nothing new upstream, so no new records except
    // (at most) the newest one, which the window includes.
    let cursor = doc["cursor"].as_str().unwrap().to_string();
    let out = portcullis(
        &[
            "plugin",
            "call",
            REST_GENERIC,
            "poll",
            "--config",
            &config,
            "--credentials",
            &creds,
            "--cursor",
            &cursor,
            "--allow-private-network",
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    assert!(stdout_json(&out)["events"].as_array().unwrap().len() <= 1);
}

#[test]
fn call_without_private_networks_is_refused_with_a_reason() {
    let tmp = portcullis_e2e::temp_dir();
    let api = portcullis_e2e::paged_api(PagedApiConfig::default());
    let config = write(
        tmp.path(),
        "config.json",
        &json!({
            "base_url": api.base_url(), "path": "/alerts", "id": "/id"
        }),
    );
    let out = portcullis(
        &["plugin", "call", REST_GENERIC, "poll", "--config", &config],
        tmp.path(),
    );
    assert!(!out.status.success());
    let line = stderr_last_line(&out);
    assert!(line.contains("loopback"), "{line}");
    assert!(api.log().is_empty());
}

#[test]
fn call_validate_and_test_print_reports() {
    let tmp = portcullis_e2e::temp_dir();
    let api = portcullis_e2e::paged_api(PagedApiConfig {
        auth: Auth::Bearer("cli-token-0000111".into()),
        ..PagedApiConfig::default()
    });
    let base = api.base_url();
    let bad = write(tmp.path(), "bad.json", &json!({"path": 1}));
    let out = portcullis(
        &["plugin", "call", REST_GENERIC, "validate", "--config", &bad],
        tmp.path(),
    );
    assert!(!out.status.success());
    let doc = stdout_json(&out);
    assert_eq!(doc["ok"], false);
    assert!(
        doc["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "/path")
    );
    assert!(stderr_last_line(&out).contains("configuration invalid"));

    let good = write(
        tmp.path(),
        "good.json",
        &json!({
            "base_url": base, "path": "/alerts", "id": "/id", "credential": "api",
            "pagination": {"type": "link-header"}
        }),
    );
    let out = portcullis(
        &[
            "plugin",
            "call",
            REST_GENERIC,
            "validate",
            "--config",
            &good,
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    assert_eq!(stdout_json(&out), json!({"ok": true, "errors": []}));

    let creds = write(
        tmp.path(),
        "creds.json",
        &json!({"api": {"kind": "bearer", "token": "cli-token-0000111", "hosts": [base]}}),
    );
    let out = portcullis(
        &[
            "plugin",
            "call",
            REST_GENERIC,
            "test",
            "--config",
            &good,
            "--credentials",
            &creds,
            "--allow-private-network",
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout_json(&out);
    assert_eq!(report["ok"], true);
    assert!(report["latency_ms"].is_u64());
    assert!(
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "auth" && s["ok"] == true)
    );
    assert!(report["sample"].as_array().unwrap().len() <= 3);
}

#[test]
fn call_normalize_reports_bad_lines_and_keeps_good_ones() {
    let tmp = portcullis_e2e::temp_dir();
    let input = tmp.path().join("input.ndjson");
    std::fs::write(
        &input,
        "{\"id\": \"a1\", \"created_at\": \"2024-03-01T10:00:00Z\"}\nnot json at all\n\n{\"id\": \"a2\"}\n",
    )
    .unwrap();
    let config = write(
        tmp.path(),
        "config.json",
        &json!({
            "base_url": "https://api.example.com", "path": "/x", "id": "/id", "time": "/created_at"
        }),
    );
    let out = portcullis(
        &[
            "plugin",
            "call",
            REST_GENERIC,
            "normalize",
            "--config",
            &config,
            "--input",
            &input.display().to_string(),
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    let doc = stdout_json(&out);
    let ids: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["a1", "a2"]);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["line"], 2);
    assert!(stderr_last_line(&out).contains("1 of 3 input line(s) failed"));
}

#[test]
fn call_reports_traps_and_bad_arguments() {
    let tmp = portcullis_e2e::temp_dir();
    let out = portcullis(&["plugin", "call", TRAP, "poll"], tmp.path());
    assert!(!out.status.success());
    assert!(stderr_last_line(&out).contains("plugin trapped"));

    let out = portcullis(
        &[
            "plugin",
            "call",
            NOOP,
            "poll",
            "--grant",
            "https://x.example.com",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        stderr_last_line(&out).contains("not among the hosts plugin noop requests"),
        "{}",
        stderr_last_line(&out)
    );

    let creds = write(
        tmp.path(),
        "c.json",
        &json!({"nope": {"kind": "bearer", "token": "t0k3n-secret", "hosts": ["https://x.com"]}}),
    );
    let out = portcullis(
        &[
            "plugin",
            "call",
            REST_GENERIC,
            "poll",
            "--credentials",
            &creds,
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    let line = stderr_last_line(&out);
    assert!(
        line.contains("\"nope\"") && !line.contains("t0k3n-secret"),
        "{line}"
    );

    let bad_json = tmp.path().join("bad.json");
    std::fs::write(&bad_json, "{ not json").unwrap();
    let out = portcullis(
        &[
            "plugin",
            "call",
            NOOP,
            "poll",
            "--config",
            &bad_json.display().to_string(),
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(stderr_last_line(&out).contains("not valid JSON"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(base: &str, child: &mut std::process::Child) {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server exited early: {status}");
        }
        let ok = std::net::TcpStream::connect(base.trim_start_matches("http://"))
            .ok()
            .map(|mut s| {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
            })
            .unwrap_or(false);
        if ok {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("server did not become ready");
}

#[test]
fn serve_then_install_a_plugin_from_the_cli_and_shut_down_gracefully() {
    let tmp = portcullis_e2e::temp_dir();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = "cli-admin-token-0123456789";
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .arg("--plugin-dir")
            .arg(tmp.path().join("none"))
            .env("PORTCULLIS_ADMIN_TOKEN", token)
            .env("PORTCULLIS_CACHE_DIR", tmp.path().join("cache"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut server = spawn();
    wait_ready(&base, &mut server);

    let out = portcullis(
        &[
            "plugin", "install", NOOP, "--server", &base, "--token", token,
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = stdout_json(&out);
    assert_eq!(doc["id"], "noop");
    assert_eq!(doc["version"], "0.1.0");

    let out = portcullis(
        &[
            "plugin",
            "install",
            NOOP,
            "--server",
            &base,
            "--token",
            "wrong-token",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        stderr_last_line(&out).contains("401"),
        "{}",
        stderr_last_line(&out)
    );
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"junk").unwrap();
    let out = portcullis(
        &[
            "plugin",
            "install",
            &junk.display().to_string(),
            "--server",
            &base,
            "--token",
            token,
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        stderr_last_line(&out).contains("not a WebAssembly component"),
        "{}",
        stderr_last_line(&out)
    );

    // SIGTERM: graceful shutdown, exit 0.
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.wait().unwrap();
    assert!(status.success(), "server exit: {status}");

    // Restarted on the same data dir, the plugin is still installed.
    let mut server = spawn();
    wait_ready(&base, &mut server);
    let out = portcullis(
        &[
            "plugin", "install", NOOP, "--server", &base, "--token", token,
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    assert_eq!(
        stdout_json(&out)["installed_at"],
        doc["installed_at"],
        "the record from before the restart is returned, not a new install"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}
