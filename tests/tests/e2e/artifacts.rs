//! Smoke test of the build: every plugin and test guest was built and is a
//! valid WebAssembly component exporting the Portcullis plugin interface.

use portcullis_e2e::artifacts::{self, ALL_GUESTS, ALL_PLUGINS, BUILD_ERRORS};
use portcullis_e2e::read_artifact;
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// `\0asm`, then version 0x0d and layer 0x01 (a component, not a core module).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const PLUGIN_EXPORT: &str = "portcullis:connector/plugin@0.1.0";

#[test]
fn wasm_builds_succeeded() {
    for (workspace, output) in BUILD_ERRORS {
        eprintln!("--- {workspace} ---\n{output}");
    }
    assert!(
        BUILD_ERRORS.is_empty(),
        "wasm builds failed: {:?}",
        BUILD_ERRORS.iter().map(|(w, _)| w).collect::<Vec<_>>()
    );
}

#[test]
fn every_expected_component_is_listed() {
    let guests: Vec<&str> = ALL_GUESTS.iter().map(|(name, _)| *name).collect();
    for expected in [
        "egress-probe",
        "fs-probe",
        "log-flood",
        "loop-forever",
        "memory-bomb",
        "noop",
        "trap",
    ] {
        assert!(
            guests.contains(&expected),
            "guest {expected} missing: {guests:?}"
        );
    }
    let plugins: Vec<&str> = ALL_PLUGINS.iter().map(|(name, _)| *name).collect();
    assert!(plugins.contains(&"rest-generic"), "plugins: {plugins:?}");
    assert!(
        ALL_PLUGINS
            .iter()
            .any(|(name, path)| *name == "rest-generic" && *path == artifacts::REST_GENERIC)
    );
    assert!(artifacts::NOOP.ends_with("/wasm32-wasip2/release/noop.wasm"));
    assert!(artifacts::LOOP_FOREVER.ends_with("/loop_forever.wasm"));
}

/// Top-level imports and exports of a component.
fn interface(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("parse") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    imports.push(import.expect("import").name.name.to_string());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.push(export.expect("export").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

#[test]
fn every_artifact_is_a_valid_component_exporting_the_plugin_interface() {
    for (name, path) in artifacts::all() {
        let bytes = read_artifact(path);
        assert!(
            bytes.starts_with(&COMPONENT_HEADER),
            "{name} ({path}) is not a component: header {:02x?}",
            &bytes[..bytes.len().min(8)]
        );
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(&bytes)
            .unwrap_or_else(|e| panic!("{name} does not validate: {e}"));
        let (imports, exports) = interface(&bytes);
        eprintln!("{name}: imports {imports:?}");
        assert!(
            exports.iter().any(|e| e == PLUGIN_EXPORT),
            "{name} does not export {PLUGIN_EXPORT}: {exports:?}"
        );
        for import in &imports {
            assert!(
                import.starts_with("portcullis:connector/") || import.starts_with("wasi:"),
                "{name} imports {import}"
            );
        }
    }
}

#[test]
fn the_probes_really_reach_for_the_sandbox_walls() {
    // fs-probe must really import filesystem and socket interfaces (else it
    // would prove nothing), and egress-probe the host's http interface.
    let (fs_imports, _) = interface(&read_artifact(artifacts::FS_PROBE));
    for prefix in [
        "wasi:filesystem/",
        "wasi:sockets/tcp",
        "wasi:cli/environment",
    ] {
        assert!(
            fs_imports.iter().any(|i| i.starts_with(prefix)),
            "fs-probe does not import {prefix}*: {fs_imports:?}"
        );
    }
    let (egress_imports, _) = interface(&read_artifact(artifacts::EGRESS_PROBE));
    assert!(
        egress_imports
            .iter()
            .any(|i| i == "portcullis:connector/http@0.1.0"),
        "{egress_imports:?}"
    );
}
