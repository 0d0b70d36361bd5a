//! The OpenAPI 3.1 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! annotations and the `ToSchema` derives of the types they take and return; served
//! without authentication at `GET /v1/openapi.json`.

use std::sync::LazyLock;

use axum::Json;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{connectors, credentials, events, health, ingest, orgs, plugins, sinks};

/// `{"items": [...]}`: the envelope of every list answer.
#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    /// The records.
    pub items: Vec<T>,
}

/// `{"status": "..."}` of `/healthz` and `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready` (startup complete).
    pub status: String,
}

/// The raw bytes of a WebAssembly component (`Content-Type: application/wasm`).
pub struct WasmComponent;

impl PartialSchema for WasmComponent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/wasm")
            .description(Some(
                "A WebAssembly component implementing the `portcullis:connector` world",
            ))
            .into()
    }
}

impl ToSchema for WasmComponent {}

/// Registers the bearer-token security scheme every authenticated operation names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token: the platform admin's, or an organisation token with \
                         the role admin, operator or viewer",
                    ))
                    .build(),
            ),
        );
        // Webhooks (`POST /v1/ingest/{connector_id}`) authenticate with the connector's
        // webhook secret instead of an API token.
        components.add_security_scheme(
            "webhook_token",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "X-Portcullis-Token",
                    "The connector's webhook secret (also accepted as `Authorization: Bearer`)",
                ),
            )),
        );
        components.add_security_scheme(
            "webhook_signature",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "X-Portcullis-Signature",
                    "`sha256=<hex HMAC-SHA256(secret, \"<timestamp>.\" + body)>`, with \
                     `X-Portcullis-Timestamp: <unix seconds>` within 300 s",
                ),
            )),
        );
    }
}

/// The OpenAPI document, assembled from the annotated handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis management API",
        description = "REST management plane of Portcullis: organisations, tokens and roles, \
            plugins installed at runtime, connectors with revisions, enable/disable/test, and \
            the audit log. Every error is an RFC 9457 `application/problem+json` document. An \
            organisation token never sees another organisation's objects: such requests answer \
            404 exactly as for ids that do not exist. GraphQL is served at `/graphql`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::healthz,
        super::readyz,
        openapi_json,
        orgs::create_org,
        orgs::list_orgs,
        orgs::get_org,
        orgs::create_token,
        orgs::list_tokens,
        orgs::delete_token,
        orgs::org_audit,
        orgs::platform_audit,
        plugins::install_plugin,
        plugins::list_plugins,
        plugins::get_plugin,
        plugins::get_version,
        plugins::delete_plugin,
        plugins::delete_version,
        connectors::create,
        connectors::list,
        connectors::read,
        connectors::update,
        connectors::remove,
        connectors::enable,
        connectors::disable,
        connectors::test,
        connectors::revisions,
        health::connector_health,
        health::connector_metrics,
        health::prometheus,
        credentials::put,
        credentials::list,
        credentials::read,
        credentials::remove,
        credentials::test,
        credentials::promote,
        credentials::rollback,
        credentials::rotate_master_key,
        events::list_events,
        ingest::ingest,
        ingest::rotate_secret,
        sinks::read,
        sinks::replace,
    ),
    components(schemas(super::ApiError, crate::config_schema::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "service", description = "Liveness, readiness and this document"),
        (name = "orgs", description = "Organisations and their API tokens"),
        (name = "plugins", description = "Connector plugins installed at runtime, with the capabilities they request"),
        (name = "connectors", description = "Connectors of an organisation: configuration revisions, enable/disable, connection test"),
        (name = "credentials", description = "The credential vault: write-only secrets encrypted at rest, versions with test, promote and rollback, master key rotation"),
        (name = "audit", description = "The audit log of management actions"),
        (name = "events", description = "Events ingested into the embedded event store"),
        (name = "ingest", description = "Push ingestion: webhooks authenticated by a per-connector secret (token or HMAC-SHA256 signature)"),
        (name = "sinks", description = "Where an organisation's events go: the embedded event store, NDJSON files, HTTP forward"),
    )
)]
pub struct ApiDoc;

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The OpenAPI document.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    &DOCUMENT
}

/// This OpenAPI 3.1 document (no authentication needed).
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "service",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object)),
)]
pub(super) async fn openapi_json() -> impl IntoResponse {
    Json(document())
}
