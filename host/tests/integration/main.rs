//! The `portcullis` host as a whole: the management API (REST, GraphQL, OpenAPI) through
//! the router and over real sockets, plugin upgrades, and the CLI binary. One test binary
//! (each links wasmtime; one binary keeps the build small): a module per subject.
#![allow(clippy::unwrap_used)]

#[path = "../support/app.rs"]
mod app;
#[path = "../support/browser.rs"]
mod browser;
#[path = "../support/nodetools.rs"]
mod nodetools;
#[path = "../support/pytools.rs"]
mod pytools;

mod api;
mod cli;
mod graphql;
mod health;
mod ingest;
mod openapi;
mod push;
mod seed_story;
mod sinks;
mod ui;
mod ui_browser;
mod upgrade;
mod vault;
