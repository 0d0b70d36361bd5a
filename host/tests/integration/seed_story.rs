//! The seed story end to end, in one test: twelve connectors of one organisation (two
//! SIEMs, four threat-intel feeds, three OSINT providers, a blockchain monitor and two
//! custom REST APIs) against local simulators, real plugins in the real host with the real
//! scheduler, pipeline, event store, health monitor and vault. One SIEM starts returning
//! the same alerts again and again → `degraded` / `DUPLICATE_FLOOD` → disabled in one call →
//! no event from it afterwards while the other eleven keep delivering → re-enabled → it
//! resumes from its cursor and the store holds every alert exactly once.
//!
//! The world is the one `portcullis serve --demo` starts (`portcullis::demo`), provisioned
//! through the public REST API. Waiting is by polling the API for a state, with a generous
//! upper bound; nothing asserts how long anything took.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use portcullis::api::AppState;
use portcullis::demo::{DEMO_ORG, DemoOptions};
use portcullis::server::{ServerConfig, start};
use portcullis_e2e::artifacts::{QRADAR_SIEM, REST_GENERIC, THREATHAWK_SIEM};
use portcullis_simulators::seed_world::{Fault, THREATHAWK};

use crate::app::{ADMIN, call};

/// Upper bound for any one wait (the machine may be loaded by other tests).
const PATIENCE: Duration = Duration::from_secs(120);

fn config(dir: &std::path::Path) -> ServerConfig {
    let plugins = dir.join("bundled");
    std::fs::create_dir_all(&plugins).unwrap();
    for (name, path) in [
        ("rest-generic", REST_GENERIC),
        ("threathawk-siem", THREATHAWK_SIEM),
        ("qradar-siem", QRADAR_SIEM),
    ] {
        std::fs::copy(path, plugins.join(format!("{name}.wasm"))).unwrap();
    }
    ServerConfig {
        data_dir: dir.join("data"),
        plugin_dir: plugins,
        allow_private_networks: true,
        ..ServerConfig::default()
    }
}

/// Every event id of `connector` in the store (all pages).
async fn stored_ids(state: &AppState, token: &str, connector: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut uri = format!("/v1/orgs/{DEMO_ORG}/events?connector={connector}&limit=1000");
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let r = call(state, "GET", &uri, Some(token), None).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.body);
        for e in r.body["items"].as_array().unwrap() {
            ids.push(e["id"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

/// Whether every published record is stored. ThreatHawk alerts and feed records keep
/// their upstream id as event id; a QRadar offense is `<id>:<last_updated_time>` (an
/// updated offense is a new event).
fn covers(stored: &[String], published: &[String]) -> bool {
    published.iter().all(|p| {
        let versioned = format!("{p}:");
        stored.iter().any(|s| s == p || s.starts_with(&versioned))
    })
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        match check().await {
            Ok(()) => return,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("gave up waiting for {what}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seed_story_flood_disable_silence_reenable_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    // PT10S (the shortest schedule an operator may set) scaled to one poll a second.
    cfg.ingest.schedule_scale = 0.1;
    let started = start(&cfg, Some(ADMIN)).await.unwrap();
    let state = started.state.clone();
    let demo = portcullis::demo::start(
        &state,
        DemoOptions {
            schedule: "PT10S".into(),
            // The test publishes records itself.
            tick: Duration::from_secs(3600),
            records_per_tick: 0,
        },
    )
    .await
    .unwrap();
    let world = demo.world.clone();
    let tok = demo.operator_token.clone();

    // Twelve connectors, every one enabled, every category of the story present.
    let r = call(
        &state,
        "GET",
        &format!("/v1/orgs/{DEMO_ORG}/connectors?limit=100"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 12, "{}", r.body);
    let mut by_source: HashMap<&'static str, String> = HashMap::new();
    for c in world.connectors("PT10S") {
        let rec = items
            .iter()
            .find(|i| i["name"] == c.body["name"])
            .unwrap_or_else(|| panic!("connector {} missing", c.body["name"]));
        assert_eq!(rec["enabled"], true);
        by_source.insert(c.source, rec["id"].as_str().unwrap().to_string());
    }
    let mut categories: HashMap<String, usize> = HashMap::new();
    for c in world.connectors("PT10S") {
        *categories.entry(c.category.to_string()).or_default() += 1;
    }
    assert_eq!(categories["siem"], 2);
    assert_eq!(categories["threat-intel"], 4);
    assert_eq!(categories["osint"], 3);
    assert_eq!(categories["blockchain"], 1);
    assert_eq!(categories["custom-api"], 2);

    // 1. Every source delivers everything it published.
    let all_delivered = |state: AppState, tok: String, by_source: HashMap<&'static str, String>| {
        let world = world.clone();
        async move {
            for (source, id) in &by_source {
                let stored = stored_ids(&state, &tok, id).await;
                let published = world.published_ids(source);
                if !covers(&stored, &published) {
                    return Err(format!(
                        "{source}: {} of {} published records stored",
                        stored.len(),
                        published.len()
                    ));
                }
            }
            Ok(())
        }
    };
    wait_for("every source to deliver its initial records", || {
        all_delivered(state.clone(), tok.clone(), by_source.clone())
    })
    .await;

    // 2. ThreatHawk floods duplicates → degraded / DUPLICATE_FLOOD.
    let th = by_source[THREATHAWK].clone();
    world.set_fault(THREATHAWK, Fault::DuplicateFlood).unwrap();
    wait_for("ThreatHawk to turn degraded with DUPLICATE_FLOOD", || {
        let (state, tok, th) = (state.clone(), tok.clone(), th.clone());
        async move {
            let r = call(
                &state,
                "GET",
                &format!("/v1/orgs/{DEMO_ORG}/connectors/{th}/health"),
                Some(&tok),
                None,
            )
            .await;
            let h = &r.body["health"];
            if h["state"] == "degraded"
                && h["reasons"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x == "DUPLICATE_FLOOD"))
            {
                Ok(())
            } else {
                let m = call(
                    &state,
                    "GET",
                    &format!("/v1/orgs/{DEMO_ORG}/connectors/{th}/metrics"),
                    Some(&tok),
                    None,
                )
                .await;
                Err(format!("health is {h}; metrics {}", m.body))
            }
        }
    })
    .await;
    // The flood never put a duplicate into the store.
    let flooded = stored_ids(&state, &tok, &th).await;
    let unique: BTreeSet<&String> = flooded.iter().collect();
    assert_eq!(
        unique.len(),
        flooded.len(),
        "duplicates stored during the flood"
    );

    // 3. One call disables it; from then on nothing of it reaches the store, while the
    // other eleven keep delivering new records.
    let r = call(
        &state,
        "POST",
        &format!("/v1/orgs/{DEMO_ORG}/connectors/{th}/disable"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["health"]["state"], "disabled");
    let at_disable = stored_ids(&state, &tok, &th).await;
    let requests_at_disable = world.threathawk.alert_requests().len();
    world.set_fault(THREATHAWK, Fault::None).unwrap();
    for _ in 0..3 {
        world.tick(5);
        let others: HashMap<&'static str, String> = by_source
            .iter()
            .filter(|(s, _)| **s != THREATHAWK)
            .map(|(s, id)| (*s, id.clone()))
            .collect();
        wait_for("the other eleven to deliver the new records", || {
            all_delivered(state.clone(), tok.clone(), others.clone())
        })
        .await;
        assert_eq!(
            stored_ids(&state, &tok, &th).await,
            at_disable,
            "an event of the disabled connector reached the store"
        );
    }
    assert_eq!(
        world.threathawk.alert_requests().len(),
        requests_at_disable,
        "the disabled connector still polled its upstream"
    );
    // Configuration, credentials and grants survived the disable.
    let r = call(
        &state,
        "GET",
        &format!("/v1/orgs/{DEMO_ORG}/connectors/{th}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.body["credentials"]["api"], "threathawk-api");
    assert_eq!(r.body["grants"].as_array().unwrap().len(), 1);

    // 4. Re-enabled, it resumes from its cursor: the alerts published while it was off
    // arrive, each exactly once, and its first request is an incremental one.
    let r = call(
        &state,
        "POST",
        &format!("/v1/orgs/{DEMO_ORG}/connectors/{th}/enable"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let only_th: HashMap<&'static str, String> = [(THREATHAWK, th.clone())].into();
    wait_for("ThreatHawk to catch up after re-enabling", || {
        all_delivered(state.clone(), tok.clone(), only_th.clone())
    })
    .await;
    let resumed = world.threathawk.alert_requests();
    let first_after = &resumed[requests_at_disable];
    assert!(
        first_after.query_param("created_after").is_some()
            || first_after.query_param("cursor").is_some(),
        "the re-enabled connector started over instead of resuming: {}",
        first_after.path_and_query
    );
    let stored = stored_ids(&state, &tok, &th).await;
    let unique: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "duplicates in the store");
    assert_eq!(
        stored.len(),
        world.published_ids(THREATHAWK).len(),
        "the store holds exactly what ThreatHawk published"
    );
    // The other sources were not touched by any of it.
    for (source, id) in &by_source {
        if *source == THREATHAWK {
            continue;
        }
        let r = call(
            &state,
            "GET",
            &format!("/v1/orgs/{DEMO_ORG}/connectors/{id}"),
            Some(&tok),
            None,
        )
        .await;
        assert_eq!(r.body["enabled"], true, "{source}");
        assert_ne!(
            r.body["health"]["state"], "failing",
            "{source}: {}",
            r.body["health"]
        );
    }
    drop(demo);
}
