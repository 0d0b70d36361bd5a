//! Generated bindings for every supported version of the `portcullis:connector` WIT
//! package. Each released version is frozen in `wit/v<version>/` and gets its own module
//! here; [`latest`] aliases the newest one. Nothing but `bindgen!` lives in this module.

/// Bindings for `portcullis:connector@0.1.0`.
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "connector",
        imports: {
            "portcullis:connector/http.send": async | trappable,
            default: trappable,
        },
        exports: {
            default: async,
        },
    });
}

pub use v0_1_0 as latest;

/// WIT package versions this host can load, newest first.
pub const SUPPORTED_API_VERSIONS: &[&str] = &["0.1.0"];
