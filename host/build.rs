//! Records the wasmtime version for naming precompiled-artifact cache entries.
fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut version = "unknown".to_string();
    let mut in_wasmtime = false;
    for line in text.lines() {
        if line == "name = \"wasmtime\"" {
            in_wasmtime = true;
        } else if in_wasmtime && let Some(v) = line.strip_prefix("version = \"") {
            version = v.trim_end_matches('"').to_string();
            break;
        }
    }
    println!("cargo:rustc-env=PORTCULLIS_WASMTIME_VERSION={version}");
}
