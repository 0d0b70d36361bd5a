//! Push ingestion over HTTP: `POST /v1/ingest/{connector_id}` (webhooks, authenticated by
//! the connector's webhook secret: token or HMAC-SHA256 signature, see
//! [`crate::ingest::webhook`]) and `POST /v1/orgs/{org}/connectors/{id}/webhook-secret`
//! (generate or rotate that secret; shown once).
//!
//! The body becomes `normalize` inputs: a JSON array gives one input per element, any
//! other JSON value one input (a JSON string as its text, anything else as JSON text); `application/x-ndjson` and `text/*`
//! give one input per non-empty line. Bad input is a 4xx, never a 5xx.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::ApiPath;
use super::{ApiError, AppState, Caller};
use crate::ingest::delivery::DeliveryError;
use crate::ingest::push::{PushError, PushOutcome};
use crate::ingest::sink::SinkError;
use secrecy::SecretString;

use crate::ingest::webhook::{self, Presented};

/// Largest webhook body.
pub const MAX_WEBHOOK_BODY: usize = 4 * 1024 * 1024;
/// Most inputs per webhook request.
pub const MAX_WEBHOOK_INPUTS: usize = 10_000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/ingest/{connector_id}",
            post(ingest).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY)),
        )
        .route(
            "/orgs/{org}/connectors/{id}/webhook-secret",
            post(rotate_secret),
        )
}

/// A new webhook secret (shown once).
#[derive(Serialize, ToSchema)]
pub(super) struct WebhookSecret {
    /// Connector id.
    connector_id: String,
    /// The secret. It is not shown again; rotate to get a new one.
    secret: String,
    /// Secret generation (1, then +1 per rotation).
    version: u32,
    /// Keyed fingerprint (to tell versions apart; not the secret).
    fingerprint: String,
    /// RFC 3339.
    created_at: String,
    /// Where to send events.
    ingest_path: String,
    /// How to authenticate.
    usage: String,
}

fn secret_error(e: WebhookSecretError) -> ApiError {
    match e {
        WebhookSecretError::Service(s) => s.into(),
        WebhookSecretError::Storage(m) => {
            tracing::error!(error = %m, "webhook secret storage failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "the secret store failed; see the server log",
            )
        }
    }
}

/// Generate or rotate a connector's webhook secret (operator). The previous secret stops
/// working at once.
#[utoipa::path(
    post,
    path = "/v1/orgs/{org}/connectors/{id}/webhook-secret",
    tag = "ingest",
    operation_id = "rotateWebhookSecret",
    params(
        ("org" = String, Path, description = "Organisation id"),
        ("id" = String, Path, description = "Connector id"),
    ),
    responses(
        (status = 201, description = "The new secret (shown once)", body = WebhookSecret),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or connector", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The connector's plugin does not accept pushed input", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn rotate_secret(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (secret, rec) = new_secret(s.service(), &p, &org, &id)
        .await
        .map_err(secret_error)?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookSecret {
            ingest_path: format!("/v1/ingest/{id}"),
            connector_id: id,
            secret: secret.expose_secret().to_string(),
            version: rec.version,
            fingerprint: rec.fingerprint,
            created_at: rec.created_at,
            usage: "send `Authorization: Bearer <secret>` (or `X-Portcullis-Token`), or sign: \
                    `X-Portcullis-Timestamp: <unix seconds>` and `X-Portcullis-Signature: \
                    sha256=<hex HMAC-SHA256(secret, \"<timestamp>.\" + body)>`"
                .into(),
        }),
    ))
}

/// The answer to an accepted push.
#[derive(Serialize, ToSchema)]
pub(super) struct IngestAccepted {
    /// Connector id.
    connector_id: String,
    /// Counts.
    #[serde(flatten)]
    outcome: PushOutcome,
}

/// A JSON string is passed as its text (a log line); anything else as JSON text.
fn json_input(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn inputs(headers: &HeaderMap, body: &[u8]) -> Result<Vec<String>, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}"), Vec::new()))?;
    let out: Vec<String> = if ctype == "application/json" || ctype.ends_with("+json") {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(items)) => items.iter().map(json_input).collect(),
            Ok(v) => vec![json_input(&v)],
            Err(e) => {
                return Err(ApiError::bad_request(
                    format!("malformed JSON: {e}"),
                    vec![crate::config_schema::FieldError {
                        path: String::new(),
                        message: e.to_string(),
                    }],
                ));
            }
        }
    } else if ctype == "application/x-ndjson" || ctype.starts_with("text/") {
        text.lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            format!(
                "Content-Type {ctype} is not accepted: send application/json, application/x-ndjson or text/plain"
            ),
        ));
    };
    if out.is_empty() {
        return Err(ApiError::bad_request("the body holds no input", Vec::new()));
    }
    if out.len() > MAX_WEBHOOK_INPUTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large",
            format!("at most {MAX_WEBHOOK_INPUTS} inputs per request"),
        ));
    }
    Ok(out)
}

fn push_error(e: PushError) -> ApiError {
    match e {
        PushError::Disabled(_)
        | PushError::NotPushable { .. }
        | PushError::Unavailable { .. }
        | PushError::Delivery(DeliveryError::Stopped { .. }) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        PushError::Delivery(DeliveryError::Sink(SinkError::Unavailable { .. })) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sink unavailable",
            e.to_string(),
        ),
        PushError::Delivery(DeliveryError::Sink(SinkError::Rejected { .. })) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "sink rejected", e.to_string())
        }
        PushError::Delivery(DeliveryError::Store(s)) => {
            tracing::error!(error = %s, "store failure during push delivery");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "the store failed; see the server log",
            )
        }
    }
}

/// Push events to a connector (webhook). Authenticated by the connector's webhook
/// secret, not by an API token.
#[utoipa::path(
    post,
    path = "/v1/ingest/{connector_id}",
    tag = "ingest",
    operation_id = "ingestWebhook",
    params(
        ("connector_id" = String, Path, description = "Connector id"),
        ("X-Portcullis-Token" = Option<String>, Header, description = "The webhook secret (or send it as `Authorization: Bearer`)"),
        ("X-Portcullis-Timestamp" = Option<String>, Header, description = "Unix seconds; required with a signature, within 300 s of the server clock"),
        ("X-Portcullis-Signature" = Option<String>, Header, description = "`sha256=<hex HMAC-SHA256(secret, \"<timestamp>.\" + body)>`"),
    ),
    request_body(content = Object, description = "A JSON value or array (one input per element), or NDJSON / text lines (one input per line)", content_type = "application/json"),
    responses(
        (status = 202, description = "Normalised and delivered", body = IngestAccepted),
        (status = 400, description = "Malformed body", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, stale or replayed credentials", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such connector, or it has no webhook secret", body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The connector is disabled or does not accept pushed input", body = ApiError, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ApiError, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported Content-Type", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "No input could be normalised", body = ApiError, content_type = "application/problem+json"),
        (status = 503, description = "A sink is unavailable; retry later", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("webhook_token" = []), ("webhook_signature" = []))
)]
pub(super) async fn ingest(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match ingest_inner(s, path, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn ingest_inner(
    s: AppState,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload too large",
                format!("webhook bodies are limited to {MAX_WEBHOOK_BODY} bytes"),
            )
        } else {
            ApiError::bad_request(r.body_text(), Vec::new())
        }
    })?;
    let Some(ingest) = s.ingest() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready",
            "ingestion is not running",
        ));
    };
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not found",
            format!("no webhook for connector {id:?}"),
        )
    };
    let (rec, secret) = open_secret(s.service(), &id)
        .map_err(secret_error)?
        .ok_or_else(not_found)?;
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let presented = Presented {
        authorization: h(header::AUTHORIZATION.as_str()),
        token: h(webhook::TOKEN_HEADER),
        signature: h(webhook::SIGNATURE_HEADER),
        timestamp: h(webhook::TIMESTAMP_HEADER),
    };
    webhook::verify(
        &secret,
        &presented,
        &body,
        chrono::Utc::now().timestamp(),
        &ingest.push.webhook_replays,
    )
    .map_err(|e| ApiError::unauthenticated(&e.to_string()))?;
    let connector = s
        .service()
        .connector_record(&rec.org, &id)
        .map_err(|_| not_found())?;
    let inputs = inputs(&headers, &body)?;
    let outcome = ingest
        .push
        .push(&connector, &inputs)
        .await
        .map_err(push_error)?;
    if outcome.malformed == outcome.received {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid input",
            format!(
                "none of the {} input(s) could be normalised: {}",
                outcome.received,
                outcome.errors.join("; ")
            ),
        );
        e = e.with_errors(
            outcome
                .errors
                .iter()
                .map(|m| crate::config_schema::FieldError {
                    path: String::new(),
                    message: m.clone(),
                })
                .collect(),
        );
        return Err(e);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(IngestAccepted {
            connector_id: id,
            outcome,
        }),
    )
        .into_response())
}

// ---------------------------------------------------------------------------
// Webhook secrets in the credential vault.

/// Why a webhook secret could not be created or read.
#[derive(Debug, thiserror::Error)]
enum WebhookSecretError {
    /// Authorization, scope or lookup failed.
    #[error(transparent)]
    Service(#[from] crate::management::ServiceError),
    /// The vault or the store failed.
    #[error("webhook secret storage: {0}")]
    Storage(String),
}

fn vault_name(connector_id: &str) -> String {
    format!("webhook:{connector_id}")
}

fn stored_version(rec: &webhook::WebhookRecord) -> crate::vault::record::StoredVersion {
    crate::vault::record::StoredVersion {
        version: rec.version,
        created_at: rec.created_at.clone(),
        created_by: rec.created_by.clone(),
        public: Default::default(),
        hosts: Vec::new(),
        expires_at: None,
        fingerprint: rec.fingerprint.clone(),
        sealed: rec.sealed.clone(),
        last_test: None,
    }
}

/// Generate (or rotate) the webhook secret of connector `id` of `org` (operator): the
/// new secret, to show once, and its record. The previous secret stops working at once.
async fn new_secret(
    service: &crate::management::ManagementService,
    p: &crate::management::model::Principal,
    org: &str,
    id: &str,
) -> Result<(SecretString, webhook::WebhookRecord), WebhookSecretError> {
    use crate::management::ServiceError;
    use crate::store::{KvStoreExt, WriteOp};
    let rec = service.get_connector(p, org, id)?;
    if p.role < crate::management::model::Role::Operator {
        return Err(ServiceError::Forbidden(
            "managing webhook secrets needs the operator role".into(),
        )
        .into());
    }
    let accepts_push = service
        .plugin_record(&rec.spec.plugin.id, &rec.spec.plugin.version)
        .is_some_and(|r| r.manifest.accepts_push);
    if !accepts_push {
        return Err(ServiceError::Conflict(format!(
            "plugin {}@{} does not accept pushed input; a webhook cannot feed it",
            rec.spec.plugin.id, rec.spec.plugin.version
        ))
        .into());
    }
    let storage = |e: &dyn std::fmt::Display| WebhookSecretError::Storage(e.to_string());
    let key = webhook::record_key(id);
    let previous: Option<webhook::WebhookRecord> =
        service.store().get_json(&key).map_err(|e| storage(&e))?;
    let version = previous.map(|r| r.version + 1).unwrap_or(1);
    let secret = webhook::generate_secret().map_err(|e| storage(&e))?;
    let (sealed, fingerprint) = service
        .vault()
        .seal(
            org,
            &vault_name(id),
            version,
            crate::manifest::CredentialKind::Bearer,
            &secret,
        )
        .map_err(|e| storage(&e))?;
    let record = webhook::WebhookRecord {
        org: org.to_string(),
        connector_id: id.to_string(),
        version,
        sealed,
        fingerprint,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        created_by: p.actor(),
    };
    let audit = service.audit_op(
        &p.actor(),
        Some(org),
        "connector.webhook_secret",
        &format!("connector/{id}"),
        "ok",
        serde_json::json!({"version": version, "fingerprint": record.fingerprint}),
    )?;
    service
        .store()
        .apply(vec![
            WriteOp::put_json(&key, &record).map_err(|e| storage(&e))?,
            audit,
        ])
        .map_err(|e| storage(&e))?;
    Ok((secret, record))
}

/// The webhook record and secret of connector `id`, if it has one.
fn open_secret(
    service: &crate::management::ManagementService,
    id: &str,
) -> Result<Option<(webhook::WebhookRecord, SecretString)>, WebhookSecretError> {
    use crate::store::KvStoreExt;
    let storage = |e: &dyn std::fmt::Display| WebhookSecretError::Storage(e.to_string());
    let Some(rec) = service
        .store()
        .get_json::<webhook::WebhookRecord>(&webhook::record_key(id))
        .map_err(|e| storage(&e))?
    else {
        return Ok(None);
    };
    let secret = service
        .vault()
        .open_secret(&rec.org, &vault_name(id), &stored_version(&rec))
        .map_err(|e| storage(&e))?;
    Ok(Some((rec, secret)))
}
