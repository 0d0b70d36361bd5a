//! Shared helpers of the simulator tests.
#![allow(dead_code)]

use serde_json::Value;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn json(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.expect("body");
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_string())
}

pub fn header_values(response: &reqwest::Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ascii header").to_string())
        .collect()
}

/// `(target, rel)` pairs of one or more Link field values. Minimal parser for
/// what the simulator emits: `<target>; rel="x"` joined by `, `.
pub fn links(values: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for value in values {
        for link in value.split(", <") {
            let link = link.trim_start_matches('<');
            let (target, params) = link.split_once(">;").expect("link syntax");
            let rel = params
                .trim()
                .strip_prefix("rel=\"")
                .and_then(|r| r.strip_suffix('"'))
                .expect("rel param");
            out.push((target.to_string(), rel.to_string()));
        }
    }
    out
}

pub fn rel<'a>(links: &'a [(String, String)], rel: &str) -> Option<&'a str> {
    links
        .iter()
        .find(|(_, r)| r == rel)
        .map(|(target, _)| target.as_str())
}

pub fn ids(records: &Value) -> Vec<String> {
    records
        .as_array()
        .expect("array of records")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}
