//! # portcullis-sdk
//!
//! Everything a Portcullis connector plugin needs: the [`Connector`] trait and the
//! [`export_connector!`] macro that exports it as the WIT world
//! `portcullis:connector/connector@0.1.0`, safe wrappers over the host imports
//! ([`http`], [`log`], [`clock`], [`state`]) and helpers for the work every connector
//! does: RFC 8288 [`link`] headers for pagination, ISO 8601 [`time`] parsing, the
//! unified [`event`] shape with OCSF severities, typed [`Error`]s, RFC 6901
//! [`pointer`](mod@pointer) helpers, shared [`config`] checks, per-call [`warnings`]
//! with counts, and [`testing`] doubles to run plugin logic in native tests.
//!
//! Build plugins for `wasm32-wasip2` as a `cdylib`. On any other target the host
//! imports are unreachable (calling them panics), so code that calls them belongs in
//! `no_run` examples or behind [`http::Transport`] / [`clock::Clock`] in tests.
//!
//! ```no_run
//! use portcullis_sdk::prelude::*;
//! use portcullis_sdk::http::Request;
//!
//! struct Feed;
//!
//! impl Connector for Feed {
//!     fn describe() -> Manifest {
//!         Manifest::new("feed", "Example feed", env!("CARGO_PKG_VERSION"), Category::ThreatIntel)
//!             .host("https://feed.example.com")
//!             .credential_slot(CredentialSlot::new("api", "API key", [CredentialKind::ApiKey]).required())
//!     }
//!     fn validate_config(_config: &Value) -> Result<()> {
//!         Ok(())
//!     }
//!     fn test_connection(_config: &Value) -> Result<TestReport> {
//!         let started = portcullis_sdk::clock::monotonic_ms();
//!         Request::get("https://feed.example.com/ping").credential("api").send()?.error_for_status()?;
//!         let took = portcullis_sdk::clock::monotonic_ms() - started;
//!         Ok(TestReport { stages: vec![TestStage::passed("auth", "ok", Some(took))], sample: vec![] })
//!     }
//!     fn poll(_config: &Value, _cursor: Option<String>) -> Result<Batch> {
//!         let items: Vec<Value> = Request::get("https://feed.example.com/iocs")
//!             .credential("api")
//!             .send()?
//!             .error_for_status()?
//!             .json()?;
//!         let events = items
//!             .iter()
//!             .filter_map(|i| Some(EventBuilder::new(i["id"].as_str()?).kind(EventKind::Indicator).build()))
//!             .collect();
//!         Ok(Batch { events, cursor: None, more: false })
//!     }
//! }
//!
//! portcullis_sdk::export_connector!(Feed);
//! ```
#![deny(missing_docs)]

// Lets the generated `export!` macro refer to `::portcullis_sdk` from this crate's
// own tests as well.
extern crate self as portcullis_sdk;

pub mod clock;
pub mod config;
pub mod connector;
pub mod error;
pub mod event;
pub mod http;
pub mod link;
pub mod log;
pub mod manifest;
pub mod pointer;
pub mod state;
pub mod testing;
pub mod time;
pub mod warnings;

pub use connector::{Batch, Connector, TestReport, TestStage};
pub use error::{ConfigErrors, Error, FieldError, Result};
pub use event::{Event, EventBuilder, EventKind, Observable, ObservableKind, Severity};
pub use manifest::{Category, CredentialKind, CredentialSlot, Manifest};
pub use time::Timestamp;

/// A short description of a JSON value's type for error messages (`"a string"`,
/// `"an array"`, `"null"`, ...).
///
/// ```
/// assert_eq!(portcullis_sdk::json_type_name(&serde_json::json!([1])), "an array");
/// ```
pub fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Re-exports of the dependencies that appear in the SDK's API.
pub use serde_json;
pub use url;

/// The names most plugins need: `use portcullis_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::connector::{Batch, Connector, TestReport, TestStage};
    pub use crate::error::{ConfigErrors, Error, FieldError, Result};
    pub use crate::event::{Event, EventBuilder, EventKind, Observable, ObservableKind, Severity};
    pub use crate::manifest::{Category, CredentialKind, CredentialSlot, Manifest};
    pub use crate::time::Timestamp;
    pub use serde_json::{Value, json};
}

/// Generated WIT bindings. Not part of the API: plugins go through [`Connector`],
/// [`export_connector!`] and the wrapper modules.
///
/// `unsafe` is allowed here only: the canonical-ABI glue `wit_bindgen::generate!`
/// emits (lifting/lowering through raw pointers, `export_name` functions) is
/// necessarily `unsafe`. Everything else in the crate is checked by `deny(unsafe_code)`.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "::portcullis_sdk::__bindings",
    });
}

/// Exports a [`Connector`] implementation as the plugin's WIT `plugin` interface.
/// Invoke it once, at the root of the plugin crate.
///
/// ```no_run
/// # use portcullis_sdk::prelude::*;
/// struct Mine;
/// # impl Connector for Mine {
/// #     fn describe() -> Manifest { Manifest::new("mine", "Mine", "0.1.0", Category::CustomApi) }
/// #     fn validate_config(_: &Value) -> Result<()> { Ok(()) }
/// #     fn test_connection(_: &Value) -> Result<TestReport> { Ok(TestReport::default()) }
/// #     fn poll(_: &Value, _: Option<String>) -> Result<Batch> { Ok(Batch::default()) }
/// # }
/// portcullis_sdk::export_connector!(Mine);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        #[doc(hidden)]
        type __PortcullisConnectorExport = $crate::connector::Export<$connector>;
        $crate::__bindings::__export_connector_world!(
            __PortcullisConnectorExport with_types_in $crate::__bindings
        );
    };
}
