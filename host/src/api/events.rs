//! Events of an organisation from the embedded event store: filtered, in event-time order,
//! one page at a time.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiPath, ApiQuery};
use super::{ApiError, AppState, Caller};
use crate::config_schema::FieldError;
use crate::event::{EventKind, Severity};
use crate::ingest::event_store::{EventQuery, EventQueryError, StoredEvent};
use crate::management::ServiceError;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/orgs/{org}/events", get(list_events))
}

/// Filters and paging of `GET /v1/orgs/{org}/events`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct EventFilter {
    /// Only events of this connector (id).
    connector: Option<String>,
    /// Only events of this kind.
    #[param(value_type = Option<EventKind>)]
    kind: Option<String>,
    /// Only events of this severity: the OCSF label (`high`) or `severity_id` (`4`).
    severity: Option<String>,
    /// Event time at or after this instant (RFC 3339).
    since: Option<String>,
    /// Event time before this instant (RFC 3339).
    until: Option<String>,
    /// Only events with an observable of exactly this value (an IP, a hash, a CVE, ...).
    observable: Option<String>,
    /// `desc` (newest first, default) or `asc`.
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
    /// Page size (default 100, max 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Opaque cursor from the previous page.
    cursor: Option<String>,
}

/// One page of events.
#[derive(Serialize, ToSchema)]
pub(super) struct EventPage {
    /// Events of this page.
    items: Vec<StoredEvent>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

fn invalid(path: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ServiceError::Invalid {
        message: format!("{path}: {message}"),
        fields: vec![FieldError {
            path: path.to_string(),
            message,
        }],
    }
    .into()
}

fn parse_time(path: &str, v: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_micros())
        .map_err(|_| {
            invalid(
                path,
                format!("{v:?} is not an RFC 3339 time such as 2024-05-01T12:00:00Z"),
            )
        })
}

fn parse_severity(v: &str) -> Result<u8, ApiError> {
    if let Ok(id) = v.parse::<u8>() {
        if id <= 6 {
            return Ok(id);
        }
    } else if let Ok(s) =
        serde_json::from_value::<Severity>(serde_json::Value::String(v.to_ascii_lowercase()))
    {
        return Ok(s.id());
    }
    Err(invalid(
        "/severity",
        format!(
            "{v:?} is not a severity: unknown, informational, low, medium, high, critical, fatal, or 0-6"
        ),
    ))
}

impl EventFilter {
    fn query(self) -> Result<EventQuery, ApiError> {
        let kind = match &self.kind {
            None => None,
            Some(k) => Some(
                serde_json::from_value::<EventKind>(serde_json::Value::String(k.clone()))
                    .map_err(|_| {
                        invalid(
                            "/kind",
                            format!("{k:?} is not an event kind: alert, log, indicator, vulnerability, transaction, asset, finding"),
                        )
                    })?,
            ),
        };
        let severity_id = self.severity.as_deref().map(parse_severity).transpose()?;
        let since_us = self
            .since
            .as_deref()
            .map(|v| parse_time("/since", v))
            .transpose()?;
        let until_us = self
            .until
            .as_deref()
            .map(|v| parse_time("/until", v))
            .transpose()?;
        let ascending = match self.order.as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(o) => return Err(invalid("/order", format!("{o:?} must be asc or desc"))),
        };
        let limit = self.limit.unwrap_or(100);
        if limit == 0 || limit > 1000 {
            return Err(invalid("/limit", "must be 1-1000"));
        }
        Ok(EventQuery {
            connector: self.connector,
            kind,
            severity_id,
            since_us,
            until_us,
            observable: self.observable,
            ascending,
            limit,
            cursor: self.cursor,
        })
    }
}

/// Events of the organisation in the embedded event store, in event-time order (newest
/// first unless `order=asc`), filtered, one page at a time. A selective filter may
/// answer a short (even empty) page with a `next_cursor`: keep paging until it is null.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/events",
    tag = "events",
    operation_id = "listEvents",
    params(("org" = String, Path, description = "Organisation id"), EventFilter),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        (status = 400, description = "Bad query (unknown parameter, non-numeric limit)", body = ApiError, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = ApiError, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation (or another org's)", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter value or cursor (field errors)", body = ApiError, content_type = "application/problem+json"),
        (status = 503, description = "Ingestion is not running on this server", body = ApiError, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_events(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(org): ApiPath<String>,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> Result<Json<EventPage>, ApiError> {
    s.service().get_org(&p, &org)?;
    let query = filter.query()?;
    let ingest = s.ingest().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "ingestion is not running on this server",
        )
    })?;
    let page = ingest
        .pipeline
        .event_store()
        .list(&org, &query)
        .map_err(|e| match e {
            EventQueryError::BadCursor => invalid("/cursor", e.to_string()),
            EventQueryError::Store(e) => ApiError::from(ServiceError::Store(e)),
        })?;
    Ok(Json(EventPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
