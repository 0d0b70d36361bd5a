//! The master key: created on first start (0600), a wrong, missing or loosely permitted
//! key refuses the start with a clear message and changes no byte of the data directory,
//! and rotation (admin API online, CLI offline) re-wraps the data keys so the new key
//! opens everything and the old one no longer does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis::server::{ServerConfig, start};
use portcullis::vault::envelope::Key;
use portcullis::vault::master_key::write_key_file;

use super::*;
use crate::app::{self, ADMIN};

const SECRET: &str = "master-key-test-secret-c3a9";

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Run `f` against a server started on `cfg` in a runtime of its own, dropped afterwards
/// (so the store is closed when this returns).
fn with_server<T: Send + 'static>(
    cfg: ServerConfig,
    f: impl AsyncFnOnce(AppState) -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async move {
            let state = start(&cfg, Some(ADMIN)).await.unwrap().state;
            let out = f(state.clone()).await;
            state.service().store().flush().unwrap();
            out
        });
        rt.shutdown_timeout(std::time::Duration::from_secs(5));
        out
    })
    .join()
    .unwrap()
}

/// The start error with `cfg` (the start must fail).
fn start_error(cfg: ServerConfig) -> String {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            match start(&cfg, Some(ADMIN)).await {
                Ok(_) => panic!("started with a bad master key"),
                Err(e) => e.to_string(),
            }
        })
    })
    .join()
    .unwrap()
}

fn with_key(cfg: &ServerConfig, file: &Path) -> ServerConfig {
    let mut c = cfg.clone();
    c.vault.master_key_file = Some(file.to_path_buf());
    c
}

async fn credential_resolves(state: &AppState) -> String {
    let c = state
        .service()
        .vault()
        .credential("acme", "k", None)
        .unwrap()
        .expect("credential k");
    let r = call_as(state, "GET", "/v1/orgs/acme/credentials/k", ADMIN).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(c.cache_key.contains("acme/k/v1"));
    r.body["fingerprint"].as_str().unwrap().to_string()
}

#[test]
fn wrong_master_key_refuses_to_start_and_changes_nothing_and_rotation_rewraps() {
    let tmp = portcullis_e2e::temp_dir();
    let cfg = app::config(tmp.path());
    let data = cfg.data_dir.clone();

    // First start: a key is created in the data dir, 0600.
    let fp = with_server(cfg.clone(), async |state: AppState| {
        create_org(&state, "acme").await;
        let r = put_credential(
            &state,
            ADMIN,
            "acme",
            "k",
            "",
            bearer(SECRET, &["https://api.example.com"]),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["fingerprint"].as_str().unwrap().to_string()
    });
    let key_file = data.join("master.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let original_key = tmp.path().join("original.key");
    std::fs::copy(&key_file, &original_key).unwrap();
    let before = snapshot(&data);

    // Wrong key: refused, clear message, nothing changed.
    let wrong = tmp.path().join("wrong.key");
    write_key_file(&wrong, &Key::generate().unwrap()).unwrap();
    let err = start_error(with_key(&cfg, &wrong));
    assert!(
        err.contains("wrong master key") && err.contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(
        snapshot(&data),
        before,
        "a refused start changed the data directory"
    );
    // A key file others may read: refused.
    let loose = tmp.path().join("loose.key");
    std::fs::copy(&key_file, &loose).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let err = start_error(with_key(&cfg, &loose));
    assert!(err.contains("chmod 600"), "{err}");
    // A missing key (not the first start): refused, not re-created.
    let missing = tmp.path().join("missing.key");
    let err = start_error(with_key(&cfg, &missing));
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists());
    assert_eq!(snapshot(&data), before);

    // The right key opens it; the admin API rotates online; secrets still resolve.
    let (fp2, rotated) = with_server(cfg.clone(), async |state: AppState| {
        let fp = credential_resolves(&state).await;
        let r = call_as(&state, "POST", "/v1/vault/rotate-master-key", ADMIN).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_ne!(r.body["master_key_id"], r.body["previous_master_key_id"]);
        assert_eq!(r.body["rewrapped_data_keys"], 1);
        assert_eq!(credential_resolves(&state).await, fp);
        (fp, r.body.clone())
    });
    assert_eq!(fp2, fp);
    assert!(
        !snapshot(&data)
            .values()
            .any(|b| b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()))
    );
    // The old key no longer opens the data dir; the rotated key file does.
    let err = start_error(with_key(&cfg, &original_key));
    assert!(err.contains("wrong master key"), "{err}");
    assert!(
        err.contains(rotated["master_key_id"].as_str().unwrap()),
        "{err}"
    );
    with_server(cfg.clone(), async |state: AppState| {
        credential_resolves(&state).await;
    });

    // Offline CLI rotation to a new key file.
    let cli_key = tmp.path().join("cli.key");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["vault", "rotate-master-key", "--data-dir"])
        .arg(&data)
        .arg("--new-key-file")
        .arg(&cli_key)
        .env_remove("PORTCULLIS_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rewrapped_data_keys"], 1);
    assert!(cli_key.exists());
    let err = start_error(cfg.clone());
    assert!(err.contains("wrong master key"), "{err}");
    with_server(with_key(&cfg, &cli_key), async move |state: AppState| {
        assert_eq!(credential_resolves(&state).await, fp);
    });
}
