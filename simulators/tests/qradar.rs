//! The QRadar console simulator, against a real HTTP client.

mod common;

use common::{client, header, json};
use portcullis_simulators::qradar::{
    DATASET_INTERVAL_MS, DATASET_START_MS, OFFENSES_PATH, RULES_PATH, SOURCE_ADDRESSES_PATH,
};
use portcullis_simulators::{QRadarAuth, QRadarConfig, QRadarDataset, QRadarFailure, QRadarServer};
use serde_json::Value;

const TOKEN: &str = "5f2a1c9e-0b7d-4e3a-9c11-2d8e6f4a7b01";

fn console(n: u64) -> QRadarServer {
    QRadarServer::start(QRadarConfig {
        auth: QRadarAuth::Sec(TOKEN.into()),
        dataset: QRadarDataset::generate(n),
        ..QRadarConfig::default()
    })
    .expect("start qradar")
}

async fn get(
    q: &QRadarServer,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client().get(format!("{}{path_and_query}", q.base_url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("send")
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|o| o["id"].as_u64().expect("id"))
        .collect()
}

#[tokio::test]
async fn range_pages_are_answered_with_content_range() {
    let q = console(12);
    let auth = ("SEC", TOKEN);
    let r = get(&q, OFFENSES_PATH, &[auth, ("Range", "items=0-4")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-range").as_deref(), Some("items 0-4/12"));
    assert_eq!(ids(&json(r).await), [1, 2, 3, 4, 5]);
    // The documentation's own spelling, with spaces.
    let r = get(&q, OFFENSES_PATH, &[auth, ("Range", "items = 10-99")]).await;
    assert_eq!(
        header(&r, "content-range").as_deref(),
        Some("items 10-11/12")
    );
    assert_eq!(ids(&json(r).await), [11, 12]);
    // Beyond the last record: no records, `items */total`.
    let r = get(&q, OFFENSES_PATH, &[auth, ("Range", "items=12-20")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-range").as_deref(), Some("items */12"));
    assert_eq!(json(r).await, Value::Array(vec![]));
    // No Range: everything, no Content-Range.
    let r = get(&q, OFFENSES_PATH, &[auth]).await;
    assert_eq!(header(&r, "content-range"), None);
    assert_eq!(json(r).await.as_array().map(Vec::len), Some(12));
    // Malformed and negative ranges.
    for (range, fragment) in [
        ("items=-3-2", "Failed to parse Range header"),
        ("offenses=0-1", "Failed to parse Range header"),
        ("items=3-0", "negative"),
    ] {
        let r = get(&q, OFFENSES_PATH, &[auth, ("Range", range)]).await;
        assert_eq!(r.status(), 422, "{range}");
        let body = json(r).await;
        assert_eq!(body["code"], 36);
        assert_eq!(body["http_response"]["code"], 422);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains(fragment)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn filter_sort_and_fields() {
    let q = console(30);
    let auth = ("SEC", TOKEN);
    let since = DATASET_START_MS + 20 * DATASET_INTERVAL_MS;
    let path = format!(
        "{OFFENSES_PATH}?filter={}&sort=%2Blast_updated_time%2C%2Bid&fields=id%2Crules(id)%2Clast_updated_time",
        urlencode(&format!("last_updated_time > {since} and status = OPEN"))
    );
    let r = get(&q, &path, &[auth, ("Range", "items=0-49")]).await;
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    // 21..=30 without the CLOSED ones (multiples of 7: 21, 28).
    assert_eq!(ids(&body), [22, 23, 24, 25, 26, 27, 29, 30]);
    let first = &body[0];
    assert_eq!(
        first.as_object().map(|o| o.len()),
        Some(3),
        "only the requested fields: {first}"
    );
    assert!(
        first["rules"][0].get("type").is_none(),
        "subfield projection"
    );

    let r = get(
        &q,
        &format!("{OFFENSES_PATH}?sort=-magnitude%2C%2Bid&fields=id%2Cmagnitude"),
        &[auth, ("Range", "items=0-2")],
    )
    .await;
    let body = json(r).await;
    assert_eq!(ids(&body), [9, 19, 29], "magnitude 10 first, then by id");

    for (query, code) in [
        ("filter=nope%20%3D%201", 1010),
        ("filter=id%20%3D", 1010),
        ("sort=%2Bnope", 1030),
        ("fields=id%2Cnope", 30),
    ] {
        let r = get(&q, &format!("{OFFENSES_PATH}?{query}"), &[auth]).await;
        assert_eq!(r.status(), 422, "{query}");
        assert_eq!(json(r).await["code"], code, "{query}");
    }

    let r = get(
        &q,
        &format!("{SOURCE_ADDRESSES_PATH}?filter=id%20in%20(1%2C4)&fields=id%2Csource_ip"),
        &[auth],
    )
    .await;
    assert_eq!(
        json(r).await,
        serde_json::json!([{"id": 1, "source_ip": "10.1.0.1"}, {"id": 4, "source_ip": "2001:db8::4"}])
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn sec_token_version_capabilities_and_failures() {
    let q = console(3);
    let r = get(&q, OFFENSES_PATH, &[]).await;
    assert_eq!(r.status(), 401);
    let body = json(r).await;
    assert_eq!(body["code"], 18);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("No SEC header present"))
    );
    let r = get(&q, OFFENSES_PATH, &[("SEC", "wrong")]).await;
    assert_eq!(r.status(), 401);
    assert!(
        !json(r).await.to_string().contains("wrong"),
        "no echo by default"
    );

    let ok = ("SEC", TOKEN);
    assert_eq!(
        get(&q, OFFENSES_PATH, &[ok, ("Version", "16.0")])
            .await
            .status(),
        200
    );
    let r = get(&q, OFFENSES_PATH, &[ok, ("Version", "322.0123")]).await;
    assert_eq!(r.status(), 422);
    assert!(
        json(r).await["message"]
            .as_str()
            .is_some_and(|m| m.contains("is not a valid version"))
    );
    let r = get(&q, OFFENSES_PATH, &[ok, ("Version", "3.0")]).await;
    assert!(
        json(r).await["message"]
            .as_str()
            .is_some_and(|m| m.contains("has been removed"))
    );

    q.set_forbidden_paths(&[RULES_PATH]);
    let r = get(&q, RULES_PATH, &[ok]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["code"], 26);

    q.fail_next(QRadarFailure::service_unavailable());
    q.fail_next(QRadarFailure::TooManyRequests {
        retry_after_secs: 9,
    });
    let r = get(&q, OFFENSES_PATH, &[ok]).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        json(r).await["http_response"]["message"],
        "The server is currently unavailable."
    );
    let r = get(&q, OFFENSES_PATH, &[ok]).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("9"));
    assert_eq!(q.pending_failures(), 0);

    // New and updated offenses move to the end of the update order.
    let added = q.add_generated(2);
    assert_eq!(added, [4, 5]);
    // Updated strictly after the additions.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    assert!(q.touch_offense(1));
    let r = get(
        &q,
        &format!("{OFFENSES_PATH}?sort=%2Blast_updated_time"),
        &[ok],
    )
    .await;
    assert_eq!(ids(&json(r).await), [2, 3, 4, 5, 1]);
    assert!(!q.touch_offense(99));
}
