//! Browser sessions of the admin panel: a server-side table keyed by a random id that
//! lives only in an `HttpOnly; SameSite=Strict` cookie, a synchronizer CSRF token per
//! session, and the [`UiSession`] extractor that re-authenticates the session's API token
//! on every request (a revoked token ends its sessions at once).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;

use crate::api::AppState;
use crate::management::model::Principal;

/// Name of the session cookie.
pub const COOKIE: &str = "portcullis_session";
/// A session unused this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
/// A session older than this is gone, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// At most this many sessions are kept; the least recently used go first.
pub const MAX_SESSIONS: usize = 10_000;

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The OS gave no randomness.
    #[error("no randomness for a session id: {0}")]
    Randomness(String),
}

/// One signed-in browser.
struct Session {
    /// The API token it signed in with (re-checked on every request; zeroised on drop).
    token: SecretString,
    /// Synchronizer token for state-changing requests.
    csrf: String,
    /// The organisation the platform admin picked (org tokens always use their own).
    org: Option<String>,
    created: Instant,
    last_seen: Instant,
}

/// The server-side session table (in memory: a restart signs everyone out).
#[derive(Default)]
pub struct SessionStore {
    /// Keyed by sha256 of the cookie value, so the table never holds a usable cookie.
    sessions: parking_lot::Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("sessions", &self.sessions.lock().len())
            .finish()
    }
}

fn random_hex(bytes: usize) -> Result<String, SessionError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| SessionError::Randomness(e.to_string()))?;
    Ok(hex::encode(buf))
}

fn key_of(cookie: &str) -> String {
    hex::encode(sha2::Sha256::digest(cookie.as_bytes()))
}

/// Compare two strings in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SessionStore {
    /// Start a session for `token`; returns the cookie value (shown to no one but the
    /// browser).
    pub fn create(&self, token: &str, org: Option<String>) -> Result<String, SessionError> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let now = Instant::now();
        let mut map = self.sessions.lock();
        map.retain(|_, s| Self::alive(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            key_of(&id),
            Session {
                token: SecretString::from(token.to_string()),
                csrf,
                org,
                created: now,
                last_seen: now,
            },
        );
        Ok(id)
    }

    fn alive(s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < IDLE_TIMEOUT && now.duration_since(s.created) < MAX_AGE
    }

    /// End a session.
    pub fn remove(&self, cookie: &str) {
        self.sessions.lock().remove(&key_of(cookie));
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    /// No sessions at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Token, CSRF token and picked org of a live session (refreshing its idle timer).
    fn touch(&self, cookie: &str) -> Option<(SecretString, String, Option<String>)> {
        let now = Instant::now();
        let mut map = self.sessions.lock();
        let key = key_of(cookie);
        let s = map.get_mut(&key)?;
        if !Self::alive(s, now) {
            map.remove(&key);
            return None;
        }
        s.last_seen = now;
        Some((s.token.clone(), s.csrf.clone(), s.org.clone()))
    }

    /// Remember the organisation the platform admin works in.
    pub fn set_org(&self, cookie: &str, org: Option<String>) {
        if let Some(s) = self.sessions.lock().get_mut(&key_of(cookie)) {
            s.org = org;
        }
    }
}

/// `Set-Cookie` for a new session. `secure` adds `Secure` (when the panel is reached over
/// HTTPS through a proxy that says so).
pub fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        MAX_AGE.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("portcullis_session=; Path=/; Max-Age=0"))
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("portcullis_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The request came over HTTPS (as a reverse proxy reports it).
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The session cookie's value, if the request has one.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A browser request that may change state must come from the panel's own origin when
/// the browser says where it comes from (`Origin`), on top of the CSRF token.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

/// A signed-in request: who it is, its CSRF token and the organisation it works in.
pub struct UiSession {
    /// The cookie value (to end or update the session).
    pub cookie: String,
    /// Who.
    pub principal: Principal,
    /// CSRF token to put in every form.
    pub csrf: String,
    /// The organisation in view: the token's own, or the one the platform admin picked.
    pub org: Option<String>,
}

impl UiSession {
    /// Whether `provided` is this session's CSRF token.
    pub fn csrf_ok(&self, provided: &str) -> bool {
        constant_time_eq(&self.csrf, provided)
    }
}

/// Not signed in: pages send the browser to the sign-in page; JSON callers get 401.
#[derive(Debug)]
pub struct SignInRequired {
    wants_json: bool,
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        let mut resp = if self.wants_json {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": "sign in first"})),
            )
                .into_response()
        } else {
            Redirect::to("/login").into_response()
        };
        resp.headers_mut()
            .insert(header::SET_COOKIE, clear_cookie());
        resp
    }
}

/// The caller wants JSON (the panel's scripts), not a page.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

impl FromRequestParts<AppState> for UiSession {
    type Rejection = SignInRequired;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let reject = SignInRequired {
            wants_json: wants_json(&parts.headers),
        };
        let Some(cookie) = cookie_value(&parts.headers) else {
            return Err(reject);
        };
        let sessions = &state.0.ui_sessions;
        let Some((token, csrf, picked)) = sessions.touch(&cookie) else {
            return Err(reject);
        };
        let principal = match state.service().authenticate(token.expose_secret()) {
            Ok(p) => p,
            Err(_) => {
                sessions.remove(&cookie);
                return Err(reject);
            }
        };
        let org = principal.org.clone().or(picked);
        Ok(UiSession {
            cookie,
            principal,
            csrf,
            org,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others_and_must_look_like_an_id() {
        let id = "a".repeat(64);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE}={id}; y=2"))
                .unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some(id.as_str()));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("portcullis_session=../../etc"),
        );
        assert_eq!(cookie_value(&h), None);
    }

    #[test]
    fn sessions_are_keyed_by_hash_and_removable() {
        let store = SessionStore::default();
        let Ok(id) = store.create("tok", None) else {
            panic!("randomness")
        };
        assert!(store.touch(&id).is_some());
        assert!(!store.sessions.lock().contains_key(&id));
        store.remove(&id);
        assert!(store.touch(&id).is_none());
    }

    #[test]
    fn csrf_compare() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }

    #[test]
    fn origin_must_match_host_when_present() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
