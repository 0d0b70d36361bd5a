//! The management plane: organisations, tokens and roles, plugins installed at runtime,
//! connectors with revisions, enable/disable/test, and the audit log. Both the REST API and
//! GraphQL call [`ManagementService`]; authorization and tenant isolation live here, once.
//! Ingestion follows connector changes through [`lifecycle::ConnectorLifecycle`].

pub mod lifecycle;
pub mod model;
mod service;

pub use service::{
    ConnectorFilter, ConnectorHealthView, ConnectorInput, ConnectorPatch, ManagementService,
    PluginDeleteOutcome, ServiceError, parse_iso8601_duration,
};
