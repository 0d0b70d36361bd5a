//! Builds the two wasm32-wasip2 workspaces the end-to-end tests load — the
//! shipped plugins (`plugins/`) and the test guests (`tests/guests/`) — in
//! release into `<workspace root>/target/wasm`, and writes
//! `$OUT_DIR/artifacts.rs` with one `pub const <NAME>: &str = "<path>.wasm";`
//! per component (e.g. `REST_GENERIC`, `NOOP`, `LOOP_FOREVER`), plus
//! `ALL_PLUGINS`, `ALL_GUESTS` and `BUILD_ERRORS`.
//!
//! A workspace that fails to build does not fail this build script (that would
//! break every `cargo check` of the root workspace while a plugin is being
//! edited): its constants point into a `build-failed/` directory that does not
//! exist and its cargo output goes into `BUILD_ERRORS`, which the smoke test
//! asserts is empty.

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Environment variables the outer cargo sets for this build script (or that a
/// user set for the host build) which must not leak into the nested wasm
/// builds. Everything `CARGO_*` goes except what configures cargo itself
/// (home, registries, network, terminal) and the jobserver, which the nested
/// cargo shares so the machine is not oversubscribed.
fn keep_cargo_var(name: &str) -> bool {
    name == "CARGO_HOME"
        || name == "CARGO_MAKEFLAGS"
        || name.starts_with("CARGO_NET_")
        || name.starts_with("CARGO_HTTP_")
        || name.starts_with("CARGO_REGISTRIES_")
        || name.starts_with("CARGO_REGISTRY_")
        || name.starts_with("CARGO_TERM_")
}

fn cargo_command(cargo: &Path) -> Command {
    let mut command = Command::new(cargo);
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let leaks = (name.starts_with("CARGO_") && !keep_cargo_var(name))
            || matches!(
                name,
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "CLIPPY_ARGS"
                    | "CLIPPY_CONF_DIR"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
                    | "RUSTC_LINKER"
            );
        if leaks {
            command.env_remove(name);
        }
    }
    command
}

/// Installs the wasm32-wasip2 standard library with rustup when the toolchain
/// lacks it.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let installed = libdir
        .as_deref()
        .and_then(|dir| fs::read_dir(dir).ok())
        .is_some_and(|mut entries| entries.next().is_some());
    if installed {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    match status {
        Ok(status) if status.success() => {}
        other => panic!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed ({other:?}); \
             install it by hand"
        ),
    }
}

struct Component {
    /// Package name (= plugin or guest id).
    package: String,
    /// Constant name: the package name in SHOUTY_SNAKE_CASE.
    constant: String,
    path: PathBuf,
}

struct Workspace {
    label: &'static str,
    components: Vec<Component>,
    error: Option<String>,
}

/// `(package name, package dir, lib target name)` of each cdylib in the
/// workspace, from `cargo metadata`.
fn cdylibs(cargo: &Path, manifest: &Path) -> Result<Vec<(String, PathBuf, String)>, String> {
    let output = cargo_command(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata output: {e}"))?;
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let (Some(name), Some(manifest_path)) =
            (package["name"].as_str(), package["manifest_path"].as_str())
        else {
            continue;
        };
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_cdylib = target["crate_types"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "cdylib"));
            if let (true, Some(target_name)) = (is_cdylib, target["name"].as_str()) {
                let dir = Path::new(manifest_path)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                found.push((name.to_string(), dir, target_name.replace('-', "_")));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Tells cargo to rerun this script when any file the artifact was built
/// from changes (cargo's dep-info next to the artifact).
fn watch_dep_info(artifact: &Path, watched: &mut BTreeSet<String>) {
    let Ok(contents) = fs::read_to_string(artifact.with_extension("d")) else {
        return;
    };
    for line in contents.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        let mut parts = deps.split_whitespace();
        while let Some(part) = parts.next() {
            let mut file = part.to_string();
            while file.ends_with('\\') {
                file.pop();
                file.push(' ');
                file.push_str(parts.next().unwrap_or_default());
            }
            watched.insert(file);
        }
    }
}

fn build_workspace(
    label: &'static str,
    cargo: &Path,
    manifest: &Path,
    wasm_target_dir: &Path,
    watched: &mut BTreeSet<String>,
) -> Workspace {
    if let Some(dir) = manifest.parent() {
        watched.insert(manifest.display().to_string());
        watched.insert(dir.join("Cargo.lock").display().to_string());
    }
    let packages = match cdylibs(cargo, manifest) {
        Ok(packages) => packages,
        Err(error) => {
            return Workspace {
                label,
                components: Vec::new(),
                error: Some(format!("cargo metadata failed:\n{error}")),
            };
        }
    };
    for (_, dir, _) in &packages {
        watched.insert(dir.join("Cargo.toml").display().to_string());
        watched.insert(dir.join("src").display().to_string());
    }
    eprintln!("building {label} ({}) for {TARGET}", manifest.display());
    let output = cargo_command(cargo)
        // `--keep-going`: one broken plugin must not hide the others' artifacts.
        .args([
            "build",
            "--keep-going",
            "--release",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--target-dir")
        .arg(wasm_target_dir)
        .output();
    let error = match output {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(String::from_utf8_lossy(&output.stderr).into_owned()),
        Err(e) => Some(format!("running cargo build: {e}")),
    };
    let out_dir = wasm_target_dir.join(TARGET).join("release");
    let failed_dir = wasm_target_dir.join("build-failed");
    let components = packages
        .into_iter()
        .map(|(package, _, lib)| {
            let file = format!("{lib}.wasm");
            let built = out_dir.join(&file);
            let path = if error.is_none() || built.is_file() {
                watch_dep_info(&built, watched);
                built
            } else {
                failed_dir.join(&file)
            };
            Component {
                constant: package.to_uppercase().replace('-', "_"),
                package,
                path,
            }
        })
        .collect();
    if let Some(error) = &error {
        println!("cargo:warning=building {label} for {TARGET} failed; see BUILD_ERRORS");
        for line in error.lines().filter(|l| l.starts_with("error")).take(5) {
            println!("cargo:warning=  {line}");
        }
    }
    Workspace {
        label,
        components,
        error,
    }
}

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("{} has no parent", manifest_dir.display()));
    let out_dir =
        PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| panic!("OUT_DIR is not set")));
    let cargo = PathBuf::from(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    let wasm_target_dir = root.join("target").join("wasm");

    ensure_target();

    let mut watched = BTreeSet::new();
    for dir in ["wit", "sdk/src", "sdk/Cargo.toml"] {
        watched.insert(root.join(dir).display().to_string());
    }
    let mut workspaces = Vec::new();
    let plugins_manifest = root.join("plugins").join("Cargo.toml");
    if plugins_manifest.exists() {
        workspaces.push(build_workspace(
            "plugins",
            &cargo,
            &plugins_manifest,
            &wasm_target_dir,
            &mut watched,
        ));
    } else {
        // Rerun once the plugins workspace appears.
        watched.insert(root.join("plugins").display().to_string());
        println!(
            "cargo:warning=plugins/Cargo.toml does not exist yet: building the test guests only"
        );
    }
    workspaces.push(build_workspace(
        "guests",
        &cargo,
        &root.join("tests").join("guests").join("Cargo.toml"),
        &wasm_target_dir,
        &mut watched,
    ));

    let mut code = String::from(
        "// @generated by tests/build.rs: wasm32-wasip2 components built for the e2e tests.\n\n",
    );
    for workspace in &workspaces {
        for component in &workspace.components {
            let _ = writeln!(
                code,
                "/// `{}` from the {} workspace (wasm32-wasip2 component, release).\n\
                 pub const {}: &str = {:?};",
                component.package,
                workspace.label,
                component.constant,
                component.path.display().to_string(),
            );
        }
    }
    let list = |label: &str| {
        workspaces
            .iter()
            .filter(|w| w.label == label)
            .flat_map(|w| &w.components)
            .map(|c| format!("({:?}, {})", c.package, c.constant))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        code,
        "\n/// Every shipped plugin built from `plugins/`: `(plugin id, path)`.\n\
         pub const ALL_PLUGINS: &[(&str, &str)] = &[{}];",
        list("plugins")
    );
    let _ = writeln!(
        code,
        "\n/// Every test guest built from `tests/guests/`: `(guest name, path)`.\n\
         pub const ALL_GUESTS: &[(&str, &str)] = &[{}];",
        list("guests")
    );
    let errors = workspaces
        .iter()
        .filter_map(|w| {
            w.error
                .as_ref()
                .map(|e| format!("({:?}, {:?})", w.label, e))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        code,
        "\n/// Workspaces whose wasm build failed: `(workspace, cargo's output)`.\n\
         pub const BUILD_ERRORS: &[(&str, &str)] = &[{errors}];"
    );
    let artifacts = out_dir.join("artifacts.rs");
    fs::write(&artifacts, code).unwrap_or_else(|e| panic!("writing {}: {e}", artifacts.display()));

    println!("cargo:rerun-if-changed=build.rs");
    for path in watched {
        println!("cargo:rerun-if-changed={path}");
    }
}
