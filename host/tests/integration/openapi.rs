//! The OpenAPI 3.1 document at `/v1/openapi.json`: served without a token, generated from
//! the handlers (every route of the router is in it, with its problem+json errors and the
//! bearer scheme), valid for `openapi-spec-validator` from PyPI, and true: real answers of
//! the server validate against the schemas it declares.
#![allow(clippy::unwrap_used)]

use crate::app;
use crate::pytools;

use app::{ADMIN, call, connector_body};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Every REST operation the router serves (method, OpenAPI path).
const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/v1/openapi.json"),
    ("post", "/v1/orgs"),
    ("get", "/v1/orgs"),
    ("get", "/v1/orgs/{org}"),
    ("post", "/v1/orgs/{org}/tokens"),
    ("get", "/v1/orgs/{org}/tokens"),
    ("delete", "/v1/orgs/{org}/tokens/{id}"),
    ("get", "/v1/orgs/{org}/audit"),
    ("get", "/v1/audit"),
    ("post", "/v1/plugins"),
    ("get", "/v1/plugins"),
    ("get", "/v1/plugins/{id}"),
    ("delete", "/v1/plugins/{id}"),
    ("get", "/v1/plugins/{id}/{version}"),
    ("delete", "/v1/plugins/{id}/{version}"),
    ("post", "/v1/orgs/{org}/connectors"),
    ("get", "/v1/orgs/{org}/connectors"),
    ("get", "/v1/orgs/{org}/connectors/{id}"),
    ("patch", "/v1/orgs/{org}/connectors/{id}"),
    ("delete", "/v1/orgs/{org}/connectors/{id}"),
    ("post", "/v1/orgs/{org}/connectors/{id}/enable"),
    ("post", "/v1/orgs/{org}/connectors/{id}/disable"),
    ("post", "/v1/orgs/{org}/connectors/{id}/test"),
    ("get", "/v1/orgs/{org}/connectors/{id}/revisions"),
    ("get", "/v1/orgs/{org}/events"),
    ("get", "/v1/orgs/{org}/connectors/{id}/health"),
    ("get", "/v1/orgs/{org}/connectors/{id}/metrics"),
    ("get", "/metrics"),
    ("get", "/v1/orgs/{org}/credentials"),
    ("get", "/v1/orgs/{org}/credentials/{name}"),
    ("put", "/v1/orgs/{org}/credentials/{name}"),
    ("delete", "/v1/orgs/{org}/credentials/{name}"),
    ("post", "/v1/orgs/{org}/credentials/{name}/test"),
    ("post", "/v1/orgs/{org}/credentials/{name}/promote"),
    ("post", "/v1/orgs/{org}/credentials/{name}/rollback"),
    ("post", "/v1/vault/rotate-master-key"),
    ("post", "/v1/ingest/{connector_id}"),
    ("post", "/v1/orgs/{org}/connectors/{id}/webhook-secret"),
    ("get", "/v1/orgs/{org}/sinks"),
    ("put", "/v1/orgs/{org}/sinks"),
];

/// Authenticated by the connector's webhook secret, not an API token.
const WEBHOOK: &[&str] = &["/v1/ingest/{connector_id}"];

const PUBLIC: &[&str] = &["/healthz", "/readyz", "/v1/openapi.json"];

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_is_public_and_covers_every_operation() {
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    let r = call(&state, "GET", "/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.content_type.starts_with("application/json"));
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["type"],
        "http"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ApiError"].is_object());

    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            documented += 1;
            assert!(
                OPERATIONS.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is documented but not in the list of served operations"
            );
            assert!(
                op["operationId"].is_string() && op["summary"].is_string(),
                "{method} {path}: {op}"
            );
            let responses = op["responses"].as_object().unwrap();
            if PUBLIC.contains(&path.as_str()) {
                assert!(op.get("security").is_none(), "{path} needs no token");
                continue;
            }
            if WEBHOOK.contains(&path.as_str()) {
                assert_eq!(
                    op["security"],
                    json!([{"webhook_token": []}, {"webhook_signature": []}]),
                    "{method} {path}"
                );
            } else {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
            }
            assert!(
                responses.contains_key("401"),
                "{method} {path} lacks its 401"
            );
            for (status, resp) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        resp["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/ApiError",
                        "{method} {path} {status}"
                    );
                }
            }
            // Path parameters are declared.
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(['{', '}']);
                assert!(
                    op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                    "{method} {path}: path parameter {name} undeclared"
                );
            }
        }
    }
    assert_eq!(
        documented,
        OPERATIONS.len(),
        "every operation is documented"
    );

    // Every operation of the list really is served (no 404 from the fallback).
    for (method, path) in OPERATIONS {
        let uri = path
            .replace("{org}", "no-such-org")
            .replace("{id}", "no-such-id")
            .replace("{name}", "no-such-name")
            .replace("{version}", "0.0.0");
        let uri = uri.replace("{connector_id}", "no-such-connector");
        let r = call(&state, &method.to_uppercase(), &uri, None, None).await;
        if WEBHOOK.contains(path) {
            // Authenticated per connector: an unknown connector is the handler's own 404
            // (problem+json naming it), not the router's fallback.
            assert!(
                r.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("no-such-connector")),
                "{method} {uri}: {:?}",
                r.body
            );
            continue;
        }
        assert!(
            r.status != StatusCode::NOT_FOUND && r.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: {:?}",
            r.body
        );
    }

    // Query parameters come from the filter types; request bodies from the input types.
    let list = &doc["paths"]["/v1/orgs/{org}/connectors"]["get"]["parameters"];
    for q in [
        "category", "status", "health", "plugin", "q", "limit", "cursor",
    ] {
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == q && p["in"] == "query"),
            "query parameter {q} missing"
        );
    }
    assert_eq!(
        doc["paths"]["/v1/orgs/{org}/connectors"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/ConnectorInput"
    );
    assert!(
        doc["paths"]["/v1/plugins"]["post"]["requestBody"]["content"]["application/wasm"]
            .is_object()
    );
    let input = &doc["components"]["schemas"]["ConnectorInput"];
    assert_eq!(input["required"], json!(["name", "plugin"]));
    // Serde names, not Rust names.
    let category = &doc["components"]["schemas"]["Category"]["enum"];
    assert!(
        category
            .as_array()
            .unwrap()
            .contains(&json!("threat-intel"))
    );
    let kinds = &doc["components"]["schemas"]["CredentialKind"]["enum"];
    assert!(
        kinds
            .as_array()
            .unwrap()
            .contains(&json!("oauth2-client-credentials"))
    );
    // Token hashes are not part of the documented token record.
    assert!(
        doc["components"]["schemas"]["TokenRecord"]["properties"]
            .get("hash")
            .is_none()
    );
}

/// Records real answers for the validator.
struct Sampler {
    client: reqwest::Client,
    base: String,
    samples: Vec<Value>,
}

impl Sampler {
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{uri}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.bytes().await.unwrap();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        self.samples.push(json!({
            "path": template, "method": method.to_lowercase(), "status": status,
            "content_type": content_type, "body": body,
        }));
        body
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_passes_openapi_spec_validator_and_matches_real_answers() {
    let tmp = portcullis_e2e::temp_dir();
    let served = app::serve(tmp.path()).await;
    let base = served.url.clone();
    let client = reqwest::Client::new();

    // The document over a real socket, without a token.
    let resp = client
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc_bytes = resp.bytes().await.unwrap();
    let doc_path = tmp.path().join("openapi.json");
    std::fs::write(&doc_path, &doc_bytes).unwrap();

    // Real answers of the server, good and bad, for the documented schemas.
    let mut sm = Sampler {
        client: client.clone(),
        base: base.clone(),
        samples: Vec::new(),
    };
    sm.call("GET", "/healthz", "/healthz", None, None).await;
    sm.call("GET", "/readyz", "/readyz", None, None).await;
    let body = json!({"id": "acme", "name": "Acme"});
    sm.call(
        "POST",
        "/v1/orgs",
        "/v1/orgs",
        Some(ADMIN),
        Some(body.clone()),
    )
    .await;
    sm.call("POST", "/v1/orgs", "/v1/orgs", Some(ADMIN), Some(body))
        .await; // 409
    let bad = json!({"id": "Bad!", "name": "x"});
    sm.call("POST", "/v1/orgs", "/v1/orgs", Some(ADMIN), Some(bad))
        .await; // 422
    let unknown = json!({"id": "x", "name": "x", "extra": 1});
    sm.call("POST", "/v1/orgs", "/v1/orgs", Some(ADMIN), Some(unknown))
        .await; // 400
    sm.call("GET", "/v1/orgs", "/v1/orgs", Some(ADMIN), None)
        .await;
    sm.call("GET", "/v1/orgs", "/v1/orgs", None, None).await; // 401
    sm.call("GET", "/v1/orgs/{org}", "/v1/orgs/acme", Some(ADMIN), None)
        .await;
    sm.call("GET", "/v1/orgs/{org}", "/v1/orgs/nope", Some(ADMIN), None)
        .await; // 404
    let tok = json!({"name": "ops", "role": "operator"});
    let created = sm
        .call(
            "POST",
            "/v1/orgs/{org}/tokens",
            "/v1/orgs/acme/tokens",
            Some(ADMIN),
            Some(tok),
        )
        .await;
    let op_token = created["token"].as_str().unwrap().to_string();
    let t = "/v1/orgs/{org}/tokens";
    sm.call("GET", t, "/v1/orgs/acme/tokens", Some(ADMIN), None)
        .await;
    sm.call("GET", t, "/v1/orgs/acme/tokens", Some(&op_token), None)
        .await; // 403
    let viewer = sm
        .call(
            "POST",
            t,
            "/v1/orgs/acme/tokens",
            Some(ADMIN),
            Some(json!({"name": "v", "role": "viewer"})),
        )
        .await;
    let viewer_id = viewer["id"].as_str().unwrap().to_string();
    let td = "/v1/orgs/{org}/tokens/{id}";
    let uri = format!("/v1/orgs/acme/tokens/{viewer_id}");
    sm.call("DELETE", td, &uri, Some(ADMIN), None).await; // 204
    sm.call("DELETE", td, &uri, Some(ADMIN), None).await; // 404

    // Credentials: create, bad input, reads, a pending version promoted and rolled back.
    let cr = "/v1/orgs/{org}/credentials/{name}";
    let cred_uri = "/v1/orgs/acme/credentials/example-token";
    let cred = app::example_credential_body();
    sm.call("PUT", cr, cred_uri, Some(&op_token), Some(cred.clone()))
        .await; // 201
    let bad_cred = json!({"kind": "bearer", "hosts": []});
    sm.call(
        "PUT",
        cr,
        "/v1/orgs/acme/credentials/other",
        Some(&op_token),
        Some(bad_cred),
    )
    .await; // 422
    sm.call(
        "PUT",
        cr,
        &format!("{cred_uri}?promote=false"),
        Some(&op_token),
        Some(cred),
    )
    .await; // 200, pending
    sm.call(
        "GET",
        "/v1/orgs/{org}/credentials",
        "/v1/orgs/acme/credentials",
        Some(&op_token),
        None,
    )
    .await;
    sm.call("GET", cr, cred_uri, Some(&op_token), None).await;
    sm.call(
        "GET",
        cr,
        "/v1/orgs/acme/credentials/nope",
        Some(&op_token),
        None,
    )
    .await; // 404
    let promote = "/v1/orgs/{org}/credentials/{name}/promote";
    let rollback = "/v1/orgs/{org}/credentials/{name}/rollback";
    let ctest = "/v1/orgs/{org}/credentials/{name}/test";
    sm.call(
        "POST",
        ctest,
        &format!("{cred_uri}/test"),
        Some(&op_token),
        None,
    )
    .await; // 409: nothing bound yet
    sm.call(
        "POST",
        promote,
        &format!("{cred_uri}/promote"),
        Some(&op_token),
        None,
    )
    .await;
    sm.call(
        "POST",
        rollback,
        &format!("{cred_uri}/rollback"),
        Some(&op_token),
        None,
    )
    .await;
    sm.call(
        "POST",
        "/v1/vault/rotate-master-key",
        "/v1/vault/rotate-master-key",
        Some(&op_token),
        None,
    )
    .await; // 403
    sm.call(
        "POST",
        "/v1/vault/rotate-master-key",
        "/v1/vault/rotate-master-key",
        Some(ADMIN),
        Some(json!({})),
    )
    .await; // 200

    let cs = "/v1/orgs/{org}/connectors";
    let conn = sm
        .call(
            "POST",
            cs,
            "/v1/orgs/acme/connectors",
            Some(&op_token),
            Some(connector_body("feed")),
        )
        .await;
    let id = conn["id"].as_str().unwrap().to_string();
    let bad_cfg = json!({"name": "x", "plugin": "rest-generic", "config": {"base_url": 5}});
    sm.call(
        "POST",
        cs,
        "/v1/orgs/acme/connectors",
        Some(&op_token),
        Some(bad_cfg),
    )
    .await; // 422 with field errors
    sm.call("GET", cs, "/v1/orgs/acme/connectors", Some(&op_token), None)
        .await;
    let uri = "/v1/orgs/acme/connectors?limit=1&status=disabled&q=fe";
    sm.call("GET", cs, uri, Some(&op_token), None).await;
    let uri = "/v1/orgs/acme/connectors?limit=abc";
    sm.call("GET", cs, uri, Some(&op_token), None).await; // 400
    let one = "/v1/orgs/{org}/connectors/{id}";
    let uri = format!("/v1/orgs/acme/connectors/{id}");
    sm.call("GET", one, &uri, Some(&op_token), None).await;
    let patch = json!({"schedule": "PT2M"});
    sm.call("PATCH", one, &uri, Some(&op_token), Some(patch))
        .await;
    let en = "/v1/orgs/{org}/connectors/{id}/enable";
    let dis = "/v1/orgs/{org}/connectors/{id}/disable";
    let test = "/v1/orgs/{org}/connectors/{id}/test";
    let revs = "/v1/orgs/{org}/connectors/{id}/revisions";
    sm.call("POST", en, &format!("{uri}/enable"), Some(&op_token), None)
        .await;
    sm.call(
        "POST",
        dis,
        &format!("{uri}/disable"),
        Some(&op_token),
        None,
    )
    .await;
    sm.call("POST", test, &format!("{uri}/test"), Some(&op_token), None)
        .await;
    sm.call(
        "POST",
        ctest,
        &format!("{cred_uri}/test"),
        Some(&op_token),
        None,
    )
    .await; // 200: run against the bound connector
    // After a test the record carries `last_test`.
    sm.call("GET", one, &uri, Some(&op_token), None).await;
    sm.call(
        "GET",
        revs,
        &format!("{uri}/revisions"),
        Some(&op_token),
        None,
    )
    .await;
    let audit = "/v1/orgs/{org}/audit";
    sm.call(
        "GET",
        audit,
        "/v1/orgs/acme/audit?limit=5",
        Some(&op_token),
        None,
    )
    .await;
    sm.call("GET", "/v1/audit", "/v1/audit", Some(ADMIN), None)
        .await;
    sm.call("GET", "/v1/audit", "/v1/audit", Some(&op_token), None)
        .await; // 403

    let p = "/v1/plugins";
    sm.call("GET", p, p, Some(&op_token), None).await;
    let pid = "/v1/plugins/{id}";
    sm.call(
        "GET",
        pid,
        "/v1/plugins/rest-generic",
        Some(&op_token),
        None,
    )
    .await;
    sm.call("GET", pid, "/v1/plugins/nope", Some(&op_token), None)
        .await; // 404
    let version = conn["plugin"]["version"].as_str().unwrap();
    let pv = "/v1/plugins/{id}/{version}";
    let uri_v = format!("/v1/plugins/rest-generic/{version}");
    sm.call("GET", pv, &uri_v, Some(&op_token), None).await;
    sm.call("DELETE", pid, "/v1/plugins/rest-generic", Some(ADMIN), None)
        .await; // 409
    sm.call("DELETE", pv, &uri_v, Some(&op_token), None).await; // 403
    let uri_f = format!("{uri_v}?force=true");
    sm.call("DELETE", pv, &uri_f, Some(ADMIN), None).await; // 200
    sm.call("DELETE", cr, cred_uri, Some(&op_token), None).await; // 409: bound
    sm.call("DELETE", one, &uri, Some(&op_token), None).await; // 204
    sm.call("DELETE", cr, cred_uri, Some(&op_token), None).await; // 204
    let mut s = sm.samples;

    // A plugin upload with the wrong content type: 415 problem+json.
    let r = client
        .post(format!("{base}/v1/plugins"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 4])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    s.push(json!({"path": "/v1/plugins", "method": "post", "status": status, "content_type": ct, "body": body}));

    let statuses: std::collections::BTreeSet<u64> =
        s.iter().map(|v| v["status"].as_u64().unwrap()).collect();
    for want in [200, 201, 204, 400, 401, 403, 404, 409, 415, 422] {
        assert!(statuses.contains(&want), "no sample answered {want}");
    }
    let samples_path = tmp.path().join("samples.json");
    std::fs::write(&samples_path, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    served.stop().await;

    let out = pytools::run_tool(
        "check_openapi.py",
        &[doc_path.as_os_str(), samples_path.as_os_str()],
    );
    assert!(out.starts_with("ok: OpenAPI 3.1"), "{out}");
    println!("{out}");
}
