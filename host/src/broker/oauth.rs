//! OAuth 2.0 client-credentials tokens (RFC 6749 §4.4), fetched by the host, cached in
//! memory per credential version, shared by every call using that credential, fetched
//! once under concurrency and refreshed before expiry or once after `invalid_token`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

/// Refresh this long before `expires_in` runs out.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Lifetime assumed when the server sends no `expires_in`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// A cached access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The token (redacted in `Debug`).
    pub token: Arc<SecretString>,
    /// When to stop using it.
    pub refresh_at: Instant,
}

/// Why a token could not be obtained. Never contains the client secret or a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// RFC 6749 §5.2 error response.
    #[error("token endpoint refused the request: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// `error` code (`invalid_client`, `invalid_scope`, ...).
        code: String,
        /// `error_description`, if any.
        description: Option<String>,
        /// HTTP status.
        status: u16,
    },
    /// Transport failure or unusable response.
    #[error("token endpoint: {0}")]
    Failed(String),
}

/// Parameters of one token request.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// Token endpoint.
    pub token_url: &'a url::Url,
    /// Client id.
    pub client_id: &'a str,
    /// Client secret.
    pub client_secret: &'a SecretString,
    /// Scopes.
    pub scopes: &'a [String],
    /// Audience.
    pub audience: Option<&'a str>,
}

/// Per-credential-version token cache.
#[derive(Debug, Default)]
pub struct OAuthTokenCache {
    slots: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<AccessToken>>>>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl OAuthTokenCache {
    /// Create an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many token requests this cache has made (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<AccessToken>>> {
        self.slots
            .lock()
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    /// Drop every cached token for `key` (credential rotated or deleted).
    pub fn forget(&self, key: &str) {
        self.slots.lock().remove(key);
    }

    /// A valid token for `key`, fetching one (once, even under concurrency) if needed.
    pub async fn token(
        &self,
        key: &str,
        client: &reqwest::Client,
        req: &TokenRequest<'_>,
    ) -> Result<AccessToken, TokenError> {
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        if let Some(tok) = guard.as_ref()
            && Instant::now() < tok.refresh_at
        {
            return Ok(tok.clone());
        }
        let fresh = self.fetch(client, req).await?;
        *guard = Some(fresh.clone());
        Ok(fresh)
    }

    /// Mark `used` as rejected (`invalid_token`): the next [`Self::token`] fetches a new one,
    /// unless another caller already replaced it.
    pub async fn invalidate(&self, key: &str, used: &AccessToken) {
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        if let Some(cur) = guard.as_ref()
            && Arc::ptr_eq(&cur.token, &used.token)
        {
            *guard = None;
        }
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        req: &TokenRequest<'_>,
    ) -> Result<AccessToken, TokenError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // RFC 6749 §2.3.1: client id and secret are form-urlencoded, then sent as Basic.
        let enc = |s: &str| form_urlencoded(s);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(req.client_id),
            enc(req.client_secret.expose_secret())
        ));
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        if !req.scopes.is_empty() {
            form.push(("scope", req.scopes.join(" ")));
        }
        if let Some(aud) = req.audience {
            form.push(("audience", aud.to_string()));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", k, form_urlencoded(v)))
            .collect::<Vec<_>>()
            .join("&");
        let resp = client
            .post(req.token_url.clone())
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .timeout(Duration::from_secs(15))
            .send()
            .await
            .map_err(|e| TokenError::Failed(super::describe_transport_error(&e)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TokenError::Failed(super::describe_transport_error(&e)))?;
        if bytes.len() > 64 * 1024 {
            return Err(TokenError::Failed(
                "token response larger than 64 KiB".into(),
            ));
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| TokenError::Failed(format!("HTTP {status}: response is not JSON")))?;
        if !(200..300).contains(&status) {
            let code = json
                .get("error")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown_error")
                .chars()
                .take(64)
                .collect();
            let description = json
                .get("error_description")
                .and_then(|v| v.as_str())
                .map(|d| d.chars().take(256).collect());
            return Err(TokenError::Refused {
                code,
                description,
                status,
            });
        }
        let token = json
            .get("access_token")
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| TokenError::Failed("response has no access_token".into()))?;
        let token_type = json
            .get("token_type")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Failed(format!(
                "unsupported token_type {:?} (expected Bearer)",
                token_type.chars().take(32).collect::<String>()
            )));
        }
        let lifetime = json
            .get("expires_in")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIFETIME);
        let usable = lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 2));
        Ok(AccessToken {
            token: Arc::new(SecretString::from(token.to_string())),
            refresh_at: Instant::now() + usable,
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_urlencoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Whether a 401 response says the bearer token is invalid (RFC 6750 §3.1).
pub fn is_invalid_token(resp_headers: &reqwest::header::HeaderMap) -> bool {
    resp_headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            let lower = v.to_ascii_lowercase();
            lower.trim_start().starts_with("bearer")
                && (lower.contains("error=\"invalid_token\"")
                    || lower.contains("error=invalid_token"))
        })
}
