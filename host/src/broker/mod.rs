//! The HTTP broker: the only way out of the sandbox.
//!
//! Every request a plugin makes passes [`HttpBroker::send`], which, in order:
//! 1. spends one unit of the call's request budget;
//! 2. checks the request (absolute http(s) URL without user info; no plugin-set
//!    `Authorization`, `Proxy-Authorization`, `Cookie`, `Host` or hop-by-hop headers);
//! 3. asks the [`CapabilityGranter`] whether the URL is declared **and** granted;
//! 4. checks the credential slot is declared, bound, of an accepted kind and bound to the
//!    request's host;
//! 5. checks the destination address against the [`IpPolicy`] — literal IPs here, names
//!    after DNS resolution inside the connector's resolver (so the checked address is the
//!    one connected to);
//! 6. injects the credential, sends with a timeout bounded by the call's deadline, reads
//!    at most the response-size cap, follows redirects itself (each hop re-checked, the
//!    credential re-applied only where it is bound), refreshes an OAuth token once on
//!    `invalid_token`;
//! 7. strips every secret from what the plugin can read back;
//! 8. records the response's status and rate-limit headers (or the timeout/transport
//!    failure) into the connector's [`UpstreamRecorder`], so health sees the upstream
//!    itself rather than through the plugin.

pub mod credentials;
pub mod host_pattern;
pub mod ip_policy;
pub mod oauth;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use url::Url;

use crate::capability_granter::CapabilityGranter;
use crate::health::{UpstreamFailure, UpstreamRecorder, UpstreamResponse};
use credentials::{ApiKeyPlacement, Credential, CredentialSecret, CredentialSource};
use host_pattern::origin_of;
use ip_policy::IpPolicy;
use oauth::{AccessToken, OAuthTokenCache, TokenRequest};

/// HTTP methods a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
}

impl Method {
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Options => reqwest::Method::OPTIONS,
        }
    }
}

/// A request as a plugin asked for it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers set by the plugin.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Vec<u8>>,
    /// Credential slot to authenticate with.
    pub credential: Option<String>,
    /// Plugin-requested timeout (capped by the call deadline).
    pub timeout: Option<Duration>,
}

/// What the plugin gets back.
#[derive(Debug, Clone)]
pub struct InboundResponse {
    /// Status code.
    pub status: u16,
    /// Headers (secrets redacted).
    pub headers: Vec<(String, String)>,
    /// Body (secrets redacted).
    pub body: Vec<u8>,
    /// Final URL after redirects, without injected credentials.
    pub url: String,
}

/// Why the broker did not deliver a response. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// Refused by policy.
    #[error("denied: {0}")]
    Denied(String),
    /// Malformed request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The credential could not be applied.
    #[error("credential: {0}")]
    Credential(String),
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The body exceeded the cap (bytes).
    #[error("response larger than {0} bytes")]
    TooLarge(u64),
    /// The per-call request budget is spent.
    #[error("request budget of {0} per call exhausted")]
    BudgetExhausted(u32),
    /// Connection or protocol failure.
    #[error("transport: {0}")]
    Transport(String),
}

/// Limits and policy of the broker (host-wide).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address policy.
    pub ip_policy: IpPolicy,
    /// Largest response body delivered to a plugin.
    pub max_response_bytes: u64,
    /// Most redirects followed for one request.
    pub max_redirects: u32,
    /// Connect timeout (also capped by the call deadline).
    pub connect_timeout: Duration,
    /// Timeout of one request when the plugin sets none (capped by the deadline).
    pub default_request_timeout: Duration,
    /// `User-Agent` sent when the plugin sets none.
    pub user_agent: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            ip_policy: IpPolicy::default(),
            max_response_bytes: 16 * 1024 * 1024,
            max_redirects: 5,
            connect_timeout: Duration::from_secs(10),
            default_request_timeout: Duration::from_secs(30),
            user_agent: concat!("portcullis/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Requests left in one plugin call.
#[derive(Debug)]
pub struct RequestBudget {
    cap: u32,
    used: AtomicU32,
}

impl RequestBudget {
    /// A budget of `cap` requests.
    pub fn new(cap: u32) -> Self {
        RequestBudget {
            cap,
            used: AtomicU32::new(0),
        }
    }

    /// Requests made so far.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }

    fn spend(&self) -> Result<(), BrokerError> {
        let prev = self.used.fetch_add(1, Ordering::Relaxed);
        if prev >= self.cap {
            self.used.store(self.cap, Ordering::Relaxed);
            return Err(BrokerError::BudgetExhausted(self.cap));
        }
        Ok(())
    }
}

/// Everything the broker needs to know about the calling connector.
pub struct EgressContext<'a> {
    /// Declared ∩ granted.
    pub granter: &'a CapabilityGranter,
    /// Where credentials come from.
    pub credentials: &'a dyn CredentialSource,
    /// The call's deadline.
    pub deadline: Instant,
    /// The call's request budget.
    pub budget: &'a RequestBudget,
    /// Where each response's status and rate-limit headers are recorded (health).
    pub upstream: Option<&'a UpstreamRecorder>,
}

/// Marker error raised by the resolver when an address is refused.
#[derive(Debug)]
struct EgressDenied(String);

impl std::fmt::Display for EgressDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for EgressDenied {}

/// DNS resolution followed by the IP policy, so the address checked is the one used.
#[derive(Debug, Clone, Copy)]
struct PolicyResolver {
    policy: IpPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> {
                    Box::new(std::io::Error::other(format!("cannot resolve {host}: {e}")))
                })?
                .collect();
            for a in &addrs {
                if let Err(class) = policy.check(a.ip()) {
                    return Err(Box::new(EgressDenied(format!(
                        "{host} resolves to {} ({} address), which this host does not allow",
                        a.ip(),
                        class.label()
                    )))
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            if addrs.is_empty() {
                return Err(
                    Box::new(std::io::Error::other(format!("{host} has no addresses")))
                        as Box<dyn std::error::Error + Send + Sync>,
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Describe a reqwest error without echoing URLs (which may carry injected keys).
pub(crate) fn describe_transport_error(e: &reqwest::Error) -> String {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    let mut parts = Vec::new();
    while let Some(err) = src {
        if let Some(denied) = err.downcast_ref::<EgressDenied>() {
            return format!("denied: {denied}");
        }
        if !std::ptr::eq(err as *const _ as *const u8, e as *const _ as *const u8) {
            parts.push(err.to_string());
        }
        src = err.source();
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "error reading body"
    } else if e.is_request() {
        "request failed"
    } else {
        "HTTP error"
    };
    if parts.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", parts.join(": "))
    }
}

fn egress_denied_in(e: &reqwest::Error) -> Option<String> {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = src {
        if let Some(denied) = err.downcast_ref::<EgressDenied>() {
            return Some(denied.0.clone());
        }
        src = err.source();
    }
    None
}

const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-connection",
];

/// The broker. Cheap to clone; one per host process.
#[derive(Clone)]
pub struct HttpBroker {
    client: reqwest::Client,
    config: Arc<BrokerConfig>,
    tokens: Arc<OAuthTokenCache>,
}

impl std::fmt::Debug for HttpBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBroker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The broker could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct BrokerSetupError(String);

impl HttpBroker {
    /// Build a broker.
    pub fn new(config: BrokerConfig) -> Result<Self, BrokerSetupError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: config.ip_policy,
            }))
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BrokerSetupError(e.to_string()))?;
        Ok(HttpBroker {
            client,
            config: Arc::new(config),
            tokens: Arc::new(OAuthTokenCache::new()),
        })
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The shared OAuth token cache.
    pub fn token_cache(&self) -> &Arc<OAuthTokenCache> {
        &self.tokens
    }

    fn check_literal_ip(&self, url: &Url) -> Result<(), BrokerError> {
        let ip: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        };
        if let Some(ip) = ip
            && let Err(class) = self.config.ip_policy.check(ip)
        {
            return Err(BrokerError::Denied(format!(
                "{} is a {} address, which this host does not allow",
                origin_of(url),
                class.label()
            )));
        }
        Ok(())
    }

    /// Send one plugin request through the policy. See the module docs for the steps.
    pub async fn send(
        &self,
        ctx: &EgressContext<'_>,
        req: OutboundRequest,
    ) -> Result<InboundResponse, BrokerError> {
        ctx.budget.spend()?;
        let mut url = Url::parse(&req.url)
            .map_err(|e| BrokerError::InvalidRequest(format!("url {:?}: {e}", req.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BrokerError::InvalidRequest(format!(
                "url scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BrokerError::InvalidRequest(
                "credentials in the URL are not allowed; use a credential slot".into(),
            ));
        }
        url.set_fragment(None);
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
                return Err(BrokerError::Denied(format!(
                    "header {name:?} may not be set by a plugin; the host authenticates requests through credential slots"
                )));
            }
            let hn = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| BrokerError::InvalidRequest(format!("bad header name {name:?}")))?;
            let hv = HeaderValue::from_str(value).map_err(|_| {
                BrokerError::InvalidRequest(format!("bad value for header {name:?}"))
            })?;
            headers.append(hn, hv);
        }
        ctx.granter
            .check_url(&url)
            .map_err(|d| BrokerError::Denied(d.0))?;
        let credential = match &req.credential {
            None => None,
            Some(slot) => {
                ctx.granter
                    .check_slot(slot, None)
                    .map_err(|d| BrokerError::Denied(d.0))?;
                let cred = ctx
                    .credentials
                    .credential_for_slot(slot)
                    .await
                    .map_err(|e| BrokerError::Credential(e.to_string()))?
                    .ok_or_else(|| {
                        BrokerError::Credential(format!(
                            "no credential is bound to slot {slot:?} for this connector"
                        ))
                    })?;
                ctx.granter
                    .check_slot(slot, Some(cred.secret.kind()))
                    .map_err(|d| BrokerError::Denied(d.0))?;
                if !cred.bound_to(&url) {
                    return Err(BrokerError::Denied(format!(
                        "the credential in slot {slot:?} is not bound to {}",
                        origin_of(&url)
                    )));
                }
                Some(cred)
            }
        };
        self.check_literal_ip(&url)?;

        let started = Instant::now();
        let result = self
            .send_following_redirects(ctx, req, url, headers, credential.as_deref())
            .await;
        match &result {
            Ok(r) => tracing::debug!(
                status = r.status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "broker request done"
            ),
            Err(e) => tracing::debug!(error = %e, "broker request failed"),
        }
        if let Some(rec) = ctx.upstream {
            let at = Instant::now();
            match &result {
                Ok(r) => rec.record(UpstreamResponse::from_headers(
                    r.status,
                    r.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
                    at,
                )),
                Err(BrokerError::Timeout) => {
                    rec.record(UpstreamResponse::failed(UpstreamFailure::Timeout, at))
                }
                Err(BrokerError::Transport(_)) => {
                    rec.record(UpstreamResponse::failed(UpstreamFailure::Transport, at))
                }
                // Refused before reaching the upstream: nothing the upstream said.
                Err(_) => {}
            }
        }
        result
    }

    async fn send_following_redirects(
        &self,
        ctx: &EgressContext<'_>,
        req: OutboundRequest,
        mut url: Url,
        headers: HeaderMap,
        credential: Option<&Credential>,
    ) -> Result<InboundResponse, BrokerError> {
        let mut method = req.method;
        let mut body = req.body;
        let mut hops = 0u32;
        let mut refreshed = false;
        let per_request = req
            .timeout
            .unwrap_or(self.config.default_request_timeout)
            .min(
                self.config
                    .default_request_timeout
                    .max(Duration::from_secs(1))
                    * 4,
            );
        loop {
            // Credentials go only where they are bound; on a redirect elsewhere they drop.
            let cred_here = credential.filter(|c| c.bound_to(&url));
            let token = match cred_here {
                Some(c) => self.oauth_token(c).await?,
                None => None,
            };
            let now = Instant::now();
            if now >= ctx.deadline {
                return Err(BrokerError::Timeout);
            }
            let timeout = per_request.min(ctx.deadline - now);
            let (status, resp_headers, resp_body) = self
                .send_once(
                    method,
                    &url,
                    &headers,
                    body.clone(),
                    cred_here,
                    token.as_ref(),
                    timeout,
                )
                .await?;

            if status == 401
                && !refreshed
                && let (Some(c), Some(tok)) = (cred_here, token.as_ref())
                && oauth::is_invalid_token(&resp_headers)
            {
                refreshed = true;
                self.tokens.invalidate(&c.cache_key, tok).await;
                ctx.budget.spend()?;
                continue;
            }

            if matches!(status, 301 | 302 | 303 | 307 | 308)
                && let Some(loc) = resp_headers
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
            {
                hops += 1;
                if hops > self.config.max_redirects {
                    return Err(BrokerError::Transport(format!(
                        "more than {} redirects",
                        self.config.max_redirects
                    )));
                }
                let next = url.join(loc).map_err(|_| {
                    BrokerError::Transport("redirect with an invalid Location".into())
                })?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(BrokerError::Denied(format!(
                        "redirect to a {:?} URL",
                        next.scheme()
                    )));
                }
                ctx.granter
                    .check_url(&next)
                    .map_err(|d| BrokerError::Denied(format!("redirect refused: {}", d.0)))?;
                self.check_literal_ip(&next).map_err(|e| match e {
                    BrokerError::Denied(m) => BrokerError::Denied(format!("redirect refused: {m}")),
                    other => other,
                })?;
                ctx.budget.spend()?;
                if (301..=303).contains(&status) && method != Method::Head {
                    method = Method::Get;
                    body = None;
                }
                url = next;
                continue;
            }

            let secrets = secrets_of(cred_here, token.as_ref());
            let headers_out = resp_headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        redact_str(&String::from_utf8_lossy(v.as_bytes()), &secrets),
                    )
                })
                .collect();
            return Ok(InboundResponse {
                status,
                headers: headers_out,
                body: redact_bytes(resp_body, &secrets),
                url: url.to_string(),
            });
        }
    }

    async fn oauth_token(&self, cred: &Credential) -> Result<Option<AccessToken>, BrokerError> {
        let CredentialSecret::OAuth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scopes,
            audience,
        } = &cred.secret
        else {
            return Ok(None);
        };
        // The token endpoint is the credential's own; the IP policy applies to it too.
        self.check_literal_ip(token_url)
            .map_err(|e| BrokerError::Credential(format!("token endpoint: {e}")))?;
        self.tokens
            .token(
                &cred.cache_key,
                &self.client,
                &TokenRequest {
                    token_url,
                    client_id,
                    client_secret,
                    scopes,
                    audience: audience.as_deref(),
                },
            )
            .await
            .map(Some)
            .map_err(|e| match e {
                // RFC 6749 §5.2 refusals (invalid_client, invalid_scope, ...): the code,
                // never the secret.
                oauth::TokenError::Refused { .. } => {
                    BrokerError::Credential(format!("AUTH_FAILED: {e}"))
                }
                oauth::TokenError::Failed(_) => BrokerError::Credential(e.to_string()),
            })
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_once(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<Vec<u8>>,
        cred: Option<&Credential>,
        token: Option<&AccessToken>,
        timeout: Duration,
    ) -> Result<(u16, HeaderMap, Vec<u8>), BrokerError> {
        let mut wire_url = url.clone();
        let mut wire_headers = headers.clone();
        if let Some(c) = cred {
            inject(c, token, &mut wire_url, &mut wire_headers)?;
        }
        let mut rb = self
            .client
            .request(method.as_reqwest(), wire_url)
            .headers(wire_headers);
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let cap = self.config.max_response_bytes;
        let fut = async {
            let mut resp = rb.send().await.map_err(|e| map_reqwest(&e))?;
            let status = resp.status().as_u16();
            if let Some(len) = resp.content_length()
                && len > cap
            {
                return Err(BrokerError::TooLarge(cap));
            }
            let headers = std::mem::take(resp.headers_mut());
            let mut buf = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| map_reqwest(&e))? {
                if (buf.len() + chunk.len()) as u64 > cap {
                    return Err(BrokerError::TooLarge(cap));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok((status, headers, buf))
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(BrokerError::Timeout),
        }
    }

    /// A direct request with no plugin policy (host-internal use such as benchmarks'
    /// baselines). Still subject to the IP policy through the resolver.
    pub fn raw_client(&self) -> &reqwest::Client {
        &self.client
    }
}

fn map_reqwest(e: &reqwest::Error) -> BrokerError {
    if let Some(msg) = egress_denied_in(e) {
        return BrokerError::Denied(msg);
    }
    if e.is_timeout() {
        return BrokerError::Timeout;
    }
    BrokerError::Transport(describe_transport_error(e))
}

fn inject(
    cred: &Credential,
    token: Option<&AccessToken>,
    url: &mut Url,
    headers: &mut HeaderMap,
) -> Result<(), BrokerError> {
    let sensitive = |s: String| -> Result<HeaderValue, BrokerError> {
        let mut v = HeaderValue::from_str(&s).map_err(|_| {
            BrokerError::Credential("credential contains characters not allowed in a header".into())
        })?;
        v.set_sensitive(true);
        Ok(v)
    };
    match &cred.secret {
        CredentialSecret::Bearer { token } => {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                sensitive(format!("Bearer {}", token.expose_secret()))?,
            );
        }
        CredentialSecret::OAuth2ClientCredentials { .. } => {
            let tok = token
                .ok_or_else(|| BrokerError::Credential("no OAuth access token available".into()))?;
            headers.insert(
                reqwest::header::AUTHORIZATION,
                sensitive(format!("Bearer {}", tok.token.expose_secret()))?,
            );
        }
        CredentialSecret::ApiKey { key, placement } => match placement {
            ApiKeyPlacement::Header { name, prefix } => {
                let hn = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    BrokerError::Credential(format!("bad api-key header name {name:?}"))
                })?;
                headers.insert(
                    hn,
                    sensitive(format!(
                        "{}{}",
                        prefix.as_deref().unwrap_or(""),
                        key.expose_secret()
                    ))?,
                );
            }
            ApiKeyPlacement::Query { name } => {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != name)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                url.query_pairs_mut()
                    .clear()
                    .extend_pairs(pairs)
                    .append_pair(name, key.expose_secret());
            }
        },
        CredentialSecret::Basic { username, password } => {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose_secret()));
            headers.insert(
                reqwest::header::AUTHORIZATION,
                sensitive(format!("Basic {encoded}"))?,
            );
        }
    }
    Ok(())
}

/// Every string that must not reach the plugin for this request.
fn secrets_of(cred: Option<&Credential>, token: Option<&AccessToken>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = cred {
        for s in c.secret.secret_values() {
            out.push(s.to_string());
            out.push(url::form_urlencoded::byte_serialize(s.as_bytes()).collect());
        }
        if let CredentialSecret::Basic { username, password } = &c.secret {
            out.push(
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose_secret())),
            );
        }
    }
    if let Some(t) = token {
        out.push(t.token.expose_secret().to_string());
    }
    out.retain(|s| s.len() >= 4);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

const REDACTED: &str = "[REDACTED]";

fn redact_str(s: &str, secrets: &[String]) -> String {
    let mut out = s.to_string();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}

fn redact_bytes(mut body: Vec<u8>, secrets: &[String]) -> Vec<u8> {
    for secret in secrets {
        let needle = secret.as_bytes();
        if needle.is_empty() || body.len() < needle.len() {
            continue;
        }
        if !body.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            if body[i..].starts_with(needle) {
                out.extend_from_slice(REDACTED.as_bytes());
                i += needle.len();
            } else {
                out.push(body[i]);
                i += 1;
            }
        }
        body = out;
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_all_occurrences() {
        let secrets = vec!["s3cret-token".to_string()];
        let body = b"a s3cret-token b s3cret-token".to_vec();
        assert_eq!(
            redact_bytes(body, &secrets),
            b"a [REDACTED] b [REDACTED]".to_vec()
        );
        assert_eq!(redact_str("x s3cret-token", &secrets), "x [REDACTED]");
    }

    #[test]
    fn budget_stops_at_cap() {
        let b = RequestBudget::new(2);
        assert!(b.spend().is_ok());
        assert!(b.spend().is_ok());
        assert_eq!(b.spend(), Err(BrokerError::BudgetExhausted(2)));
        assert_eq!(b.used(), 2);
    }
}
