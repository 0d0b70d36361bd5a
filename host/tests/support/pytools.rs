//! Python tools from PyPI for the tests that check the API with clients no one here wrote
//! (`graphql-core`, `openapi-spec-validator`, `prometheus-client`). Installed into a venv
//! under `target/pytools` on first use, once: a lock file serialises test threads and test
//! processes. Nothing is skipped: if the venv or pip fails, the test fails with its output.
#![allow(dead_code)] // shared by several test crates, each using a part

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the venv holds; changing this reinstalls it.
const REQUIREMENTS: &[&str] = &[
    "graphql-core>=3.2,<3.3",
    "openapi-spec-validator>=0.7,<0.8",
    "prometheus-client>=0.20,<1",
];

/// The `target` directory this test binary was built into (`target/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("cannot find the target directory above {}", exe.display()))
}

/// The repository root (`host/..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// A script under `tests/tools/`.
pub fn tool(name: &str) -> PathBuf {
    let p = repo_root().join("tests/tools").join(name);
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv's `python`, with the requirements installed.
pub fn python() -> PathBuf {
    let dir = target_dir().join("pytools");
    std::fs::create_dir_all(target_dir()).expect("create target dir");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target_dir().join("pytools.lock"))
        .expect("open pytools.lock");
    lock.lock().expect("lock pytools.lock");
    let python = dir.join("bin/python");
    let marker = dir.join(".installed");
    let want = REQUIREMENTS.join("\n");
    let ready = python.is_file() && std::fs::read_to_string(&marker).is_ok_and(|have| have == want);
    if !ready {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove the old venv");
        }
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&dir),
            "python3 -m venv target/pytools",
        );
        run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                ])
                .args(REQUIREMENTS),
            "pip install",
        );
        std::fs::write(&marker, &want).expect("write the venv marker");
    }
    drop(lock);
    python
}

/// Run a tool script with the venv's python; panics with its output unless it succeeds.
/// Returns its stdout.
pub fn run_tool(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let py = python();
    let out = Command::new(&py)
        .arg(tool(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
