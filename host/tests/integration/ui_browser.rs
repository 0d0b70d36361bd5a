//! The admin panel in real headless Chromium (installed by this test when missing),
//! driven over WebDriver, on the seed story: an org with its 12 sources (two SIEMs on the
//! real `threathawk-siem` and `qradar-siem` plugins, ten feeds on `rest-generic`) polling
//! local simulators. Sign in, see the 12 connectors with their health refresh live,
//! disable the ThreatHawk SIEM with one click (and undo) and see its ingestion stop through
//! the events API while the other 11 go on, test it while disabled and see stages and
//! latency, set a credential and check no page shows it again,
//! and check a viewer sees no switches. Screenshots of the catalogue and a connector page
//! go to `target/test-artifacts/`.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use portcullis::api::AppState;
use portcullis_e2e::artifacts::{QRADAR_SIEM, THREATHAWK_SIEM};
use portcullis_e2e::simulators::seed_world::{SeedWorld, THREATHAWK};
use serde_json::{Value, json};

use crate::app::{ADMIN, Served, call, call_as, serve_config};
use crate::browser::{Browser, Driver, artifacts_dir};

/// A host with ingestion running fast (schedules scaled down), served on 127.0.0.1.
async fn serve_fast(dir: &Path) -> Served {
    let mut config = crate::app::config(dir);
    for (file, name) in [
        (THREATHAWK_SIEM, "threathawk-siem"),
        (QRADAR_SIEM, "qradar-siem"),
    ] {
        std::fs::copy(file, config.plugin_dir.join(format!("{name}.wasm"))).unwrap();
    }
    config.ingest.schedule_scale = 0.02;
    serve_config(&config).await
}

async fn events_of(state: &AppState, id: &str) -> usize {
    let r = call_as(
        state,
        "GET",
        &format!("/v1/orgs/acme/events?connector={id}&limit=1000"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().unwrap().len()
}

/// Wait (bounded) until `check` holds.
async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sign_in(b: &Browser, url: &str, token: &str) {
    b.goto(&format!("{url}/login")).await;
    let input = b.wait_for("#token").await;
    b.type_into(&input, token).await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_for("table#catalogue").await;
}

fn switch_is(row: &str, on: bool) -> String {
    format!(
        "return document.querySelector('{row} button.switch').getAttribute('aria-checked') === '{on}'"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_panel_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let world = tokio::task::block_in_place(SeedWorld::start).unwrap();
    let host = serve_fast(dir.path()).await;
    let (url, state) = (host.url.clone(), host.state.clone());

    // The org, its tokens, credentials and 12 connectors, through the REST API.
    let r = call(
        &state,
        "POST",
        "/v1/orgs",
        Some(ADMIN),
        Some(json!({"id": "acme", "name": "Acme"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let mut tokens = std::collections::HashMap::new();
    for role in ["operator", "viewer"] {
        let r = call(
            &state,
            "POST",
            "/v1/orgs/acme/tokens",
            Some(ADMIN),
            Some(json!({"name": format!("{role} in browser"), "role": role})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        tokens.insert(role, r.body["token"].as_str().unwrap().to_string());
    }
    for c in world.credentials() {
        let r = call(
            &state,
            "PUT",
            &format!("/v1/orgs/acme/credentials/{}", c.name),
            Some(ADMIN),
            Some(c.body.clone()),
        )
        .await;
        assert!(r.status.is_success(), "{}: {:?}", c.name, r.body);
    }
    let mut ids = std::collections::HashMap::new();
    for c in world.connectors("PT30S") {
        let mut body = c.body.clone();
        body["enabled"] = json!(true);
        let r = call(
            &state,
            "POST",
            "/v1/orgs/acme/connectors",
            Some(ADMIN),
            Some(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {:?}", c.source, r.body);
        ids.insert(c.source, r.body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 12);
    let victim = ids[THREATHAWK].clone();
    let other = ids["qradar"].clone();
    eventually("every connector ingests", 90, || {
        let state = state.clone();
        let ids: Vec<String> = ids.values().cloned().collect();
        async move {
            for id in ids {
                if events_of(&state, &id).await == 0 {
                    return false;
                }
            }
            true
        }
    })
    .await;

    let driver = Driver::start().await;
    let b = driver.session("operator").await;
    sign_in(&b, &url, &tokens["operator"]).await;

    // 12 connectors, each with a health indicator (colour and state in words), refreshed
    // live by the script without reloading.
    assert_eq!(
        b.find_all("table#catalogue tbody tr[data-id]").await.len(),
        12
    );
    let healths = b
        .find_all("table#catalogue tbody tr[data-id] .health[data-health] .health-text")
        .await;
    assert_eq!(healths.len(), 12);
    for h in &healths {
        assert!(!b.text(h).await.is_empty());
    }
    let src = b.source().await;
    for category in [
        "SIEM",
        "Threat intelligence",
        "OSINT",
        "Blockchain",
        "Custom API",
    ] {
        assert!(
            src.contains(&format!("<td>{category}</td>")),
            "category {category} shown"
        );
    }
    assert_eq!(
        b.find_all("button.switch[aria-checked=true]").await.len(),
        12
    );
    b.execute("window.__sameDocument = true; return true").await;
    b.wait_until(
        "live refresh",
        "return document.getElementById('refresh-status').textContent.includes('Updated')",
    )
    .await;
    let states = "return Array.from(document.querySelectorAll('tr[data-id]')).map(r => r.querySelector('th').textContent + ': ' + r.querySelector('.health-text').textContent)";
    let waited = Instant::now();
    while b
        .execute(
            "return document.querySelectorAll('tr[data-id] .health[data-health=unknown]').length",
        )
        .await
        != 0
    {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the monitor never judged every connector: {}",
            b.execute(states).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let row = format!("tr[data-id=\"{victim}\"]");
    // Every state is written in words next to its colour (e.g. "Degraded — duplicate
    // flood 66 %"): the text starts with the state's label.
    let texts = b.execute(states).await;
    for t in texts.as_array().unwrap() {
        let t = t.as_str().unwrap();
        let state_words = t.split(": ").nth(1).unwrap_or("");
        assert!(
            ["Healthy", "Degraded", "Failing", "Unknown", "Disabled"]
                .iter()
                .any(|w| state_words.starts_with(w)),
            "{t}"
        );
    }
    assert_eq!(
        b.execute("return window.__sameDocument === true").await,
        true,
        "no reload happened"
    );
    b.fit_height().await;
    b.screenshot(&artifacts_dir().join("ui-catalogue.png"))
        .await;

    // Every control has a label; the switch works from the keyboard (Enter on the focused
    // button) like any button.
    let unlabelled = "return Array.from(document.querySelectorAll('input:not([type=hidden]),select,textarea,button')).filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.outerHTML)";
    assert_eq!(
        b.execute(unlabelled).await,
        json!([]),
        "catalogue controls without a label"
    );

    // One click disables it: the switch flips in place and an undo is offered.
    b.click(&b.find(&format!("{row} button.switch")).await)
        .await;
    b.wait_until("switch off", &switch_is(&row, false)).await;
    let enabled = |id: String| {
        let state = state.clone();
        async move {
            call_as(
                &state,
                "GET",
                &format!("/v1/orgs/acme/connectors/{id}"),
                ADMIN,
            )
            .await
            .body["enabled"]
                .as_bool()
                .unwrap()
        }
    };
    assert!(!enabled(victim.clone()).await);
    b.click(&b.wait_for("#toast-region button.undo").await)
        .await;
    b.wait_until("switch on again", &switch_is(&row, true))
        .await;
    assert!(enabled(victim.clone()).await, "undo re-enabled it");
    // This time from the keyboard: Enter on the focused switch.
    let switch = b.find(&format!("{row} button.switch")).await;
    b.type_into(&switch, "\u{E007}").await;
    b.wait_until("switch off", &switch_is(&row, false)).await;
    assert!(!enabled(victim.clone()).await);
    b.wait_until("health shows disabled", &format!("return document.querySelector('{row} .health').getAttribute('data-health') === 'disabled'")).await;

    // Its ingestion stops; the other 11 keep running (new records reach them, not it).
    let r = call_as(
        &state,
        "GET",
        "/v1/orgs/acme/connectors?status=enabled",
        ADMIN,
    )
    .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 11);
    let victim_before = events_of(&state, &victim).await;
    let other_before = events_of(&state, &other).await;
    world.tick(5);
    eventually("the others ingest new records", 60, || {
        let state = state.clone();
        let other = other.clone();
        async move { events_of(&state, &other).await > other_before }
    })
    .await;
    assert_eq!(
        events_of(&state, &victim).await,
        victim_before,
        "no events after disabling"
    );

    // Test the disabled connector: each stage with its latency, sample events.
    b.click(&b.find(&format!("{row} form.test button")).await)
        .await;
    let report = b
        .wait_for(&format!("tr.test-row .test-report[data-for=\"{victim}\"]"))
        .await;
    let text = b.text(&report).await;
    assert!(text.contains("Passed") && text.contains(" ms"), "{text}");
    let stages = b.find_all("tr.test-row table.stages tbody tr").await;
    assert!(stages.len() >= 2, "{text}");
    let samples = b.find_all("tr.test-row ol.samples li").await;
    assert!((1..=3).contains(&samples.len()), "{text}");

    // The connector page: schema-generated form, audit trail, health history.
    b.goto(&format!("{url}/connectors/{victim}")).await;
    b.wait_for("#h-config").await;
    let src = b.source().await;
    assert!(
        src.contains("connector.disable") && src.contains("connector.test"),
        "audit trail"
    );
    assert!(src.contains("id=\"cfg-base_url\""));
    assert_eq!(
        b.execute(unlabelled).await,
        json!([]),
        "connector page controls without a label"
    );
    assert!(src.contains("id=\"h-history\""), "health history");

    // Set (replace) its credential through the write-only form: never shown again.
    let rec = call_as(
        &state,
        "GET",
        &format!("/v1/orgs/acme/connectors/{victim}"),
        ADMIN,
    )
    .await;
    let cred = rec.body["credentials"]["api"].as_str().unwrap().to_string();
    let meta = call_as(
        &state,
        "GET",
        &format!("/v1/orgs/acme/credentials/{cred}"),
        ADMIN,
    )
    .await;
    let kind = meta.body["kind"].as_str().unwrap().to_string();
    let version_before = meta.body["version"].as_u64().unwrap();
    let secret_field = match kind.as_str() {
        "bearer" => "token",
        "api-key" => "key",
        "basic" => "password",
        _ => "client_secret",
    };
    let secret = format!("browser-set-secret-{}", std::process::id());
    let input = b
        .find(&format!(
            "form.credential fieldset.kind[data-kind=\"{kind}\"] input[name={secret_field}]"
        ))
        .await;
    b.type_into(&input, &secret).await;
    b.click(&b.find("form.credential button[type=submit]").await)
        .await;
    b.wait_until(
        "saved",
        "return document.body.textContent.includes('Secret stored')",
    )
    .await;
    let meta = call_as(
        &state,
        "GET",
        &format!("/v1/orgs/acme/credentials/{cred}"),
        ADMIN,
    )
    .await;
    assert_eq!(
        meta.body["version"].as_u64().unwrap(),
        version_before + 1,
        "a new version"
    );
    assert!(
        !meta.body.to_string().contains(&secret),
        "the API never shows it"
    );
    let page = b.source().await;
    assert!(
        !page.contains(&secret),
        "the page after saving never shows it"
    );
    assert!(page.contains(&format!("version {}", version_before + 1)));
    b.fit_height().await;
    b.screenshot(&artifacts_dir().join("ui-connector.png"))
        .await;
    for path in [
        "/".to_string(),
        format!("/connectors/{victim}"),
        "/plugins".to_string(),
    ] {
        b.goto(&format!("{url}{path}")).await;
        b.wait_for("main h1").await;
        assert!(
            !b.source().await.contains(&secret),
            "{path} shows the secret"
        );
    }
    b.quit().await;

    // A viewer sees the 12 connectors with their health, and no switch or test button.
    let v = driver.session("viewer").await;
    sign_in(&v, &url, &tokens["viewer"]).await;
    assert_eq!(
        v.find_all("table#catalogue tbody tr[data-id]").await.len(),
        12
    );
    assert_eq!(v.find_all(".health[data-health]").await.len(), 12);
    assert_eq!(v.find_all("button.switch").await.len(), 0);
    assert_eq!(v.find_all("form.test").await.len(), 0);
    let src: Value = v.execute("return document.body.textContent").await;
    assert!(src.as_str().unwrap().contains("Read-only"));
    v.quit().await;

    // With JavaScript off the catalogue still reads, and the switch still works as a plain
    // form (the server answers with the new state and an undo).
    let n = driver.session_with("no-js", false).await;
    sign_in(&n, &url, &tokens["operator"]).await;
    assert_eq!(
        n.find_all("table#catalogue tbody tr[data-id]").await.len(),
        12
    );
    assert_eq!(
        n.find_all(".health[data-health] .health-text").await.len(),
        12
    );
    let qradar_row = format!("tr[data-id=\"{other}\"]");
    n.click(&n.find(&format!("{qradar_row} button.switch")).await)
        .await;
    n.wait_for(".notice.info form.inline button.link").await;
    let src = n.source().await;
    assert!(
        src.contains("QRadar SIEM is now disabled"),
        "server-rendered notice"
    );
    assert!(!src.contains("data-live=\"on\""), "the script did not run");
    assert!(!enabled(other.clone()).await);
    n.click(&n.find(".notice.info form.inline button.link").await)
        .await;
    n.wait_for("table#catalogue").await;
    assert!(n.source().await.contains("QRadar SIEM is now enabled"));
    assert!(enabled(other.clone()).await, "undo without JavaScript");
    n.quit().await;

    host.stop().await;
}
