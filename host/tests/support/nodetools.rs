//! Node tools from the npm registry for tests that need a real server no one here wrote
//! (`oidc-provider`, an OAuth 2.0 / OpenID Connect authorization server). Installed with
//! `npm install` into `target/node-tools` on first use, once: a lock file serialises test
//! threads and processes. Nothing is skipped: if npm fails, the test fails with its output.
#![allow(dead_code)] // shared by several test crates, each using a part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What `target/node-tools` holds; changing this reinstalls it.
const PACKAGES: &[&str] = &["oidc-provider@9.13.3"];

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("cannot find the target directory above {}", exe.display()))
}

/// `target/node-tools` with [`PACKAGES`] installed.
pub fn node_tools() -> PathBuf {
    let dir = target_dir().join("node-tools");
    std::fs::create_dir_all(&dir).expect("create target/node-tools");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target_dir().join("node-tools.lock"))
        .expect("open node-tools.lock");
    lock.lock().expect("lock node-tools.lock");
    let marker = dir.join(".installed");
    let want = PACKAGES.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == want) {
        return dir;
    }
    std::fs::write(
        dir.join("package.json"),
        r#"{"name": "portcullis-node-tools", "private": true}"#,
    )
    .expect("write package.json");
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-save"])
        .args(PACKAGES)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm: {e}"));
    assert!(
        out.status.success(),
        "npm install {PACKAGES:?} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&marker, want).expect("write marker");
    dir
}

/// A running Node script; killed on drop.
pub struct NodeServer {
    child: Child,
    /// What the script printed after `READY ` (e.g. its base URL).
    pub ready: String,
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `tests/tools/<script>` with node from `target/node-tools` (so its imports resolve
/// there) and `env`, and wait for its `READY <text>` line.
pub fn run_node_server(script: &str, env: &[(&str, &str)]) -> NodeServer {
    let dir = node_tools();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .join("tests/tools")
        .join(script);
    // ESM resolves packages relative to the script: run a copy inside node-tools.
    let copy = dir.join(script);
    std::fs::copy(&src, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    let mut child = Command::new("node")
        .arg(&copy)
        .envs(env.iter().copied())
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix("READY ") {
                    break rest.trim().to_string();
                }
            }
            other => {
                let _ = child.kill();
                panic!("{script} ended before READY: {other:?}");
            }
        }
    };
    // Keep draining stdout so the script never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    NodeServer { child, ready }
}
