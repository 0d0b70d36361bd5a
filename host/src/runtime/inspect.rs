//! Reading what a component is before running it: wasm layer, WIT API version of the
//! connector world it exports, and its imports checked against what the host provides.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::SUPPORTED_API_VERSIONS;

/// The package whose `plugin` interface a connector exports.
pub const CONNECTOR_PACKAGE: &str = "portcullis:connector";

/// Interfaces of `portcullis:connector` the host provides to guests.
const HOST_INTERFACES: &[&str] = &["types", "http", "log", "clock", "state"];

/// WASI 0.2 interfaces the host links (with an empty, deny-everything context).
const WASI_P2_INTERFACES: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Which kind of wasm binary some bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmLayer {
    /// A component (what Portcullis runs).
    Component,
    /// A core module.
    CoreModule,
}

/// Detect the wasm layer from the header, or `None` when the bytes are not wasm.
pub fn wasm_layer(bytes: &[u8]) -> Option<WasmLayer> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return None;
    }
    match (bytes[6], bytes[7]) {
        (0x01, 0x00) => Some(WasmLayer::Component),
        (0x00, 0x00) => Some(WasmLayer::CoreModule),
        _ => None,
    }
}

/// Split `ns:pkg/iface@version` into (`ns:pkg`, `iface`, `version`).
pub fn split_interface_name(name: &str) -> Option<(&str, &str, Option<&str>)> {
    let (pkg, rest) = name.split_once('/')?;
    let (iface, version) = match rest.split_once('@') {
        Some((i, v)) => (i, Some(v)),
        None => (rest, None),
    };
    Some((pkg, iface, version))
}

/// The API version of the connector world a component exports.
pub fn api_version(component: &Component, engine: &Engine) -> Result<String, ApiVersionError> {
    let ty = component.component_type();
    let mut exports = Vec::new();
    for (name, _) in ty.exports(engine) {
        exports.push(name.to_string());
        if let Some((pkg, "plugin", Some(v))) = split_interface_name(name)
            && pkg == CONNECTOR_PACKAGE
        {
            if SUPPORTED_API_VERSIONS.contains(&v) {
                return Ok(v.to_string());
            }
            return Err(ApiVersionError::Unsupported {
                found: v.to_string(),
            });
        }
    }
    Err(ApiVersionError::NotAConnector { exports })
}

/// The exported connector interface is missing or of an unsupported version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiVersionError {
    /// No `portcullis:connector/plugin@…` export.
    #[error(
        "component does not export `{CONNECTOR_PACKAGE}/plugin` (exports: {}); build it against the Portcullis WIT with the portcullis-sdk",
        if exports.is_empty() { "none".to_string() } else { exports.join(", ") }
    )]
    NotAConnector {
        /// What it exports instead.
        exports: Vec<String>,
    },
    /// Built against a WIT version this host does not support.
    #[error(
        "plugin was built against {CONNECTOR_PACKAGE}@{found}, but this host supports {CONNECTOR_PACKAGE}@{}",
        SUPPORTED_API_VERSIONS.join(", @")
    )]
    Unsupported {
        /// The version the plugin uses.
        found: String,
    },
}

/// Every import name of a component.
pub fn imports(component: &Component, engine: &Engine) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Imports the host does not provide, for a component built against `api_version`.
pub fn unsupported_imports(imports: &[String], api_version: &str) -> Vec<String> {
    imports
        .iter()
        .filter(|name| !import_provided(name, api_version))
        .cloned()
        .collect()
}

fn import_provided(name: &str, api_version: &str) -> bool {
    let Some((pkg, iface, version)) = split_interface_name(name) else {
        return false;
    };
    if pkg == CONNECTOR_PACKAGE {
        return version == Some(api_version) && HOST_INTERFACES.contains(&iface);
    }
    let unversioned = format!("{pkg}/{iface}");
    WASI_P2_INTERFACES.contains(&unversioned.as_str())
        && version.is_some_and(|v| v.starts_with("0.2."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_layers() {
        assert_eq!(
            wasm_layer(b"\0asm\x0d\0\x01\0rest"),
            Some(WasmLayer::Component)
        );
        assert_eq!(wasm_layer(b"\0asm\x01\0\0\0"), Some(WasmLayer::CoreModule));
        assert_eq!(wasm_layer(b"PK\x03\x04...."), None);
        assert_eq!(wasm_layer(b"\0as"), None);
    }

    #[test]
    fn import_policy() {
        let imports = vec![
            "portcullis:connector/http@0.1.0".to_string(),
            "portcullis:connector/types@0.1.0".to_string(),
            "wasi:cli/environment@0.2.3".to_string(),
            "wasi:http/outgoing-handler@0.2.0".to_string(),
            "portcullis:connector/http@0.2.0".to_string(),
            "evil:net/raw".to_string(),
        ];
        assert_eq!(
            unsupported_imports(&imports, "0.1.0"),
            vec![
                "wasi:http/outgoing-handler@0.2.0".to_string(),
                "portcullis:connector/http@0.2.0".to_string(),
                "evil:net/raw".to_string()
            ]
        );
    }
}
