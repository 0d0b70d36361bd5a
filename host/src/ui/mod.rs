//! The admin panel at `/`: server-rendered HTML (maud, every value escaped) with a small
//! script served as a file, both embedded in the binary. Sign-in with an API token starts
//! a server-side session ([`session`]); every state-changing form carries the session's
//! CSRF token; the token's role decides what is shown and allowed (a viewer gets no
//! switches or forms). Pages:
//!
//! - [`catalogue`] — every connector of the org with health, filters, one-click toggle
//!   with undo, connection test, live refresh (`/catalogue.json`);
//! - [`connector`] — one connector: config form generated from the plugin's JSON Schema,
//!   grants vs requested hosts, schedule, credentials (write-only), plugin upgrade with the
//!   capability diff, revisions and audit trail;
//! - [`plugins`] — installed plugins, capabilities in plain words, upload, unload.
//!
//! Every response carries a CSP without inline script, `frame-ancestors 'none'`,
//! `X-Frame-Options: DENY` and `nosniff`.

pub mod activity;
pub mod catalogue;
pub mod connector;
pub mod credentials;
pub mod layout;
pub mod plugins;
pub mod schema_form;
pub mod session;
pub mod words;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::AppState;
use crate::management::ServiceError;
use layout::{Section, csrf_field, notice, page};
pub use session::{SessionStore, UiSession};

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Content-Security-Policy of every panel response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The panel's routes, to merge into the API router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(catalogue::page_handler))
        .route("/catalogue.json", get(catalogue::json_handler))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/orgs", get(orgs_page))
        .route("/org", post(pick_org))
        .route("/connectors/{id}", get(connector::page_handler))
        .route("/connectors/{id}/enabled", post(catalogue::toggle_handler))
        .route("/connectors/{id}/test", post(catalogue::test_handler))
        .route("/connectors/{id}/config", post(connector::config_handler))
        .route("/connectors/{id}/access", post(connector::access_handler))
        .route(
            "/connectors/{id}/credentials/{slot}",
            post(credentials::set_handler),
        )
        .route(
            "/connectors/{id}/upgrade",
            get(connector::upgrade_preview).post(connector::upgrade_handler),
        )
        .route(
            "/plugins",
            get(plugins::page_handler)
                .post(plugins::upload_handler)
                .layer(DefaultBodyLimit::max(plugins::MAX_UPLOAD)),
        )
        .route("/plugins/{id}/unload", post(plugins::unload_handler))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
        .into_response()
}

async fn app_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
        .into_response()
}

/// An HTML page response.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A failed panel action, shown as a page (or JSON to the panel's scripts).
#[derive(Debug)]
pub struct UiError {
    status: StatusCode,
    message: String,
    json: bool,
}

impl UiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        UiError {
            status,
            message: message.into(),
            json: false,
        }
    }

    /// The CSRF token was missing or wrong, or the origin was foreign.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form expired or did not come from this panel (CSRF check failed). Reload the page and try again.",
        )
    }

    /// Answer in JSON instead of a page.
    pub fn json(mut self, json: bool) -> Self {
        self.json = json;
        self
    }
}

impl From<ServiceError> for UiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
            ServiceError::Invalid { .. } | ServiceError::PluginRefused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::PluginCall(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            ServiceError::Store(_) => "storage error; see the server log".to_string(),
            _ => e.to_string(),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "panel action failed");
        }
        UiError::new(status, message)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if self.json {
            return (
                self.status,
                axum::Json(serde_json::json!({"error": self.message})),
            )
                .into_response();
        }
        html_response(
            self.status,
            page(
                "Something went wrong",
                None,
                Section::None,
                html! {
                    (notice("error", &self.message))
                    p { a href="/" { "Back to the catalogue" } }
                },
            ),
        )
    }
}

/// Check the CSRF token and origin of a state-changing request.
pub fn check_csrf(
    s: &UiSession,
    headers: &axum::http::HeaderMap,
    provided: Option<&str>,
) -> Result<(), UiError> {
    let header_token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    let token = provided
        .filter(|t| !t.is_empty())
        .or(header_token)
        .unwrap_or("");
    if session::same_origin(headers) && s.csrf_ok(token) {
        Ok(())
    } else {
        Err(UiError::csrf().json(session::wants_json(headers)))
    }
}

/// No organisation picked yet (the platform admin): answers with the org picker.
#[derive(Debug)]
pub struct PickOrg;

impl IntoResponse for PickOrg {
    fn into_response(self) -> Response {
        Redirect::to("/orgs").into_response()
    }
}

/// The org in view, or the org picker for a platform admin who has not picked one.
pub fn org_of(s: &UiSession) -> Result<&str, PickOrg> {
    s.org.as_deref().ok_or(PickOrg)
}

/// In a handler answering `Result<Response, UiError>`: the org in view as a `String`, or
/// return the org picker ([`PickOrg`]) from the handler.
macro_rules! org_or_pick {
    ($session:expr) => {
        match $crate::ui::org_of(&$session) {
            Ok(o) => o.to_string(),
            Err(pick) => return Ok(axum::response::IntoResponse::into_response(pick)),
        }
    };
}
pub(crate) use org_or_pick;

// ----- sign-in, sign-out, organisation picker ---------------------------------------------

fn login_markup(error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        Section::None,
        html! {
            @if let Some(e) = error { (notice("error", e)) }
            form.card method="post" action="/login" {
                p { "Sign in with an API token. The panel keeps it on the server in a session; it is never stored in your browser." }
                label for="token" { "API token" }
                input #token type="password" name="token" autocomplete="off" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

async fn login_page(s: Result<UiSession, session::SignInRequired>) -> Response {
    if s.is_ok() {
        return Redirect::to("/").into_response();
    }
    html_response(StatusCode::OK, login_markup(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !session::same_origin(&headers) {
        return UiError::csrf().into_response();
    }
    let Ok(Form(form)) = form else {
        return html_response(
            StatusCode::BAD_REQUEST,
            login_markup(Some("Enter an API token.")),
        );
    };
    let token = form.token.trim();
    let principal = match state.service().authenticate(token) {
        Ok(p) => p,
        Err(_) => {
            tracing::info!("panel sign-in refused");
            return html_response(
                StatusCode::UNAUTHORIZED,
                login_markup(Some("That token is not valid.")),
            );
        }
    };
    let id = match state.0.ui_sessions.create(token, principal.org.clone()) {
        Ok(id) => id,
        Err(e) => {
            return UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
    };
    tracing::info!(token_id = %principal.token_id, "panel sign-in");
    let target = if principal.org.is_none() {
        "/orgs"
    } else {
        "/"
    };
    let mut resp = Redirect::to(target).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(&id, session::is_https(&headers)),
    );
    resp
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    s: UiSession,
    headers: axum::http::HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    check_csrf(&s, &headers, Some(&form.csrf))?;
    state.0.ui_sessions.remove(&s.cookie);
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    Ok(resp)
}

async fn orgs_page(State(state): State<AppState>, s: UiSession) -> Result<Response, UiError> {
    let orgs = state.service().list_orgs(&s.principal)?;
    let body = html! {
        @if orgs.is_empty() {
            (notice("info", "There are no organisations yet. Create one with the API (POST /v1/orgs)."))
        } @else {
            p { "The platform admin token belongs to no organisation. Pick the one to work in." }
            form.card method="post" action="/org" {
                (csrf_field(&s))
                fieldset {
                    legend { "Organisation" }
                    @for o in &orgs {
                        label.choice {
                            input type="radio" name="org" value=(o.id) checked[s.org.as_deref() == Some(o.id.as_str())] required;
                            " " (o.name) " " span.muted { "(" (o.id) ")" }
                        }
                    }
                }
                button type="submit" { "Open catalogue" }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Organisations", Some(&s), Section::Orgs, body),
    ))
}

#[derive(Deserialize)]
struct OrgForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    org: String,
}

async fn pick_org(
    State(state): State<AppState>,
    s: UiSession,
    headers: axum::http::HeaderMap,
    Form(form): Form<OrgForm>,
) -> Result<Response, UiError> {
    check_csrf(&s, &headers, Some(&form.csrf))?;
    if !s.principal.is_platform_admin() {
        return Err(UiError::new(
            StatusCode::FORBIDDEN,
            "only the platform admin token picks an organisation",
        ));
    }
    let org = state.service().get_org(&s.principal, &form.org)?;
    state.0.ui_sessions.set_org(&s.cookie, Some(org.id));
    Ok(Redirect::to("/").into_response())
}
