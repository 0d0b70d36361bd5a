//! The secret-leak test: a full run (create, test, poll, rotate, promote, rollback and
//! failures of every kind) with every log line captured, then every secret value and every
//! OAuth access token searched in the logs, every API answer (REST and GraphQL), the
//! audit log, every error, `Debug` output and the raw files of the data directory: zero
//! occurrences. The store must hold the ciphertext instead.

use std::io::Write;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use portcullis_e2e::simulators::{OAuthConfig, PagedApiConfig};
use serde_json::json;

use super::*;
use crate::app::{self, ADMIN, call, raw};

/// A `MakeWriter` appending every formatted log line to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything that left the host in a form a person or another system could read.
#[derive(Default)]
struct Haystack {
    texts: Vec<(String, String)>,
}

impl Haystack {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.texts.push((what.into(), text.into()));
    }
    fn resp(&mut self, what: &str, r: &Resp) -> Value {
        self.add(what, r.body.to_string());
        r.body.clone()
    }
}

const B1: &str = "leak-bearer-one-5e0c9a";
const B2: &str = "leak-bearer-two-77d1f3";
const K1: &str = "leak-apikey-1b8e44";
const P1: &str = "leak-password-0fa2c1";
const W1: &str = "leak-wrong-client-secret-4c2b";
const G1: &str = "leak-graphql-password-a91d";
const BAD: [&str; 4] = [
    "leak-bad-input-1-aa01",
    "leak-bad-input-2-bb02",
    "leak-bad-input-3-cc03",
    "leak-bad-input-4-dd04",
];
const OAUTH_SECRET: &str = "leak-oauth-client-secret+/:91";

#[tokio::test(flavor = "current_thread")]
async fn no_secret_or_token_appears_in_logs_answers_audit_errors_or_store_files() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut hay = Haystack::default();

    let rs = ResourceServer::start().await;
    rs.accept(&format!("Bearer {B1}"));
    let (oauth, paged) = portcullis_e2e::oauth_protected_api(
        OAuthConfig {
            client_secret: OAUTH_SECRET.into(),
            ..OAuthConfig::default()
        },
        PagedApiConfig::default(),
    );
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    create_org(&state, "acme").await;
    let op = token(&state, "acme", "operator").await;

    // Create one credential of every kind.
    let r = put_credential(
        &state,
        &op,
        "acme",
        "rs-bearer",
        "",
        bearer(B1, &[&rs.base]),
    )
    .await;
    assert_eq!(hay.resp("put bearer", &r)["version"], 1);
    let oauth_body = json!({
        "kind": "oauth2-client-credentials", "token_url": oauth.token_url(),
        "client_id": oauth.client_id(), "client_secret": OAUTH_SECRET,
        "scopes": ["alerts:read"], "hosts": [paged.base_url()]
    });
    let r = put_credential(&state, &op, "acme", "siem-oauth", "", oauth_body.clone()).await;
    assert_eq!(hay.resp("put oauth", &r)["version"], 1, "{:?}", r.body);
    let r = put_credential(&state, &op, "acme", "key", "", json!({"kind": "api-key", "key": K1, "header": "X-Api-Key", "hosts": ["https://x.example"]})).await;
    hay.resp("put api-key", &r);
    let r = put_credential(
        &state,
        &op,
        "acme",
        "basic",
        "",
        json!({"kind": "basic", "username": "svc", "password": P1, "hosts": ["https://x.example"]}),
    )
    .await;
    hay.resp("put basic", &r);

    // Connectors, tests, polls.
    let c1 = create_connector(
        &state,
        &op,
        "acme",
        rest_connector("rs", &rs.base, &rs.base, "rs-bearer"),
    )
    .await;
    let c2 = create_connector(
        &state,
        &op,
        "acme",
        rest_connector("siem", &paged.base_url(), &paged.base_url(), "siem-oauth"),
    )
    .await;
    for c in [&c1, &c2] {
        let r = call_as(
            &state,
            "POST",
            &format!("/v1/orgs/acme/connectors/{c}/test"),
            &op,
        )
        .await;
        assert_eq!(hay.resp("connector test", &r)["ok"], true, "{:?}", r.body);
        let sb = sandbox(&state, "acme", c).await;
        let cfg = config_of(&state, "acme", c).await;
        for _ in 0..3 {
            let b = sb.poll(&cfg, None).await.unwrap();
            hay.add("poll events", format!("{:?}", b.events));
        }
    }
    assert!(oauth.tokens_issued() >= 1);

    // Rotation: a pending version failing its test, then passing, promoted, rolled back.
    let r = put_credential(
        &state,
        &op,
        "acme",
        "rs-bearer",
        "",
        bearer(B2, &[&rs.base]),
    )
    .await;
    assert_eq!(hay.resp("put v2", &r)["pending_version"], 2);
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/rs-bearer/test",
        &op,
    )
    .await;
    assert_eq!(hay.resp("test v2 refused", &r)["ok"], false, "{:?}", r.body);
    rs.accept(&format!("Bearer {B2}"));
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/rs-bearer/test",
        &op,
    )
    .await;
    assert_eq!(hay.resp("test v2", &r)["ok"], true, "{:?}", r.body);
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/rs-bearer/promote",
        &op,
    )
    .await;
    hay.resp("promote", &r);
    let sb1 = sandbox(&state, "acme", &c1).await;
    let cfg1 = config_of(&state, "acme", &c1).await;
    sb1.poll(&cfg1, None).await.unwrap();
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/rs-bearer/rollback",
        &op,
    )
    .await;
    hay.resp("rollback", &r);
    sb1.poll(&cfg1, None).await.unwrap();
    assert!(rs.seen().contains(&format!("Bearer {B2}")));

    // Failures: the upstream refusing the token; the token endpoint refusing the client.
    rs.revoke(&format!("Bearer {B1}"));
    let err = sb1.poll(&cfg1, None).await.unwrap_err();
    hay.add("poll error", format!("{err} / {err:?}"));
    let mut wrong = oauth_body.clone();
    wrong["client_secret"] = json!(W1);
    let r = put_credential(&state, &op, "acme", "siem-oauth", "", wrong).await;
    hay.resp("put wrong oauth", &r);
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/siem-oauth/test",
        &op,
    )
    .await;
    let report = hay.resp("test wrong oauth", &r);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["connectors"][0]["reason"], "AUTH_FAILED", "{report}");
    assert_eq!(
        report["connectors"][0]["auth_error"], "invalid_client",
        "{report}"
    );
    // Bad input carrying secrets in every wrong place.
    for (i, body) in [
        json!({"kind": "bearer", "token": BAD[0], "hosts": "not-a-list"}),
        json!({"kind": "api-key", "key": BAD[1], "hosts": ["https://x.example"]}),
        json!({"kind": "basic", "username": "a:b", "password": BAD[2], "hosts": ["https://x.example"]}),
        json!({"kind": "bearer", "token": 7, "hosts": [BAD[3]]}),
    ]
    .into_iter()
    .enumerate()
    {
        let r = put_credential(&state, &op, "acme", &format!("bad-{i}"), "", body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        hay.resp("bad input", &r);
    }
    let req = Request::builder()
        .method("PUT")
        .uri("/v1/orgs/acme/credentials/broken")
        .header("authorization", format!("Bearer {op}"))
        .header("content-type", "application/json")
        .body(Body::from(format!(
            r#"{{"kind": "bearer", "token": "{}""#,
            BAD[3]
        )))
        .unwrap();
    let r = raw(&state, req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    hay.resp("malformed json", &r);

    // GraphQL: metadata queries and a mutation carrying a secret.
    let q = json!({"query": "mutation($i: SetCredentialInput!) { setCredential(org: \"acme\", name: \"gql\", input: $i) { name fingerprint } }",
                   "variables": {"i": {"kind": "BASIC", "username": "g", "password": G1, "hosts": ["https://x.example"]}}});
    let r = call(&state, "POST", "/graphql", Some(&op), Some(q)).await;
    hay.resp("graphql set", &r);
    let q = json!({"query": "{ credentials(org: \"acme\") { name kind hosts tokenUrl clientId username fingerprint versions { version state fingerprint } } }"});
    let r = call(&state, "POST", "/graphql", Some(&op), Some(q)).await;
    assert!(
        hay.resp("graphql list", &r)["data"]["credentials"]
            .as_array()
            .unwrap()
            .len()
            >= 5
    );

    // Every read, the audit logs, Debug output.
    let r = call_as(&state, "GET", "/v1/orgs/acme/credentials", &op).await;
    hay.resp("list", &r);
    for name in ["rs-bearer", "siem-oauth", "key", "basic", "gql"] {
        let r = call_as(
            &state,
            "GET",
            &format!("/v1/orgs/acme/credentials/{name}"),
            &op,
        )
        .await;
        hay.resp("get", &r);
        let c = state
            .service()
            .vault()
            .credential("acme", name, None)
            .unwrap();
        hay.add("debug", format!("{c:?}"));
    }
    let r = call_as(&state, "GET", "/v1/orgs/acme/audit?limit=1000", &op).await;
    let audit = hay.resp("audit", &r);
    assert!(audit["items"].as_array().unwrap().len() > 15);
    let r = call_as(&state, "GET", "/v1/audit?limit=1000", ADMIN).await;
    hay.resp("platform audit", &r);
    hay.add("vault debug", format!("{:?}", state.service().vault()));

    // The raw store files (after a flush) and the logs.
    state.service().store().flush().unwrap();
    let mut files = Vec::new();
    let mut stack = vec![tmp.path().join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let store_bytes: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(
        store_bytes
            .windows(b"cred/acme/rs-bearer".len())
            .any(|w| w == b"cred/acme/rs-bearer"),
        "the credential records are in the store files"
    );
    let log_text = String::from_utf8_lossy(&logs.0.lock()).to_string();
    assert!(
        log_text.contains("credential version promoted"),
        "logs captured"
    );

    // Secrets, their encodings as sent, and every access token the server issued.
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut needles: Vec<String> = [B1, B2, K1, P1, W1, G1, OAUTH_SECRET]
        .iter()
        .chain(BAD.iter())
        .map(|s| s.to_string())
        .collect();
    needles.push(form(OAUTH_SECRET));
    needles.push(b64(format!("svc:{P1}")));
    needles.push(b64(format!(
        "{}:{}",
        form(&oauth.client_id()),
        form(OAUTH_SECRET)
    )));
    let tokens: Vec<String> = oauth
        .issued_tokens()
        .into_iter()
        .map(|t| t.access_token)
        .collect();
    assert!(!tokens.is_empty());
    needles.extend(tokens);
    let mut found = Vec::new();
    for n in &needles {
        if log_text.contains(n.as_str()) {
            found.push(format!("{n} in the logs"));
        }
        for (what, text) in &hay.texts {
            if text.contains(n.as_str()) {
                found.push(format!("{n} in {what}"));
            }
        }
        for (path, bytes) in &files {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                found.push(format!("{n} in {path}"));
            }
        }
    }
    assert!(found.is_empty(), "secrets leaked: {found:#?}");
    // The search itself finds what is there: the (keyed) fingerprint is in the answers,
    // the logs and the store.
    let fp = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a["detail"]["fingerprint"].as_str())
        .unwrap()
        .to_string();
    assert!(hay.texts.iter().any(|(_, t)| t.contains(&fp)));
    assert!(
        files
            .iter()
            .any(|(_, b)| b.windows(fp.len()).any(|w| w == fp.as_bytes()))
    );
    assert!(
        log_text.contains("request"),
        "HTTP request log lines were captured"
    );
}
