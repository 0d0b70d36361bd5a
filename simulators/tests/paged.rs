//! The paged resource server, against a real HTTP client.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{client, header, header_values, ids, json, links, rel};
use portcullis_simulators::{
    Auth, Failure, LinkOptions, PagedApi, PagedApiConfig, RateLimit, RelativeNext,
    generate_records, load_nvd_dir,
};
use serde_json::Value;

fn api(config: PagedApiConfig) -> PagedApi {
    PagedApi::start(config).expect("start paged api")
}

fn with_records(n: usize) -> PagedApiConfig {
    PagedApiConfig {
        records: generate_records(n),
        ..PagedApiConfig::default()
    }
}

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.expect("send")
}

fn expected_ids(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("rec-{i:06}")).collect()
}

#[tokio::test]
async fn link_header_paging_walks_every_record_once() {
    let api = api(with_records(95));
    let mut url = format!("{}?per_page=30", api.link_url());
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let response = get(&url).await;
        assert_eq!(response.status(), 200);
        let values = header_values(&response, "link");
        let links = links(&values);
        pages += 1;
        match pages {
            1 => {
                assert_eq!(
                    links.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
                    ["next", "last"]
                );
                assert_eq!(
                    rel(&links, "last"),
                    Some(format!("{}?per_page=30&page=4", api.link_url()).as_str())
                );
            }
            2 | 3 => assert_eq!(
                links.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
                ["prev", "next", "last", "first"]
            ),
            4 => assert_eq!(
                links.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
                ["prev", "first"]
            ),
            _ => panic!("too many pages"),
        }
        let next = rel(&links, "next").map(str::to_string);
        seen.extend(ids(&json(response).await));
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, expected_ids(1..=95));
    // Past the end: an empty page, still linked back.
    let response = get(&format!("{}?per_page=30&page=9", api.link_url())).await;
    assert!(rel(&links(&header_values(&response, "link")), "prev").is_some());
    assert_eq!(json(response).await, Value::Array(Vec::new()));
}

#[tokio::test]
async fn link_header_defaults_and_limits_like_github() {
    let api = api(with_records(250));
    let response = get(&api.link_url()).await;
    assert_eq!(ids(&json(response).await).len(), 30);
    let response = get(&format!("{}?per_page=1000", api.link_url())).await;
    assert_eq!(ids(&json(response).await).len(), 100);
    let response = get(&format!("{}?page=abc", api.link_url())).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn next_link_can_be_relative_on_some_pages() {
    let api = api(PagedApiConfig {
        records: generate_records(50),
        link: LinkOptions {
            relative_next: RelativeNext::EvenPages,
            ..LinkOptions::default()
        },
        ..PagedApiConfig::default()
    });
    let page1 = get(&format!("{}?per_page=10", api.link_url())).await;
    let next1 = rel(&links(&header_values(&page1, "link")), "next")
        .expect("next")
        .to_string();
    assert!(next1.starts_with(&api.base_url()), "{next1}");
    let page2 = get(&next1).await;
    let links2 = links(&header_values(&page2, "link"));
    let next2 = rel(&links2, "next").expect("next");
    assert_eq!(next2, "/alerts?per_page=10&page=3");
    // Other relations stay absolute.
    assert!(rel(&links2, "prev").expect("prev").starts_with("http://"));
    // The relative reference resolves against the request URL.
    let resolved = url::Url::parse(&next1)
        .and_then(|base| base.join(next2))
        .expect("resolve");
    let page3 = get(resolved.as_str()).await;
    assert_eq!(ids(&json(page3).await), expected_ids(21..=30));
}

#[tokio::test]
async fn links_can_be_split_across_two_header_fields() {
    let api = api(PagedApiConfig {
        records: generate_records(50),
        link: LinkOptions {
            split_header: true,
            ..LinkOptions::default()
        },
        ..PagedApiConfig::default()
    });
    let response = get(&format!("{}?per_page=10&page=2", api.link_url())).await;
    let values = header_values(&response, "link");
    assert_eq!(values.len(), 2, "{values:?}");
    assert!(values[0].contains("rel=\"prev\"") && values[0].contains("rel=\"next\""));
    assert!(values[1].contains("rel=\"last\"") && values[1].contains("rel=\"first\""));
    assert_eq!(links(&values).len(), 4);
}

#[tokio::test]
async fn links_keep_query_parameters_and_the_host_header() {
    let api = api(with_records(40));
    let response = client()
        .get(format!(
            "{}?since=2024-01-01T00%3A10%3A00Z&per_page=10",
            api.link_url()
        ))
        .header("host", format!("declared.test:{}", api.addr().port()))
        .send()
        .await
        .expect("send");
    let links = links(&header_values(&response, "link"));
    let next = rel(&links, "next").expect("next");
    assert_eq!(
        next,
        format!(
            "http://declared.test:{}/alerts?since=2024-01-01T00%3A10%3A00Z&per_page=10&page=2",
            api.addr().port()
        )
    );
    // Records 11..=40 are in the window: 3 pages.
    assert!(rel(&links, "last").expect("last").ends_with("page=3"));
    assert_eq!(ids(&json(response).await), expected_ids(11..=20));
}

#[tokio::test]
async fn cursor_paging_walks_every_record_once() {
    let api = api(with_records(60));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{}?limit=25&cursor={cursor}", api.cursor_url()),
            None => format!("{}?limit=25", api.cursor_url()),
        };
        let body = json(get(&url).await).await;
        pages += 1;
        seen.extend(ids(&body["data"]));
        match &body["meta"]["next_cursor"] {
            Value::Null => break,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("bad next_cursor {other}"),
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected_ids(1..=60));
    let response = get(&format!("{}?cursor=bogus", api.cursor_url())).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_cursor");
}

#[tokio::test]
async fn since_is_inclusive_and_until_exclusive() {
    let api = api(with_records(100));
    // Record n has created_at 2024-01-01T00:00Z + (n-1) minutes.
    let body = json(
        get(&format!(
            "{}?since=2024-01-01T00:49:00Z&until=2024-01-01T01:00:00Z&limit=100",
            api.cursor_url()
        ))
        .await,
    )
    .await;
    assert_eq!(ids(&body["data"]), expected_ids(50..=60));
    let body = json(get(&format!("{}?since=2024-01-01T01:39:00Z", api.records_url())).await).await;
    assert_eq!(ids(&body["data"]), expected_ids(100..=100));
    let response = get(&format!("{}?since=yesterday", api.records_url())).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn new_records_show_up_in_the_next_window() {
    let api = api(with_records(10));
    api.append_generated(5);
    assert_eq!(api.records().len(), 15);
    let body = json(get(&format!("{}?since=2024-01-01T00:09:00Z", api.records_url())).await).await;
    assert_eq!(ids(&body["data"]), expected_ids(10..=15));
}

fn nvd_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/nvd")
}

#[tokio::test]
async fn nvd_offset_paging_serves_the_real_records() {
    let cves = load_nvd_dir(&nvd_dir()).expect("load nvd");
    let total = cves.len();
    let api = api(PagedApiConfig {
        nvd_records: Some(cves.clone()),
        ..PagedApiConfig::default()
    });
    let mut start = 0;
    let mut seen = Vec::new();
    loop {
        let body = json(
            get(&format!(
                "{}?resultsPerPage=20&startIndex={start}",
                api.nvd_url()
            ))
            .await,
        )
        .await;
        assert_eq!(body["format"], "NVD_CVE");
        assert_eq!(body["version"], "2.0");
        assert_eq!(body["startIndex"], start);
        assert_eq!(body["totalResults"], total);
        let page = body["vulnerabilities"].as_array().expect("vulnerabilities");
        assert_eq!(body["resultsPerPage"], page.len());
        let timestamp = body["timestamp"].as_str().expect("timestamp");
        assert!(
            chrono::NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%S%.3f").is_ok(),
            "{timestamp}"
        );
        seen.extend(page.iter().map(|v| v["cve"].clone()));
        start += 20;
        if start >= total {
            break;
        }
    }
    assert_eq!(seen, cves);

    let body = json(get(&format!("{}?cveId=CVE-2024-3400", api.nvd_url())).await).await;
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["vulnerabilities"][0]["cve"]["id"], "CVE-2024-3400");
    let body = json(get(&format!("{}?startIndex=5000", api.nvd_url())).await).await;
    assert_eq!(body["vulnerabilities"], Value::Array(Vec::new()));
}

#[tokio::test]
async fn nvd_date_ranges_follow_the_documented_rules() {
    let cves = load_nvd_dir(&nvd_dir()).expect("load nvd");
    let api = api(PagedApiConfig {
        nvd_records: Some(cves.clone()),
        ..PagedApiConfig::default()
    });
    // Pairs are required.
    let response = get(&format!(
        "{}?lastModStartDate=2023-10-01T00:00:00.000",
        api.nvd_url()
    ))
    .await;
    assert_eq!(response.status(), 404);
    assert!(header(&response, "message").is_some_and(|m| m.contains("lastModEndDate")));
    assert!(response.bytes().await.expect("body").is_empty());
    // At most 120 days.
    let response = get(&format!(
        "{}?lastModStartDate=2023-01-01T00:00:00.000&lastModEndDate=2023-12-31T00:00:00.000",
        api.nvd_url()
    ))
    .await;
    assert_eq!(response.status(), 404);
    // A valid range filters on lastModified.
    let (from, to) = ("2023-10-01T00:00:00.000", "2023-10-31T00:00:00.000");
    let expected = cves
        .iter()
        .filter(|cve| {
            let t = cve["lastModified"].as_str().expect("lastModified");
            t >= from && t <= to
        })
        .count();
    assert!(expected > 0);
    let body = json(
        get(&format!(
            "{}?lastModStartDate={from}&lastModEndDate={to}",
            api.nvd_url()
        ))
        .await,
    )
    .await;
    assert_eq!(body["totalResults"], expected);
}

#[tokio::test]
async fn nvd_synthesises_cves_without_real_records() {
    let api = api(with_records(2500));
    let body = json(get(&api.nvd_url()).await).await;
    assert_eq!(body["totalResults"], 2500);
    assert_eq!(body["resultsPerPage"], 2000);
    let body = json(get(&format!("{}?startIndex=2000", api.nvd_url())).await).await;
    assert_eq!(body["resultsPerPage"], 500);
    assert!(
        body["vulnerabilities"][0]["cve"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("CVE-"))
    );
}

#[tokio::test]
async fn static_bearer_auth() {
    let api = api(PagedApiConfig {
        auth: Auth::Bearer("tok-123".to_string()),
        ..PagedApiConfig::default()
    });
    assert_eq!(
        client()
            .get(api.link_url())
            .bearer_auth("tok-123")
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    let response = client()
        .get(api.link_url())
        .bearer_auth("tok-999")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    assert!(
        header(&response, "www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer realm=") && c.contains("invalid_token"))
    );
    let response = client()
        .get(api.link_url())
        .header("authorization", "Bearer bad token!")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    assert!(header(&response, "www-authenticate").is_some_and(|c| c.contains("invalid_request")));
    // Rotation.
    api.set_auth(Auth::Bearer("tok-456".to_string()));
    let response = client()
        .get(api.link_url())
        .bearer_auth("tok-123")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn api_key_and_basic_auth() {
    let api = api(PagedApiConfig {
        auth: Auth::ApiKeyHeader {
            name: "X-Api-Key".to_string(),
            value: "k1".to_string(),
        },
        ..PagedApiConfig::default()
    });
    let send = |name: &str, value: &str| client().get(api.records_url()).header(name, value).send();
    assert_eq!(send("x-api-key", "k1").await.expect("send").status(), 200);
    assert_eq!(send("x-api-key", "k2").await.expect("send").status(), 401);
    assert_eq!(get(&api.records_url()).await.status(), 401);

    api.set_auth(Auth::ApiKeyHeader {
        name: "apiKey".to_string(),
        value: "nvd-key".to_string(),
    });
    let response = client()
        .get(api.nvd_url())
        .header("apiKey", "wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    assert_eq!(
        header(&response, "message").as_deref(),
        Some("Invalid apiKey.")
    );

    api.set_auth(Auth::ApiKeyQuery {
        name: "api_key".to_string(),
        value: "q1".to_string(),
    });
    assert_eq!(
        get(&format!("{}?api_key=q1", api.records_url()))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&format!("{}?api_key=q2", api.records_url()))
            .await
            .status(),
        401
    );
    assert_eq!(
        get(&format!("{}?api_key=q1&api_key=q1", api.records_url()))
            .await
            .status(),
        401
    );

    api.set_auth(Auth::Basic {
        username: "user".to_string(),
        password: "p:w".to_string(),
    });
    let ok = client()
        .get(api.records_url())
        .basic_auth("user", Some("p:w"))
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    let wrong = client()
        .get(api.records_url())
        .basic_auth("user", Some("nope"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    assert!(header(&wrong, "www-authenticate").is_some_and(|c| c.starts_with("Basic realm=")));
}

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let api = api(PagedApiConfig {
        rate_limit: Some(RateLimit {
            limit: 3,
            window: Duration::from_secs(60),
            enforce: true,
        }),
        ..PagedApiConfig::default()
    });
    for remaining in ["2", "1", "0"] {
        let response = get(&api.link_url()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&response, "x-ratelimit-remaining").as_deref(),
            Some(remaining)
        );
        let reset: u64 = header(&response, "x-ratelimit-reset")
            .expect("reset")
            .parse()
            .expect("epoch seconds");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        assert!(reset > now && reset <= now + 61, "reset {reset} now {now}");
    }
    let response = get(&api.link_url()).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = header(&response, "retry-after")
        .expect("retry-after")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        header(&response, "x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    // Helpers are not rate limited.
    assert_eq!(get(&api.url("/echo")).await.status(), 200);
}

#[tokio::test]
async fn injected_failures_hit_the_next_data_requests_in_order() {
    let api = api(PagedApiConfig::default());
    api.fail_next(Failure::ServerError);
    api.fail_next(Failure::RateLimited {
        retry_after_secs: 7,
    });
    api.fail_next(Failure::Status {
        status: 503,
        body: r#"{"error":"maintenance"}"#.to_string(),
    });
    api.fail_next(Failure::Delay(Duration::from_millis(300)));
    assert_eq!(api.pending_failures(), 4);

    let response = get(&api.cursor_url()).await;
    assert_eq!(response.status(), 500);
    assert_eq!(json(response).await["error"]["code"], 500);
    let response = get(&api.cursor_url()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "retry-after").as_deref(), Some("7"));
    let response = get(&api.cursor_url()).await;
    assert_eq!(response.status(), 503);
    assert!(header(&response, "content-type").is_some_and(|ct| ct == "application/json"));
    let started = Instant::now();
    let response = get(&api.cursor_url()).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(api.pending_failures(), 0);
    assert_eq!(get(&api.cursor_url()).await.status(), 200);
}

#[tokio::test]
async fn every_request_is_recorded_even_unknown_paths() {
    let api = api(PagedApiConfig::default());
    assert!(api.log().is_empty());
    let response = client()
        .get(api.url("/nope?x=1&y=a%20b"))
        .header("x-probe", "one")
        .header("x-probe", "two")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    let recorded = api.log().requests();
    assert_eq!(recorded.len(), 1);
    let request = &recorded[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path_and_query, "/nope?x=1&y=a%20b");
    assert_eq!(request.path(), "/nope");
    assert_eq!(request.query_param("y").as_deref(), Some("a b"));
    assert_eq!(request.header_values("X-Probe"), ["one", "two"]);
    assert_eq!(api.log().requests_to("/nope").len(), 1);
    api.log().clear();
    assert_eq!(api.log().len(), 0);
}

#[test]
fn servers_work_from_synchronous_code_and_stop_when_dropped() {
    let api = api(with_records(3));
    let addr = api.addr();
    let body: Value = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async { json(get(&api.records_url()).await).await })
    };
    assert_eq!(ids(&body["data"]), expected_ids(1..=3));
    drop(api);
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn cursor_tokens_are_opaque() {
    // Not a documented contract, but the cursor must not be a bare number.
    let api = api(with_records(30));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = runtime
        .block_on(async { json(get(&format!("{}?limit=10", api.cursor_url())).await).await });
    let cursor = body["meta"]["next_cursor"].as_str().expect("cursor");
    assert!(cursor.parse::<u64>().is_err());
    assert!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .is_ok()
    );
}
