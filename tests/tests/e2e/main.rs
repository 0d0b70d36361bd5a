//! End-to-end tests of the real host running the real plugins and the hostile test
//! guests against local simulators. One test binary (each links wasmtime; one binary
//! keeps the build small): a module per subject.
#![allow(clippy::unwrap_used)]

mod common;

mod artifacts;
mod egress;
mod guests;
mod plugin_cef_leef;
mod plugin_nvd_cve;
mod plugin_qradar_siem;
mod plugin_threathawk_siem;
mod rest_generic;
mod sandbox;
