//! The helper endpoints, against a real HTTP client.

mod common;

use std::time::{Duration, Instant};

use common::{client, header, json};
use portcullis_simulators::HelperServer;

#[tokio::test]
async fn redirect_points_at_the_target() {
    let helpers = HelperServer::start().expect("start");
    let target = "http://169.254.169.254/latest/meta-data/";
    let url = format!(
        "{}?to={}",
        helpers.url("/redirect"),
        url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
    );
    let response = client().get(&url).send().await.expect("send");
    assert_eq!(response.status(), 302);
    assert_eq!(header(&response, "location").as_deref(), Some(target));
    let response = client()
        .get(format!("{url}&status=307"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 307);
    let response = client()
        .get(helpers.url("/redirect"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn echo_returns_headers_query_and_body() {
    let helpers = HelperServer::start().expect("start");
    let response = client()
        .post(helpers.url("/echo?a=1&a=2&b=x%20y"))
        .header("authorization", "Bearer secret")
        .header("x-custom", "v")
        .body("hello")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/echo");
    assert_eq!(
        body["query"],
        serde_json::json!([["a", "1"], ["a", "2"], ["b", "x y"]])
    );
    let headers = body["headers"].as_array().expect("headers");
    assert!(headers.contains(&serde_json::json!(["authorization", "Bearer secret"])));
    assert!(headers.contains(&serde_json::json!(["x-custom", "v"])));
    assert_eq!(body["body"], "hello");
    assert_eq!(helpers.log().len(), 1);
}

#[tokio::test]
async fn big_serves_exactly_n_bytes() {
    let helpers = HelperServer::start().expect("start");
    let response = client()
        .get(helpers.url("/big?bytes=200001"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        header(&response, "content-length").as_deref(),
        Some("200001")
    );
    let body = response.bytes().await.expect("body");
    assert_eq!(body.len(), 200_001);
    assert!(body.iter().all(u8::is_ascii_lowercase));

    let response = client()
        .get(helpers.url("/big?bytes=70000&chunked=true"))
        .send()
        .await
        .expect("send");
    assert_eq!(header(&response, "content-length"), None);
    assert_eq!(
        header(&response, "transfer-encoding").as_deref(),
        Some("chunked")
    );
    assert_eq!(response.bytes().await.expect("body").len(), 70_000);
}

#[tokio::test]
async fn delay_waits() {
    let helpers = HelperServer::start().expect("start");
    let started = Instant::now();
    let response = client()
        .get(helpers.url("/delay?ms=250"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn two_helper_servers_are_two_origins() {
    let a = HelperServer::start().expect("start a");
    let b = HelperServer::start().expect("start b");
    assert_ne!(a.base_url(), b.base_url());
    let response = client()
        .get(format!(
            "{}?to={}",
            a.url("/redirect"),
            url::form_urlencoded::byte_serialize(b.url("/echo").as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 302);
    assert!(b.log().is_empty(), "no request reached b");
}
