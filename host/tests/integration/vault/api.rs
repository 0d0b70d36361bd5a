//! REST and GraphQL behaviour of credentials: write-only secrets, versions, roles,
//! tenancy, binding validation and delete refusal.

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::app::{self, ADMIN, call};

const SECRET: &str = "vault-api-test-secret-7d1c";

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_write_only_versioned_org_scoped_and_role_checked() {
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    create_org(&state, "red").await;
    create_org(&state, "blue").await;
    let op = token(&state, "red", "operator").await;
    let viewer = token(&state, "red", "viewer").await;
    let blue = token(&state, "blue", "admin").await;

    let body = json!({
        "kind": "oauth2-client-credentials", "token_url": "https://auth.example.com/token",
        "client_id": "portcullis", "client_secret": SECRET, "scopes": ["alerts:read"],
        "hosts": ["https://api.example.com"], "expires_at": "2030-01-01T00:00:00Z"
    });
    // Viewers may not write; the other org cannot even see the org.
    let r = put_credential(&state, &viewer, "red", "siem", "", body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = put_credential(&state, &blue, "red", "siem", "", body.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = put_credential(&state, &op, "red", "siem", "", body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let created = r.body.clone();
    assert_eq!(created["kind"], "oauth2-client-credentials");
    assert_eq!(created["fields"]["client_id"], "portcullis");
    assert_eq!(
        created["fields"]["token_url"],
        "https://auth.example.com/token"
    );
    assert_eq!(created["version"], 1);
    assert_eq!(created["expires_at"], "2030-01-01T00:00:00Z");
    let fp = created["fingerprint"].as_str().unwrap().to_string();
    assert!(fp.starts_with("kh:"), "{fp}");

    // Reads: metadata only, for viewers too; another org's token gets 404.
    let r = call_as(&state, "GET", "/v1/orgs/red/credentials/siem", &viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.to_string().contains(SECRET));
    assert!(r.body.get("client_secret").is_none());
    let r = call_as(&state, "GET", "/v1/orgs/red/credentials", &viewer).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = call_as(&state, "GET", "/v1/orgs/red/credentials/siem", &blue).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call_as(&state, "GET", "/v1/orgs/red/credentials", &blue).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A new secret is a pending version with another fingerprint; same secret, same
    // fingerprint; omitted secret keeps the promoted one.
    let mut v2 = body.clone();
    v2["client_secret"] = json!(format!("{SECRET}-2"));
    let r = put_credential(&state, &op, "red", "siem", "", v2).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["pending_version"], 2);
    let pending = r.body["versions"][0].clone();
    assert_eq!(pending["state"], "pending");
    assert_ne!(pending["fingerprint"], json!(fp));
    let mut same = body.clone();
    same.as_object_mut().unwrap().remove("client_secret");
    same["hosts"] = json!(["https://api.example.com", "https://*.example.net"]);
    let r = put_credential(&state, &op, "red", "siem", "?promote=true", same).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"], 3);
    assert_eq!(r.body["fingerprint"], json!(fp), "same secret kept");
    assert_eq!(r.body["previous_version"], 1);
    assert!(
        r.body.get("pending_version").is_none(),
        "replaced pending dropped"
    );
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/red/credentials/siem/rollback",
        &op,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["version"], 1);
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/red/credentials/siem/rollback",
        &op,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = call_as(&state, "POST", "/v1/orgs/red/credentials/siem/promote", &op).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing pending");

    // Kind changes are refused; bad input names fields, never values.
    let r = put_credential(
        &state,
        &op,
        "red",
        "siem",
        "",
        bearer(SECRET, &["https://a.example"]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = put_credential(
        &state,
        &op,
        "red",
        "bad",
        "",
        json!({"kind": "api-key", "key": SECRET, "hosts": ["nope"], "extra": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let paths: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/hosts/0") && paths.contains(&"/header"),
        "{paths:?}"
    );
    let r = put_credential(
        &state,
        &op,
        "red",
        "bad",
        "",
        json!({"kind": "bearer", "hosts": ["https://a.example"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["path"], "/token");

    // Bindings must name an existing credential of a kind the slot accepts.
    let mut conn = app::connector_body("feed");
    conn["credentials"] = json!({"api": "missing"});
    let r = call(
        &state,
        "POST",
        "/v1/orgs/red/connectors",
        Some(&op),
        Some(conn.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["errors"][0]["path"], "/credentials/api",
        "{:?}",
        r.body
    );
    // Another org's credential of the same name does not count.
    let r = put_credential(
        &state,
        &blue,
        "blue",
        "missing",
        "",
        bearer("x", &["https://api.example.com"]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = call(
        &state,
        "POST",
        "/v1/orgs/red/connectors",
        Some(&op),
        Some(conn.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A slot that accepts only api-key refuses a bearer credential.
    let nvd = std::fs::read(portcullis_e2e::artifacts::NVD_CVE).unwrap();
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/plugins")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/wasm")
        .body(axum::body::Body::from(nvd))
        .unwrap();
    assert_eq!(app::raw(&state, req).await.status, StatusCode::CREATED);
    put_credential(
        &state,
        &op,
        "red",
        "tok",
        "",
        bearer("t0k3n-x", &["https://services.nvd.nist.gov"]),
    )
    .await;
    let r = call(
        &state,
        "POST",
        "/v1/orgs/red/connectors",
        Some(&op),
        Some(json!({"name": "nvd", "plugin": "nvd-cve", "config": {}, "credentials": {"api-key": "tok"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/credentials/api-key")
        .unwrap_or_else(|| panic!("{:?}", r.body));
    assert!(e["message"].as_str().unwrap().contains("api-key"), "{e}");

    // Delete: refused while bound, forced otherwise; the binding then fails at request time.
    let r = put_credential(
        &state,
        &op,
        "red",
        "example-token",
        "",
        app::example_credential_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = create_connector(&state, &op, "red", app::connector_body("feed")).await;
    let r = call_as(&state, "GET", "/v1/orgs/red/credentials/example-token", &op).await;
    assert_eq!(r.body["bound_connectors"], json!([id]));
    let r = call_as(
        &state,
        "DELETE",
        "/v1/orgs/red/credentials/example-token",
        &op,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["detail"].as_str().unwrap().contains(&id));
    let r = call_as(
        &state,
        "DELETE",
        "/v1/orgs/red/credentials/example-token?force=true",
        &viewer,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call_as(
        &state,
        "DELETE",
        "/v1/orgs/red/credentials/example-token?force=true",
        &op,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call_as(&state, "GET", "/v1/orgs/red/credentials/example-token", &op).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Every action is audited, without values.
    let r = call_as(&state, "GET", "/v1/orgs/red/audit?limit=100", &op).await;
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in [
        "credential.create",
        "credential.update",
        "credential.rollback",
        "credential.delete",
    ] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
    assert!(!r.body.to_string().contains(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_reads_metadata_and_sets_credentials() {
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    create_org(&state, "acme").await;
    let viewer = token(&state, "acme", "viewer").await;
    let gql = |token: String, query: &'static str, vars: Value| {
        let state = state.clone();
        async move {
            call(
                &state,
                "POST",
                "/graphql",
                Some(&token),
                Some(json!({"query": query, "variables": vars})),
            )
            .await
        }
    };
    const SET: &str = "mutation($org: ID!, $name: String!, $input: SetCredentialInput!) { setCredential(org: $org, name: $name, input: $input) { name kind version fingerprint hosts username } }";
    let input = json!({"kind": "BASIC", "username": "svc", "password": SECRET, "hosts": ["https://api.example.com"]});
    let r = gql(
        ADMIN.into(),
        SET,
        json!({"org": "acme", "name": "basic-cred", "input": input}),
    )
    .await;
    assert!(r.body.get("errors").is_none(), "{:?}", r.body);
    assert_eq!(r.body["data"]["setCredential"]["kind"], "BASIC");
    assert_eq!(r.body["data"]["setCredential"]["username"], "svc");
    let r = gql(
        viewer.clone(),
        SET,
        json!({"org": "acme", "name": "x", "input": input}),
    )
    .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{:?}",
        r.body
    );
    assert!(!r.body.to_string().contains(SECRET));
    const LIST: &str = "query($org: ID!) { credentials(org: $org) { name kind version hosts fingerprint versions { version state fingerprint } boundConnectors } }";
    let r = gql(viewer, LIST, json!({"org": "acme"})).await;
    assert!(r.body.get("errors").is_none(), "{:?}", r.body);
    assert_eq!(r.body["data"]["credentials"][0]["name"], "basic-cred");
    assert_eq!(
        r.body["data"]["credentials"][0]["versions"][0]["state"],
        "PROMOTED"
    );
    assert!(!r.body.to_string().contains(SECRET));
    // Bad input: field errors with GraphQL paths, no value.
    let bad = json!({"kind": "BASIC", "password": SECRET, "hosts": [SECRET]});
    let r = gql(
        ADMIN.into(),
        SET,
        json!({"org": "acme", "name": "b2", "input": bad}),
    )
    .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "INVALID",
        "{:?}",
        r.body
    );
    assert!(!r.body.to_string().contains(SECRET), "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn expiring_credentials_show_as_health_warnings_of_bound_connectors() {
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    create_org(&state, "acme").await;
    let soon = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let later = (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let hosts = ["https://api.example.com"];
    for (name, exp) in [("soon", &soon), ("later", &later), ("past", &past)] {
        let mut b = bearer("expiry-test-token", &hosts);
        b["expires_at"] = json!(exp);
        let r = put_credential(&state, ADMIN, "acme", name, "", b).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let mut ids = Vec::new();
    for name in ["soon", "later", "past"] {
        let mut c = app::connector_body(name);
        c["credentials"] = json!({"api": name});
        ids.push(create_connector(&state, ADMIN, "acme", c).await);
    }
    let warnings = |i: usize| {
        let state = state.clone();
        let id = ids[i].clone();
        async move {
            let r = call_as(
                &state,
                "GET",
                &format!("/v1/orgs/acme/connectors/{id}/health"),
                ADMIN,
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.body["credential_warnings"].as_array().unwrap().clone()
        }
    };
    let w = warnings(0).await;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["name"], "soon");
    assert_eq!(w[0]["expired"], false);
    assert!(
        warnings(1).await.is_empty(),
        "60 days is beyond the 14-day default"
    );
    let w = warnings(2).await;
    assert_eq!(w[0]["expired"], true, "{w:?}");
    let exp = state
        .service()
        .credentials_expiring("acme", std::time::Duration::from_secs(14 * 86_400))
        .unwrap();
    let names: Vec<&str> = exp.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["past", "soon"]);
}
