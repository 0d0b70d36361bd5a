//! NVD's rate limiting, for the NVD endpoint of [`crate::PagedApi`]: NVD documents
//! "5 requests in a rolling 30 second window; the rate limit with an API key is 50
//! requests in a rolling 30 second window" (nvd.nist.gov/developers/start-here), and
//! its firewall answers clients over the limit with `403 Forbidden`, not a `429`, and
//! without `Retry-After` (NVD's advice is to wait up to a minute). Clients report the
//! body as "Request forbidden by administrative rules." (the firewall's deny page),
//! which is what this simulator sends, as plain text.
//!
//! Enable it with [`crate::PagedApi::set_nvd_throttle`]. The window is kept per API
//! key (the `apiKey` header value) and one for all requests without a key; refused
//! requests do not count.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The body of NVD's throttling answer.
pub const THROTTLED_BODY: &str = "Request forbidden by administrative rules.";

/// NVD's rolling-window limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvdThrottle {
    /// Requests per window without an `apiKey` header.
    pub without_key: u32,
    /// Requests per window per API key.
    pub with_key: u32,
    /// The rolling window.
    pub window: Duration,
}

impl NvdThrottle {
    /// The documented limits: 5 (no key) / 50 (key) per rolling 30 s.
    pub fn documented() -> Self {
        Self {
            without_key: 5,
            with_key: 50,
            window: Duration::from_secs(30),
        }
    }
}

/// The limits and the recent requests of each client.
#[derive(Debug)]
pub(crate) struct ThrottleState {
    limits: NvdThrottle,
    recent: HashMap<Option<Vec<u8>>, VecDeque<Instant>>,
}

impl ThrottleState {
    pub(crate) fn new(limits: NvdThrottle) -> Self {
        Self {
            limits,
            recent: HashMap::new(),
        }
    }

    /// Counts a request; `Some(403)` when it is over the limit.
    pub(crate) fn check(&mut self, headers: &HeaderMap) -> Option<Response> {
        let key = headers.get("apikey").map(|v| v.as_bytes().to_vec());
        let limit = if key.is_some() {
            self.limits.with_key
        } else {
            self.limits.without_key
        };
        let window = self.limits.window;
        let now = Instant::now();
        let recent = self.recent.entry(key).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return Some(
                (
                    StatusCode::FORBIDDEN,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    THROTTLED_BODY,
                )
                    .into_response(),
            );
        }
        recent.push_back(now);
        None
    }
}
