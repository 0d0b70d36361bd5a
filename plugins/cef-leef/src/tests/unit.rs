//! Behaviour of `normalize` and of the glue beyond the conformance samples.

use portcullis_sdk::prelude::*;
use serde_json::json;

use super::*;
use crate::engine::ObsKind;

#[test]
fn manifest_and_schema() {
    let m = crate::manifest();
    assert_eq!(m.id, "cef-leef");
    assert_eq!(m.category, Category::Siem);
    assert!(m.accepts_push);
    assert!(m.hosts.is_empty(), "push only: no host to reach");
    assert!(m.credential_slots.is_empty());
    let schema: Value = serde_json::from_str(crate::CONFIG_SCHEMA).unwrap_or_default();
    assert_eq!(m.config_schema, schema);
    let props = schema["properties"].as_object().map(|p| p.len());
    assert_eq!(props, Some(5));
}

#[test]
fn config_errors_carry_paths() {
    assert!(crate::options(&json!({})).is_ok());
    match crate::options(&json!({"format": "syslog", "bogus": 1})) {
        Err(Error::Config(list)) => {
            let paths: Vec<&str> = list.iter().map(|f| f.path.as_str()).collect();
            assert_eq!(paths, ["/bogus", "/format"]);
        }
        other => panic!("{other:?}"),
    }
    let report = crate::config_report(&json!({"timezone": "Mars/Olympus"}));
    assert_eq!(report.stages.len(), 1);
    assert_eq!(
        (report.stages[0].name.as_str(), report.stages[0].ok),
        ("config", false)
    );
    assert!(report.stages[0].message.contains("/timezone"));
    let report = crate::config_report(&json!({"kind": "alert"}));
    assert!(report.ok() && report.sample.is_empty());
}

#[test]
fn event_conversion() {
    let opts = Options {
        kind: crate::engine::Kind::Alert,
        ..Options::default()
    };
    let line = "<134>1 2024-05-01T10:00:00.250+02:00 fw01 cef - - - CEF:0|ACME|FW|2.1|4711|Port scan|8|src=203.0.113.7 spt=4444 dst=10.0.0.5 dpt=22 suser=eve act=blocked outcome=failure request=https://evil.example/x";
    let e = crate::normalize_line(&opts, line, NOW_MS as u64).unwrap_or_else(|e| panic!("{e}"));
    assert!(e.id.starts_with("cef-") && e.id.len() == 36, "{}", e.id);
    assert_eq!(
        e.time, "2024-05-01T08:00:00.250Z",
        "the syslog stamp when CEF has no rt"
    );
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.severity, Severity::High);
    assert_eq!(e.title, "Port scan");
    assert_eq!(e.raw, line);
    let kinds: Vec<(ObservableKind, &str)> = e
        .observables
        .iter()
        .map(|o| (o.kind, o.value.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ObservableKind::Ip, "203.0.113.7"),
            (ObservableKind::Ip, "10.0.0.5"),
            (ObservableKind::User, "eve"),
            (ObservableKind::Url, "https://evil.example/x"),
            (ObservableKind::Hostname, "fw01"),
        ]
    );
    let a = Value::Object(e.attributes.clone());
    assert_eq!(
        a["src_endpoint"],
        json!({"ip": "203.0.113.7", "port": 4444})
    );
    assert_eq!(a["dst_endpoint"], json!({"ip": "10.0.0.5", "port": 22}));
    assert_eq!(a["actor"], json!({"user": {"name": "eve"}}));
    assert_eq!(a["action"], "blocked");
    assert_eq!(a["outcome"], "failure");
    assert_eq!(a["severity_id"], 4);
    assert_eq!(a["severity"], "High");
    assert_eq!(a["vendor_severity"], "8");
    assert_eq!(
        a["metadata"],
        json!({"product": {"vendor_name": "ACME", "name": "FW", "version": "2.1"},
               "event_code": "4711", "log_name": "CEF", "log_version": "0"})
    );
    assert_eq!(
        a["syslog"],
        json!({"facility": 16, "severity": 6, "version": 1, "timestamp": "2024-05-01T10:00:00.250+02:00",
               "time_dt": "2024-05-01T08:00:00.250Z", "hostname": "fw01", "app_name": "cef"})
    );
    // The same line gives the same id; another line another id.
    let again = crate::normalize_line(&opts, line, 0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.id, e.id);
    let other = crate::normalize_line(&opts, &line.replace("4444", "4445"), 0);
    assert_ne!(other.map(|o| o.id).unwrap_or_default(), e.id);
    // Errors are parse errors naming the position.
    match crate::normalize_line(&opts, "CEF:0|a|b", 0) {
        Err(Error::Parse(m)) => assert!(m.starts_with("at byte 9: incomplete CEF header"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rt_start_end_forms_and_precedence() {
    let n = ok(
        "CEF:0|v|p|1|s|n|5|start=Jan 05 2024 01:02:03 end=1704416523000 rt=Jan 05 2024 01:02:04.500 +0100",
    );
    assert_eq!(n.time, "2024-01-05T00:02:04.500Z", "rt wins");
    assert_eq!(
        attr_text(&n, "/start_time_dt").as_deref(),
        Some("2024-01-05T01:02:03Z")
    );
    assert_eq!(
        attr_text(&n, "/end_time_dt").as_deref(),
        Some("2024-01-05T01:02:03Z")
    );
    let n = ok("CEF:0|v|p|1|s|n|5|start=Jan 05 2024 01:02:03 end=Jan 05 2024 02:00:00");
    assert_eq!(n.time, "2024-01-05T02:00:00Z", "then end");
    let n = ok("CEF:0|v|p|1|s|n|5|rt=not a time start=1704416523000");
    assert_eq!(n.time, "2024-01-05T01:02:03Z", "an invalid rt falls back");
    assert!(has_warning(&n, "`rt`: `not a time`"));
    let n = ok("CEF:0|v|p|1|s|n|5|rt=Jan 05 01:02:03 dtz=GMT+02:00");
    assert_eq!(
        n.time, "2024-01-04T23:02:03Z",
        "dtz as an offset, year from the receipt time"
    );
    let n = ok("CEF:0|v|p|1|s|n|5|msg=no time at all");
    assert_eq!(n.time, "2024-06-15T12:00:00Z", "the receipt time");
}

#[test]
fn strict_mode_and_format_restriction() {
    let strict = Options {
        strict: true,
        ..Options::default()
    };
    let line = "CEF:0|v|p|1|s|n|5|moo=this =has = equals";
    assert!(norm(line).is_ok());
    let e = norm_with(&strict, line)
        .err()
        .unwrap_or_else(|| panic!("strict"));
    assert!(
        e.reason.contains("strict mode") && e.reason.contains("unescaped `=`"),
        "{e}"
    );
    assert!(norm_with(&strict, "CEF:0|v|p|1|s|n|5|src=10.0.0.1").is_ok());

    let cef_only = Options {
        format: crate::engine::FormatChoice::Cef,
        ..Options::default()
    };
    let e = norm_with(&cef_only, "Jun 02 16:34:55 h LEEF:1.0|V|P|1|42|a=b").err();
    assert_eq!(e.map(|e| e.offset), Some(18));
    let leef_only = Options {
        format: crate::engine::FormatChoice::Leef,
        ..Options::default()
    };
    assert!(norm_with(&leef_only, "CEF:0|v|p|1|s|n|5|").is_err());
    assert!(norm_with(&leef_only, "LEEF:1.0|V|P|1|42|a=b").is_ok());
}

#[test]
fn one_line_per_input() {
    let two = "CEF:0|v|p|1|s|n|5|src=10.0.0.1\nCEF:0|v|p|1|s|n|5|src=10.0.0.2";
    let e = err(two);
    assert_eq!(e.offset, 31);
    assert!(e.reason.contains("more than one line"));
    let with_syslog = "CEF:0|v|p|1|s|n|5|src=10.0.0.1\n<13>Jan 18 11:07:53 h LEEF:1.0|V|P|1|42|a=b";
    assert!(err(with_syslog).reason.contains("more than one line"));
    // A line break inside a value with no record after it is data (beats keeps it).
    let n = ok("CEF:0|v|p|1|s|n|5|msg=first\nsecond src=10.0.0.1\r\n");
    assert_eq!(
        ext(&n, "message").map(scalar_text).as_deref(),
        Some("first\nsecond")
    );
    assert_eq!(n.raw, "CEF:0|v|p|1|s|n|5|msg=first\nsecond src=10.0.0.1");
}

#[test]
fn limits_and_empty_input() {
    let small = Options {
        max_line_bytes: 64,
        ..Options::default()
    };
    let long = format!("CEF:0|v|p|1|s|n|5|msg={}", "x".repeat(100));
    let e = norm_with(&small, &long)
        .err()
        .unwrap_or_else(|| panic!("too long"));
    assert_eq!(e.offset, 64);
    assert!(err("").reason.contains("empty"));
    assert!(err("   \r\n").reason.contains("empty"));
}

#[test]
fn titles_and_fallbacks() {
    assert_eq!(ok("CEF:0|||||||a=").title, "CEF event");
    assert_eq!(ok("CEF:0|ACME|FW||99||3|").title, "ACME FW 99");
    assert_eq!(ok("LEEF:2.0|V|P|1|42|^|a=1").title, "V P 42");
}

#[test]
fn leef_devtime_forms() {
    let n = ok("LEEF:2.0|V|P|1|42|^|devTime=Jan 05 2024 01:02:03^sev=9");
    assert_eq!(
        (n.time.as_str(), n.severity_id),
        ("2024-01-05T01:02:03Z", 5)
    );
    let n = ok(
        "LEEF:2.0|V|P|1|42|^|devTimeFormat=dd/MM/yyyy HH:mm:ss Z^devTime=05/01/2024 01:02:03 +0200",
    );
    assert_eq!(n.time, "2024-01-04T23:02:03Z");
    let n = ok("LEEF:2.0|V|P|1|42|^|devTimeFormat=yyyy-MM-dd^devTime=Jan 05 2024");
    assert!(has_warning(&n, "does not match devTimeFormat"));
    let n = ok("LEEF:2.0|V|P|1|42|^|sev=eleven");
    assert!(has_warning(&n, "LEEF `sev` `eleven`"));
    assert_eq!(n.severity_id, 0);
}

#[test]
fn observables_everywhere() {
    let n = ok(
        "CEF:0|v|p|1|s|n|5|shost=10.1.1.1 dhost=db.internal dvchost=fw.example duid=S-1-5-21 \
         cs1=https://c2.example/p cs1Label=C2 cs2=d41d8cd98f00b204e9800998ecf8427e cs2Label=MD5 of dropper \
         c6a1=2001:db8::1 c6a1Label=v6 flexString1=ftp://files.example/a flexString1Label=link \
         customIp=198.51.100.9 userName=mallory",
    );
    for (k, v) in [
        (ObsKind::Ip, "10.1.1.1"),
        (ObsKind::Hostname, "db.internal"),
        (ObsKind::Hostname, "fw.example"),
        (ObsKind::User, "S-1-5-21"),
        (ObsKind::Url, "https://c2.example/p"),
        (ObsKind::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
        (ObsKind::Ip, "2001:db8::1"),
        (ObsKind::Url, "ftp://files.example/a"),
        (ObsKind::Ip, "198.51.100.9"),
        (ObsKind::User, "mallory"),
    ] {
        assert!(has_obs(&n, k, v), "{k:?} {v}: {:?}", n.observables);
    }
    assert_eq!(
        attr_text(&n, "/custom_fields/MD5 of dropper").as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e")
    );
}

#[test]
fn typed_values_of_the_wrong_type_are_kept_with_warnings() {
    let n = ok(
        "CEF:0|v|p|1|s|n|5|spt=99999 dpt=http smac=nope fsize=big cn1=x cn1Label=n art=yesterday",
    );
    for w in [
        "`spt`: 99999 is not a port",
        "`dpt`: `http` is not an integer",
        "`smac`",
        "`fsize`",
        "`deviceCustomNumber1`",
        "`art`",
    ] {
        assert!(has_warning(&n, w), "{w}: {:?}", warnings(&n));
    }
    assert_eq!(attr(&n, "/src_endpoint"), None);
    assert_eq!(attr_text(&n, "/custom_fields/n").as_deref(), Some("x"));
    assert_eq!(
        ext(&n, "sourcePort").map(scalar_text).as_deref(),
        Some("99999")
    );
}

#[test]
fn duplicate_keys_become_lists() {
    let n = ok("CEF:0|v|p|1|s|n|5|cat=a cat=b src=10.0.0.1");
    assert_eq!(ext(&n, "deviceEventCategory"), Some(&json!(["a", "b"])));
}

#[test]
fn syslog_headers_on_cef() {
    let n = ok("<13>Jan 18 11:07:53 192.168.1.1 CEF:0|v|p|1|s|n|5|");
    assert_eq!(n.time, "2024-01-18T11:07:53Z");
    assert!(has_obs(&n, ObsKind::Ip, "192.168.1.1"));
    assert_eq!(attr(&n, "/syslog/facility"), Some(&json!(1)));
    let opts = Options {
        default_offset: -5 * 3600,
        ..Options::default()
    };
    let n = norm_with(&opts, "Jan 18 11:07:53 host app[7]: CEF:0|v|p|1|s|n|5|")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        n.time, "2024-01-18T16:07:53Z",
        "zoneless stamp at the configured offset"
    );
    assert_eq!(attr_text(&n, "/syslog/proc_id").as_deref(), Some("7"));
    let e = err("<13>1 2019-01-18T11:07:53Z host app - - [x CEF:0|v|p|1|s|n|5|");
    assert!(e.reason.contains("STRUCTURED-DATA"), "{e}");
}

/// Deterministic mutations of real sample lines (insertions, deletions and
/// replacements of the characters the grammars care about, multi-byte characters
/// included): the engine must answer every one with an event or an error, never a
/// panic (a panic would trap the plugin and fail the whole batch).
#[test]
fn mutated_samples_never_panic() {
    let mut lines = Vec::new();
    for rel in [
        "cef/beats_decode_cef_samples.log",
        "cef/tenzir_checkpoint.log",
        "leef/tenzir_integration_leef1.log",
        "leef/tenzir_read_leef_types_caret.stdin.log",
        "leef/tenzir_integration_zscaler-nss_leef1_over_syslog.log",
    ] {
        lines.extend(conformance(rel).lines().map(str::to_string));
    }
    lines.push("<165>1 2003-10-11T22:14:15.003Z host app - ID47 [a b=\"c\\]\"] LEEF:2.0|V|P|1|42|x7C|a=1|b=2".into());
    const ALPHABET: [char; 20] = [
        '|', '=', '\\', ' ', '\t', '\n', '"', '<', '>', '[', ']', ':', 'x', '0', '9', 'é', '€',
        '\u{feff}', 'C', 'L',
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| -> usize {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let (mut events, mut errors) = (0, 0);
    for round in 0..6000 {
        let mut chars: Vec<char> = lines[round % lines.len()].chars().collect();
        for _ in 0..1 + next(4) {
            let at = next(chars.len() + 1);
            match next(3) {
                0 => chars.insert(at, ALPHABET[next(ALPHABET.len())]),
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                _ if at < chars.len() => chars[at] = ALPHABET[next(ALPHABET.len())],
                _ => chars.push(ALPHABET[next(ALPHABET.len())]),
            }
        }
        let line: String = chars.into_iter().collect();
        match norm(&line) {
            Ok(n) => {
                assert!(!n.id.is_empty() && !n.title.is_empty(), "{line:?}");
                events += 1;
            }
            Err(e) => {
                assert!(e.offset <= line.len(), "{line:?}: {e}");
                errors += 1;
            }
        }
    }
    assert!(
        events > 1000 && errors > 100,
        "{events} events, {errors} errors"
    );
}
