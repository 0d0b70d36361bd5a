//! `cargo xtask`: developer tasks for Portcullis.
//!
//! - `build-plugins`: build every plugin of `plugins/` for `wasm32-wasip2` (release)
//!   into `target/wasm` and copy each to `target/plugins/<plugin-id>.wasm`;
//! - `test`: build-plugins, run the plugins' native unit tests, then
//!   `cargo test --workspace` with any extra arguments;
//! - `run`: build-plugins, then `cargo run --release -p portcullis -- <args>`
//!   (default `serve --demo`);
//! - `bench-list`: build-plugins, then the management API load benchmark
//!   (`cargo bench -p portcullis --bench list_load -- <args>`; see BENCHMARKS.md).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

const WASM_TARGET: &str = "wasm32-wasip2";

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Portcullis developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the plugins for wasm32-wasip2 and copy them to target/plugins/<id>.wasm.
    BuildPlugins,
    /// build-plugins, plugin unit tests, then `cargo test --workspace [ARGS...]`.
    Test {
        /// Skip the plugins' native unit tests.
        #[arg(long)]
        skip_plugin_tests: bool,
        /// Extra arguments for `cargo test --workspace` (e.g. `-- --nocapture`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// build-plugins, then `cargo run --release -p portcullis -- [ARGS...]` (default `serve --demo`).
    Run {
        /// Arguments for the `portcullis` binary.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// build-plugins, then the connector-list load benchmark (real server, 100 orgs x 100
    /// connectors, oha at a fixed rate): `cargo bench -p portcullis --bench list_load -- [ARGS...]`.
    BenchList {
        /// Arguments for the benchmark (`--help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = repo_root()?;
    match cli.command {
        Task::BuildPlugins => {
            build_plugins(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Test {
            skip_plugin_tests,
            args,
        } => {
            build_plugins(&root)?;
            if !skip_plugin_tests {
                let host = host_triple()?;
                eprintln!("xtask: plugin unit tests (native target {host})");
                let mut cmd = cargo(&root);
                clear_outer_cargo_env(&mut cmd);
                cmd.args(["test", "--manifest-path"])
                    .arg(root.join("plugins/Cargo.toml"))
                    .args(["--target", &host, "--target-dir"])
                    .arg(root.join("target/wasm"));
                let code = status(cmd, "plugin unit tests")?;
                if code != ExitCode::SUCCESS {
                    return Ok(code);
                }
            }
            let mut cmd = cargo(&root);
            cmd.args(["test", "--workspace", "--no-fail-fast"])
                .args(args);
            // A full test run gains nothing from incremental artifacts (gigabytes under
            // target/debug/incremental) unless the caller asked for them.
            if std::env::var_os("CARGO_INCREMENTAL").is_none() {
                cmd.env("CARGO_INCREMENTAL", "0");
            }
            status(cmd, "cargo test --workspace")
        }
        Task::Run { args } => {
            build_plugins(&root)?;
            let mut cmd = cargo(&root);
            cmd.args(["run", "--release", "-p", "portcullis", "--"]);
            if args.is_empty() {
                // The server on the embedded sled store (./data), bundled plugins from
                // target/plugins installed on first start, and the seed story's demo
                // org against local simulators.
                cmd.args(["serve", "--demo"]);
            } else {
                cmd.args(args);
            }
            status(cmd, "cargo run -p portcullis")
        }
        Task::BenchList { args } => {
            build_plugins(&root)?;
            let mut cmd = cargo(&root);
            cmd.args(["bench", "-p", "portcullis", "--bench", "list_load", "--"])
                .args(args);
            status(cmd, "cargo bench --bench list_load")
        }
    }
}

/// The repository root: the parent of this crate's directory.
fn repo_root() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// A `cargo` command (the cargo that runs xtask, when known) in the repo root.
fn cargo(root: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root);
    cmd
}

/// Removes what the outer `cargo run` leaks into the environment and would steer the
/// nested build (as wasmtime's test-programs build does): flags for the host build,
/// a different target dir or default target, and profile overrides.
fn clear_outer_cargo_env(cmd: &mut Command) {
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_RUSTC_CURRENT_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_TARGET_WASM32_")
        {
            cmd.env_remove(key);
        }
    }
}

/// Runs `cmd`, returning its exit status as an exit code.
fn status(mut cmd: Command, what: &str) -> Result<ExitCode> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {what}"))?;
    if status.success() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("xtask: {what} failed ({status})");
    let code = status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .filter(|c| *c != 0)
        .unwrap_or(1);
    Ok(ExitCode::from(code))
}

fn output(mut cmd: Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{what} printed non-UTF-8 output"))
}

/// The host target triple, from `rustc -vV`.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.arg("-vV");
    let text = output(cmd, "rustc -vV")?;
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .context("`rustc -vV` did not name the host target")
}

/// Installs the wasm target with rustup when it is missing.
fn ensure_wasm_target() -> Result<()> {
    let mut list = Command::new("rustup");
    list.args(["target", "list", "--installed"]);
    let installed = match output(list, "rustup target list --installed") {
        Ok(text) => text,
        Err(e) => {
            // Without rustup (a distro toolchain), let cargo report a missing target.
            eprintln!(
                "xtask: warning: cannot ask rustup for installed targets ({e:#}); building anyway"
            );
            return Ok(());
        }
    };
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: installing the {WASM_TARGET} target with rustup");
    let mut add = Command::new("rustup");
    add.args(["target", "add", WASM_TARGET]);
    if status(add, "rustup target add")? != ExitCode::SUCCESS {
        bail!("could not install the {WASM_TARGET} target");
    }
    Ok(())
}

struct Plugin {
    /// Package name = plugin id.
    id: String,
    /// cdylib target name with `-` replaced by `_` (the artifact's file stem).
    artifact_stem: String,
}

/// The cdylib packages of the plugins workspace.
fn discover_plugins(root: &Path) -> Result<Vec<Plugin>> {
    let mut cmd = cargo(root);
    clear_outer_cargo_env(&mut cmd);
    cmd.args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
        "--manifest-path",
    ])
    .arg(root.join("plugins/Cargo.toml"));
    let text = output(cmd, "cargo metadata (plugins)")?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).context("cargo metadata printed invalid JSON")?;
    let mut plugins = Vec::new();
    for pkg in meta["packages"].as_array().into_iter().flatten() {
        let Some(id) = pkg["name"].as_str() else {
            continue;
        };
        for target in pkg["targets"].as_array().into_iter().flatten() {
            let is_cdylib = target["crate_types"]
                .as_array()
                .is_some_and(|t| t.iter().any(|c| c == "cdylib"));
            if let (true, Some(name)) = (is_cdylib, target["name"].as_str()) {
                plugins.push(Plugin {
                    id: id.to_string(),
                    artifact_stem: name.replace('-', "_"),
                });
            }
        }
    }
    plugins.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(plugins)
}

fn build_plugins(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    let target_dir = root.join("target/wasm");
    let mut cmd = cargo(root);
    clear_outer_cargo_env(&mut cmd);
    cmd.args([
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "--manifest-path",
    ])
    .arg(root.join("plugins/Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    eprintln!("xtask: building plugins for {WASM_TARGET}");
    if status(cmd, "cargo build (plugins)")? != ExitCode::SUCCESS {
        bail!("building the plugins failed");
    }
    let plugins = discover_plugins(root)?;
    if plugins.is_empty() {
        bail!("no cdylib package found in plugins/Cargo.toml");
    }
    let out_dir = root.join("target/plugins");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    for p in &plugins {
        let from = target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", p.artifact_stem));
        let to = out_dir.join(format!("{}.wasm", p.id));
        std::fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        let size = std::fs::metadata(&to)
            .with_context(|| format!("cannot stat {}", to.display()))?
            .len();
        println!(
            "built plugin {:<24} {:>9} bytes ({:.1} KiB)  {}",
            p.id,
            size,
            size as f64 / 1024.0,
            to.strip_prefix(root).unwrap_or(&to).display()
        );
    }
    Ok(())
}
