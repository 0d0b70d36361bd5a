//! The OAuth 2.0 token endpoint, against a real HTTP client.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{client, header, json};
use portcullis_simulators::{
    Auth, ClientAuth, OAuthConfig, OAuthServer, PagedApi, PagedApiConfig, TokenStatus,
};

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `Authorization: Basic` per RFC 6749 §2.3.1 (form-urlencode, then base64).
fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(id), form_encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

async fn token_request(
    server: &OAuthServer,
    authorization: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = client()
        .post(server.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.expect("token request")
}

async fn assert_error(response: reqwest::Response, status: u16, error: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let body = json(response).await;
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
}

#[tokio::test]
async fn basic_client_authentication_issues_a_bearer_token() {
    let server = OAuthServer::start(OAuthConfig::default()).expect("start");
    let auth = basic(&server.client_id(), &server.client_secret());
    let response = token_request(&server, Some(&auth), "grant_type=client_credentials").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    assert_eq!(header(&response, "pragma").as_deref(), Some("no-cache"));
    assert!(header(&response, "content-type").is_some_and(|ct| ct.starts_with("application/json")));
    let body = json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "alerts:read");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.tokens_issued(), 1);
    assert_eq!(server.last_token().as_deref(), Some(token));
    assert!(
        matches!(server.tokens().check(token), TokenStatus::Valid(t) if t.client_id == "portcullis-e2e")
    );
    // The request is recorded as sent.
    let recorded = server.log().last().expect("recorded");
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.path_and_query, "/oauth/token");
    assert_eq!(recorded.header("authorization"), Some(auth.as_str()));
    assert_eq!(
        recorded.form(),
        vec![("grant_type".to_string(), "client_credentials".to_string())]
    );
}

#[tokio::test]
async fn basic_credentials_must_be_form_urlencoded_before_base64() {
    let server = OAuthServer::start(OAuthConfig::default()).expect("start");
    // The default secret contains `+`: sent raw, it decodes to a space.
    let raw = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", server.client_id(), server.client_secret()))
    );
    let response = token_request(&server, Some(&raw), "grant_type=client_credentials").await;
    assert_eq!(response.status(), 401);
    assert!(
        header(&response, "www-authenticate").is_some_and(|h| h.starts_with("Basic ")),
        "invalid_client after Basic needs a Basic challenge"
    );
    assert_error(response, 401, "invalid_client").await;
    assert_eq!(server.tokens_issued(), 0);
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn client_authentication_failures_are_invalid_client() {
    let server = OAuthServer::start(OAuthConfig::default()).expect("start");
    let wrong = basic(&server.client_id(), "wrong");
    assert_error(
        token_request(&server, Some(&wrong), "grant_type=client_credentials").await,
        401,
        "invalid_client",
    )
    .await;
    assert_error(
        token_request(&server, None, "grant_type=client_credentials").await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(server.tokens_issued(), 0);
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn credentials_in_the_body_are_accepted_unless_basic_only() {
    let server = OAuthServer::start(OAuthConfig::default()).expect("start");
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_encode(&server.client_id()),
        form_encode(&server.client_secret())
    );
    let response = token_request(&server, None, &body).await;
    assert_eq!(response.status(), 200);

    let strict = OAuthServer::start(OAuthConfig {
        client_auth: ClientAuth::BasicOnly,
        ..OAuthConfig::default()
    })
    .expect("start");
    assert_error(
        token_request(&strict, None, &body).await,
        401,
        "invalid_client",
    )
    .await;

    let body_only = OAuthServer::start(OAuthConfig {
        client_auth: ClientAuth::BodyOnly,
        ..OAuthConfig::default()
    })
    .expect("start");
    let auth = basic(&body_only.client_id(), &body_only.client_secret());
    assert_error(
        token_request(&body_only, Some(&auth), "grant_type=client_credentials").await,
        401,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_refused() {
    let server = OAuthServer::start(OAuthConfig::default()).expect("start");
    let auth = basic(&server.client_id(), &server.client_secret());
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_encode(&server.client_id()),
        form_encode(&server.client_secret())
    );
    assert_error(
        token_request(&server, Some(&auth), &body).await,
        400,
        "invalid_request",
    )
    .await;
    // A client_id that only identifies the Basic-authenticated client is fine.
    let body = format!(
        "grant_type=client_credentials&client_id={}",
        form_encode(&server.client_id())
    );
    assert_eq!(
        token_request(&server, Some(&auth), &body).await.status(),
        200
    );
}

#[tokio::test]
async fn grant_type_and_request_format_are_checked() {
    let server = OAuthServer::start(OAuthConfig::default()).expect("start");
    let auth = basic(&server.client_id(), &server.client_secret());
    assert_error(
        token_request(&server, Some(&auth), "").await,
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        token_request(
            &server,
            Some(&auth),
            "grant_type=password&username=a&password=b",
        )
        .await,
        400,
        "unsupported_grant_type",
    )
    .await;
    assert_error(
        token_request(
            &server,
            Some(&auth),
            "grant_type=client_credentials&grant_type=client_credentials",
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    let json_body = client()
        .post(server.token_url())
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .expect("send");
    assert_error(json_body, 400, "invalid_request").await;
    assert_eq!(server.tokens_issued(), 0);
    assert_eq!(server.token_requests(), 4);
}

#[tokio::test]
async fn scopes_audience_and_expiry_are_honoured() {
    let server = OAuthServer::start(OAuthConfig {
        expires_in: 120,
        ..OAuthConfig::default()
    })
    .expect("start");
    let auth = basic(&server.client_id(), &server.client_secret());
    let response = token_request(
        &server,
        Some(&auth),
        "grant_type=client_credentials&scope=alerts%3Aread+events%3Aread&audience=https%3A%2F%2Fapi.example",
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["scope"], "alerts:read events:read");
    assert_eq!(body["expires_in"], 120);
    let issued = server.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].scope, vec!["alerts:read", "events:read"]);
    assert_eq!(issued[0].audience.as_deref(), Some("https://api.example"));

    assert_error(
        token_request(
            &server,
            Some(&auth),
            "grant_type=client_credentials&scope=admin",
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;

    server.set_expires_in(5);
    let body =
        json(token_request(&server, Some(&auth), "grant_type=client_credentials").await).await;
    assert_eq!(body["expires_in"], 5);
    // Tokens are unique.
    let tokens: Vec<String> = server
        .issued_tokens()
        .into_iter()
        .map(|t| t.access_token)
        .collect();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1]);
}

#[tokio::test]
async fn injected_token_endpoint_failures() {
    let server = OAuthServer::start(OAuthConfig::default()).expect("start");
    let auth = basic(&server.client_id(), &server.client_secret());
    server.fail_next_token_requests(1);
    assert_error(
        token_request(&server, Some(&auth), "grant_type=client_credentials").await,
        500,
        "server_error",
    )
    .await;
    assert_eq!(
        token_request(&server, Some(&auth), "grant_type=client_credentials")
            .await
            .status(),
        200
    );
    assert_eq!(server.token_requests(), 2);
    assert_eq!(server.tokens_issued(), 1);
}

async fn fetch_token(server: &OAuthServer, scope: Option<&str>) -> String {
    let auth = basic(&server.client_id(), &server.client_secret());
    let body = match scope {
        Some(scope) => format!("grant_type=client_credentials&scope={}", form_encode(scope)),
        None => "grant_type=client_credentials".to_string(),
    };
    let body = json(token_request(server, Some(&auth), &body).await).await;
    body["access_token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn resource_server_rejects_revoked_expired_and_unknown_tokens() {
    let oauth = OAuthServer::start(OAuthConfig::default()).expect("start oauth");
    let api = PagedApi::start(PagedApiConfig {
        auth: Auth::oauth(&oauth),
        ..PagedApiConfig::default()
    })
    .expect("start api");
    let get = |token: Option<String>| {
        let mut request = client().get(api.link_url());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // No credentials: a bare challenge, no error code (RFC 6750 §3.1).
    let response = get(None).await.expect("send");
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some("Bearer realm=\"portcullis-sim\"")
    );

    let token = fetch_token(&oauth, None).await;
    assert_eq!(get(Some(token.clone())).await.expect("send").status(), 200);

    oauth.revoke(&token);
    let response = get(Some(token.clone())).await.expect("send");
    assert_eq!(response.status(), 401);
    let challenge = header(&response, "www-authenticate").expect("challenge");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("revoked"), "{challenge}");

    let second = fetch_token(&oauth, None).await;
    assert_eq!(get(Some(second.clone())).await.expect("send").status(), 200);
    oauth.expire(&second);
    let response = get(Some(second)).await.expect("send");
    assert_eq!(response.status(), 401);
    assert!(header(&response, "www-authenticate").is_some_and(|c| c.contains("expired")),);

    let response = get(Some("not-a-token".to_string())).await.expect("send");
    assert_eq!(response.status(), 401);
    assert!(
        header(&response, "www-authenticate")
            .is_some_and(|c| c.contains("error=\"invalid_token\"")),
    );
}

#[tokio::test]
async fn tokens_expire_after_expires_in() {
    let oauth = OAuthServer::start(OAuthConfig {
        expires_in: 1,
        ..OAuthConfig::default()
    })
    .expect("start oauth");
    let token = fetch_token(&oauth, None).await;
    assert!(matches!(
        oauth.tokens().check(&token),
        TokenStatus::Valid(_)
    ));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(oauth.tokens().check(&token), TokenStatus::Expired);
}

#[tokio::test]
async fn resource_server_requires_scope_when_configured() {
    let oauth = OAuthServer::start(OAuthConfig::default()).expect("start oauth");
    let api = PagedApi::start(PagedApiConfig {
        auth: Auth::oauth_with_scope(&oauth, "events:read"),
        ..PagedApiConfig::default()
    })
    .expect("start api");
    let narrow = fetch_token(&oauth, Some("alerts:read")).await;
    let response = client()
        .get(api.cursor_url())
        .bearer_auth(narrow)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403);
    let challenge = header(&response, "www-authenticate").expect("challenge");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"events:read\""), "{challenge}");

    let wide = fetch_token(&oauth, Some("events:read")).await;
    let response = client()
        .get(api.cursor_url())
        .bearer_auth(wide)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
}
