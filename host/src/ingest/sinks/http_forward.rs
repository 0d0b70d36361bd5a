//! The HTTP forward sink: batched `POST` of events to a SIEM or collector, e.g.
//! ThreatHawk's `POST /v1/events` (the seed article: JSON arrays, gzip, batches of up to
//! 10,000 events, `Idempotency-Key`, retries with exponential backoff and jitter).
//!
//! - Body: a JSON array; [`BodyFormat::Unified`] sends the unified events as they are,
//!   [`BodyFormat::ThreatHawk`] wraps each as `{timestamp, source, event_type, payload}`
//!   (the fields the article says every event requires; `payload` is the unified event).
//! - A [`SinkBatch`] larger than `batch_max_events` goes out as several requests; request
//!   `i` carries `Idempotency-Key: <batch_id>` (`<batch_id>-<i>` when split), the same on
//!   every retry and every redelivery of the batch, so the far side never accepts it twice.
//! - `Content-Encoding: gzip` when enabled (default).
//! - Retries on 429, 5xx, timeouts and connection errors: the delay starts at 1 s and
//!   doubles up to 60 s, ±500 ms of jitter, or the server's `Retry-After` (seconds or an
//!   HTTP date) when it sent one. After `max_attempts` the batch is reported
//!   [`SinkError::Unavailable`] (the pipeline keeps it and pauses the connector).
//!   Any other 4xx is [`SinkError::Rejected`]: retrying the same body cannot help.
//! - Egress follows the host's address policy: loopback, private and link-local targets
//!   only when `allow_private_networks` is set, metadata endpoints never — checked on
//!   every resolved address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use super::super::sink::{EventSink, SinkBatch, SinkError};
use crate::broker::ip_policy::IpPolicy;
use crate::broker::oauth::{OAuthTokenCache, TokenRequest};
use crate::event::Event;

/// How events are laid out in the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `[<unified event>, ...]`.
    Unified,
    /// `[{"timestamp", "source", "event_type", "payload": <unified event>}, ...]`.
    ThreatHawk,
}

/// How the sink authenticates.
#[derive(Clone)]
pub enum ForwardAuth {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// OAuth 2.0 client credentials (RFC 6749 §4.4), token sent per RFC 6750.
    OAuth2 {
        /// Token endpoint.
        token_url: url::Url,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: SecretString,
        /// Scopes.
        scopes: Vec<String>,
    },
}

/// Backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay (1 s).
    pub initial: Duration,
    /// Largest delay (60 s).
    pub max: Duration,
    /// Jitter either way (500 ms).
    pub jitter: Duration,
    /// Attempts per delivery before giving up with `Unavailable`.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: Duration::from_millis(500),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1-based): `Retry-After` when given (never below
    /// zero, capped at 10 × `max`), else `initial · 2^(retry-1)` capped at `max`, plus a
    /// jitter drawn from `[-jitter, +jitter]` by `unit` ∈ [0, 1).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max * 10);
        }
        let exp = self
            .initial
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max);
        let j = self.jitter.as_secs_f64() * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((exp.as_secs_f64() + j).max(0.0))
    }
}

/// Settings of one forward sink.
#[derive(Clone)]
pub struct ForwardSettings {
    /// Sink name (health, metrics, logs).
    pub name: String,
    /// Target URL.
    pub url: url::Url,
    /// Body layout.
    pub format: BodyFormat,
    /// Events per request (1..=10,000).
    pub batch_max_events: usize,
    /// gzip the body.
    pub gzip: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Authentication.
    pub auth: ForwardAuth,
    /// Retries.
    pub retry: RetryPolicy,
}

/// The HTTP forward sink.
pub struct HttpForwardSink {
    settings: ForwardSettings,
    client: reqwest::Client,
    tokens: Arc<OAuthTokenCache>,
    token_key: String,
}

impl std::fmt::Debug for HttpForwardSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpForwardSink")
            .field("name", &self.settings.name)
            .field("url", &self.settings.url.as_str())
            .finish_non_exhaustive()
    }
}

/// Resolves through the system resolver and keeps only addresses the policy allows.
struct PolicyResolver(IpPolicy);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.check(a.ip()).is_ok())
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host}: no address the egress policy allows").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a forward sink cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ForwardSetupError {
    /// The target is an address the policy refuses.
    #[error("{0}")]
    Egress(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// Refuse a literal IP host the policy forbids (names are checked when resolved).
pub fn check_literal_host(url: &url::Url, policy: IpPolicy) -> Result<(), String> {
    let ip: Option<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    match ip.map(|ip| policy.check(ip)) {
        Some(Err(class)) => Err(format!(
            "{} is a {} address, which the egress policy refuses",
            url.host_str().unwrap_or(""),
            class.label()
        )),
        _ => Ok(()),
    }
}

fn jitter_unit() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

enum Attempt {
    Done,
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    Reject(String),
}

impl HttpForwardSink {
    /// Build a sink; `tokens` caches OAuth access tokens across sinks.
    pub fn new(
        settings: ForwardSettings,
        policy: IpPolicy,
        tokens: Arc<OAuthTokenCache>,
    ) -> Result<Self, ForwardSetupError> {
        check_literal_host(&settings.url, policy).map_err(ForwardSetupError::Egress)?;
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver(policy)))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .build()
            .map_err(|e| ForwardSetupError::Client(e.to_string()))?;
        let token_key = format!("sink:{}:{}", settings.name, settings.url);
        Ok(HttpForwardSink {
            settings,
            client,
            tokens,
            token_key,
        })
    }

    fn body(&self, events: &[Event]) -> Result<Vec<u8>, SinkError> {
        let json = match self.settings.format {
            BodyFormat::Unified => serde_json::to_vec(events),
            BodyFormat::ThreatHawk => serde_json::to_vec(
                &events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "timestamp": e.time,
                            "source": e.source,
                            "event_type": e.kind,
                            "payload": e,
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
        }
        .map_err(|e| self.rejected(format!("events do not serialise: {e}")))?;
        if !self.settings.gzip {
            return Ok(json);
        }
        let mut enc = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
        std::io::Write::write_all(&mut enc, &json)
            .and_then(|_| enc.finish())
            .map_err(|e| self.rejected(format!("gzip: {e}")))
    }

    fn rejected(&self, message: String) -> SinkError {
        SinkError::Rejected {
            sink: self.settings.name.clone(),
            message,
        }
    }

    async fn authorization(&self) -> Result<Option<String>, Attempt> {
        match &self.settings.auth {
            ForwardAuth::None => Ok(None),
            ForwardAuth::Bearer(t) => Ok(Some(format!("Bearer {}", t.expose_secret()))),
            ForwardAuth::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scopes,
            } => {
                let req = TokenRequest {
                    token_url,
                    client_id,
                    client_secret,
                    scopes,
                    audience: None,
                };
                match self.tokens.token(&self.token_key, &self.client, &req).await {
                    Ok(tok) => Ok(Some(format!("Bearer {}", tok.token.expose_secret()))),
                    Err(e) => Err(Attempt::Retry {
                        message: format!("token endpoint: {e}"),
                        retry_after: None,
                    }),
                }
            }
        }
    }

    async fn attempt(&self, key: &str, body: &[u8]) -> Attempt {
        let auth = match self.authorization().await {
            Ok(a) => a,
            Err(a) => return a,
        };
        let mut req = self
            .client
            .post(self.settings.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key)
            .body(body.to_vec());
        if self.settings.gzip {
            req = req.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        if let Some(a) = &auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    message: format!("request failed: {}", without_url(e)),
                    retry_after: None,
                };
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Attempt::Done;
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        if status == StatusCode::UNAUTHORIZED
            && matches!(self.settings.auth, ForwardAuth::OAuth2 { .. })
        {
            // The token may have been revoked or expired early: fetch a new one next time.
            self.tokens.forget(&self.token_key);
            return Attempt::Retry {
                message: format!("HTTP 401: {text}"),
                retry_after: None,
            };
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Attempt::Retry {
                message: format!("HTTP {}: {text}", status.as_u16()),
                retry_after,
            }
        } else {
            Attempt::Reject(format!("HTTP {}: {text}", status.as_u16()))
        }
    }

    async fn send_chunk(&self, key: &str, events: &[Event]) -> Result<(), SinkError> {
        let body = self.body(events)?;
        let policy = self.settings.retry;
        let mut retry = 0u32;
        loop {
            match self.attempt(key, &body).await {
                Attempt::Done => return Ok(()),
                Attempt::Reject(message) => return Err(self.rejected(message)),
                Attempt::Retry {
                    message,
                    retry_after,
                } => {
                    retry += 1;
                    if retry >= policy.max_attempts.max(1) {
                        return Err(SinkError::Unavailable {
                            sink: self.settings.name.clone(),
                            message,
                            retry_after,
                        });
                    }
                    let delay = policy.delay(retry, retry_after, jitter_unit());
                    tracing::warn!(
                        sink = %self.settings.name,
                        attempt = retry,
                        delay_ms = delay.as_millis() as u64,
                        error = %message,
                        "forward failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// A reqwest error's text with its causes, without the URL.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[async_trait::async_trait]
impl EventSink for HttpForwardSink {
    fn name(&self) -> &str {
        &self.settings.name
    }

    async fn deliver(&self, batch: &SinkBatch) -> Result<(), SinkError> {
        let per = self.settings.batch_max_events.clamp(1, 10_000);
        let chunks: Vec<&[Event]> = batch.events.chunks(per).collect();
        let split = chunks.len() > 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let key = if split {
                format!("{}-{i}", batch.batch_id)
            } else {
                batch.batch_id.clone()
            };
            self.send_chunk(&key, chunk).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_sixty_with_jitter() {
        let p = RetryPolicy::default();
        let mid = |r| p.delay(r, None, 0.5);
        assert_eq!(
            (1..=8).map(|r| mid(r).as_secs()).collect::<Vec<_>>(),
            vec![1, 2, 4, 8, 16, 32, 60, 60]
        );
        assert_eq!(p.delay(1, None, 0.0), Duration::from_millis(500));
        assert_eq!(p.delay(1, None, 1.0), Duration::from_millis(1500));
        assert_eq!(p.delay(7, None, 0.0), Duration::from_millis(59_500));
        assert_eq!(p.delay(40, None, 0.5), Duration::from_secs(60));
        // Retry-After wins over the schedule.
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7)), 0.9),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn retry_after_as_seconds_or_http_date() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        let future = (chrono::Utc::now() + chrono::TimeDelta::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&future).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(25),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn literal_private_targets_follow_the_policy() {
        let u = url::Url::parse("http://127.0.0.1:9/events").unwrap();
        assert!(check_literal_host(&u, IpPolicy::default()).is_err());
        assert!(
            check_literal_host(
                &u,
                IpPolicy {
                    allow_private_networks: true
                }
            )
            .is_ok()
        );
        let md = url::Url::parse("http://169.254.169.254/").unwrap();
        assert!(
            check_literal_host(
                &md,
                IpPolicy {
                    allow_private_networks: true
                }
            )
            .is_err()
        );
    }
}
