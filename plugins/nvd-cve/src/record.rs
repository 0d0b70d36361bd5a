//! One NVD `cve` object (what the API puts under `vulnerabilities[].cve`) turned into
//! a `vulnerability` event. Only the fields documented in the NVD CVE API 2.0 schema
//! are read; anything else (NVD adds fields, e.g. `affected`, SSVC metrics) is left
//! alone and stays available in the event's `raw`.

use portcullis_sdk::json_type_name;
use portcullis_sdk::prelude::*;
use portcullis_sdk::warnings::Warnings;
use serde_json::Map;

use crate::cpe;

/// Longest description excerpt used in an event title, in characters.
const TITLE_EXCERPT_CHARS: usize = 160;

/// The CVSS metric families of `metrics`, newest first: (NVD key, version, attribute
/// key).
const CVSS_FAMILIES: [(&str, &str, &str); 4] = [
    ("cvssMetricV40", "4.0", "v4_0"),
    ("cvssMetricV31", "3.1", "v3_1"),
    ("cvssMetricV30", "3.0", "v3_0"),
    ("cvssMetricV2", "2.0", "v2"),
];

/// CISA Known Exploited Vulnerabilities fields NVD copies into a `cve`, and the
/// attribute names they get.
const KEV_FIELDS: [(&str, &str); 4] = [
    ("cisaExploitAdd", "date_added"),
    ("cisaActionDue", "action_due"),
    ("cisaRequiredAction", "required_action"),
    ("cisaVulnerabilityName", "vulnerability_name"),
];

/// Version-range fields of a `cpeMatch`, and the attribute names they get.
const RANGE_FIELDS: [(&str, &str); 4] = [
    ("versionStartIncluding", "version_start_including"),
    ("versionStartExcluding", "version_start_excluding"),
    ("versionEndIncluding", "version_end_including"),
    ("versionEndExcluding", "version_end_excluding"),
];

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn array_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn opt_str(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.to_string()))
}

/// A time field of the record (`published`, `lastModified`): NVD writes them without
/// a zone, in UTC.
fn time_field(cve: &Value, key: &str, id: &str, w: &mut Warnings) -> Option<Timestamp> {
    match cve.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match Timestamp::parse(s) {
            Ok(t) => Some(t),
            Err(e) => {
                w.add(format!("{id}: `{key}` ignored: {e}"));
                None
            }
        },
        Some(other) => {
            w.add(format!(
                "{id}: `{key}` ignored: expected a string, found {}",
                json_type_name(other)
            ));
            None
        }
    }
}

/// The English description, chosen by `lang` (`en`, then `en-*`), never by position;
/// without one, the first description and its language.
pub fn english_description(cve: &Value) -> Option<(&str, &str)> {
    let descs = array_at(cve, "descriptions");
    let with_lang = |pred: &dyn Fn(&str) -> bool| {
        descs.iter().find_map(|d| {
            let lang = str_at(d, "lang")?;
            let value = str_at(d, "value")?;
            pred(lang).then_some((lang, value))
        })
    };
    with_lang(&|l| l.eq_ignore_ascii_case("en"))
        .or_else(|| with_lang(&|l| l.len() > 3 && l[..3].eq_ignore_ascii_case("en-")))
        .or_else(|| {
            descs
                .iter()
                .find_map(|d| Some((str_at(d, "lang").unwrap_or(""), str_at(d, "value")?)))
        })
}

/// One CVSS metric in normalised form.
#[derive(Clone, Debug, PartialEq)]
struct Metric {
    version: String,
    primary: bool,
    base_score: Option<f64>,
    base_severity: Option<String>,
    json: Value,
}

fn metric(family_version: &str, m: &Value) -> Option<Metric> {
    let Value::Object(_) = m else {
        return None;
    };
    let data = m.get("cvssData").unwrap_or(&Value::Null);
    let version = str_at(data, "version")
        .unwrap_or(family_version)
        .to_string();
    let base_score = data.get("baseScore").and_then(Value::as_f64);
    // CVSS v2 keeps `baseSeverity` beside `cvssData`; v3.x and v4.0 inside it.
    let base_severity = str_at(data, "baseSeverity")
        .or_else(|| str_at(m, "baseSeverity"))
        .map(str::to_string);
    let metric_type = str_at(m, "type");
    let json = json!({
        "version": version,
        "source": opt_str(str_at(m, "source")),
        "type": opt_str(metric_type),
        "vector_string": opt_str(str_at(data, "vectorString")),
        "base_score": base_score,
        "base_severity": base_severity,
        "exploitability_score": m.get("exploitabilityScore").and_then(Value::as_f64),
        "impact_score": m.get("impactScore").and_then(Value::as_f64),
        "cvss_data": data,
    });
    Some(Metric {
        version,
        primary: metric_type.is_some_and(|t| t.eq_ignore_ascii_case("Primary")),
        base_score,
        base_severity,
        json,
    })
}

/// OCSF severity of a CVSS rating: the qualitative `baseSeverity` when present,
/// else the version's score bands (v2: Low < 4.0 ≤ Medium < 7.0 ≤ High; v3.x and
/// v4.0: None 0.0, Low < 4.0, Medium < 7.0, High < 9.0, Critical).
pub fn cvss_severity(
    version: &str,
    base_severity: Option<&str>,
    base_score: Option<f64>,
) -> Severity {
    if let Some(s) = base_severity {
        match s.to_ascii_uppercase().as_str() {
            "NONE" => return Severity::Informational,
            "LOW" => return Severity::Low,
            "MEDIUM" => return Severity::Medium,
            "HIGH" => return Severity::High,
            "CRITICAL" => return Severity::Critical,
            _ => {}
        }
    }
    let Some(score) = base_score.filter(|s| (0.0..=10.0).contains(s)) else {
        return Severity::Unknown;
    };
    if version.starts_with('2') {
        if score < 4.0 {
            Severity::Low
        } else if score < 7.0 {
            Severity::Medium
        } else {
            Severity::High
        }
    } else if score <= 0.0 {
        Severity::Informational
    } else if score < 4.0 {
        Severity::Low
    } else if score < 7.0 {
        Severity::Medium
    } else if score < 9.0 {
        Severity::High
    } else {
        Severity::Critical
    }
}

/// Every CVSS metric grouped by version (Primary before Secondary within each), and
/// the one the event severity comes from: the newest CVSS version present, NVD's
/// Primary assessment preferred over a Secondary (CNA/ADP) one, ignoring metrics
/// without a score or severity.
fn cvss(cve: &Value, id: &str, w: &mut Warnings) -> (Value, Option<Metric>, Vec<String>) {
    let metrics = cve.get("metrics").unwrap_or(&Value::Null);
    let mut grouped = Map::new();
    let mut best: Option<Metric> = None;
    for (key, version, attr) in CVSS_FAMILIES {
        let Some(list) = metrics.get(key) else {
            continue;
        };
        let Some(items) = list.as_array() else {
            w.add(format!(
                "{id}: metrics.{key} ignored: expected an array, found {}",
                json_type_name(list)
            ));
            continue;
        };
        let mut parsed: Vec<Metric> = Vec::with_capacity(items.len());
        for (i, m) in items.iter().enumerate() {
            match metric(version, m) {
                Some(m) => parsed.push(m),
                None => w.add(format!(
                    "{id}: metrics.{key}[{i}] ignored: expected an object, found {}",
                    json_type_name(m)
                )),
            }
        }
        // Stable: keeps NVD's order among metrics of the same type.
        parsed.sort_by_key(|m| !m.primary);
        if best.is_none() {
            best = parsed
                .iter()
                .find(|m| m.base_score.is_some() || m.base_severity.is_some())
                .cloned();
        }
        grouped.insert(
            attr.to_string(),
            Value::Array(parsed.into_iter().map(|m| m.json).collect()),
        );
    }
    let other: Vec<String> = metrics
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !CVSS_FAMILIES.iter().any(|(f, _, _)| f == k))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    (Value::Object(grouped), best, other)
}

/// CWE ids of every weakness (deduplicated, in order, `NVD-CWE-noinfo` and
/// `NVD-CWE-Other` kept) and the weaknesses with their source and type.
fn weaknesses(cve: &Value) -> (Vec<String>, Vec<Value>) {
    let mut ids: Vec<String> = Vec::new();
    let mut list = Vec::new();
    for wk in array_at(cve, "weaknesses") {
        let cwes: Vec<String> = array_at(wk, "description")
            .iter()
            .filter_map(|d| str_at(d, "value"))
            .map(str::to_string)
            .collect();
        for c in &cwes {
            if !ids.contains(c) {
                ids.push(c.clone());
            }
        }
        list.push(json!({
            "source": opt_str(str_at(wk, "source")),
            "type": opt_str(str_at(wk, "type")),
            "cwe_ids": cwes,
        }));
    }
    (ids, list)
}

/// Every `cpeMatch` of every configuration node, flattened, with where it sits
/// (configuration and node index, their operators, `negate`), its version range and
/// its criteria parsed into the eleven CPE components.
fn cpe_matches(cve: &Value, id: &str, w: &mut Warnings) -> Vec<Value> {
    let mut out = Vec::new();
    for (ci, conf) in array_at(cve, "configurations").iter().enumerate() {
        for (ni, node) in array_at(conf, "nodes").iter().enumerate() {
            for (mi, m) in array_at(node, "cpeMatch").iter().enumerate() {
                let Some(criteria) = str_at(m, "criteria") else {
                    w.add(format!(
                        "{id}: configurations[{ci}].nodes[{ni}].cpeMatch[{mi}] has no `criteria`; skipped"
                    ));
                    continue;
                };
                let mut entry = json!({
                    "criteria": criteria,
                    "vulnerable": m.get("vulnerable").and_then(Value::as_bool),
                    "match_criteria_id": opt_str(str_at(m, "matchCriteriaId")),
                    "configuration": ci,
                    "configuration_operator": opt_str(str_at(conf, "operator")),
                    "configuration_negate": conf.get("negate").and_then(Value::as_bool),
                    "node": ni,
                    "node_operator": opt_str(str_at(node, "operator")),
                    "node_negate": node.get("negate").and_then(Value::as_bool),
                });
                for (from, to) in RANGE_FIELDS {
                    if let Some(v) = str_at(m, from) {
                        entry[to] = Value::String(v.to_string());
                    }
                }
                match cpe::parse(criteria) {
                    Ok(parsed) => entry["cpe"] = parsed.to_json(),
                    Err(e) => {
                        w.add(format!("{id}: CPE {criteria:?} not parsed: {e}"));
                        entry["cpe"] = Value::Null;
                        entry["cpe_error"] = Value::String(e);
                    }
                }
                out.push(entry);
            }
        }
    }
    out
}

fn references(cve: &Value) -> Vec<Value> {
    array_at(cve, "references")
        .iter()
        .filter_map(|r| {
            Some(json!({
                "url": str_at(r, "url")?,
                "source": opt_str(str_at(r, "source")),
                "tags": array_at(r, "tags").iter().filter_map(Value::as_str).collect::<Vec<_>>(),
            }))
        })
        .collect()
}

fn kev(cve: &Value) -> Option<Value> {
    let mut map = Map::new();
    for (from, to) in KEV_FIELDS {
        if let Some(v) = str_at(cve, from) {
            map.insert(to.to_string(), Value::String(v.to_string()));
        }
    }
    (!map.is_empty()).then_some(Value::Object(map))
}

fn title(id: &str, description: Option<&str>) -> String {
    let Some(first) = description.and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
    else {
        return id.to_string();
    };
    let mut excerpt: String = first.chars().take(TITLE_EXCERPT_CHARS).collect();
    if first.chars().count() > TITLE_EXCERPT_CHARS {
        excerpt.push('…');
    }
    format!("{id}: {excerpt}")
}

/// Maps one `cve` object to a `vulnerability` event; `raw` is its text as received.
/// `Err` says why the record was skipped (it has no usable id); every lesser problem
/// is a warning and the record is still ingested. `now` is the event time of a
/// record with neither `lastModified` nor `published`.
pub fn normalize_cve(
    cve: &Value,
    raw: &str,
    now: Timestamp,
    w: &mut Warnings,
) -> Result<Event, String> {
    if !cve.is_object() {
        return Err(format!(
            "expected a cve object, found {}",
            json_type_name(cve)
        ));
    }
    let id = match cve.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        Some(other) => {
            return Err(format!("`id` is {}, not a CVE id", json_type_name(other)));
        }
        None => return Err("no `id`".to_string()),
    };
    let published = time_field(cve, "published", id, w);
    let last_modified = time_field(cve, "lastModified", id, w);
    if last_modified.is_none() && published.is_none() {
        w.add(format!(
            "{id}: neither `lastModified` nor `published` is usable; event time is now"
        ));
    }
    let time = last_modified.or(published).unwrap_or(now);
    let description = english_description(cve);
    let (cvss, best, other_metrics) = cvss(cve, id, w);
    let severity = best.as_ref().map_or(Severity::Unknown, |m| {
        cvss_severity(&m.version, m.base_severity.as_deref(), m.base_score)
    });
    let (cwe_ids, weakness_list) = weaknesses(cve);
    let cpes = cpe_matches(cve, id, w);
    let kev = kev(cve);
    let tags: Vec<&str> = array_at(cve, "cveTags")
        .iter()
        .flat_map(|t| array_at(t, "tags").iter().filter_map(Value::as_str))
        .collect();

    let mut attributes = json!({
        "cve_id": id,
        "source_identifier": opt_str(str_at(cve, "sourceIdentifier")),
        "vuln_status": opt_str(str_at(cve, "vulnStatus")),
        "published": published.map(|t| t.to_rfc3339()),
        "last_modified": last_modified.map(|t| t.to_rfc3339()),
        "description": opt_str(description.map(|(_, v)| v)),
        "description_lang": opt_str(description.map(|(l, _)| l)),
        "cve_tags": tags,
        "cvss": cvss,
        "cvss_best": best.as_ref().map(|m| m.json.clone()),
        "severity_source": best.as_ref().map(|m| format!("cvss {}", m.version)),
        "cwe_ids": cwe_ids,
        "weaknesses": weakness_list,
        "cpe_matches": cpes,
        "references": references(cve),
        "in_kev": kev.is_some(),
        "nvd_url": format!("https://nvd.nist.gov/vuln/detail/{id}"),
    });
    if let Some(kev) = kev {
        attributes["kev"] = kev;
    }
    if !other_metrics.is_empty() {
        attributes["other_metrics"] = json!(other_metrics);
    }
    for (from, to) in [
        ("evaluatorComment", "evaluator_comment"),
        ("evaluatorSolution", "evaluator_solution"),
        ("evaluatorImpact", "evaluator_impact"),
    ] {
        if let Some(v) = str_at(cve, from) {
            attributes[to] = Value::String(v.to_string());
        }
    }

    // A CVE changes over time; each version is its own event, so the id carries the
    // modification time (the same version seen twice deduplicates).
    let event_id = match last_modified {
        Some(t) => format!("{id}@{}", t.to_rfc3339_millis()),
        None => id.to_string(),
    };
    let mut builder = EventBuilder::new(event_id)
        .time(time)
        .kind(EventKind::Vulnerability)
        .severity(severity)
        .title(title(id, description.map(|(_, v)| v)))
        .observable(ObservableKind::Cve, id)
        .attributes(attributes)
        .raw(raw);
    for m in array_at(cve, "configurations")
        .iter()
        .flat_map(|c| array_at(c, "nodes"))
        .flat_map(|n| array_at(n, "cpeMatch"))
    {
        if let Some(criteria) = str_at(m, "criteria") {
            builder = builder.observable(ObservableKind::Cpe, criteria);
        }
    }
    Ok(builder.build_at(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-23T00:00:00Z").unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn norm(cve: Value) -> (Event, Warnings) {
        let mut w = Warnings::default();
        let e =
            normalize_cve(&cve, &cve.to_string(), now(), &mut w).unwrap_or_else(|e| panic!("{e}"));
        (e, w)
    }

    #[test]
    fn english_by_lang_not_position() {
        let cve = json!({"descriptions": [
            {"lang": "es", "value": "uno"},
            {"lang": "en", "value": "one"}
        ]});
        assert_eq!(english_description(&cve), Some(("en", "one")));
        let cve = json!({"descriptions": [{"lang": "fr", "value": "un"}, {"lang": "en-GB", "value": "one"}]});
        assert_eq!(english_description(&cve), Some(("en-GB", "one")));
        let cve = json!({"descriptions": [{"lang": "fr", "value": "un"}]});
        assert_eq!(english_description(&cve), Some(("fr", "un")));
        assert_eq!(english_description(&json!({})), None);
    }

    #[test]
    fn severity_bands() {
        assert_eq!(
            cvss_severity("3.1", Some("CRITICAL"), Some(9.8)),
            Severity::Critical
        );
        assert_eq!(cvss_severity("3.1", None, Some(9.0)), Severity::Critical);
        assert_eq!(cvss_severity("3.1", None, Some(8.9)), Severity::High);
        assert_eq!(
            cvss_severity("4.0", None, Some(0.0)),
            Severity::Informational
        );
        assert_eq!(
            cvss_severity("4.0", Some("NONE"), None),
            Severity::Informational
        );
        assert_eq!(cvss_severity("2.0", None, Some(10.0)), Severity::High);
        assert_eq!(cvss_severity("2.0", None, Some(3.9)), Severity::Low);
        assert_eq!(
            cvss_severity("2.0", Some("odd"), Some(5.0)),
            Severity::Medium
        );
        assert_eq!(cvss_severity("3.0", None, Some(11.0)), Severity::Unknown);
        assert_eq!(cvss_severity("3.0", None, None), Severity::Unknown);
    }

    #[test]
    fn newest_version_then_primary() {
        let (e, _) = norm(json!({
            "id": "CVE-2000-0001",
            "lastModified": "2024-01-02T03:04:05.678",
            "metrics": {
                "cvssMetricV2": [{"type": "Primary", "cvssData": {"version": "2.0", "baseScore": 10.0}, "baseSeverity": "HIGH"}],
                "cvssMetricV31": [
                    {"source": "cna", "type": "Secondary", "cvssData": {"version": "3.1", "baseScore": 9.8, "baseSeverity": "CRITICAL"}},
                    {"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"version": "3.1", "baseScore": 5.0, "baseSeverity": "MEDIUM"}}
                ],
                "ssvcV203": [{"ssvcData": {}}]
            }
        }));
        assert_eq!(
            e.severity,
            Severity::Medium,
            "v3.1 Primary wins over v3.1 Secondary and v2"
        );
        assert_eq!(e.attributes["cvss_best"]["source"], "nvd@nist.gov");
        assert_eq!(e.attributes["severity_source"], "cvss 3.1");
        assert_eq!(e.attributes["cvss"]["v3_1"][0]["type"], "Primary");
        assert_eq!(e.attributes["cvss"]["v3_1"][1]["type"], "Secondary");
        assert_eq!(e.attributes["cvss"]["v2"][0]["base_severity"], "HIGH");
        assert_eq!(e.attributes["other_metrics"], json!(["ssvcV203"]));
        assert_eq!(e.id, "CVE-2000-0001@2024-01-02T03:04:05.678Z");
        assert_eq!(e.time, "2024-01-02T03:04:05.678Z");
    }

    #[test]
    fn no_metrics_still_ingested() {
        let (e, w) = norm(
            json!({"id": "CVE-2023-1", "published": "2023-10-18T17:41:28.250", "metrics": {}}),
        );
        assert_eq!(e.severity, Severity::Unknown);
        assert_eq!(e.attributes["cvss_best"], Value::Null);
        assert_eq!(
            e.time, "2023-10-18T17:41:28.250Z",
            "published when lastModified is absent"
        );
        assert_eq!(e.id, "CVE-2023-1");
        assert_eq!(e.title, "CVE-2023-1");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn bad_parts_are_warnings_not_failures() {
        let (e, w) = norm(json!({
            "id": "CVE-2024-9",
            "lastModified": "yesterday",
            "metrics": {"cvssMetricV31": {"not": "a list"}, "cvssMetricV2": ["x"]},
            "configurations": [{"nodes": [{"cpeMatch": [{"criteria": "cpe:2.3:a:only:few"}, {"vulnerable": true}]}]}]
        }));
        assert_eq!(e.time, now().to_rfc3339());
        assert_eq!(e.attributes["cpe_matches"][0]["cpe"], Value::Null);
        assert!(e.attributes["cpe_matches"][0]["cpe_error"].is_string());
        assert_eq!(
            e.attributes["cpe_matches"].as_array().map(Vec::len),
            Some(1)
        );
        assert!(
            e.observables
                .iter()
                .any(|o| o.kind == ObservableKind::Cpe && o.value == "cpe:2.3:a:only:few")
        );
        let texts: Vec<&str> = w.entries().iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(texts.len(), 6, "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("`lastModified` ignored")));
        assert!(
            texts
                .iter()
                .any(|t| t.contains("metrics.cvssMetricV31 ignored"))
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("metrics.cvssMetricV2[0] ignored"))
        );
        assert!(texts.iter().any(|t| t.contains("not parsed")));
        assert!(texts.iter().any(|t| t.contains("has no `criteria`")));
        assert!(texts.iter().any(|t| t.contains("event time is now")));
    }

    #[test]
    fn records_without_id_are_refused() {
        let mut w = Warnings::default();
        assert_eq!(
            normalize_cve(&json!({}), "{}", now(), &mut w)
                .err()
                .as_deref(),
            Some("no `id`")
        );
        assert_eq!(
            normalize_cve(&json!({"id": 5}), "", now(), &mut w)
                .err()
                .as_deref(),
            Some("`id` is a number, not a CVE id")
        );
        assert_eq!(
            normalize_cve(&json!([]), "[]", now(), &mut w)
                .err()
                .as_deref(),
            Some("expected a cve object, found an array")
        );
    }

    #[test]
    fn titles() {
        assert_eq!(
            title("CVE-1", Some("\n  First line\nsecond")),
            "CVE-1: First line"
        );
        let long = "x".repeat(200);
        let t = title("CVE-1", Some(&long));
        assert_eq!(t.chars().count(), "CVE-1: ".len() + TITLE_EXCERPT_CHARS + 1);
        assert!(t.ends_with('…'));
    }
}
