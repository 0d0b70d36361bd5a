//! Helper endpoints for egress and size tests, served by [`HelperServer`] and
//! also by every [`crate::PagedApi`]:
//!
//! - `GET /redirect?to=<url>[&status=301|302|303|307|308]` — redirects (302 by
//!   default) to `to`;
//! - `ANY /echo` — `200` JSON `{"method", "path", "query": [[k, v]...],
//!   "headers": [[name, value]...], "body"}` describing the request (header
//!   names lowercased, duplicates kept, in order);
//! - `GET /big?bytes=N[&chunked=true]` — `N` bytes of `application/octet-stream`
//!   (`Content-Length` set unless `chunked=true`), streamed;
//! - `GET /delay?ms=N` — answers `200` after `N` milliseconds (at most 120 s).

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Deserialize;
use serde_json::json;

use crate::server::{RequestLog, SimServer, form_pairs};

/// Largest body `/big` serves.
pub const MAX_BIG_BYTES: u64 = 1 << 30;
/// Longest `/delay`.
pub const MAX_DELAY_MS: u64 = 120_000;
const BIG_CHUNK: usize = 64 * 1024;

pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/redirect", get(redirect))
        .route("/echo", any(echo))
        .route("/big", get(big))
        .route("/delay", get(delay))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "bad_request", "message": message.into()})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct RedirectParams {
    to: Option<String>,
    status: Option<u16>,
}

async fn redirect(Query(params): Query<RedirectParams>) -> Response {
    let Some(to) = params.to else {
        return bad_request("missing `to`");
    };
    let status = match params.status.unwrap_or(302) {
        301 => StatusCode::MOVED_PERMANENTLY,
        302 => StatusCode::FOUND,
        303 => StatusCode::SEE_OTHER,
        307 => StatusCode::TEMPORARY_REDIRECT,
        308 => StatusCode::PERMANENT_REDIRECT,
        other => return bad_request(format!("unsupported redirect status {other}")),
    };
    match HeaderValue::try_from(to) {
        Ok(location) => (status, [(header::LOCATION, location)]).into_response(),
        Err(_) => bad_request("`to` is not a valid header value"),
    }
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().map(form_pairs).unwrap_or_default(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct BigParams {
    bytes: Option<u64>,
    chunked: Option<bool>,
}

async fn big(Query(params): Query<BigParams>) -> Response {
    let Some(total) = params.bytes else {
        return bad_request("missing `bytes`");
    };
    if total > MAX_BIG_BYTES {
        return bad_request(format!("`bytes` is capped at {MAX_BIG_BYTES}"));
    }
    let chunk = Bytes::from(
        (0..BIG_CHUNK)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut remaining = total;
    let chunks = std::iter::from_fn(move || {
        if remaining == 0 {
            return None;
        }
        let take = remaining.min(BIG_CHUNK as u64);
        remaining -= take;
        Some(Ok::<_, Infallible>(chunk.slice(..take as usize)))
    });
    let body = Body::from_stream(futures::stream::iter(chunks));
    let content_type = (
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if params.chunked.unwrap_or(false) {
        ([content_type], body).into_response()
    } else {
        (
            [
                content_type,
                (header::CONTENT_LENGTH, HeaderValue::from(total)),
            ],
            body,
        )
            .into_response()
    }
}

#[derive(Deserialize)]
struct DelayParams {
    ms: Option<u64>,
}

async fn delay(Query(params): Query<DelayParams>) -> Response {
    let ms = params.ms.unwrap_or(0).min(MAX_DELAY_MS);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("delayed {ms} ms").into_response()
}

/// A server with only the helper endpoints (see the module docs). Two helper
/// servers give two distinct origins, e.g. to redirect from one to the other.
#[derive(Debug)]
pub struct HelperServer {
    server: SimServer,
}

impl HelperServer {
    /// Starts the server on `127.0.0.1:0`.
    pub fn start() -> io::Result<Self> {
        Ok(Self {
            server: SimServer::start("helpers", router())?,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `base_url()` followed by `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.server.base_url())
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// The requests received so far.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
}
