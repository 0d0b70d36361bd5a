//! `nvd-cve`, built from source, in the real host against the NVD simulator serving
//! the real NVD records of `../shared/conformance/nvd/`: the full initial download
//! with real offset paging and a field-by-field check of the normalisation, backfill
//! windows of at most 120 days, a restart in the middle of a window, the plugin-side
//! request budget, NVD's 403 throttling, the `apiKey` header and an invalid key, the
//! connection test, configuration errors and pushed NVD JSON.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::common::*;
use portcullis::CallError;
use portcullis::event::{Event, EventKind};
use portcullis::runtime::PluginError;
use portcullis_e2e::artifacts::NVD_CVE;
use portcullis_e2e::simulators::{
    Auth, NvdThrottle, PagedApi, PagedApiConfig, RecordedRequest, load_nvd_dir, parse_time,
};
use serde_json::{Value, json};

const NVD_PATH: &str = "/rest/json/cves/2.0";

fn real_cves() -> Vec<Value> {
    load_nvd_dir(&portcullis_e2e::nvd_dir()).unwrap()
}

fn nvd_api(auth: Auth) -> PagedApi {
    portcullis_e2e::nvd_api(PagedApiConfig {
        auth,
        ..PagedApiConfig::default()
    })
}

/// A configuration against the simulator with a budget that never gets in the way.
fn config(base: &str, extra: Value) -> Value {
    let mut c = json!({
        "base_url": base,
        "results_per_page": 5,
        "rate_limit": {"requests": 1000, "window_secs": 30}
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn key_creds(base: &str, key: &str) -> Value {
    json!({"api-key": {"kind": "api-key", "key": key, "header": "apiKey", "hosts": [base]}})
}

fn nvd_requests(api: &PagedApi) -> Vec<RecordedRequest> {
    api.log().requests_to(NVD_PATH)
}

fn by_cve(events: &[Event]) -> HashMap<String, &Event> {
    events
        .iter()
        .map(|e| (e.attributes["cve_id"].as_str().unwrap().to_string(), e))
        .collect()
}

fn has_observable(e: &Event, kind: &str, value: &str) -> bool {
    e.observables
        .iter()
        .any(|o| o.kind == kind && o.value == value)
}

fn plugin_error(r: Result<portcullis::runtime::Batch, CallError>) -> PluginError {
    match r {
        Err(CallError::Plugin(e)) => e,
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

fn retry_after(r: Result<portcullis::runtime::Batch, CallError>) -> (u64, String) {
    match plugin_error(r) {
        PluginError::RateLimited {
            retry_after_secs: Some(s),
            message,
        } => (s, message),
        other => panic!("expected rate-limited with a delay, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ingests_every_real_record_with_real_paging() {
    let api = nvd_api(Auth::None);
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    let b = bind(&plugin, "nvd", &[&base], Default::default());
    let expected = real_cves();
    assert_eq!(
        expected.len(),
        48,
        "38 + 1 in the vunnel pages, 9 fkie records"
    );

    let (events, cursor, batches) =
        poll_follow(&b.sandbox, &config(&base, json!({})), None, 100).await;

    // The full download in pages of 5, then one catch-up window from when it started.
    let pages = expected.len().div_ceil(5);
    assert_eq!(batches, pages + 1);
    let reqs = nvd_requests(&api);
    assert_eq!(reqs.len(), pages + 1);
    for (i, r) in reqs[..pages].iter().enumerate() {
        assert_eq!(r.query_param("startIndex"), Some((i * 5).to_string()));
        assert_eq!(r.query_param("resultsPerPage").as_deref(), Some("5"));
        assert_eq!(r.query_param("lastModStartDate"), None);
        assert!(r.header("apikey").is_none(), "no key configured");
    }
    let catch_up = &reqs[pages];
    assert_eq!(catch_up.query_param("startIndex").as_deref(), Some("0"));
    let from = parse_time(&catch_up.query_param("lastModStartDate").unwrap()).unwrap();
    let to = parse_time(&catch_up.query_param("lastModEndDate").unwrap()).unwrap();
    assert!(from <= to);
    let cursor: Value = serde_json::from_str(&cursor.unwrap()).unwrap();
    assert_eq!(cursor["phase"], "idle");
    assert_eq!(parse_time(cursor["since"].as_str().unwrap()), Some(to));

    // Every record once, each a vulnerability event with its CVE as an observable.
    assert_eq!(events.len(), expected.len());
    let events = by_cve(&events);
    for cve in &expected {
        let id = cve["id"].as_str().unwrap();
        let e = events.get(id).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(e.kind, EventKind::Vulnerability);
        assert_eq!(e.source, "nvd");
        assert!(has_observable(e, "cve", id));
        let raw: Value = serde_json::from_str(&e.raw).unwrap();
        assert_eq!(&raw, cve, "raw is the record as served");
        assert_eq!(
            e.attributes["last_modified"],
            json!(e.time),
            "{id}: event time is lastModified in UTC"
        );
    }
    check_v2_only(events["CVE-1999-0001"]);
    check_v30(events["CVE-2019-9193"]);
    check_v31_kev_and_platform(events["CVE-2020-10987"]);
    check_v40(events["CVE-2025-0176"]);
    check_rejected(events["CVE-1999-0020"]);
    check_multi_config(events["CVE-2023-52071"]);
    check_kev_secondary_only(events["CVE-2024-3400"]);
    check_newer_fields(events["CVE-2011-0022"], events["CVE-2025-0186"]);
    check_vunnel_page(&events);
}

fn check_v2_only(e: &Event) {
    assert_eq!(e.id, "CVE-1999-0001@2024-11-20T23:27:31.207Z");
    assert_eq!(e.time, "2024-11-20T23:27:31.207Z");
    assert_eq!((e.severity_id, e.severity.as_str()), (3, "Medium"));
    let a = &e.attributes;
    assert_eq!(a["published"], "1999-12-30T05:00:00Z");
    assert_eq!(a["vuln_status"], "Modified");
    assert_eq!(a["source_identifier"], "cve@mitre.org");
    assert_eq!(a["description_lang"], "en");
    assert!(
        a["description"]
            .as_str()
            .unwrap()
            .starts_with("ip_input.c in BSD-derived")
    );
    assert!(
        e.title
            .starts_with("CVE-1999-0001: ip_input.c in BSD-derived")
    );
    // CVSS v2: baseSeverity sits beside cvssData, not inside.
    let v2 = &a["cvss"]["v2"][0];
    assert_eq!(v2["version"], "2.0");
    assert_eq!(v2["type"], "Primary");
    assert_eq!(v2["source"], "nvd@nist.gov");
    assert_eq!(v2["vector_string"], "AV:N/AC:L/Au:N/C:N/I:N/A:P");
    assert_eq!(v2["base_score"], 5.0);
    assert_eq!(v2["base_severity"], "MEDIUM");
    assert_eq!(v2["exploitability_score"], 10.0);
    assert_eq!(v2["impact_score"], 2.9);
    assert_eq!(v2["cvss_data"]["accessVector"], "NETWORK");
    assert_eq!(a["cvss"].as_object().unwrap().len(), 1, "v2 only");
    assert_eq!(a["cvss_best"]["version"], "2.0");
    assert_eq!(a["severity_source"], "cvss 2.0");
    assert_eq!(a["cwe_ids"], json!(["CWE-20"]));
    let cpes = a["cpe_matches"].as_array().unwrap();
    assert_eq!(cpes.len(), 23);
    assert_eq!(
        cpes[0]["criteria"],
        "cpe:2.3:o:bsdi:bsd_os:3.1:*:*:*:*:*:*:*"
    );
    assert_eq!(
        cpes[0]["match_criteria_id"],
        "950CE88E-E396-4D32-AC9D-B76EB2B537C6"
    );
    assert_eq!(cpes[0]["vulnerable"], true);
    assert_eq!(cpes[0]["node_operator"], "OR");
    assert_eq!(cpes[0]["node_negate"], false);
    assert_eq!(
        cpes[0]["cpe"],
        json!({"part": "o", "vendor": "bsdi", "product": "bsd_os", "version": "3.1", "update": "*",
               "edition": "*", "language": "*", "sw_edition": "*", "target_sw": "*", "target_hw": "*", "other": "*"})
    );
    assert_eq!(cpes[22]["cpe"]["vendor"], "openbsd");
    assert_eq!(e.observables.iter().filter(|o| o.kind == "cpe").count(), 23);
    assert!(has_observable(
        e,
        "cpe",
        "cpe:2.3:o:freebsd:freebsd:2.2.8:*:*:*:*:*:*:*"
    ));
    let refs = a["references"].as_array().unwrap();
    assert_eq!(
        refs.len(),
        4,
        "the same URLs from two sources are both kept"
    );
    assert_eq!(
        refs[0],
        json!({"url": "http://www.openbsd.org/errata23.html#tcpfix", "source": "cve@mitre.org", "tags": []})
    );
    assert_eq!(a["in_kev"], false);
    assert!(a.get("kev").is_none());
    assert_eq!(
        a["nvd_url"],
        "https://nvd.nist.gov/vuln/detail/CVE-1999-0001"
    );
}

fn check_v30(e: &Event) {
    // v3.0 (7.2 HIGH) is newer than v2 (9.0 HIGH): it sets the severity.
    assert_eq!((e.severity_id, e.severity.as_str()), (4, "High"));
    let a = &e.attributes;
    assert_eq!(a["cvss_best"]["version"], "3.0");
    assert_eq!(a["cvss_best"]["base_score"], 7.2);
    let v30 = &a["cvss"]["v3_0"][0];
    assert_eq!(
        v30["vector_string"],
        "CVSS:3.0/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"
    );
    assert_eq!(v30["base_severity"], "HIGH");
    assert_eq!(v30["exploitability_score"], 1.2);
    assert_eq!(a["cvss"]["v2"][0]["base_score"], 9.0);
    assert_eq!(a["cvss"]["v2"][0]["base_severity"], "HIGH");
    assert_eq!(a["cve_tags"], json!(["disputed"]));
    assert_eq!(a["cwe_ids"], json!(["CWE-78"]));
    let m = &a["cpe_matches"][0];
    assert_eq!(m["cpe"]["product"], "postgresql");
    assert_eq!(m["cpe"]["version"], "*");
    assert_eq!(m["version_start_including"], "9.3");
    assert_eq!(m["version_end_including"], "11.2");
    assert!(m.get("version_end_excluding").is_none());
    assert!(
        a["description"]
            .as_str()
            .unwrap()
            .contains("\u{2018}COPY TO/FROM PROGRAM\u{2019}")
    );
    let tags: Vec<&Value> = a["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["tags"])
        .collect();
    assert!(tags.contains(&&json!(["Exploit", "Third Party Advisory"])));
}

fn check_v31_kev_and_platform(e: &Event) {
    assert_eq!((e.severity_id, e.severity.as_str()), (5, "Critical"));
    let a = &e.attributes;
    let v31 = a["cvss"]["v3_1"].as_array().unwrap();
    assert_eq!(v31.len(), 2, "Primary and Secondary both kept");
    assert_eq!(v31[0]["type"], "Primary");
    assert_eq!(v31[0]["source"], "nvd@nist.gov");
    assert_eq!(v31[1]["type"], "Secondary");
    assert_eq!(v31[1]["source"], "134c704f-9b21-4f2e-91b3-4a467353bcc0");
    assert_eq!(a["cvss_best"]["source"], "nvd@nist.gov");
    assert_eq!(a["cvss"]["v2"][0]["base_score"], 10.0);
    assert_eq!(a["in_kev"], true);
    assert_eq!(
        a["kev"],
        json!({
            "date_added": "2021-11-03",
            "action_due": "2022-05-03",
            "required_action": "Apply updates per vendor instructions.",
            "vulnerability_name": "Tenda AC1900 Router AC15 Model Remote Code Execution Vulnerability"
        })
    );
    // Firmware AND hardware: the hardware CPE is not vulnerable but is kept.
    let cpes = a["cpe_matches"].as_array().unwrap();
    assert_eq!(cpes.len(), 2);
    assert!(cpes.iter().all(|m| m["configuration_operator"] == "AND"));
    assert_eq!(
        (cpes[0]["node"].clone(), cpes[1]["node"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(cpes[0]["vulnerable"], true);
    assert_eq!(cpes[0]["cpe"]["version"], "15.03.05.19");
    assert_eq!(cpes[1]["vulnerable"], false);
    assert_eq!(cpes[1]["cpe"]["part"], "h");
    assert_eq!(cpes[1]["cpe"]["version"], "-");
    assert!(has_observable(
        e,
        "cpe",
        "cpe:2.3:h:tenda:ac15:-:*:*:*:*:*:*:*"
    ));
}

fn check_v40(e: &Event) {
    // v4.0 from the CNA (5.3 MEDIUM) is the newest version present.
    assert_eq!((e.severity_id, e.severity.as_str()), (3, "Medium"));
    let a = &e.attributes;
    assert_eq!(a["vuln_status"], "Received");
    assert_eq!(a["cvss_best"]["version"], "4.0");
    assert_eq!(a["cvss_best"]["type"], "Secondary");
    let v40 = &a["cvss"]["v4_0"][0];
    assert_eq!(v40["base_score"], 5.3);
    assert_eq!(v40["base_severity"], "MEDIUM");
    assert!(
        v40["vector_string"]
            .as_str()
            .unwrap()
            .starts_with("CVSS:4.0/AV:N/AC:L/AT:N/PR:L")
    );
    assert_eq!(v40["cvss_data"]["attackRequirements"], "NONE");
    assert_eq!(v40["cvss_data"]["providerUrgency"], "NOT_DEFINED");
    assert_eq!(v40["exploitability_score"], Value::Null);
    assert_eq!(a["cvss"]["v3_1"][0]["base_score"], 6.3);
    assert_eq!(a["cvss"]["v2"][0]["base_score"], 6.5);
    assert_eq!(a["cwe_ids"], json!(["CWE-74", "CWE-89"]));
    assert_eq!(a["weaknesses"][0]["cwe_ids"], json!(["CWE-74", "CWE-89"]));
    assert_eq!(a["weaknesses"][0]["source"], "cna@vuldb.com");
    assert_eq!(a["cpe_matches"], json!([]));
    assert_eq!(a["references"].as_array().unwrap().len(), 5);
}

fn check_rejected(e: &Event) {
    // No metrics: still ingested, severity unknown.
    assert_eq!((e.severity_id, e.severity.as_str()), (0, "Unknown"));
    let a = &e.attributes;
    assert_eq!(a["vuln_status"], "Rejected");
    assert_eq!(a["cvss"], json!({}));
    assert_eq!(a["cvss_best"], Value::Null);
    assert_eq!(a["cwe_ids"], json!([]));
    assert_eq!(a["cpe_matches"], json!([]));
    assert_eq!(a["references"], json!([]));
    assert!(
        a["description"]
            .as_str()
            .unwrap()
            .starts_with("** REJECT **")
    );
    assert_eq!(e.time, "2008-09-09T12:33:34.853Z");
    assert_eq!(e.observables.len(), 1);
}

fn check_multi_config(e: &Event) {
    let cpes = e.attributes["cpe_matches"].as_array().unwrap();
    let placed: Vec<(u64, &str)> = cpes
        .iter()
        .map(|m| {
            (
                m["configuration"].as_u64().unwrap(),
                m["cpe"]["product"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(placed, [(0, "curl"), (0, "curl"), (1, "tiny_curl")]);
    assert_eq!(cpes[1]["cpe"]["version"], "8.5.0");
    assert!(cpes.iter().all(|m| m["configuration_operator"].is_null()));
    assert_eq!(e.attributes["cwe_ids"], json!(["CWE-129"]));
    assert_eq!(e.attributes["references"][1]["tags"], json!(["Patch"]));
}

fn check_kev_secondary_only(e: &Event) {
    // Only a Secondary v3.1 (10.0 CRITICAL) from the CNA: it still sets the severity.
    assert_eq!((e.severity_id, e.severity.as_str()), (5, "Critical"));
    let a = &e.attributes;
    assert_eq!(a["vuln_status"], "Awaiting Analysis");
    assert_eq!(a["cvss_best"]["type"], "Secondary");
    assert_eq!(a["kev"]["date_added"], "2024-04-12");
    assert_eq!(a["kev"]["action_due"], "2024-04-19");
    assert_eq!(
        a["kev"]["vulnerability_name"],
        "Palo Alto Networks PAN-OS Command Injection Vulnerability"
    );
    assert!(
        a["description"]
            .as_str()
            .unwrap()
            .contains("root privileges on the firewall.\n\nFixes for PAN-OS 10.2")
    );
    assert_eq!(
        e.title,
        "CVE-2024-3400: A command injection vulnerability in the GlobalProtect feature of Palo Alto Networks PAN-OS software for specific PAN-OS versions and distinct feature configura…"
    );
    assert_eq!(a["cwe_ids"], json!(["CWE-77"]));
    assert_eq!(a["weaknesses"][0]["type"], "Secondary");
}

fn check_newer_fields(e2011: &Event, e2025: &Event) {
    // Unknown fields (`affected`, `ssvcV203`) are tolerated and stay in `raw`.
    assert_eq!(e2011.time, "2026-06-16T23:26:38.460Z");
    assert!(e2011.raw.contains("\"affected\""));
    assert_eq!(
        e2011.attributes["cpe_matches"].as_array().unwrap().len(),
        24
    );
    let rc = &e2011.attributes["cpe_matches"][4]["cpe"];
    assert_eq!(
        (rc["version"].as_str(), rc["update"].as_str()),
        (Some("1.2.5"), Some("rc1"))
    );
    assert_eq!(e2011.attributes["cpe_matches"][22]["configuration"], 1);

    assert_eq!(e2025.attributes["other_metrics"], json!(["ssvcV203"]));
    assert_eq!(
        (
            e2025.severity_id,
            e2025.attributes["cvss_best"]["base_score"].clone()
        ),
        (3, json!(6.5))
    );
    let m = &e2025.attributes["cpe_matches"][0];
    assert_eq!(m["cpe"]["sw_edition"], "community");
    assert_eq!(m["version_start_including"], "10.6.0");
    assert_eq!(m["version_end_excluding"], "18.9.6");
    assert_eq!(
        e2025.attributes["cpe_matches"][1]["cpe"]["sw_edition"],
        "enterprise"
    );
    assert_eq!(e2025.attributes["published"], "2026-04-22T17:16:32.950Z");
    assert_eq!(
        e2025.attributes["references"][1]["tags"],
        json!(["Broken Link"])
    );
}

fn check_vunnel_page(events: &HashMap<String, &Event>) {
    // Three records of the full page carry no metrics yet.
    for id in ["CVE-2023-43250", "CVE-2023-45383", "CVE-2023-46009"] {
        let e = events[id];
        assert_eq!(e.severity_id, 0, "{id}");
        assert_eq!(e.attributes["cvss"], json!({}), "{id}");
        assert_eq!(e.attributes["vuln_status"], "Awaiting Analysis");
    }
    // The pseudo-CWE NVD-CWE-noinfo is kept.
    assert!(events.values().any(|e| {
        e.attributes["cwe_ids"]
            .as_array()
            .unwrap()
            .contains(&json!("NVD-CWE-noinfo"))
    }));
    // The same CWE from NVD (Primary) and the CNA (Secondary) is listed once in
    // `cwe_ids` and twice in `weaknesses`.
    assert!(events.values().any(|e| {
        let w = e.attributes["weaknesses"].as_array().unwrap();
        w.len() == 2
            && w[0]["cwe_ids"] == w[1]["cwe_ids"]
            && e.attributes["cwe_ids"].as_array().unwrap().len() == 1
    }));
    // An escaped character in a CPE component (`\&`) is honoured.
    let escaped = events
        .values()
        .flat_map(|e| e.attributes["cpe_matches"].as_array().unwrap())
        .find(|m| m["criteria"].as_str().unwrap().contains("\\&"))
        .unwrap();
    assert_eq!(
        escaped["cpe"]["product"],
        "wp_maintenance_mode_&_coming_soon"
    );
    assert_eq!(escaped["cpe"]["target_sw"], "wordpress");
    // The single-entry page: v3.1 + v2.
    let single = events["CVE-2022-1576"];
    assert_eq!(single.attributes["cvss_best"]["version"], "3.1");
    assert!(single.attributes["cvss"]["v2"].is_array());
    // The Secondary-only records from CNAs awaiting analysis still get a severity.
    assert!(events["CVE-2023-5631"].severity_id > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_is_cut_into_contiguous_windows_of_at_most_120_days() {
    let api = nvd_api(Auth::None);
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    let b = bind(&plugin, "nvd", &[&base], Default::default());
    let started = std::time::SystemTime::now();
    let cfg = config(&base, json!({"start": "2008-01-01T00:00:00Z"}));

    let (events, _, _) = poll_follow(&b.sandbox, &cfg, None, 300).await;

    let reqs = nvd_requests(&api);
    let mut windows: Vec<(String, String)> = Vec::new();
    for r in &reqs {
        let w = (
            r.query_param("lastModStartDate")
                .expect("every request has both bounds"),
            r.query_param("lastModEndDate")
                .expect("every request has both bounds"),
        );
        if windows.last() != Some(&w) {
            windows.push(w);
        }
    }
    assert_eq!(windows[0].0, "2008-01-01T00:00:00.000+00:00");
    let max_ms = 120 * 86_400_000;
    for (i, (from, to)) in windows.iter().enumerate() {
        let (f, t) = (parse_time(from).unwrap(), parse_time(to).unwrap());
        let span = (t - f).num_milliseconds();
        assert!(span > 0 && span <= max_ms, "window {i} spans {span} ms");
        if let Some((_, prev_to)) = i.checked_sub(1).map(|j| &windows[j]) {
            assert_eq!(
                from,
                prev_to,
                "window {i} starts where window {} ended",
                i - 1
            );
        }
    }
    // 2008-01-01 to today in 120-day steps; the last window ends at the host's now.
    let last_to = parse_time(&windows.last().unwrap().1).unwrap();
    let started_ms = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(last_to.timestamp_millis() >= started_ms);
    let full = (last_to - parse_time(&windows[0].0).unwrap()).num_milliseconds();
    assert_eq!(windows.len() as i64, (full + max_ms - 1) / max_ms);

    // Every real record came in exactly one window.
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e.attributes["cve_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), real_cves().len());
    assert_eq!(events.len(), ids.len());
    // The window holding the 38 records of 2023-10-18 was paged 5 at a time.
    let busy: Vec<String> = reqs
        .iter()
        .filter(|r| {
            let from = parse_time(&r.query_param("lastModStartDate").unwrap()).unwrap();
            let to = parse_time(&r.query_param("lastModEndDate").unwrap()).unwrap();
            let day = parse_time("2023-10-18T12:00:00Z").unwrap();
            from <= day && day <= to
        })
        .map(|r| r.query_param("startIndex").unwrap())
        .collect();
    assert_eq!(busy, ["0", "5", "10", "15", "20", "25", "30", "35"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_continues_mid_window_from_the_saved_cursor() {
    let api = nvd_api(Auth::None);
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    // From 2023-10-01 the first 120-day window holds the 38 records of 2023-10-18.
    let cfg = config(&base, json!({"start": "2023-10-01T00:00:00Z"}));
    let first = bind(&plugin, "nvd", &[&base], Default::default());
    let mut cursor = None;
    let mut before: Vec<Event> = Vec::new();
    for _ in 0..3 {
        let batch = first.sandbox.poll(&cfg, cursor.as_deref()).await.unwrap();
        assert!(batch.more);
        before.extend(batch.events);
        cursor = batch.cursor;
    }
    let saved: Value = serde_json::from_str(cursor.as_deref().unwrap()).unwrap();
    assert_eq!(saved["phase"], "window");
    assert_eq!(saved["next"], 15);
    assert_eq!(saved["total"], 38);
    let window = nvd_requests(&api)[0].clone();

    // A restart: a new instance with fresh state, handed the persisted cursor.
    api.log().clear();
    let plugin = load(&rt, NVD_CVE).await;
    let second = bind(&plugin, "nvd", &[&base], Default::default());
    let batch = second.sandbox.poll(&cfg, cursor.as_deref()).await.unwrap();
    let resumed = &nvd_requests(&api)[0];
    assert_eq!(resumed.query_param("startIndex").as_deref(), Some("15"));
    assert_eq!(
        resumed.query_param("lastModStartDate"),
        window.query_param("lastModStartDate")
    );
    assert_eq!(
        resumed.query_param("lastModEndDate"),
        window.query_param("lastModEndDate")
    );
    let mut after = batch.events;
    let mut cursor = batch.cursor;
    while after.len() + before.len() < 38 {
        let batch = second.sandbox.poll(&cfg, cursor.as_deref()).await.unwrap();
        after.extend(batch.events);
        cursor = batch.cursor;
    }
    let ids: HashSet<&str> = before.iter().chain(&after).map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 38, "nothing lost, nothing read twice");
    assert!(
        before
            .iter()
            .chain(&after)
            .all(|e| e.time.starts_with("2023-10-18T"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spent_budget_answers_rate_limited_without_calling_nvd() {
    let api = nvd_api(Auth::None);
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    let b = bind(&plugin, "nvd", &[&base], Default::default());
    let cfg = config(
        &base,
        json!({"rate_limit": {"requests": 3, "window_secs": 3600}}),
    );
    let mut cursor = None;
    for _ in 0..3 {
        cursor = b
            .sandbox
            .poll(&cfg, cursor.as_deref())
            .await
            .unwrap()
            .cursor;
    }
    let (secs, message) = retry_after(b.sandbox.poll(&cfg, cursor.as_deref()).await);
    assert!((1..=3600).contains(&secs), "retry after {secs} s");
    assert!(
        message.contains("3 requests per rolling 3600 s"),
        "{message}"
    );
    assert_eq!(nvd_requests(&api).len(), 3, "the fourth poll sent nothing");
    // The budget lives in the connector's state: it survives the call, and the
    // cursor is untouched, so the next allowed poll continues at startIndex 15.
    let (again, _) = retry_after(b.sandbox.poll(&cfg, cursor.as_deref()).await);
    assert!(again <= secs);
    let fresh = bind(&plugin, "nvd-2", &[&base], Default::default());
    fresh.sandbox.poll(&cfg, cursor.as_deref()).await.unwrap();
    assert_eq!(
        nvd_requests(&api)[3].query_param("startIndex").as_deref(),
        Some("15")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nvd_throttling_403_is_rate_limited_and_backs_off() {
    let api = nvd_api(Auth::None);
    api.set_nvd_throttle(Some(NvdThrottle {
        without_key: 2,
        with_key: 50,
        window: Duration::from_secs(3600),
    }));
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    let b = bind(&plugin, "nvd", &[&base], Default::default());
    // A budget larger than NVD's (misconfigured): NVD's firewall answers 403.
    let cfg = config(
        &base,
        json!({"rate_limit": {"requests": 100, "window_secs": 30, "throttle_backoff_secs": 120}}),
    );
    let mut cursor = None;
    for _ in 0..2 {
        cursor = b
            .sandbox
            .poll(&cfg, cursor.as_deref())
            .await
            .unwrap()
            .cursor;
    }
    let (secs, message) = retry_after(b.sandbox.poll(&cfg, cursor.as_deref()).await);
    assert_eq!(
        secs, 120,
        "no Retry-After from NVD: the configured back-off"
    );
    assert!(message.contains("HTTP 403"), "{message}");
    assert!(
        message.contains("Request forbidden by administrative rules."),
        "{message}"
    );
    assert_eq!(nvd_requests(&api).len(), 3);
    // The plugin now stays away without asking NVD again.
    let (later, _) = retry_after(b.sandbox.poll(&cfg, cursor.as_deref()).await);
    assert!((1..=120).contains(&later));
    assert_eq!(nvd_requests(&api).len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_key_goes_in_the_header_and_an_invalid_key_is_an_auth_error() {
    let api = nvd_api(Auth::ApiKeyHeader {
        name: "apiKey".into(),
        value: "nvd-key-0123456789".into(),
    });
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    let cfg = config(&base, json!({"use_api_key": true}));

    let good = bind(
        &plugin,
        "nvd",
        &[&base],
        credentials(key_creds(&base, "nvd-key-0123456789")),
    );
    let batch = good.sandbox.poll(&cfg, None).await.unwrap();
    assert_eq!(batch.events.len(), 5);
    assert_eq!(
        nvd_requests(&api)[0].header("apikey"),
        Some("nvd-key-0123456789")
    );
    assert!(
        good.logs
            .lines()
            .iter()
            .all(|l| !l.message.contains("nvd-key-0123456789"))
    );

    // NVD answers a wrong key with 404 and `message: Invalid apiKey.`.
    let stale = bind(
        &plugin,
        "nvd",
        &[&base],
        credentials(key_creds(&base, "revoked-key-999")),
    );
    match plugin_error(stale.sandbox.poll(&cfg, None).await) {
        PluginError::Auth { message } => {
            assert!(message.contains("Invalid apiKey."), "{message}");
            assert!(message.contains("api-key"), "{message}");
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    let report = stale.sandbox.test_connection(&cfg).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.stages[0].name, "auth");
    assert!(!report.stages[0].ok);
    assert!(report.stages[0].message.contains("Invalid apiKey."));

    // `use_api_key` without a bound key: an auth error naming the slot.
    let unbound = bind(&plugin, "nvd", &[&base], Default::default());
    match plugin_error(unbound.sandbox.poll(&cfg, None).await) {
        PluginError::Auth { message } => assert!(message.contains("api-key"), "{message}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_test_makes_one_small_request() {
    let api = nvd_api(Auth::ApiKeyHeader {
        name: "apiKey".into(),
        value: "nvd-key-0123456789".into(),
    });
    let base = api.base_url();
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    let b = bind(
        &plugin,
        "nvd",
        &[&base],
        credentials(key_creds(&base, "nvd-key-0123456789")),
    );
    let report = b
        .sandbox
        .test_connection(&config(&base, json!({"use_api_key": true})))
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["auth", "sample"]);
    assert!(report.stages[0].message.contains("accepted the API key"));
    assert!(
        report.stages[1]
            .message
            .starts_with("48 CVE records available"),
        "{report:?}"
    );
    assert!(report.stages.iter().all(|s| s.latency_ms.is_some()));
    assert_eq!(report.sample.len(), 1);
    assert_eq!(report.sample[0].kind, EventKind::Vulnerability);
    let reqs = nvd_requests(&api);
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].query().unwrap_or_default(),
        "resultsPerPage=1&startIndex=0"
    );

    // Without a key NVD still answers (at the public rate).
    let open = nvd_api(Auth::None);
    let base = open.base_url();
    let b = bind(&plugin, "nvd", &[&base], Default::default());
    let report = b
        .sandbox
        .test_connection(&config(&base, json!({})))
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.stages[0].message.contains("no API key configured"));
    assert!(open.log().requests()[0].header("apikey").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_errors_have_field_paths() {
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    let b = bind(
        &plugin,
        "nvd",
        &["https://services.nvd.nist.gov"],
        Default::default(),
    );
    assert!(
        b.sandbox
            .validate_config(&json!({}))
            .await
            .unwrap()
            .is_empty()
    );
    let errors = b
        .sandbox
        .validate_config(&json!({"results_per_page": 5000, "window_days": 121, "apiKey": "x"}))
        .await
        .unwrap();
    let paths: HashSet<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains("/results_per_page"), "{errors:?}");
    assert!(paths.contains("/window_days"), "{errors:?}");
    // Past the schema, the plugin's own checks: an unparseable start time.
    let errors = b
        .sandbox
        .validate_config(&json!({"start": "the beginning"}))
        .await
        .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "/start");
    let manifest = plugin.manifest();
    assert_eq!(manifest.hosts, ["https://services.nvd.nist.gov", "*://*:*"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn pushed_nvd_json_is_normalised() {
    let rt = runtime(true);
    let plugin = load(&rt, NVD_CVE).await;
    let b = bind(&plugin, "nvd-push", &[], Default::default());
    let dir = portcullis_e2e::nvd_dir();
    let inputs = vec![
        std::fs::read_to_string(dir.join("fkie_CVE-2024-3400.cve.json")).unwrap(),
        std::fs::read_to_string(dir.join("vunnel_single-entry_api2.0_response.json")).unwrap(),
        "{\"vulnerabilities\": 7}".to_string(),
    ];
    let results = b.sandbox.normalize(&json!({}), &inputs).await;
    let first = results[0].as_ref().unwrap();
    assert_eq!(first[0].id, "CVE-2024-3400@2024-04-13T01:00:01.407Z");
    assert_eq!(first[0].attributes["in_kev"], true);
    let second = results[1].as_ref().unwrap();
    assert_eq!(second[0].attributes["cve_id"], "CVE-2022-1576");
    match &results[2] {
        Err(CallError::Plugin(PluginError::Parse { message })) => {
            assert!(
                message.contains("`vulnerabilities` in pushed input is a number, not an array"),
                "{message}"
            )
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}
