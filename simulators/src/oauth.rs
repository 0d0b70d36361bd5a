//! An OAuth 2.0 authorization server's token endpoint for the client
//! credentials grant (RFC 6749 §4.4), and the registry of the tokens it
//! issued, which [`crate::PagedApi`] consults to act as the resource server.
//!
//! `POST /oauth/token` with `Content-Type: application/x-www-form-urlencoded`:
//! - client authentication (§2.3.1): HTTP Basic with the client id and secret
//!   each `application/x-www-form-urlencoded`-encoded before base64, or
//!   `client_id` and `client_secret` in the body; using both at once is
//!   `invalid_request`; [`ClientAuth`] can restrict the accepted method;
//! - `grant_type=client_credentials` (anything else: `unsupported_grant_type`);
//! - optional `scope` (space-delimited, §3.3): a scope the client may not have
//!   is `invalid_scope`; none given grants [`OAuthConfig::default_scope`];
//! - optional `audience` (an extension used by e.g. Auth0), recorded on the token.
//!
//! Success (§5.1): `200` JSON `{"access_token", "token_type": "Bearer",
//! "expires_in", "scope"}` with `Cache-Control: no-store` and `Pragma: no-cache`.
//! Errors (§5.2): JSON `{"error", "error_description"}`, `400` except
//! `invalid_client`, which is `401` with `WWW-Authenticate: Basic`.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;
use serde_json::json;

use crate::server::{RequestLog, SimServer};

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";

/// Which client authentication methods (RFC 6749 §2.3.1) the server accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic or credentials in the request body.
    #[default]
    Any,
    /// Only HTTP Basic (what §2.3.1 says servers MUST support).
    BasicOnly,
    /// Only `client_id` / `client_secret` in the request body.
    BodyOnly,
}

/// How an [`OAuthServer`] behaves.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    pub client_id: String,
    /// The default contains `+`, `/` and `:` so that a client which does not
    /// form-urlencode the secret before base64 (§2.3.1) fails authentication.
    pub client_secret: String,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// Scope granted when the request names none.
    pub default_scope: Vec<String>,
    /// Lifetime of issued tokens, in seconds (`expires_in`).
    pub expires_in: u64,
    pub client_auth: ClientAuth,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            client_id: "portcullis-e2e".to_string(),
            client_secret: "s3cr3t+key/with:special chars".to_string(),
            scopes: vec!["alerts:read".to_string(), "events:read".to_string()],
            default_scope: vec!["alerts:read".to_string()],
            expires_in: 3600,
            client_auth: ClientAuth::Any,
        }
    }
}

/// A token the server issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: String,
    pub client_id: String,
    pub scope: Vec<String>,
    pub audience: Option<String>,
    pub expires_in: u64,
    pub issued_at: SystemTime,
    pub revoked: bool,
}

/// What the resource server learns when it looks a token up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    Valid(IssuedToken),
    Expired,
    Revoked,
    Unknown,
}

#[derive(Debug)]
struct TokenEntry {
    token: IssuedToken,
    expires_at: Instant,
}

/// The tokens one [`OAuthServer`] issued. Cloning gives another handle to the
/// same registry; [`crate::Auth::OAuth`] holds one.
#[derive(Clone, Debug, Default)]
pub struct TokenRegistry {
    inner: Arc<Mutex<TokenTable>>,
}

#[derive(Debug, Default)]
struct TokenTable {
    /// In issue order.
    order: Vec<String>,
    entries: HashMap<String, TokenEntry>,
}

impl TokenRegistry {
    /// Looks `access_token` up.
    pub fn check(&self, access_token: &str) -> TokenStatus {
        let table = self.inner.lock();
        match table.entries.get(access_token) {
            None => TokenStatus::Unknown,
            Some(entry) if entry.token.revoked => TokenStatus::Revoked,
            Some(entry) if Instant::now() >= entry.expires_at => TokenStatus::Expired,
            Some(entry) => TokenStatus::Valid(entry.token.clone()),
        }
    }

    /// Every token issued so far, oldest first.
    pub fn issued(&self) -> Vec<IssuedToken> {
        let table = self.inner.lock();
        table
            .order
            .iter()
            .filter_map(|token| table.entries.get(token))
            .map(|entry| entry.token.clone())
            .collect()
    }

    fn insert(&self, token: IssuedToken) {
        let expires_at = Instant::now() + Duration::from_secs(token.expires_in);
        let mut table = self.inner.lock();
        table.order.push(token.access_token.clone());
        table
            .entries
            .insert(token.access_token.clone(), TokenEntry { token, expires_at });
    }

    fn update(&self, access_token: Option<&str>, f: impl Fn(&mut TokenEntry)) -> bool {
        let mut table = self.inner.lock();
        match access_token {
            Some(access_token) => match table.entries.get_mut(access_token) {
                Some(entry) => {
                    f(entry);
                    true
                }
                None => false,
            },
            None => {
                table.entries.values_mut().for_each(f);
                true
            }
        }
    }
}

#[derive(Debug)]
struct OAuthState {
    config: Mutex<OAuthConfig>,
    tokens: TokenRegistry,
    token_requests: AtomicUsize,
    fail_next: AtomicUsize,
    serial: AtomicUsize,
    nonce: u64,
}

/// A running OAuth 2.0 token endpoint (see the module docs).
#[derive(Debug)]
pub struct OAuthServer {
    state: Arc<OAuthState>,
    server: SimServer,
}

impl OAuthServer {
    /// Starts the server on `127.0.0.1:0`.
    pub fn start(config: OAuthConfig) -> io::Result<Self> {
        let state = Arc::new(OAuthState {
            config: Mutex::new(config),
            tokens: TokenRegistry::default(),
            token_requests: AtomicUsize::new(0),
            fail_next: AtomicUsize::new(0),
            serial: AtomicUsize::new(0),
            nonce: random_u64(),
        });
        let router = Router::new()
            .route(TOKEN_PATH, post(token_endpoint))
            .with_state(state.clone());
        Ok(Self {
            state,
            server: SimServer::start("oauth", router)?,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The token endpoint URL (`<base>/oauth/token`).
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.server.base_url())
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// The client id the server accepts.
    pub fn client_id(&self) -> String {
        self.state.config.lock().client_id.clone()
    }

    /// The client secret the server accepts.
    pub fn client_secret(&self) -> String {
        self.state.config.lock().client_secret.clone()
    }

    /// Requests that reached the token endpoint (successful or not).
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens.issued().len()
    }

    /// Every token issued so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        self.state.tokens.issued()
    }

    /// The most recently issued access token.
    pub fn last_token(&self) -> Option<String> {
        self.state
            .tokens
            .issued()
            .pop()
            .map(|token| token.access_token)
    }

    /// The registry a resource server uses to check tokens.
    pub fn tokens(&self) -> TokenRegistry {
        self.state.tokens.clone()
    }

    /// Revokes one token (the resource server then answers `invalid_token`).
    /// `false` when the token is unknown.
    pub fn revoke(&self, access_token: &str) -> bool {
        self.state
            .tokens
            .update(Some(access_token), |entry| entry.token.revoked = true)
    }

    /// Revokes every token issued so far.
    pub fn revoke_all(&self) {
        self.state
            .tokens
            .update(None, |entry| entry.token.revoked = true);
    }

    /// Makes one token expire now. `false` when the token is unknown.
    pub fn expire(&self, access_token: &str) -> bool {
        let now = Instant::now();
        self.state
            .tokens
            .update(Some(access_token), |entry| entry.expires_at = now)
    }

    /// Makes every token issued so far expire now.
    pub fn expire_all(&self) {
        let now = Instant::now();
        self.state
            .tokens
            .update(None, |entry| entry.expires_at = now);
    }

    /// Sets `expires_in` for tokens issued from now on.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state.config.lock().expires_in = seconds;
    }

    /// The next `n` token requests fail with `500` and a JSON
    /// `{"error": "server_error"}` body (after being counted and recorded).
    pub fn fail_next_token_requests(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// The requests received so far.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
}

/// A random 64-bit value from the standard library's randomly seeded hasher.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        (
            status,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response(),
    )
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client(description: &str) -> Response {
    let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"portcullis-sim\", charset=\"UTF-8\""),
    );
    response
}

/// Decodes one `application/x-www-form-urlencoded` component (Appendix B).
fn form_decode(encoded: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&encoded.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// Client id and secret from `Authorization: Basic` (RFC 6749 §2.3.1, RFC 7617).
fn basic_credentials(value: &str) -> Result<(String, String), &'static str> {
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or("malformed Authorization")?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("unsupported authentication scheme");
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| "Basic credentials are not base64")?;
    let decoded = String::from_utf8(decoded).map_err(|_| "Basic credentials are not UTF-8")?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or("Basic credentials lack a ':'")?;
    let id = form_decode(id).ok_or("client id is not form-urlencoded UTF-8")?;
    let secret = form_decode(secret).ok_or("client secret is not form-urlencoded UTF-8")?;
    Ok((id, secret))
}

async fn token_endpoint(
    State(state): State<Arc<OAuthState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    if state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "injected failure",
        );
    }
    let config = state.config.lock().clone();

    let form_content = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_content {
        return invalid_request("the request must be application/x-www-form-urlencoded");
    }
    let mut params: HashMap<String, String> = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(&body) {
        // §3.2: parameters MUST NOT be included more than once.
        if params.insert(key.to_string(), value.into_owned()).is_some() {
            return invalid_request(&format!("parameter `{key}` repeated"));
        }
    }

    // Client authentication.
    let authorizations: Vec<&HeaderValue> = headers.get_all(header::AUTHORIZATION).iter().collect();
    if authorizations.len() > 1 {
        return invalid_request("more than one Authorization header");
    }
    let basic = match authorizations.first() {
        None => None,
        Some(value) => {
            let Ok(value) = value.to_str() else {
                return invalid_client("malformed Authorization header");
            };
            match basic_credentials(value) {
                Ok(credentials) => Some(credentials),
                Err(reason) => return invalid_client(reason),
            }
        }
    };
    let in_body = match (params.get("client_id"), params.get("client_secret")) {
        (None, None) => None,
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        // `client_id` may identify the client alongside HTTP Basic (§3.2.1).
        (Some(id), None) => match &basic {
            Some((basic_id, _)) if basic_id == id => None,
            Some(_) => return invalid_request("client_id does not match the authenticated client"),
            None => return invalid_client("client_secret missing"),
        },
        (None, Some(_)) => return invalid_request("client_secret without client_id"),
    };
    let (client_id, client_secret) = match (basic, in_body, config.client_auth) {
        (Some(_), Some(_), _) => {
            return invalid_request("more than one client authentication method used");
        }
        (None, None, _) => return invalid_client("no client authentication included"),
        (Some(_), None, ClientAuth::BodyOnly) => {
            return invalid_client("HTTP Basic client authentication is not accepted");
        }
        (None, Some(_), ClientAuth::BasicOnly) => {
            return invalid_client("client credentials in the request body are not accepted");
        }
        (Some(credentials), None, _) | (None, Some(credentials), _) => credentials,
    };
    if client_id != config.client_id || client_secret != config.client_secret {
        return invalid_client("unknown client or wrong secret");
    }

    // The grant.
    match params.get("grant_type").map(String::as_str) {
        None => return invalid_request("missing grant_type"),
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            );
        }
    }
    let requested: Option<Vec<String>> = params.get("scope").map(|scope| {
        scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    let scope = match requested {
        None => config.default_scope.clone(),
        Some(requested) => {
            if let Some(unknown) = requested.iter().find(|s| !config.scopes.contains(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("scope `{unknown}` is not available to this client"),
                );
            }
            requested
        }
    };

    let serial = state.serial.fetch_add(1, Ordering::SeqCst) + 1;
    let access_token = format!("sim-at-{serial}-{:016x}", state.nonce ^ random_u64());
    let token = IssuedToken {
        access_token: access_token.clone(),
        client_id,
        scope: scope.clone(),
        audience: params.get("audience").cloned(),
        expires_in: config.expires_in,
        issued_at: SystemTime::now(),
        revoked: false,
    };
    state.tokens.insert(token);
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": config.expires_in,
    });
    if !scope.is_empty() {
        body["scope"] = json!(scope.join(" "));
    }
    no_store((StatusCode::OK, axum::Json(body)).into_response())
}
