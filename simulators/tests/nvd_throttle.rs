//! NVD's firewall throttling on the NVD endpoint, against a real HTTP client.

mod common;

use std::time::Duration;

use common::{client, header};
use portcullis_simulators::nvd_throttle::THROTTLED_BODY;
use portcullis_simulators::{Auth, NvdThrottle, PagedApi, PagedApiConfig};

#[tokio::test]
async fn rolling_window_per_key_answers_403() {
    let api = PagedApi::start(PagedApiConfig::default()).expect("start paged api");
    let nvd = api.nvd_url();
    let get = |key: Option<&'static str>| {
        let mut request = client().get(&nvd);
        if let Some(key) = key {
            request = request.header("apiKey", key);
        }
        request.send()
    };
    // Off by default.
    for _ in 0..3 {
        assert_eq!(get(None).await.expect("send").status(), 200);
    }
    api.set_nvd_throttle(Some(NvdThrottle {
        without_key: 2,
        with_key: 3,
        window: Duration::from_secs(3600),
    }));
    assert_eq!(get(None).await.expect("send").status(), 200);
    assert_eq!(get(None).await.expect("send").status(), 200);
    let refused = get(None).await.expect("send");
    assert_eq!(refused.status(), 403);
    assert_eq!(header(&refused, "retry-after"), None);
    assert_eq!(refused.text().await.expect("body"), THROTTLED_BODY);
    // Each key has its own window, larger than the anonymous one.
    for _ in 0..3 {
        assert_eq!(get(Some("k1")).await.expect("send").status(), 200);
    }
    assert_eq!(get(Some("k1")).await.expect("send").status(), 403);
    assert_eq!(get(Some("k2")).await.expect("send").status(), 200);
    // Throttling comes before authentication, as a firewall does.
    api.set_auth(Auth::ApiKeyHeader {
        name: "apiKey".to_string(),
        value: "k2".to_string(),
    });
    assert_eq!(get(Some("k1")).await.expect("send").status(), 403);
    let wrong = get(Some("k3")).await.expect("send");
    assert_eq!(wrong.status(), 404);
    assert_eq!(
        header(&wrong, "message").as_deref(),
        Some("Invalid apiKey.")
    );
    // Other endpoints are not throttled.
    api.set_auth(Auth::None);
    assert_eq!(
        client()
            .get(api.records_url())
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    api.set_nvd_throttle(None);
    assert_eq!(get(None).await.expect("send").status(), 200);
    assert_eq!(NvdThrottle::documented().with_key, 50);
}
