//! Rotation without downtime: a connector polls continuously through its sandbox (bound
//! once, as the scheduler does) while a new version is written, tested, promoted and
//! rolled back; the resource server records which secret each request carried.

use std::sync::atomic::AtomicBool;

use super::*;
use crate::app;

#[tokio::test(flavor = "multi_thread")]
async fn polling_connector_keeps_succeeding_across_promotion_and_rollback() {
    let api = ResourceServer::start().await;
    let (old, new) = ("rotation-old-secret-1a", "rotation-new-secret-2b");
    api.accept(&format!("Bearer {old}"));
    let tmp = portcullis_e2e::temp_dir();
    let state = app::app(tmp.path()).await;
    create_org(&state, "acme").await;
    let op = token(&state, "acme", "operator").await;
    let r = put_credential(
        &state,
        &op,
        "acme",
        "feed-key",
        "",
        bearer(old, &[&api.base]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = create_connector(
        &state,
        &op,
        "acme",
        rest_connector("feed", &api.base, &api.base, "feed-key"),
    )
    .await;

    // The poller: one sandbox, polled back to back; every outcome recorded in order.
    let sb = Arc::new(sandbox(&state, "acme", &id).await);
    let cfg = config_of(&state, "acme", &id).await;
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Result<usize, String>>>> = Arc::default();
    let poller = {
        let (sb, cfg, stop, outcomes) = (sb.clone(), cfg.clone(), stop.clone(), outcomes.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let r = sb.poll(&cfg, None).await;
                outcomes
                    .lock()
                    .push(r.map(|b| b.events.len()).map_err(|e| e.to_string()));
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let wait_polls = |n: usize| {
        let outcomes = outcomes.clone();
        async move {
            let start = outcomes.lock().len();
            while outcomes.lock().len() < start + n {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    wait_polls(3).await;

    // The upstream accepts both during the rotation window (as real key rotation does).
    api.accept(&format!("Bearer {new}"));
    let r = put_credential(
        &state,
        &op,
        "acme",
        "feed-key",
        "",
        bearer(new, &[&api.base]),
    )
    .await;
    assert_eq!(r.body["pending_version"], 2, "{:?}", r.body);
    wait_polls(3).await;
    // Pending is not used by polls.
    assert!(
        !api.seen().contains(&format!("Bearer {new}")),
        "a poll used the pending version"
    );
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/feed-key/test",
        &op,
    )
    .await;
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
    assert_eq!(r.body["version"], 2);
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/feed-key/promote",
        &op,
    )
    .await;
    assert_eq!(r.body["version"], 2, "{:?}", r.body);
    let mark = api.seen().len();
    wait_polls(5).await;
    // After the promotion every request carries the new secret.
    let after: Vec<String> = api.seen()[mark..].to_vec();
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|a| a == &format!("Bearer {new}")),
        "{after:?}"
    );
    // The old secret retired upstream: polls still succeed.
    api.revoke(&format!("Bearer {old}"));
    wait_polls(3).await;

    // Rollback: requests carry the old secret again (accepted again upstream first).
    api.accept(&format!("Bearer {old}"));
    let r = call_as(
        &state,
        "POST",
        "/v1/orgs/acme/credentials/feed-key/rollback",
        &op,
    )
    .await;
    assert_eq!(r.body["version"], 1, "{:?}", r.body);
    let mark = api.seen().len();
    wait_polls(5).await;
    let after: Vec<String> = api.seen()[mark..].to_vec();
    assert!(
        after.iter().all(|a| a == &format!("Bearer {old}")),
        "{after:?}"
    );

    stop.store(true, Ordering::SeqCst);
    poller.await.unwrap();
    let outcomes = outcomes.lock().clone();
    assert!(outcomes.len() >= 19, "{}", outcomes.len());
    let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "polls failed during rotation: {failures:?}"
    );
    assert!(outcomes.iter().all(|o| o.as_ref().is_ok_and(|n| *n == 2)));
}
