//! The admin panel through the router (`oneshot`): sign-in and its cookie, security
//! headers, CSRF rejection, role-based rendering, escaping of hostile names, the catalogue
//! without JavaScript, the generated config form with inline errors, sign-out.

use std::collections::HashMap;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use portcullis::api::{AppState, router};
use serde_json::json;
use tower::ServiceExt;

use crate::app::{ADMIN, app, call, call_as, connector_body};

pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

/// One browser-like request: cookie, form body, optional extra headers.
pub async fn browse(
    state: &AppState,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
    extra: &[(&str, &str)],
) -> Page {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:8080");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, format!("portcullis_session={c}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = match form {
        Some(f) => req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(serde_urlencoded_pairs(f))),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A signed-in `GET` of a page.
pub async fn get_page(state: &AppState, uri: &str, cookie: &str) -> Page {
    browse(state, "GET", uri, Some(cookie), None, &[]).await
}

/// A signed-in form `POST`.
pub async fn post_form(state: &AppState, uri: &str, cookie: &str, form: &[(&str, &str)]) -> Page {
    browse(state, "POST", uri, Some(cookie), Some(form), &[]).await
}

fn serde_urlencoded_pairs(f: &[(&str, &str)]) -> String {
    f.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Sign in with `token`; the session cookie's value and the raw `Set-Cookie` header.
pub async fn sign_in(state: &AppState, token: &str) -> (String, String) {
    let p = browse(
        state,
        "POST",
        "/login",
        None,
        Some(&[("token", token)]),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let set = p
        .headers
        .get(header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    let value = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("portcullis_session=")
        .unwrap()
        .to_string();
    (value, set)
}

/// The CSRF token in a rendered page.
pub fn csrf_in(body: &str) -> String {
    let at = body.find("name=\"_csrf\" value=\"").expect("a CSRF field");
    let rest = &body[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

struct Org {
    state: AppState,
    tokens: HashMap<&'static str, String>,
    connectors: Vec<String>,
}

async fn org(dir: &Path, names: &[&str]) -> Org {
    let state = app(dir).await;
    let r = call(
        &state,
        "POST",
        "/v1/orgs",
        Some(ADMIN),
        Some(json!({"id": "acme", "name": "Acme"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let mut tokens = HashMap::new();
    for role in ["operator", "viewer"] {
        let r = call(
            &state,
            "POST",
            "/v1/orgs/acme/tokens",
            Some(ADMIN),
            Some(json!({"name": format!("{role} token"), "role": role})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        tokens.insert(role, r.body["token"].as_str().unwrap().to_string());
    }
    // The credential `connector_body` binds must exist first.
    let r = call(
        &state,
        "PUT",
        "/v1/orgs/acme/credentials/example-token",
        Some(ADMIN),
        Some(json!({"kind": "bearer", "token": "example-secret-token-value", "hosts": ["https://api.example.com"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let mut connectors = Vec::new();
    for n in names {
        let mut body = connector_body(n);
        body["enabled"] = json!(true);
        let r = call(
            &state,
            "POST",
            "/v1/orgs/acme/connectors",
            Some(ADMIN),
            Some(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        connectors.push(r.body["id"].as_str().unwrap().to_string());
    }
    Org {
        state,
        tokens,
        connectors,
    }
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_cookie_and_sign_out_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &["feed"]).await;

    let p = browse(&o.state, "GET", "/", None, None, &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), "/login");

    let p = browse(
        &o.state,
        "POST",
        "/login",
        None,
        Some(&[("token", "wrong-token")]),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.body.contains("not valid"));
    assert!(p.headers.get(header::SET_COOKIE).is_none());

    let token = &o.tokens["operator"];
    let (cookie, set) = sign_in(&o.state, token).await;
    assert_eq!(cookie.len(), 64);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set} lacks {flag}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP: no Secure flag ({set})"
    );
    assert!(
        !set.contains(token.as_str()),
        "the cookie is a session id, not the token"
    );

    // Behind a TLS proxy the cookie is Secure.
    let p = browse(
        &o.state,
        "POST",
        "/login",
        None,
        Some(&[("token", token)]),
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert!(
        p.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );

    let p = get_page(&o.state, "/", &cookie).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("operator token"));
    assert!(
        !p.body.contains(token.as_str()),
        "the page never shows the token"
    );

    let csrf = csrf_in(&p.body);
    let p = post_form(&o.state, "/logout", &cookie, &[("_csrf", &csrf)]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(
        p.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let p = get_page(&o.state, "/", &cookie).await;
    assert_eq!(
        p.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
    assert_eq!(p.location(), "/login");
}

#[tokio::test]
async fn a_revoked_token_ends_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &[]).await;
    let r = call(
        &o.state,
        "POST",
        "/v1/orgs/acme/tokens",
        Some(ADMIN),
        Some(json!({"name": "temp", "role": "viewer"})),
    )
    .await;
    let token = r.body["token"].as_str().unwrap().to_string();
    let token_id = r.body["id"].as_str().unwrap().to_string();
    let (cookie, _) = sign_in(&o.state, &token).await;
    assert_eq!(
        get_page(&o.state, "/", &cookie).await.status,
        StatusCode::OK
    );
    let r = call_as(
        &o.state,
        "DELETE",
        &format!("/v1/orgs/acme/tokens/{token_id}"),
        ADMIN,
    )
    .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let p = get_page(&o.state, "/", &cookie).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_carry_security_headers_and_the_script_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &["feed"]).await;
    let (cookie, _) = sign_in(&o.state, &o.tokens["viewer"]).await;
    for uri in [
        "/login",
        "/",
        "/plugins",
        &format!("/connectors/{}", o.connectors[0]),
    ] {
        let p = get_page(&o.state, uri, &cookie).await;
        let csp = p.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{uri}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{uri}: {csp}");
        assert_eq!(p.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(p.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        // No inline script or style anywhere: scripts come from /assets.
        assert!(!p.body.contains("<script>"), "{uri} has an inline script");
        assert!(!p.body.contains(" onclick="), "{uri} has an inline handler");
        assert!(!p.body.contains("style="), "{uri} has an inline style");
    }
    let js = browse(&o.state, "GET", "/assets/app.js", None, None, &[]).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.body.contains("addEventListener"));
}

#[tokio::test]
async fn state_changing_forms_need_the_session_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &["feed"]).await;
    let id = &o.connectors[0];
    let (cookie, _) = sign_in(&o.state, &o.tokens["operator"]).await;
    let page = get_page(&o.state, "/", &cookie).await;
    let csrf = csrf_in(&page.body);
    let uri = format!("/connectors/{id}/enabled");
    let enabled = |state: AppState| {
        let id = id.clone();
        async move {
            call_as(
                &state,
                "GET",
                &format!("/v1/orgs/acme/connectors/{id}"),
                ADMIN,
            )
            .await
            .body["enabled"]
                .as_bool()
                .unwrap()
        }
    };

    // No token, a wrong token, another session's token, a foreign origin: all refused.
    let (other_cookie, _) = sign_in(&o.state, &o.tokens["operator"]).await;
    let other_page = get_page(&o.state, "/", &other_cookie).await;
    let other_csrf = csrf_in(&other_page.body);
    assert_ne!(other_csrf, csrf, "one CSRF token per session");
    for (form, extra) in [
        (vec![("enabled", "false")], vec![]),
        (vec![("enabled", "false"), ("_csrf", "0000")], vec![]),
        (
            vec![("enabled", "false"), ("_csrf", other_csrf.as_str())],
            vec![],
        ),
        (
            vec![("enabled", "false"), ("_csrf", csrf.as_str())],
            vec![("origin", "http://evil.example")],
        ),
    ] {
        let p = browse(&o.state, "POST", &uri, Some(&cookie), Some(&form), &extra).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{form:?} {extra:?}");
        assert!(p.body.contains("CSRF"));
        assert!(
            enabled(o.state.clone()).await,
            "refused request changed nothing"
        );
    }
    // Without a session at all: sign in first.
    let p = browse(
        &o.state,
        "POST",
        &uri,
        None,
        Some(&[("enabled", "false"), ("_csrf", &csrf)]),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(enabled(o.state.clone()).await);

    // The right token (form field, or header from the script) works.
    let p = browse(
        &o.state,
        "POST",
        &uri,
        Some(&cookie),
        Some(&[("enabled", "false"), ("_csrf", &csrf)]),
        &[("origin", "http://127.0.0.1:8080")],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location(), format!("/?toggled={id}"));
    assert!(!enabled(o.state.clone()).await);
    let p = browse(
        &o.state,
        "POST",
        &uri,
        Some(&cookie),
        Some(&[("enabled", "true")]),
        &[("x-csrf-token", &csrf), ("accept", "application/json")],
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let row: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(row["enabled"], true);
    assert!(enabled(o.state.clone()).await);

    // The no-JS undo notice offers the inverse action.
    let p = get_page(&o.state, &format!("/?toggled={id}"), &cookie).await;
    assert!(p.body.contains("is now enabled"));
    assert!(p.body.contains(">Undo<"));
}

#[tokio::test]
async fn the_role_decides_what_is_shown_and_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &["feed one", "feed two"]).await;
    let id = &o.connectors[0];

    let (op, _) = sign_in(&o.state, &o.tokens["operator"]).await;
    let p = get_page(&o.state, "/", &op).await;
    assert_eq!(p.body.matches("role=\"switch\"").count(), 2);
    assert_eq!(p.body.matches("/test\"").count(), 2);
    let p = get_page(&o.state, &format!("/connectors/{id}"), &op).await;
    assert!(p.body.contains("Save configuration"));

    let (viewer, _) = sign_in(&o.state, &o.tokens["viewer"]).await;
    let p = get_page(&o.state, "/", &viewer).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("feed one") && p.body.contains("feed two"));
    assert!(
        !p.body.contains("role=\"switch\""),
        "a viewer gets no switches"
    );
    assert!(!p.body.contains("/enabled\""), "no toggle forms");
    assert!(!p.body.contains("/test\""), "no test buttons");
    assert!(p.body.contains("Read-only"));
    let p = get_page(&o.state, &format!("/connectors/{id}"), &viewer).await;
    assert!(!p.body.contains("Save configuration"));
    assert!(
        !p.body.contains("method=\"post\" action=\"/connectors"),
        "no forms for a viewer"
    );
    let p = get_page(&o.state, "/plugins", &viewer).await;
    assert!(!p.body.contains("Install a plugin") && !p.body.contains("Unload"));

    // Even a forged request with the viewer's own CSRF token is refused by the role.
    let csrf = csrf_in(&p.body);
    let p = post_form(
        &o.state,
        &format!("/connectors/{id}/enabled"),
        &viewer,
        &[("enabled", "false"), ("_csrf", &csrf)],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // The platform admin has no org: it picks one, then sees the catalogue and plugin forms.
    let (admin, _) = sign_in(&o.state, ADMIN).await;
    let p = get_page(&o.state, "/", &admin).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), "/orgs");
    let p = get_page(&o.state, "/orgs", &admin).await;
    assert!(p.body.contains("value=\"acme\""));
    let csrf = csrf_in(&p.body);
    let p = post_form(
        &o.state,
        "/org",
        &admin,
        &[("_csrf", &csrf), ("org", "nope")],
    )
    .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = post_form(
        &o.state,
        "/org",
        &admin,
        &[("_csrf", &csrf), ("org", "acme")],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let p = get_page(&o.state, "/", &admin).await;
    assert!(p.body.contains("Connectors of acme") && p.body.contains("feed two"));
    let p = get_page(&o.state, "/plugins", &admin).await;
    assert!(p.body.contains("Install a plugin") && p.body.contains("Unload rest-generic"));
    assert!(
        p.body.contains("Can use a credential"),
        "capabilities in plain words"
    );
}

#[tokio::test]
async fn hostile_names_are_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "<script>alert('x')</script><img src=x onerror=alert(1)>\"'&";
    let o = org(dir.path(), &[hostile]).await;
    let id = &o.connectors[0];
    let (cookie, _) = sign_in(&o.state, &o.tokens["operator"]).await;
    for uri in ["/".to_string(), format!("/connectors/{id}")] {
        let p = get_page(&o.state, &uri, &cookie).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(!p.body.contains("<script>alert"), "{uri}");
        assert!(!p.body.contains("<img src=x"), "{uri}");
        assert!(p.body.contains("&lt;script&gt;alert('x')&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;'&amp;"), "{uri}");
    }
    // And in the JSON the script reads (JSON-escaped; the script writes it as text).
    let p = get_page(&o.state, "/catalogue.json", &cookie).await;
    let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(v["connectors"][0]["name"], hostile);
}

#[tokio::test]
async fn the_catalogue_reads_without_javascript_and_filters_with_a_plain_form() {
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &["alpha feed", "beta feed", "gamma feed"]).await;
    let r = call_as(
        &o.state,
        "POST",
        &format!("/v1/orgs/acme/connectors/{}/disable", o.connectors[1]),
        ADMIN,
    )
    .await;
    assert!(r.status.is_success());
    let (cookie, _) = sign_in(&o.state, &o.tokens["viewer"]).await;

    // Everything a reader needs is in the HTML itself: rows, category, plugin, health.
    let p = get_page(&o.state, "/", &cookie).await;
    assert_eq!(p.body.matches("<tr data-id=").count(), 3);
    assert!(p.body.contains("Custom API"));
    assert!(p.body.contains("rest-generic"));
    assert!(p.body.contains("data-health=\"disabled\""));
    assert!(p.body.contains(">Disabled<"));
    assert!(p.body.contains("data-health=\"unknown\""));
    assert!(p.body.contains("<form class=\"filters\" method=\"get\""));

    let p = get_page(&o.state, "/?status=disabled&category=&health=", &cookie).await;
    assert_eq!(p.body.matches("<tr data-id=").count(), 1);
    assert!(p.body.contains("beta feed") && !p.body.contains("alpha feed"));
    let p = get_page(&o.state, "/?health=unknown", &cookie).await;
    assert_eq!(p.body.matches("<tr data-id=").count(), 2);
    let p = get_page(&o.state, "/?category=siem", &cookie).await;
    assert_eq!(p.body.matches("<tr data-id=").count(), 0);
    assert!(p.body.contains("No connector matches"));

    // The JSON behind the live refresh has the same rows.
    let p = get_page(&o.state, "/catalogue.json?status=enabled", &cookie).await;
    let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(v["connectors"].as_array().unwrap().len(), 2);
    assert_eq!(v["connectors"][0]["category"], "custom-api");
    // Without a session the JSON says 401 instead of redirecting.
    let p = browse(
        &o.state,
        "GET",
        "/catalogue.json",
        None,
        None,
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_config_form_comes_from_the_schema_and_shows_field_errors_inline() {
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &["feed"]).await;
    let id = &o.connectors[0];
    let (cookie, _) = sign_in(&o.state, &o.tokens["operator"]).await;
    let p = get_page(&o.state, &format!("/connectors/{id}"), &cookie).await;
    // rest-generic's schema: base_url is a required URI, page_size an integer, query an object.
    assert!(p.body.contains("id=\"cfg-base_url\" type=\"url\""));
    assert!(p.body.contains("id=\"cfg-page_size\" type=\"number\""));
    assert!(p.body.contains("<textarea id=\"cfg-query\""));
    assert!(p.body.contains("(required)"));
    let csrf = csrf_in(&p.body);
    let uri = format!("/connectors/{id}/config");

    // Not a number and not JSON: caught by the form, shown at the fields.
    let p = post_form(
        &o.state,
        &uri,
        &cookie,
        &[
            ("_csrf", &csrf),
            ("cfg.base_url", "https://api.example.com"),
            ("cfg.path", "/alerts"),
            ("cfg.id", "/id"),
            ("cfg.page_size", "lots"),
            ("cfg.query", "{oops"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("id=\"cfg-page_size-error\""), "{}", p.body);
    assert!(p.body.contains("is not a whole number"));
    assert!(p.body.contains("id=\"cfg-query-error\""));
    assert!(
        p.body.contains("value=\"lots\""),
        "the submitted value stays in the field"
    );

    // Rejected by the plugin's schema/validate-config: its field path lands at the field.
    let p = post_form(
        &o.state,
        &uri,
        &cookie,
        &[
            ("_csrf", &csrf),
            ("cfg.base_url", "ftp://files.example.com"),
            ("cfg.path", "/alerts"),
            ("cfg.id", "/id"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(p.body.contains("id=\"cfg-base_url-error\""), "{}", p.body);
    let rec = call_as(
        &o.state,
        "GET",
        &format!("/v1/orgs/acme/connectors/{id}"),
        ADMIN,
    )
    .await;
    assert_eq!(rec.body["revision"], 1, "nothing saved");

    // A valid change is a new revision with the author shown on the page.
    let p = post_form(
        &o.state,
        &uri,
        &cookie,
        &[
            ("_csrf", &csrf),
            ("cfg.base_url", "https://api.example.com"),
            ("cfg.path", "/v2/alerts"),
            ("cfg.id", "/id"),
            ("cfg.credential", "\"api\""),
            ("cfg.page_size_param", "per_page"),
            ("cfg.page_size", "25"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let rec = call_as(
        &o.state,
        "GET",
        &format!("/v1/orgs/acme/connectors/{id}"),
        ADMIN,
    )
    .await;
    assert_eq!(rec.body["revision"], 2);
    assert_eq!(rec.body["config"]["path"], "/v2/alerts");
    assert_eq!(rec.body["config"]["page_size"], 25);
    let p = get_page(&o.state, &format!("/connectors/{id}?saved=config"), &cookie).await;
    assert!(p.body.contains("Configuration saved"));
    assert!(p.body.contains("operator token"), "revision author");
    assert!(p.body.contains("connector.updated"), "audit trail");

    // Grants outside what the plugin requests or a bad schedule: inline errors too.
    let p = post_form(
        &o.state,
        &format!("/connectors/{id}/access"),
        &cookie,
        &[
            ("_csrf", &csrf),
            ("grants", "not a pattern"),
            ("schedule", "5 minutes"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("id=\"grants-error\"") && p.body.contains("id=\"schedule-error\""),
        "{}",
        p.body
    );
}

fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----portcullis-ui-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if *name == "component" {
            body.extend_from_slice(
                b"Content-Disposition: form-data; name=\"component\"; filename=\"p.wasm\"\r\nContent-Type: application/wasm\r\n\r\n",
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(state: &AppState, cookie: &str, fields: &[(&str, &[u8])]) -> Page {
    let (content_type, body) = multipart(fields);
    let req = Request::builder()
        .method("POST")
        .uri("/plugins")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::COOKIE, format!("portcullis_session={cookie}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn plugins_upload_upgrade_with_capability_diff_and_unload() {
    use portcullis_e2e::artifacts::{NOOP, NOOP_NEXT};
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &[]).await;
    let (admin, _) = sign_in(&o.state, ADMIN).await;
    let p = get_page(&o.state, "/orgs", &admin).await;
    let csrf = csrf_in(&p.body);
    post_form(
        &o.state,
        "/org",
        &admin,
        &[("_csrf", &csrf), ("org", "acme")],
    )
    .await;
    let noop = std::fs::read(NOOP).unwrap();

    // Without the CSRF token nothing is installed.
    let p = upload(&o.state, &admin, &[("component", &noop)]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = upload(
        &o.state,
        &admin,
        &[("_csrf", b"nope"), ("component", &noop)],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let r = call_as(&o.state, "GET", "/v1/plugins", ADMIN).await;
    assert!(!r.body.to_string().contains("\"noop\""));

    // Garbage is refused with the reason.
    let p = upload(
        &o.state,
        &admin,
        &[("_csrf", csrf.as_bytes()), ("component", b"not wasm")],
    )
    .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("plugin refused"));

    let p = upload(
        &o.state,
        &admin,
        &[("_csrf", csrf.as_bytes()), ("component", &noop)],
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("Installed noop 0.1.0"));
    assert!(p.body.contains("Makes no network requests."));
    let r = call(
        &o.state,
        "POST",
        "/v1/orgs/acme/connectors",
        Some(ADMIN),
        Some(json!({"name": "quiet", "plugin": "noop"})),
    )
    .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let next = std::fs::read(NOOP_NEXT).unwrap();
    let p = upload(
        &o.state,
        &admin,
        &[("_csrf", csrf.as_bytes()), ("component", &next)],
    )
    .await;
    assert!(p.body.contains("Installed noop 0.2.0"), "{}", p.body);
    assert!(p.body.contains("May reach https://api.noop.example"));
    assert!(
        p.body
            .contains(&format!("/connectors/{id}/upgrade?version=0%2E2%2E0")),
        "the plugins page links the connector on 0.1.0 to the diff"
    );

    // The connector page offers the other version; the preview shows the capability diff.
    let p = get_page(&o.state, &format!("/connectors/{id}"), &admin).await;
    assert!(p.body.contains("Review capability changes"));
    let p = get_page(
        &o.state,
        &format!("/connectors/{id}/upgrade?version=0.2.0"),
        &admin,
    )
    .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body
            .contains("Asks to reach https://api.noop.example (not granted automatically)"),
        "{}",
        p.body
    );
    assert!(p.body.contains("New credential slot &quot;api&quot;"));
    let r = call_as(
        &o.state,
        "GET",
        &format!("/v1/orgs/acme/connectors/{id}"),
        ADMIN,
    )
    .await;
    assert_eq!(
        r.body["plugin"]["version"], "0.1.0",
        "previewing changes nothing"
    );
    let p = post_form(
        &o.state,
        &format!("/connectors/{id}/upgrade"),
        &admin,
        &[("_csrf", &csrf), ("version", "0.2.0")],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let r = call_as(
        &o.state,
        "GET",
        &format!("/v1/orgs/acme/connectors/{id}"),
        ADMIN,
    )
    .await;
    assert_eq!(r.body["plugin"]["version"], "0.2.0");
    assert_eq!(r.body["grants"], json!([]), "no new host granted by itself");

    // Unload: refused while in use, then forced (its connector is disabled first).
    let uri = "/plugins/noop/unload";
    let p = post_form(&o.state, uri, &admin, &[("_csrf", &csrf), ("version", "")]).await;
    assert_eq!(p.status, StatusCode::CONFLICT);
    assert!(p.body.contains("is used by 1 connector"));
    let p = post_form(
        &o.state,
        uri,
        &admin,
        &[("_csrf", &csrf), ("version", ""), ("force", "true")],
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("Unloaded noop") && p.body.contains("Disabled first: acme/"));

    // An operator cannot upload at all.
    let (op, _) = sign_in(&o.state, &o.tokens["operator"]).await;
    let page = get_page(&o.state, "/plugins", &op).await;
    let op_csrf = csrf_in(&page.body);
    let p = upload(
        &o.state,
        &op,
        &[("_csrf", op_csrf.as_bytes()), ("component", &noop)],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn secrets_are_write_only_in_the_panel() {
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &["feed"]).await;
    let id = &o.connectors[0];
    let (cookie, _) = sign_in(&o.state, &o.tokens["operator"]).await;
    let page = get_page(&o.state, &format!("/connectors/{id}"), &cookie).await;
    assert!(
        !page.body.contains("example-secret-token-value"),
        "the stored secret is never rendered"
    );
    assert!(page.body.contains("Secret set: bearer token, version 1"));
    let csrf = csrf_in(&page.body);
    let uri = format!("/connectors/{id}/credentials/api");

    // A refused write: the error names the field, the page never echoes the secret.
    let secret = "panel-typed-secret-7f3a";
    let p = post_form(
        &o.state,
        &uri,
        &cookie,
        &[
            ("_csrf", &csrf),
            ("name", "feed-key"),
            ("kind", "api-key"),
            ("key", secret),
            ("hosts", "https://api.example.com"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(!p.body.contains(secret));
    assert!(p.body.contains("id=\"cred-api-error\""));

    // Replace the bound credential's secret: a new version, never shown.
    let p = post_form(
        &o.state,
        &uri,
        &cookie,
        &[
            ("_csrf", &csrf),
            ("name", "example-token"),
            ("kind", "bearer"),
            ("token", secret),
            ("hosts", "https://api.example.com"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = get_page(
        &o.state,
        &format!("/connectors/{id}?saved=credential"),
        &cookie,
    )
    .await;
    assert!(p.body.contains("Secret stored"));
    assert!(p.body.contains("Secret set: bearer token, version 2"));
    assert!(!p.body.contains(secret));
    assert!(
        p.body
            .contains("type=\"password\" name=\"token\" value=\"\"")
    );

    // A new credential for the slot: stored, then bound (a new revision).
    let p = post_form(
        &o.state,
        &uri,
        &cookie,
        &[
            ("_csrf", &csrf),
            ("name", "feed-basic"),
            ("kind", "basic"),
            ("username", "svc"),
            ("password", secret),
            ("hosts", "https://api.example.com"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let r = call_as(
        &o.state,
        "GET",
        &format!("/v1/orgs/acme/connectors/{id}"),
        ADMIN,
    )
    .await;
    assert_eq!(r.body["credentials"]["api"], "feed-basic");
    let p = get_page(&o.state, &format!("/connectors/{id}"), &cookie).await;
    assert!(
        p.body.contains("value=\"svc\""),
        "non-secret fields may show"
    );
    assert!(!p.body.contains(secret));
    for path in ["/", "/plugins", "/catalogue.json"] {
        let p = get_page(&o.state, path, &cookie).await;
        assert!(!p.body.contains(secret), "{path}");
    }

    // A viewer sees the binding but no form, and cannot post one.
    let (viewer, _) = sign_in(&o.state, &o.tokens["viewer"]).await;
    let p = get_page(&o.state, &format!("/connectors/{id}"), &viewer).await;
    assert!(p.body.contains("feed-basic") && !p.body.contains("form class=\"credential\""));
    let vcsrf = csrf_in(&p.body);
    let p = post_form(
        &o.state,
        &uri,
        &viewer,
        &[
            ("_csrf", &vcsrf),
            ("name", "feed-basic"),
            ("kind", "basic"),
            ("username", "x"),
            ("password", "y"),
            ("hosts", ""),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn health_reasons_read_in_words_filter_and_show_in_the_history() {
    use portcullis::health::{HealthEvent, HealthReason};
    use portcullis::management::model::HealthState;
    let dir = tempfile::tempdir().unwrap();
    let o = org(dir.path(), &["flooding siem", "quiet feed"]).await;
    let id = &o.connectors[0];
    // What the health worker does when the monitor sees a duplicate flood.
    o.state
        .service()
        .apply_health_event(HealthEvent::Transition {
            org: "acme".into(),
            connector: id.clone(),
            from: HealthState::Unknown,
            to: HealthState::Degraded,
            details: vec![HealthReason::DuplicateFlood { ratio: 0.92 }],
            at: "2026-11-23T10:00:00.000Z".into(),
        })
        .await
        .unwrap();
    let (cookie, _) = sign_in(&o.state, &o.tokens["viewer"]).await;
    let p = get_page(&o.state, "/", &cookie).await;
    assert!(
        p.body.contains("Degraded — duplicate flood 92 %"),
        "{}",
        p.body
    );
    assert!(p.body.contains("class=\"health health-degraded\""));
    let p = get_page(&o.state, "/?health=degraded", &cookie).await;
    assert_eq!(p.body.matches("<tr data-id=").count(), 1);
    assert!(p.body.contains("flooding siem") && !p.body.contains("quiet feed"));
    let p = get_page(&o.state, "/catalogue.json", &cookie).await;
    let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    let row = v["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["health"], "degraded");
    assert_eq!(row["health_text"], "Degraded — duplicate flood 92 %");
    let p = get_page(&o.state, &format!("/connectors/{id}"), &cookie).await;
    assert!(
        p.body.contains("2026-11-23 10:00:00 UTC"),
        "health history row"
    );
    assert!(
        p.body.matches("duplicate flood 92 %").count() >= 2,
        "status and history"
    );
}
