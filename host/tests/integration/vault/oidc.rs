//! OAuth 2.0 client credentials against a real authorization server no one here wrote:
//! npm's `oidc-provider` (installed into `target/node-tools` by the test), a
//! confidential client with `client_secret_basic`, short-lived opaque tokens checked by
//! introspection (RFC 7662). The resource server in front accepts any bearer token and
//! records them, and can answer `401 invalid_token`.

use serde_json::json;

use super::*;
use crate::app::{self, ADMIN};
use crate::nodetools::run_node_server;

const CLIENT: &str = "portcullis-vault-test";
const SECRET: &str = "oidc-client-secret-5b7e0d";
/// Token lifetime: the broker refreshes `min(30 s, lifetime / 2)` before expiry (10 s).
const TTL: &str = "20";

async fn introspect(issuer: &str, token: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{issuer}/token/introspection"))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap()
}

fn bearer_tokens(rs: &ResourceServer) -> Vec<String> {
    rs.seen()
        .iter()
        .map(|a| a.strip_prefix("Bearer ").unwrap_or(a).to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_oidc_provider_are_obtained_cached_refreshed_and_renewed_after_invalid_token() {
    let server = tokio::task::spawn_blocking(|| {
        run_node_server(
            "oidc_server.mjs",
            &[
                ("CLIENT_ID", CLIENT),
                ("CLIENT_SECRET", SECRET),
                ("SCOPE", "alerts:read"),
                ("TOKEN_TTL", TTL),
            ],
        )
    })
    .await
    .unwrap();
    let issuer = server.ready.clone();
    let rs = ResourceServer::start().await;
    rs.accept_any_bearer();
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    create_org(&state, "acme").await;
    let cred = json!({
        "kind": "oauth2-client-credentials", "token_url": format!("{issuer}/token"),
        "client_id": CLIENT, "client_secret": SECRET, "scopes": ["alerts:read"],
        "hosts": [rs.base]
    });
    let r = put_credential(&state, ADMIN, "acme", "idp", "", cred.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = create_connector(
        &state,
        ADMIN,
        "acme",
        rest_connector("feed", &rs.base, &rs.base, "idp"),
    )
    .await;
    let sb = Arc::new(sandbox(&state, "acme", &id).await);
    let cfg = config_of(&state, "acme", &id).await;
    let cache = state.service().vault().token_cache().clone();
    let fetches = || cache.fetch_count();

    // Obtained once for many concurrent and sequential calls.
    let polls = futures::future::join_all((0..6).map(|_| {
        let (sb, cfg) = (sb.clone(), cfg.clone());
        async move { sb.poll(&cfg, None).await }
    }))
    .await;
    for p in polls {
        assert_eq!(p.unwrap().events.len(), 2);
    }
    for _ in 0..4 {
        sb.poll(&cfg, None).await.unwrap();
    }
    assert_eq!(fetches(), 1, "one token request for ten API calls");
    let seen = bearer_tokens(&rs);
    assert_eq!(seen.len(), 10);
    let t1 = seen[0].clone();
    assert!(seen.iter().all(|t| t == &t1), "{seen:?}");
    let info = introspect(&issuer, &t1).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], CLIENT);
    assert_eq!(info["scope"], "alerts:read");

    // Refreshed before expiry: past the refresh point but before `expires_in`, the next
    // call fetches a new token while the old one is still valid.
    tokio::time::sleep(std::time::Duration::from_millis(10_500)).await;
    sb.poll(&cfg, None).await.unwrap();
    assert_eq!(fetches(), 2);
    let t2 = bearer_tokens(&rs).last().unwrap().clone();
    assert_ne!(t2, t1);
    assert_eq!(
        introspect(&issuer, &t1).await["active"],
        true,
        "the old token was replaced before it expired"
    );

    // Rejected (401 invalid_token) once: one new token, the request retried and served.
    rs.reject_next(1);
    let before = rs.seen().len();
    let b = sb.poll(&cfg, None).await.unwrap();
    assert_eq!(b.events.len(), 2);
    assert_eq!(fetches(), 3);
    let tail = bearer_tokens(&rs)[before..].to_vec();
    assert_eq!(tail.len(), 2, "{tail:?}");
    assert_eq!(tail[0], t2, "the cached token was tried first");
    assert_ne!(tail[1], t2, "then a fresh one");
    assert_eq!(introspect(&issuer, &tail[1]).await["active"], true);
    // Rejected twice: refreshed once only, then the error reaches the plugin.
    rs.reject_next(2);
    assert!(sb.poll(&cfg, None).await.is_err());
    assert_eq!(fetches(), 4);

    // The token endpoint refusing the client: AUTH_FAILED with the RFC 6749 code, no
    // secret.
    let mut wrong = cred.clone();
    wrong["client_secret"] = json!("oidc-wrong-secret-0c1e");
    let r = put_credential(&state, ADMIN, "acme", "idp", "", wrong).await;
    assert_eq!(r.body["pending_version"], 2, "{:?}", r.body);
    let r = call_as(&state, "POST", "/v1/orgs/acme/credentials/idp/test", ADMIN).await;
    assert_eq!(r.body["ok"], false, "{:?}", r.body);
    assert_eq!(
        r.body["connectors"][0]["reason"], "AUTH_FAILED",
        "{:?}",
        r.body
    );
    assert_eq!(
        r.body["connectors"][0]["auth_error"], "invalid_client",
        "{:?}",
        r.body
    );
    assert!(!r.body.to_string().contains("oidc-wrong-secret"));
    // The promoted version still works, with its cached token.
    sb.poll(&cfg, None).await.unwrap();
    let n = fetches();
    let v1_token = bearer_tokens(&rs).last().unwrap().clone();

    // Promotion: the next request uses the new version with a token of its own; the old
    // version's token is dropped, so a rollback fetches a fresh one instead of reusing it.
    let r = put_credential(&state, ADMIN, "acme", "idp", "?promote=true", cred.clone()).await;
    assert_eq!(r.body["version"], 3, "{:?}", r.body);
    sb.poll(&cfg, None).await.unwrap();
    assert_eq!(fetches(), n + 1);
    let v3_token = bearer_tokens(&rs).last().unwrap().clone();
    assert_ne!(v3_token, v1_token);
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/idp/rollback",
        ADMIN,
    )
    .await;
    assert_eq!(r.body["version"], 1, "{:?}", r.body);
    sb.poll(&cfg, None).await.unwrap();
    assert_eq!(
        fetches(),
        n + 2,
        "v1's cached token was dropped at promotion"
    );
    let again = bearer_tokens(&rs).last().unwrap().clone();
    assert_ne!(again, v1_token);
    assert_ne!(again, v3_token);
    drop(server);
}
