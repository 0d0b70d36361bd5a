//! `cef-leef`, built from source, in the real host: whole CEF and LEEF sample files
//! from `../shared/conformance/` pushed through `normalize` in one batch per file —
//! bad lines are reported with their index and reason, the good lines still become
//! events — plus the push-only plugin's `describe`, `test-connection`,
//! `validate-config` and `poll`.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};

use crate::common::*;
use portcullis::CallError;
use portcullis::event::Event;
use portcullis::manifest::Category;
use portcullis::runtime::PluginError;
use portcullis_e2e::artifacts::CEF_LEEF;
use serde_json::{Value, json};

/// The lines of a conformance file (blank lines dropped, as a syslog receiver does).
fn sample_lines(rel: &str) -> Vec<String> {
    let path = portcullis_e2e::conformance_dir().join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A sample file and the indices of the lines the plugin must refuse, with a piece
/// of each reason.
struct Sample {
    file: &'static str,
    refused: &'static [(usize, &'static str)],
}

const SAMPLES: &[Sample] = &[
    Sample {
        file: "cef/beats_decode_cef_samples.log",
        refused: &[],
    },
    Sample {
        file: "cef/elastic_integrations_cef_test-cef.log",
        refused: &[],
    },
    Sample {
        file: "cef/tenzir_checkpoint.log",
        refused: &[],
    },
    Sample {
        file: "cef/tenzir_read_cef_basic.input.log",
        refused: &[],
    },
    Sample {
        file: "cef/tenzir_read_cef_invalid.stdin.log",
        refused: &[
            (0, "at byte 0: not a CEF or LEEF record"),
            (1, "at byte 0: not a CEF or LEEF record"),
            (2, "at byte 4: CEF version `nope` is not a number"),
            (3, "at byte 21: CEF extension must start with `key=value`"),
        ],
    },
    Sample {
        file: "leef/tenzir_integration_leef1.log",
        refused: &[(
            1,
            "at byte 31: missing key-value separator `=` in LEEF attribute",
        )],
    },
    Sample {
        file: "leef/tenzir_integration_leef2_pan_x7C.log",
        refused: &[],
    },
    Sample {
        file: "leef/tenzir_integration_zscaler-nss_leef1_over_syslog.log",
        refused: &[],
    },
    Sample {
        file: "leef/tenzir_read_leef_minimal.input.log",
        refused: &[],
    },
    Sample {
        file: "leef/tenzir_read_leef_invalid.stdin.log",
        refused: &[
            (0, "not a CEF or LEEF record"),
            (1, "unsupported LEEF version `3.0`"),
            (2, "empty LEEF 2.0 delimiter field"),
            (3, "invalid hex delimiter `0xGG`"),
            (4, "ambiguous hex delimiter `0x123`"),
            (5, "expected a single character (got 2)"),
            (6, "LEEF 1.0 requires at least 6 fields"),
            (7, "at byte 29: missing key-value separator"),
            (8, "missing key before `=`"),
        ],
    },
    Sample {
        file: "leef/tenzir_read_leef_types_caret.stdin.log",
        refused: &[],
    },
    Sample {
        file: "leef/tenzir_read_leef_raw.stdin.log",
        refused: &[],
    },
    Sample {
        file: "leef/tenzir_test_inputs_leef2_no_delimiter_literal_backslash_t.log",
        refused: &[
            (0, "LEEF 2.0 requires at least 7 fields"),
            (1, "LEEF 2.0 requires at least 7 fields"),
            (2, "LEEF 2.0 requires at least 7 fields"),
        ],
    },
];

fn parse_error(r: &Result<Vec<Event>, CallError>) -> Option<&str> {
    match r {
        Err(CallError::Plugin(PluginError::Parse { message })) => Some(message),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_sample_files_good_lines_become_events_bad_lines_are_reported() {
    let rt = runtime(false);
    let plugin = load(&rt, CEF_LEEF).await;
    let b = bind(&plugin, "syslog-in", &[], Default::default());
    let config = json!({});
    let mut total_events = 0;
    for sample in SAMPLES {
        let lines = sample_lines(sample.file);
        assert!(!lines.is_empty(), "{}", sample.file);
        let results = b.sandbox.normalize(&config, &lines).await;
        assert_eq!(results.len(), lines.len(), "{}", sample.file);
        for (i, r) in results.iter().enumerate() {
            match sample.refused.iter().find(|(j, _)| *j == i) {
                Some((_, reason)) => {
                    let message = parse_error(r).unwrap_or_else(|| {
                        panic!(
                            "{} line {i}: expected a parse error, got {r:?}",
                            sample.file
                        )
                    });
                    assert!(
                        message.contains(reason),
                        "{} line {i}: {message}",
                        sample.file
                    );
                }
                None => {
                    let events = r
                        .as_ref()
                        .unwrap_or_else(|e| panic!("{} line {i}: {e}", sample.file));
                    assert_eq!(events.len(), 1, "{} line {i}", sample.file);
                    let e = &events[0];
                    assert_eq!(e.source, "syslog-in");
                    assert_eq!(e.raw, lines[i]);
                    assert!(
                        e.id.starts_with("cef-") || e.id.starts_with("leef-"),
                        "{}",
                        e.id
                    );
                    assert!(e.attributes["metadata"]["log_name"].is_string());
                    total_events += 1;
                }
            }
        }
    }
    assert_eq!(total_events, 15 + 4 + 3 + 1 + 1 + 4 + 3 + 1 + 1 + 1 + 2 + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_mixed_batch_keeps_order_and_reports_bad_indices() {
    let rt = runtime(false);
    let plugin = load(&rt, CEF_LEEF).await;
    let b = bind(&plugin, "mixed", &[], Default::default());
    let mut lines = Vec::new();
    let mut bad = BTreeSet::new();
    for sample in SAMPLES {
        let start = lines.len();
        lines.extend(sample_lines(sample.file));
        bad.extend(sample.refused.iter().map(|(i, _)| start + i));
    }
    let results = b.sandbox.normalize(&json!({"kind": "alert"}), &lines).await;
    let reported: BTreeSet<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(reported, bad);
    let events: Vec<&Event> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .collect();
    assert_eq!(events.len(), lines.len() - bad.len());
    // Every good line is its own event, in order, with a distinct id.
    let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len());
    let raws: Vec<&str> = events.iter().map(|e| e.raw.as_str()).collect();
    let good: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(raws, good);
    assert!(
        events
            .iter()
            .all(|e| e.kind == portcullis::event::EventKind::Alert)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_carry_the_ocsf_mapping_and_observables() {
    let rt = runtime(false);
    let plugin = load(&rt, CEF_LEEF).await;
    let b = bind(&plugin, "siem-feed", &[], Default::default());
    let mut lines = sample_lines("cef/tenzir_checkpoint.log");
    lines.extend(sample_lines(
        "leef/tenzir_integration_zscaler-nss_leef1_over_syslog.log",
    ));
    lines.extend(sample_lines("cef/beats_decode_cef_samples.log"));
    // The same line twice: the same id, so the host's dedup drops the repeat.
    lines.push(lines[0].clone());
    let results = b.sandbox.normalize(&json!({}), &lines).await;
    let events: Vec<Event> = results.into_iter().map(|r| r.unwrap().remove(0)).collect();

    let cp = &events[0];
    assert_eq!(cp.time, "2018-11-26T22:17:32Z");
    assert_eq!((cp.severity_id, cp.severity.as_str()), (0, "Unknown"));
    assert_eq!(cp.title, "https");
    assert_eq!(
        cp.attributes["src_endpoint"],
        json!({"ip": "192.168.101.100", "port": 49363})
    );
    assert_eq!(
        cp.attributes["dst_endpoint"],
        json!({"ip": "52.173.84.157", "port": 443})
    );
    assert_eq!(
        cp.attributes["metadata"]["product"]["vendor_name"],
        "Check Point"
    );
    assert_eq!(
        cp.attributes["custom_fields"]["Matched Category"],
        "Business / Economy"
    );
    assert!(
        cp.observables
            .iter()
            .any(|o| o.kind == "ip" && o.value == "192.168.101.100")
    );
    assert_eq!(events.last().map(|e| e.id.as_str()), Some(cp.id.as_str()));

    let z = &events[3];
    assert_eq!(z.title, "Zscaler NSS-FW Drop");
    assert_eq!(z.attributes["syslog"]["app_name"], "zscaler-nss");
    assert_eq!(z.attributes["user"]["name"], "GCL->SBL-1");
    assert!(
        z.observables
            .iter()
            .any(|o| o.kind == "user" && o.value == "GCL->SBL-1")
    );

    let trend = &events[6];
    assert_eq!((trend.severity_id, trend.severity.as_str()), (3, "Medium"));
    let kinds: BTreeSet<&str> = trend.observables.iter().map(|o| o.kind.as_str()).collect();
    assert!(
        kinds.is_superset(&BTreeSet::from(["md5", "sha1", "sha256", "hostname"])),
        "{kinds:?}"
    );
    let very_high = &events[4];
    assert_eq!(
        (very_high.severity_id, very_high.severity.as_str()),
        (5, "Critical")
    );
    // The `dvc=hostname` line: kept, with a warning.
    let warned = &events[8];
    assert!(
        warned.attributes["warnings"][0]
            .as_str()
            .unwrap()
            .contains("`dvc`: `hostname`")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn push_only_plugin_describe_test_connection_validate_poll() {
    let rt = runtime(false);
    let plugin = load(&rt, CEF_LEEF).await;
    let m = plugin.manifest();
    assert_eq!(m.id, "cef-leef");
    assert_eq!(m.category, Category::Siem);
    assert!(m.accepts_push);
    assert!(m.hosts.is_empty());
    assert!(m.credential_slots.is_empty());
    let b = bind(&plugin, "push", &[], Default::default());

    let report = b
        .sandbox
        .test_connection(&json!({"timezone": "+02:00"}))
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.stages.len(), 1);
    assert_eq!(report.stages[0].name, "config");
    let report = b
        .sandbox
        .test_connection(&json!({"timezone": "Mars/Olympus"}))
        .await
        .unwrap();
    assert!(!report.ok);
    assert!(
        report.stages[0].message.contains("/timezone"),
        "{}",
        report.stages[0].message
    );

    assert!(
        b.sandbox
            .validate_config(&json!({"format": "leef", "strict": true}))
            .await
            .unwrap()
            .is_empty()
    );
    let errors = b
        .sandbox
        .validate_config(&json!({"timezone": "Mars/Olympus"}))
        .await
        .unwrap();
    assert_eq!(
        errors.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["/timezone"]
    );
    let errors = b
        .sandbox
        .validate_config(&json!({"format": "syslog"}))
        .await
        .unwrap();
    assert!(errors.iter().any(|e| e.path == "/format"), "{errors:?}");

    let batch = b.sandbox.poll(&json!({}), None).await.unwrap();
    assert!(batch.events.is_empty() && !batch.more && batch.cursor.is_none());

    // A bad configuration fails every line of the batch with the field error.
    let results = b
        .sandbox
        .normalize(
            &json!({"max_line_bytes": 1}),
            &["CEF:0|a|b|c|d|e|5|".into()],
        )
        .await;
    match &results[0] {
        Err(CallError::Plugin(PluginError::Config { fields })) => {
            assert_eq!(fields[0].path, "/max_line_bytes")
        }
        other => panic!("{other:?}"),
    }
    // Strict mode refuses lines that parse only with warnings.
    let line = sample_lines("cef/tenzir_read_cef_basic.input.log").remove(0);
    let results = b
        .sandbox
        .normalize(&json!({"strict": true}), std::slice::from_ref(&line))
        .await;
    assert!(parse_error(&results[0]).unwrap().contains("strict mode"));
    let results = b.sandbox.normalize(&json!({}), &[line]).await;
    let e = &results[0].as_ref().unwrap()[0];
    let warnings: Vec<&Value> = e.attributes["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
}
