//! What the host itself saw of a connector's upstream: every response's status and
//! rate-limit headers (`X-RateLimit-Limit/Remaining/Reset`, `Retry-After`), recorded by
//! the broker into the [`UpstreamRecorder`] carried by the connector's
//! [`ConnectorEnv`](crate::runtime::ConnectorEnv), so health does not depend on what a
//! plugin chooses to report.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// A request that got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The request timed out.
    Timeout,
    /// Connection or protocol failure.
    Transport,
}

/// One upstream response (or failure to get one) as the broker saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamResponse {
    /// HTTP status; 0 when there was no response (see `failure`).
    pub status: u16,
    /// `X-RateLimit-Limit`.
    pub rate_limit_limit: Option<u64>,
    /// `X-RateLimit-Remaining`.
    pub rate_limit_remaining: Option<u64>,
    /// `X-RateLimit-Reset`, as a delay from `at` (epoch-seconds values are converted).
    pub rate_limit_reset: Option<Duration>,
    /// `Retry-After` (delta-seconds or HTTP-date), as a delay from `at`.
    pub retry_after: Option<Duration>,
    /// No response: why.
    pub failure: Option<UpstreamFailure>,
    /// When the response arrived.
    pub at: Instant,
}

impl UpstreamResponse {
    /// A response with `status` and no rate-limit headers, at `at`.
    pub fn status(status: u16, at: Instant) -> Self {
        UpstreamResponse {
            status,
            rate_limit_limit: None,
            rate_limit_remaining: None,
            rate_limit_reset: None,
            retry_after: None,
            failure: None,
            at,
        }
    }

    /// A request that got no response.
    pub fn failed(failure: UpstreamFailure, at: Instant) -> Self {
        UpstreamResponse {
            failure: Some(failure),
            ..UpstreamResponse::status(0, at)
        }
    }

    /// Read the status and rate-limit headers of a response.
    pub fn from_headers<'a>(
        status: u16,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        at: Instant,
    ) -> Self {
        let mut r = UpstreamResponse::status(status, at);
        for (name, value) in headers {
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("x-ratelimit-limit") {
                r.rate_limit_limit = value.parse().ok();
            } else if name.eq_ignore_ascii_case("x-ratelimit-remaining") {
                r.rate_limit_remaining = value.parse().ok();
            } else if name.eq_ignore_ascii_case("x-ratelimit-reset") {
                r.rate_limit_reset = parse_reset(value, SystemTime::now());
            } else if name.eq_ignore_ascii_case("retry-after") {
                r.retry_after = parse_retry_after(value, SystemTime::now());
            }
        }
        r
    }

    /// Until when this response asks the client to hold off, if it does: `Retry-After`
    /// first, else the rate-limit reset when the response is a 429 or the remaining
    /// quota is zero.
    pub fn hold_until(&self) -> Option<Instant> {
        if let Some(d) = self.retry_after {
            return Some(self.at + d);
        }
        if (self.status == 429 || self.rate_limit_remaining == Some(0))
            && let Some(d) = self.rate_limit_reset
        {
            return Some(self.at + d);
        }
        None
    }
}

/// Epoch values above this are absolute times, below it delays (GitHub and most APIs
/// send epoch seconds; others, e.g. some IETF-draft style APIs, send seconds to reset).
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// `X-RateLimit-Reset`: epoch seconds or delta seconds (fractions allowed).
pub fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let v: f64 = value.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    if v >= EPOCH_THRESHOLD as f64 {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(v);
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    } else {
        Some(Duration::from_secs_f64(v))
    }
}

/// `Retry-After` per RFC 9110 §10.2.3: delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Most responses kept between two drains (a plugin call makes at most the request cap).
const RECORDER_CAP: usize = 256;

/// Per-connector record of upstream responses, filled by the broker and drained by the
/// pipeline after each plugin call ([`UpstreamRecorder::drain`]).
#[derive(Debug, Default)]
pub struct UpstreamRecorder {
    responses: parking_lot::Mutex<VecDeque<UpstreamResponse>>,
}

impl UpstreamRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record one response (the oldest is dropped past the cap).
    pub fn record(&self, r: UpstreamResponse) {
        let mut q = self.responses.lock();
        if q.len() >= RECORDER_CAP {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// Everything recorded since the last drain, oldest first.
    pub fn drain(&self) -> Vec<UpstreamResponse> {
        self.responses.lock().drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_as_epoch_or_delta() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_reset("1700000030", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_reset("1600000000", now), Some(Duration::ZERO));
        assert_eq!(parse_reset("42", now), Some(Duration::from_secs(42)));
        assert_eq!(parse_reset("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_reset("soon", now), None);
        assert_eq!(parse_reset("-3", now), None);
    }

    #[test]
    fn retry_after_seconds_or_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        // RFC 9110's example date is 784111777 (Sun, 06 Nov 1994 08:49:37 GMT).
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("later", now), None);
    }

    #[test]
    fn hold_prefers_retry_after_then_reset_on_429_or_empty_quota() {
        let at = Instant::now();
        let headers: Vec<(&str, &[u8])> = vec![
            ("X-RateLimit-Limit", b"100"),
            ("x-ratelimit-remaining", b"0"),
            ("X-RateLimit-Reset", b"7"),
        ];
        let r = UpstreamResponse::from_headers(200, headers, at);
        assert_eq!(r.rate_limit_limit, Some(100));
        assert_eq!(r.hold_until(), Some(at + Duration::from_secs(7)));
        let mut r429 = UpstreamResponse::status(429, at);
        r429.rate_limit_reset = Some(Duration::from_secs(9));
        assert_eq!(r429.hold_until(), Some(at + Duration::from_secs(9)));
        r429.retry_after = Some(Duration::from_secs(2));
        assert_eq!(r429.hold_until(), Some(at + Duration::from_secs(2)));
        let mut ok = UpstreamResponse::status(200, at);
        ok.rate_limit_reset = Some(Duration::from_secs(9));
        ok.rate_limit_remaining = Some(5);
        assert_eq!(ok.hold_until(), None);
    }

    #[test]
    fn recorder_drains_and_is_bounded() {
        let rec = UpstreamRecorder::new();
        let at = Instant::now();
        for _ in 0..(RECORDER_CAP + 10) {
            rec.record(UpstreamResponse::status(200, at));
        }
        assert_eq!(rec.drain().len(), RECORDER_CAP);
        assert!(rec.drain().is_empty());
    }
}
