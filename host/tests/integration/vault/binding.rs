//! A credential is bound to host patterns: a connector whose request goes elsewhere gets
//! a refusal and the other host never sees the secret.

use super::*;
use crate::app::{self, ADMIN};

#[tokio::test(flavor = "multi_thread")]
async fn credential_bound_to_host_a_is_refused_for_a_request_to_host_b() {
    let a = ResourceServer::start().await;
    let b = ResourceServer::start().await;
    let secret = "binding-test-secret-81f2";
    a.accept(&format!("Bearer {secret}"));
    b.accept(&format!("Bearer {secret}"));
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    create_org(&state, "acme").await;
    let r = put_credential(
        &state,
        ADMIN,
        "acme",
        "a-only",
        "",
        bearer(secret, &[&a.base]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Bound to A, connector talks to A: works.
    let ok = create_connector(
        &state,
        ADMIN,
        "acme",
        rest_connector("a", &a.base, &a.base, "a-only"),
    )
    .await;
    let r = call_as(
        &state,
        "POST",
        &format!("/v1/orgs/acme/connectors/{ok}/test"),
        ADMIN,
    )
    .await;
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
    assert_eq!(a.seen(), vec![format!("Bearer {secret}")]);
    let r = call_as(&state, "GET", "/v1/orgs/acme/credentials/a-only", ADMIN).await;
    assert!(r.body["last_used_at"].is_string(), "{:?}", r.body);

    // Same credential, connector granted and pointed at B: refused before sending.
    let bad = create_connector(
        &state,
        ADMIN,
        "acme",
        rest_connector("b", &b.base, &b.base, "a-only"),
    )
    .await;
    let r = call_as(
        &state,
        "POST",
        &format!("/v1/orgs/acme/connectors/{bad}/test"),
        ADMIN,
    )
    .await;
    assert_eq!(r.body["ok"], false, "{:?}", r.body);
    let text = r.body.to_string();
    assert!(text.contains("not bound to"), "{text}");
    assert!(!text.contains(secret));
    let sb = sandbox(&state, "acme", &bad).await;
    let err = sb
        .poll(&config_of(&state, "acme", &bad).await, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not bound to"), "{err}");
    assert!(b.seen().is_empty(), "host B received {:?}", b.seen());
}
