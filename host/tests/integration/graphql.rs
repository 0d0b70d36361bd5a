//! GraphQL at `/graphql`, driven through the router (`oneshot`) and over a real socket:
//! the tenant-isolation and role matrix over every query and mutation (another org's
//! objects answer exactly like ids that do not exist), toggle and test through mutations,
//! paging and filters, field paths of invalid input, depth and complexity limits, and the
//! schema checked by graphql-core (PyPI) from the standard introspection query.
#![allow(clippy::unwrap_used)]

use crate::app;
use crate::pytools;

use std::collections::HashMap;

use app::{ADMIN, Resp, raw};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use portcullis::api::AppState;
use serde_json::{Value, json};

async fn gql_with(state: &AppState, auth: Option<String>, query: &str, variables: Value) -> Resp {
    let mut req = Request::builder()
        .method("POST")
        .uri("/graphql")
        .header("content-type", "application/json");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let body = json!({"query": query, "variables": variables}).to_string();
    raw(state, req.body(Body::from(body)).unwrap()).await
}

async fn gql(state: &AppState, token: Option<&str>, query: &str, variables: Value) -> Resp {
    let r = gql_with(
        state,
        token.map(|t| format!("Bearer {t}")),
        query,
        variables,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    r
}

/// `extensions.code` of the first error, or "" when there is none.
fn code(r: &Resp) -> String {
    r.body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn ok(r: &Resp) -> &Value {
    assert!(r.body.get("errors").is_none(), "{:?}", r.body);
    &r.body["data"]
}

fn connector_input(name: &str) -> Value {
    json!({
        "name": name,
        "plugin": "rest-generic",
        "config": {"base_url": "https://api.example.com", "path": "/alerts", "id": "/id", "credential": "api"},
        "credentials": [{"slot": "api", "credential": "example-token"}],
        "grants": ["https://api.example.com"],
        "schedule": "PT1M"
    })
}

const CREATE: &str = "mutation($org: ID!, $input: CreateConnectorInput!) { createConnector(org: $org, input: $input) { id org name revision enabled } }";

async fn create(state: &AppState, token: &str, org: &str, name: &str) -> Resp {
    gql(
        state,
        Some(token),
        CREATE,
        json!({"org": org, "input": connector_input(name)}),
    )
    .await
}

/// Two orgs, each with an admin, operator and viewer token; one connector each, created
/// through GraphQL.
struct World {
    state: AppState,
    tokens: HashMap<(String, String), String>,
    connectors: HashMap<String, String>,
}

impl World {
    fn token(&self, org: &str, role: &str) -> String {
        self.tokens[&(org.to_string(), role.to_string())].clone()
    }
}

async fn world(dir: &std::path::Path) -> World {
    let state = app::app(dir).await;
    let mut tokens = HashMap::new();
    let mut connectors = HashMap::new();
    for org in ["red", "blue"] {
        let r = app::call(
            &state,
            "POST",
            "/v1/orgs",
            Some(ADMIN),
            Some(json!({"id": org, "name": org})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        app::example_credential(&state, org).await;
        for role in ["admin", "operator", "viewer"] {
            let r = app::call(
                &state,
                "POST",
                &format!("/v1/orgs/{org}/tokens"),
                Some(ADMIN),
                Some(json!({"name": role, "role": role})),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED);
            tokens.insert(
                (org.to_string(), role.to_string()),
                r.body["token"].as_str().unwrap().to_string(),
            );
        }
        let r = create(&state, ADMIN, org, &format!("{org} feed")).await;
        let c = &ok(&r)["createConnector"];
        assert_eq!(c["org"], org);
        assert_eq!(c["revision"], 1);
        assert_eq!(c["enabled"], false);
        connectors.insert(org.to_string(), c["id"].as_str().unwrap().to_string());
    }
    World {
        state,
        tokens,
        connectors,
    }
}

/// Every query and mutation that takes an organisation (and a connector id).
fn org_operations() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "org",
            "query($org: ID!) { org(id: $org) { id name } }",
            json!({}),
        ),
        (
            "connectors",
            "query($org: ID!) { connectors(org: $org) { edges { cursor node { id } } pageInfo { hasNextPage } } }",
            json!({}),
        ),
        (
            "connector",
            "query($org: ID!, $id: ID!) { connector(org: $org, id: $id) { id name } }",
            json!({}),
        ),
        (
            "connector.revisions",
            "query($org: ID!, $id: ID!) { connector(org: $org, id: $id) { revisions { revision } } }",
            json!({}),
        ),
        (
            "audit",
            "query($org: ID!) { audit(org: $org) { id action } }",
            json!({}),
        ),
        (
            "createConnector",
            CREATE,
            json!({"input": connector_input("x")}),
        ),
        (
            "updateConnector",
            "mutation($org: ID!, $id: ID!) { updateConnector(org: $org, id: $id, input: {name: \"pwned\"}) { connector { id name } } }",
            json!({}),
        ),
        (
            "setConnectorEnabled(true)",
            "mutation($org: ID!, $id: ID!) { setConnectorEnabled(org: $org, id: $id, enabled: true) { id enabled } }",
            json!({}),
        ),
        (
            "setConnectorEnabled(false)",
            "mutation($org: ID!, $id: ID!) { setConnectorEnabled(org: $org, id: $id, enabled: false) { id enabled } }",
            json!({}),
        ),
        (
            "testConnector",
            "mutation($org: ID!, $id: ID!) { testConnector(org: $org, id: $id) { ok stages { name } } }",
            json!({}),
        ),
        (
            "deleteConnector",
            "mutation($org: ID!, $id: ID!) { deleteConnector(org: $org, id: $id) }",
            json!({}),
        ),
    ]
}

fn vars(extra: &Value, org: &str, id: &str) -> Value {
    let mut v = extra.clone();
    v["org"] = json!(org);
    v["id"] = json!(id);
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_org_graphql_is_indistinguishable_from_not_found() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let blue_conn = w.connectors["blue"].clone();
    let red_conn = w.connectors["red"].clone();
    for role in ["admin", "operator", "viewer"] {
        let red = w.token("red", role);
        for (name, query, extra) in org_operations() {
            // Another org, and an org that does not exist: the same answer.
            let cross = gql(
                &w.state,
                Some(&red),
                query,
                vars(&extra, "blue", &blue_conn),
            )
            .await;
            let missing = gql(
                &w.state,
                Some(&red),
                query,
                vars(&extra, "nonexistent-org", &blue_conn),
            )
            .await;
            assert_eq!(code(&cross), "NOT_FOUND", "{role} {name}: {:?}", cross.body);
            assert_eq!(
                cross.body.to_string().replace("blue", "X"),
                missing.body.to_string().replace("nonexistent-org", "X"),
                "{role} {name}: the answers must not reveal that org blue exists"
            );
            assert!(
                !cross.body.to_string().contains(&blue_conn),
                "{role} {name} leaks: {:?}",
                cross.body
            );
            // Another org's connector id under one's own org: as for an id that does not
            // exist (not found; for a viewer's mutations, forbidden before any lookup).
            if query.contains("$id") {
                let under_own =
                    gql(&w.state, Some(&red), query, vars(&extra, "red", &blue_conn)).await;
                let no_such = gql(
                    &w.state,
                    Some(&red),
                    query,
                    vars(&extra, "red", "con_0000000000000000"),
                )
                .await;
                assert!(
                    ["NOT_FOUND", "FORBIDDEN"].contains(&code(&under_own).as_str()),
                    "{role} {name}: {:?}",
                    under_own.body
                );
                assert_eq!(
                    under_own.body.to_string().replace(&blue_conn, "X"),
                    no_such
                        .body
                        .to_string()
                        .replace("con_0000000000000000", "X"),
                    "{role} {name}"
                );
            }
        }
        // The org list shows only the caller's org; the platform audit log is not theirs.
        let r = gql(&w.state, Some(&red), "{ orgs { id } }", json!({})).await;
        assert_eq!(ok(&r)["orgs"], json!([{"id": "red"}]));
        let r = gql(&w.state, Some(&red), "{ audit { id } }", json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN");
        // Nothing of blue's shows up in red's own catalogue or audit log.
        let r = gql(
            &w.state,
            Some(&red),
            "{ connectors(org: \"red\") { edges { node { id org } } } audit(org: \"red\") { org target } }",
            json!({}),
        )
        .await;
        let text = ok(&r).to_string();
        assert!(
            !text.contains("blue") && !text.contains(&blue_conn),
            "{text}"
        );
        assert!(text.contains(&red_conn));
    }
    // Blue's connector is untouched.
    let r = gql(
        &w.state,
        Some(&w.token("blue", "viewer")),
        "query($id: ID!) { connector(org: \"blue\", id: $id) { name revision enabled revisions { revision } } }",
        json!({"id": blue_conn}),
    )
    .await;
    assert_eq!(
        ok(&r)["connector"],
        json!({"name": "blue feed", "revision": 1, "enabled": false, "revisions": [{"revision": 1}]})
    );
    let r = gql(
        &w.state,
        Some(ADMIN),
        "{ connectors(org: \"blue\") { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(ok(&r)["connectors"]["edges"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_decide_what_a_token_may_do_over_graphql() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let rank = |role: &str| match role {
        "viewer" => 0,
        "operator" => 1,
        _ => 2,
    };
    let mut callers: Vec<(&str, String)> = ["viewer", "operator", "admin"]
        .iter()
        .map(|r| (*r, w.token("red", r)))
        .collect();
    callers.push(("platform", ADMIN.to_string()));
    for (role, token) in &callers {
        // A connector of its own for this round (deleted at its end).
        let r = create(&w.state, ADMIN, "red", &format!("{role} scratch")).await;
        let id = ok(&r)["createConnector"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        for (name, query, extra) in org_operations() {
            let r = gql(&w.state, Some(token), query, vars(&extra, "red", &id)).await;
            let mutation = query.starts_with("mutation");
            let allowed = !mutation || rank(role) >= 1;
            if allowed {
                ok(&r);
            } else {
                assert_eq!(code(&r), "FORBIDDEN", "{role} {name}: {:?}", r.body);
                assert!(
                    r.body["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains("Operator"),
                    "{:?}",
                    r.body
                );
                // The field that failed is null; nothing else is answered.
                let data = r.body["data"].as_object().unwrap();
                assert!(data.values().all(Value::is_null), "{role} {name}: {data:?}");
            }
        }
        if rank(role) == 0 {
            let r = gql(
                &w.state,
                Some(ADMIN),
                "mutation($id: ID!) { deleteConnector(org: \"red\", id: $id) }",
                json!({"id": id}),
            )
            .await;
            ok(&r);
        }
        // Catalogue-wide queries are open to every token.
        for query in [
            "{ me { role platformAdmin } }",
            "{ plugins { id capabilities { hosts } } }",
            "{ plugin(id: \"rest-generic\") { id capabilities { credentialSlots { name kinds } } } }",
        ] {
            ok(&gql(&w.state, Some(token), query, json!({})).await);
        }
        let r = gql(
            &w.state,
            Some(token),
            "{ audit(limit: 5) { id } }",
            json!({}),
        )
        .await;
        if *role == "platform" {
            ok(&r);
        } else {
            assert_eq!(code(&r), "FORBIDDEN");
        }
    }
    let r = gql(
        &w.state,
        Some(&w.token("red", "operator")),
        "{ me { org role platformAdmin } }",
        json!({}),
    )
    .await;
    assert_eq!(
        ok(&r)["me"],
        json!({"org": "red", "role": "OPERATOR", "platformAdmin": false})
    );

    // No token, a bad token, a bad scheme, a revoked token: UNAUTHENTICATED everywhere.
    let red = &w.connectors["red"];
    let viewer = w.token("red", "viewer");
    let list = app::call(&w.state, "GET", "/v1/orgs/red/tokens", Some(ADMIN), None).await;
    let viewer_id = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app::call(
        &w.state,
        "DELETE",
        &format!("/v1/orgs/red/tokens/{viewer_id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let mut all = org_operations();
    all.push(("orgs", "{ orgs { id } }", json!({})));
    all.push(("plugins", "{ plugins { id } }", json!({})));
    all.push((
        "plugin",
        "{ plugin(id: \"rest-generic\") { id } }",
        json!({}),
    ));
    all.push(("me", "{ me { name } }", json!({})));
    for auth in [
        None,
        Some("Bearer pcs_not-a-real-token".to_string()),
        Some(format!("Basic {ADMIN}")),
        Some(format!("Bearer {viewer}")),
    ] {
        for (name, query, extra) in &all {
            let r = gql_with(&w.state, auth.clone(), query, vars(extra, "red", red)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(code(&r), "UNAUTHENTICATED", "{auth:?} {name}: {:?}", r.body);
            assert!(!r.body.to_string().contains("red feed"));
        }
    }
    // The schema itself is public (like the OpenAPI document).
    let r = gql_with(
        &w.state,
        None,
        "{ __typename __schema { queryType { name } mutationType { name } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        ok(&r)["__schema"],
        json!({"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}})
    );
}

const SNAPSHOT: &str = "query($id: ID!) { connector(org: \"red\", id: $id) {
    name pluginId pluginVersion config credentials { slot credential } grants schedule revision
    revisions { revision author at change spec { name config grants schedule credentials { slot credential } } }
} }";

#[tokio::test(flavor = "multi_thread")]
async fn toggle_and_test_through_mutations_keep_everything() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let op = w.token("red", "operator");
    let id = w.connectors["red"].clone();
    let r = gql(
        &w.state,
        Some(&op),
        "mutation($id: ID!, $cfg: JSON!) { updateConnector(org: \"red\", id: $id, input: {config: $cfg, schedule: \"PT2M\"}) { connector { revision schedule config } capabilityDiff } }",
        json!({"id": id, "cfg": {"base_url": "https://api.example.com", "path": "/v2/alerts", "id": "/uid", "credential": "api"}}),
    )
    .await;
    let u = &ok(&r)["updateConnector"];
    assert_eq!(u["connector"]["revision"], 2);
    assert_eq!(u["connector"]["config"]["path"], "/v2/alerts");
    assert_eq!(u["capabilityDiff"], Value::Null);

    let toggle = "mutation($id: ID!, $on: Boolean!) { setConnectorEnabled(org: \"red\", id: $id, enabled: $on) { enabled status health { state } } }";
    let r = gql(&w.state, Some(&op), toggle, json!({"id": id, "on": true})).await;
    assert_eq!(
        ok(&r)["setConnectorEnabled"],
        json!({"enabled": true, "status": "ENABLED", "health": {"state": "UNKNOWN"}})
    );
    let before = ok(&gql(&w.state, Some(&op), SNAPSHOT, json!({"id": id})).await).clone();

    let r = gql(&w.state, Some(&op), toggle, json!({"id": id, "on": false})).await;
    assert_eq!(
        ok(&r)["setConnectorEnabled"],
        json!({"enabled": false, "status": "DISABLED", "health": {"state": "DISABLED"}})
    );
    // A disabled connector can still be tested (test before activation).
    let r = gql(
        &w.state,
        Some(&op),
        "mutation($id: ID!) { testConnector(org: \"red\", id: $id) { ok latencyMs stages { name ok message latencyMs } sample { id } } }",
        json!({"id": id}),
    )
    .await;
    let t = &ok(&r)["testConnector"];
    assert!(t["latencyMs"].is_u64());
    assert!(
        t["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "auth"),
        "{t}"
    );
    // The result is kept on the connector, visible in the catalogue with health.
    let r = gql(
        &w.state,
        Some(&w.token("red", "viewer")),
        "{ connectors(org: \"red\", filter: {status: DISABLED}) { edges { node { id health { state } lastTest { ok by latencyMs stages { name ok } } plugin { id capabilities { hosts } } } } } }",
        json!({}),
    )
    .await;
    let node = &ok(&r)["connectors"]["edges"][0]["node"];
    assert_eq!(node["id"], json!(id));
    assert_eq!(node["health"]["state"], "DISABLED");
    assert_eq!(node["lastTest"]["ok"], t["ok"]);
    assert_eq!(
        node["lastTest"]["stages"].as_array().unwrap().len(),
        t["stages"].as_array().unwrap().len()
    );
    assert!(
        node["lastTest"]["by"]
            .as_str()
            .unwrap()
            .contains("operator")
    );
    assert_eq!(node["plugin"]["id"], "rest-generic");

    let r = gql(&w.state, Some(&op), toggle, json!({"id": id, "on": true})).await;
    assert_eq!(ok(&r)["setConnectorEnabled"]["enabled"], true);
    let after = ok(&gql(&w.state, Some(&op), SNAPSHOT, json!({"id": id})).await).clone();
    assert_eq!(
        before, after,
        "configuration, bindings, grants or revisions changed"
    );
    assert_eq!(after["connector"]["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(
        after["connector"]["revisions"][1]["spec"]["config"]["path"],
        "/v2/alerts"
    );

    // Every step is in the audit log, with no secret values.
    let r = gql(
        &w.state,
        Some(&op),
        "{ audit(org: \"red\") { action target outcome actor } }",
        json!({}),
    )
    .await;
    let actions: Vec<String> = ok(&r)["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect();
    for a in [
        "connector.create",
        "connector.updated",
        "connector.enable",
        "connector.disable",
        "connector.test",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }

    // Delete through the mutation: gone, and answers not found afterwards.
    let r = gql(
        &w.state,
        Some(&op),
        "mutation($id: ID!) { deleteConnector(org: \"red\", id: $id) }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(ok(&r)["deleteConnector"], json!(id));
    let r = gql(&w.state, Some(&op), SNAPSHOT, json!({"id": id})).await;
    assert_eq!(code(&r), "NOT_FOUND");
    assert_eq!(r.body["data"], json!({"connector": null}));
}

#[tokio::test(flavor = "multi_thread")]
async fn connectors_page_with_cursors_and_filter_and_bad_input_names_fields() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let op = w.token("red", "operator");
    for i in 0..4 {
        ok(&create(&w.state, &op, "red", &format!("page {i}")).await);
    }
    // 5 connectors in red; pages of 2.
    let page = "query($after: String) { connectors(org: \"red\", first: 2, after: $after) { edges { cursor node { id name } } pageInfo { hasNextPage hasPreviousPage endCursor startCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = gql(&w.state, Some(&op), page, json!({"after": after})).await;
        let c = &ok(&r)["connectors"];
        let edges = c["edges"].as_array().unwrap();
        assert!(edges.len() <= 2);
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_string()),
        );
        assert_eq!(c["pageInfo"]["endCursor"], edges.last().unwrap()["cursor"]);
        if c["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = c["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 5);

    // Filters: name search, status, category, health, plugin.
    let count = |filter: &'static str| {
        let state = w.state.clone();
        let op = op.clone();
        async move {
            let q = format!(
                "{{ connectors(org: \"red\", filter: {filter}) {{ edges {{ node {{ name }} }} }} }}"
            );
            let r = gql(&state, Some(&op), &q, json!({})).await;
            ok(&r)["connectors"]["edges"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("{search: \"PAGE\"}").await, 4);
    assert_eq!(count("{status: ENABLED}").await, 0);
    assert_eq!(
        count("{status: DISABLED, plugin: \"rest-generic\"}").await,
        5
    );
    assert_eq!(count("{category: CUSTOM_API}").await, 5);
    assert_eq!(count("{category: SIEM}").await, 0);
    assert_eq!(count("{health: DISABLED}").await, 5);
    assert_eq!(count("{health: HEALTHY}").await, 0);

    // Invalid input: INVALID with field paths.
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "x", "plugin": "rest-generic", "config": {"base_url": 5}}),
            "/config/base_url",
        ),
        (json!({"name": "x", "plugin": "nope"}), "/plugin"),
        (
            json!({"name": "x", "plugin": "rest-generic", "config": {"base_url": "https://a.example", "path": "/", "id": "/id"}, "grants": ["https://evil.example.net", "nope"]}),
            "/grants/1",
        ),
        (
            json!({"name": "x", "plugin": "rest-generic", "config": {"base_url": "https://a.example", "path": "/", "id": "/id"}, "schedule": "5 minutes"}),
            "/schedule",
        ),
    ];
    for (input, path) in cases {
        let r = gql(
            &w.state,
            Some(&op),
            CREATE,
            json!({"org": "red", "input": input}),
        )
        .await;
        assert_eq!(code(&r), "INVALID", "{:?}", r.body);
        let fields = r.body["errors"][0]["extensions"]["fields"]
            .as_array()
            .unwrap();
        assert!(
            fields
                .iter()
                .any(|f| f["path"] == path && f["message"].is_string()),
            "{path} not in {fields:?}"
        );
    }
    let r = gql(
        &w.state,
        Some(&op),
        "mutation($id: ID!) { updateConnector(org: \"red\", id: $id, input: {pluginVersion: \"9.9.9\"}) { connector { id } } }",
        json!({"id": w.connectors["red"]}),
    )
    .await;
    assert_eq!(code(&r), "INVALID");
    assert_eq!(
        r.body["errors"][0]["extensions"]["fields"][0]["path"],
        "/pluginVersion"
    );
    for first in [0, -1, 501] {
        let r = gql(
            &w.state,
            Some(&op),
            "query($n: Int!) { connectors(org: \"red\", first: $n) { edges { cursor } } }",
            json!({"n": first}),
        )
        .await;
        assert_eq!(code(&r), "INVALID", "{first}: {:?}", r.body);
        assert_eq!(
            r.body["errors"][0]["extensions"]["fields"][0]["path"],
            "/first"
        );
    }
    let r = gql(
        &w.state,
        Some(&op),
        "{ plugin(id: \"nope\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&r), "NOT_FOUND");
    let r = gql(
        &w.state,
        Some(ADMIN),
        "{ plugin(id: \"rest-generic\", version: \"0.0.0\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&r), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn depth_and_complexity_limits_and_bad_requests_are_refused_with_codes() {
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    // 11 nested fields (the schema's only cycle is through introspection).
    let deep = "{ __schema { types { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } }";
    let r = gql(&state, Some(ADMIN), deep, json!({})).await;
    assert_eq!(code(&r), "QUERY_TOO_DEEP", "{:?}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("11")
    );
    assert!(r.body.get("data").is_none_or(Value::is_null));
    // The same depth hidden in fragments is counted too.
    let frag = "{ __schema { types { ...A } } } fragment A on __Type { fields { type { ...B } } } fragment B on __Type { fields { type { fields { type { fields { type { name } } } } } } }";
    let r = gql(&state, Some(ADMIN), frag, json!({})).await;
    assert_eq!(code(&r), "QUERY_TOO_DEEP", "{:?}", r.body);
    // 10 is fine.
    let ten = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }";
    ok(&gql(&state, Some(ADMIN), ten, json!({})).await);

    // Complexity: 300 aliases of a two-field selection.
    let wide: String = (0..300).map(|i| format!("a{i}: orgs {{ id }} ")).collect();
    let r = gql(&state, Some(ADMIN), &format!("{{ {wide} }}"), json!({})).await;
    assert_eq!(code(&r), "QUERY_TOO_COMPLEX", "{:?}", r.body);
    let fine: String = (0..100).map(|i| format!("a{i}: orgs {{ id }} ")).collect();
    ok(&gql(&state, Some(ADMIN), &format!("{{ {fine} }}"), json!({})).await);

    // Syntax and schema errors.
    let r = gql(&state, Some(ADMIN), "{ orgs { id ", json!({})).await;
    assert_eq!(code(&r), "GRAPHQL_PARSE_FAILED");
    let r = gql(&state, Some(ADMIN), "{ orgs { password } }", json!({})).await;
    assert_eq!(code(&r), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("password")
    );
    let r = gql(
        &state,
        Some(ADMIN),
        "{ connector(id: \"x\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&r), "GRAPHQL_VALIDATION_FAILED");

    // Request-level errors: not JSON, not an object, too large.
    for body in ["{ nope", "[1, 2]", "\"query\""] {
        let req = Request::builder()
            .method("POST")
            .uri("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::from(body))
            .unwrap();
        let r = raw(&state, req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&r), "BAD_REQUEST");
    }
    let big = json!({"query": format!("{{ orgs {{ id }} }} # {}", "x".repeat(2 * 1024 * 1024))});
    let req = Request::builder()
        .method("POST")
        .uri("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(big.to_string()))
        .unwrap();
    let r = raw(&state, req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&r), "PAYLOAD_TOO_LARGE");

    // The GraphQL-over-HTTP media type when asked for.
    let req = Request::builder()
        .method("POST")
        .uri("/graphql")
        .header("content-type", "application/json")
        .header(
            "accept",
            "application/graphql-response+json, application/json",
        )
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::from(json!({"query": "{ orgs { id } }"}).to_string()))
        .unwrap();
    let r = raw(&state, req).await;
    assert_eq!(r.content_type, "application/graphql-response+json");
    assert_eq!(r.body["data"]["orgs"], json!([]));

    // GraphiQL on GET.
    let req = Request::builder()
        .uri("/graphql")
        .body(Body::empty())
        .unwrap();
    let r = raw(&state, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/html"));
    let html = r.body.as_str().unwrap();
    assert!(html.contains("graphiql") && html.contains("/graphql"));
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_core_rebuilds_the_schema_from_standard_introspection_and_validates_real_queries() {
    // graphql-core's standard introspection query, from the client library itself.
    let query = pytools::run_tool(
        "check_graphql_schema.py",
        &["--introspection-query".as_ref()],
    );
    assert!(query.contains("__schema"), "{query}");
    let real: Value = serde_json::from_str(&pytools::run_tool(
        "check_graphql_schema.py",
        &["--queries".as_ref()],
    ))
    .unwrap();

    let tmp = portcullis_e2e::temp_dir();
    let served = app::serve(tmp.path()).await;
    let client = reqwest::Client::new();
    let post = |token: Option<&str>, body: Value| {
        let mut req = client
            .post(format!("{}/graphql", served.url))
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.body(body.to_string()).send()
    };
    // Over a real socket, without a token: introspection is public.
    let resp = post(
        None,
        json!({"query": query, "operationName": "IntrospectionQuery"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(answer.get("errors").is_none(), "{answer}");
    let path = tmp.path().join("introspection.json");
    std::fs::write(&path, serde_json::to_vec(&answer).unwrap()).unwrap();
    let out = pytools::run_tool("check_graphql_schema.py", &[path.as_os_str()]);
    assert!(
        out.starts_with("ok: schema rebuilt by graphql-core"),
        "{out}"
    );
    println!("{out}");

    // The real queries the checker validated also run on the server without an error.
    let state = &served.state;
    app::call(
        state,
        "POST",
        "/v1/orgs",
        Some(ADMIN),
        Some(json!({"id": "acme", "name": "Acme"})),
    )
    .await;
    app::example_credential(state, "acme").await;
    let r = create(state, ADMIN, "acme", "acme feed").await;
    let id = ok(&r)["createConnector"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for op in real.as_array().unwrap() {
        let text = op["query"].as_str().unwrap();
        if !text.trim_start().starts_with("query") {
            continue; // mutations are exercised by the matrix tests
        }
        let resp = post(
            Some(ADMIN),
            json!({"query": text, "variables": {"org": "acme", "id": id, "after": null}}),
        )
        .await
        .unwrap();
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert!(body.get("errors").is_none(), "{}: {body}", op["name"]);
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_whose_plugin_was_unloaded_shows_no_plugin_and_cannot_be_enabled() {
    let tmp = portcullis_e2e::temp_dir();
    let w = world(tmp.path()).await;
    let op = w.token("red", "operator");
    let id = w.connectors["red"].clone();
    let r = app::call(
        &w.state,
        "DELETE",
        "/v1/plugins/rest-generic?force=true",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = gql(
        &w.state,
        Some(&op),
        "query($id: ID!) { connector(org: \"red\", id: $id) { pluginId enabled plugin { id } } plugins { id } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        ok(&r)["connector"],
        json!({"pluginId": "rest-generic", "enabled": false, "plugin": null})
    );
    assert_eq!(ok(&r)["plugins"], json!([]));
    let r = gql(
        &w.state,
        Some(&op),
        "mutation($id: ID!) { setConnectorEnabled(org: \"red\", id: $id, enabled: true) { enabled } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(code(&r), "CONFLICT", "{:?}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not installed")
    );
    assert_eq!(r.body["errors"][0]["path"], json!(["setConnectorEnabled"]));
    assert_eq!(r.body["data"], json!({"setConnectorEnabled": null}));
    // Other fields of the same operation are still answered.
    let r = gql(
        &w.state,
        Some(&op),
        "query($id: ID!) { plugin(id: \"rest-generic\") { id } connector(org: \"red\", id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(code(&r), "NOT_FOUND");
    assert_eq!(
        r.body["data"],
        json!({"plugin": null, "connector": {"id": id}})
    );
}
