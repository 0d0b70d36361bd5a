//! [`ApiError`]: every failure as RFC 9457 `application/problem+json`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::config_schema::FieldError;
use crate::management::ServiceError;

/// A problem document (RFC 9457, `application/problem+json`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "https://portcullis.dev/problems/invalid-input",
    "title": "invalid input",
    "status": 422,
    "detail": "1 invalid field(s)",
    "errors": [{"path": "/config/base_url", "message": "5 is not of type \"string\""}]
}))]
pub struct ApiError {
    /// URI identifying the problem type.
    #[serde(rename = "type")]
    kind: String,
    /// Short summary of the problem type.
    title: String,
    /// The HTTP status code.
    #[serde(serialize_with = "ser_status")]
    #[schema(value_type = u16)]
    status: StatusCode,
    /// What went wrong in this occurrence.
    detail: String,
    /// Field-level errors, each with an RFC 6901 JSON Pointer (omitted when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

fn ser_status<S: serde::Serializer>(s: &StatusCode, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_u16(s.as_u16())
}

impl ApiError {
    /// A problem with a status, title and detail.
    pub fn new(status: StatusCode, title: &str, detail: impl Into<String>) -> Self {
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        ApiError {
            kind: format!("https://portcullis.dev/problems/{slug}"),
            title: title.to_string(),
            status,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 401.
    pub fn unauthenticated(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// The same problem with these field errors.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// 400 with field errors.
    pub fn bad_request(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "bad request", detail);
        e.errors = errors;
        e
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unauthenticated => Self::unauthenticated("missing or invalid API token"),
            ServiceError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            ServiceError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not found", e.to_string())
            }
            ServiceError::Invalid { message, fields } => {
                let mut err = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid input", message);
                err.errors = fields;
                err
            }
            ServiceError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            ServiceError::PluginRefused(l) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin refused",
                l.to_string(),
            ),
            ServiceError::PluginCall(m) => {
                Self::new(StatusCode::BAD_GATEWAY, "plugin call failed", m)
            }
            ServiceError::Store(s) => {
                tracing::error!(error = %s, "store failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                    "the store failed; see the server log",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let text = r.body_text();
        // serde's message names the field path ("unknown field `x`", "at line 1 column 5").
        let path = text
            .split_once(": ")
            .and_then(|(_, rest)| rest.split_once(": "))
            .map(|(p, _)| p)
            .filter(|p| !p.contains(' '))
            .map(|p| format!("/{}", p.replace('.', "/")))
            .unwrap_or_default();
        let mut e = Self::new(
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload too large"
            } else {
                "bad request"
            },
            text.clone(),
        );
        if status != StatusCode::PAYLOAD_TOO_LARGE {
            e.errors.push(FieldError {
                path,
                message: text,
            });
        }
        e
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad request", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(r.body_text(), Vec::new())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}
