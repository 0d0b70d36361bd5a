//! Offense → unified `alert` event.

use std::collections::HashMap;
use std::net::IpAddr;

use portcullis_sdk::json_type_name;
use portcullis_sdk::prelude::*;
use serde_json::Map;

use crate::config::SeverityBasis;

/// Ids looked up through the address and rule endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Source address id → IP.
    pub source_ips: HashMap<u64, String>,
    /// Local destination address id → IP.
    pub destination_ips: HashMap<u64, String>,
    /// Rule id → name.
    pub rule_names: HashMap<u64, String>,
}

/// Names of QRadar's built-in offense types (`offense_type`, the id of an entry of
/// `GET /siem/offense_types`). Custom property types get higher ids and keep only
/// their id here.
pub fn offense_type_name(id: u64) -> Option<&'static str> {
    Some(match id {
        0 => "Source IP",
        1 => "Destination IP",
        2 => "Event Name",
        3 => "Username",
        4 => "Source MAC Address",
        5 => "Destination MAC Address",
        6 => "Log Source",
        7 => "Hostname",
        8 => "Source Port",
        9 => "Destination Port",
        10 => "Source IPv6",
        11 => "Destination IPv6",
        12 => "Source ASN",
        13 => "Destination ASN",
        14 => "Rule",
        15 => "App Id",
        18 => "Scheduled Search",
        _ => return None,
    })
}

/// QRadar's 0–10 scale (magnitude, severity) to OCSF `severity_id`: 0
/// informational, 1–3 low, 4–6 medium, 7–8 high, 9–10 critical (the bands of the
/// CEF severity mapping); anything else unknown.
pub fn ocsf_severity(value: Option<&Value>) -> Severity {
    let Some(n) = value.and_then(Value::as_f64) else {
        return Severity::Unknown;
    };
    if !(0.0..=10.0).contains(&n) {
        return Severity::Unknown;
    }
    match n.round() as u8 {
        0 => Severity::Informational,
        1..=3 => Severity::Low,
        4..=6 => Severity::Medium,
        7..=8 => Severity::High,
        _ => Severity::Critical,
    }
}

/// Offense id and `last_updated_time` of a record, when both are usable.
pub fn offense_key(record: &Value) -> std::result::Result<(u64, i64), String> {
    let id = match record.get("id") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("offense id {n} is not a non-negative integer"))?,
        Some(other) => {
            return Err(format!(
                "offense id is {}, not an integer",
                json_type_name(other)
            ));
        }
        None => return Err("offense without an id".to_string()),
    };
    let t = match record.get("last_updated_time") {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            format!("offense {id}: last_updated_time {n} is not whole epoch milliseconds")
        })?,
        Some(other) => {
            return Err(format!(
                "offense {id}: last_updated_time is {}, not epoch milliseconds",
                json_type_name(other)
            ));
        }
        None => return Err(format!("offense {id} has no last_updated_time")),
    };
    Ok((id, t))
}

fn id_list(record: &Value, key: &str) -> Vec<u64> {
    record
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Source address ids of an offense.
pub fn source_address_ids(record: &Value) -> Vec<u64> {
    id_list(record, "source_address_ids")
}

/// Local destination address ids of an offense.
pub fn destination_address_ids(record: &Value) -> Vec<u64> {
    id_list(record, "local_destination_address_ids")
}

/// Rule ids of an offense (`rules: [{"id", "type"}]`).
pub fn rule_ids(record: &Value) -> Vec<u64> {
    record
        .get("rules")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("id").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}

fn millis_to_rfc3339(v: Option<&Value>) -> Option<String> {
    let ms = v?.as_i64()?;
    Timestamp::from_unix_millis(ms).ok().map(|t| t.to_rfc3339())
}

/// The description as a one-line title: whitespace runs (QRadar descriptions carry
/// newlines between the parts of a rule chain) collapsed to single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn copy(attrs: &mut Map<String, Value>, record: &Value, key: &str) {
    if let Some(v) = record.get(key)
        && !v.is_null()
    {
        attrs.insert(key.to_string(), v.clone());
    }
}

/// Maps one offense (already known to have a usable id and update time) to an
/// `alert` event. The event id is `<offense id>:<last_updated_time>`: each update of
/// an offense is its own event, and fetching the same state twice deduplicates.
pub fn map_offense(
    record: &Value,
    id: u64,
    updated_ms: i64,
    basis: SeverityBasis,
    lookups: &Lookups,
) -> Result<Event> {
    let time = Timestamp::from_unix_millis(updated_ms).map_err(|e| {
        Error::parse(format!(
            "offense {id}: last_updated_time {updated_ms} is not a usable time: {e}"
        ))
    })?;
    let title = record
        .get("description")
        .and_then(Value::as_str)
        .map(one_line)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("QRadar offense {id}"));
    let severity = ocsf_severity(record.get(basis.field()));

    let mut attrs = Map::new();
    attrs.insert("offense_id".into(), json!(id));
    for key in [
        "description",
        "offense_type",
        "offense_source",
        "magnitude",
        "severity",
        "credibility",
        "relevance",
        "status",
        "categories",
        "event_count",
        "flow_count",
        "assigned_to",
        "follow_up",
        "protected",
        "domain_id",
        "source_network",
        "destination_networks",
        "closing_reason_id",
        "source_address_ids",
        "local_destination_address_ids",
    ] {
        copy(&mut attrs, record, key);
    }
    let offense_type = record.get("offense_type").and_then(Value::as_u64);
    if let Some(name) = offense_type.and_then(offense_type_name) {
        attrs.insert("offense_type_name".into(), json!(name));
    }
    attrs.insert("severity_basis".into(), json!(basis.field()));
    for (key, out) in [
        ("start_time", "start_time"),
        ("last_updated_time", "last_updated_time"),
        ("close_time", "close_time"),
    ] {
        if let Some(t) = millis_to_rfc3339(record.get(key)) {
            attrs.insert(out.into(), json!(t));
        }
    }

    // Rules: ids and types from the offense, names from the lookup.
    let mut rules = Vec::new();
    let mut rule_names = Vec::new();
    for r in record
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(rid) = r.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let mut entry = Map::new();
        entry.insert("id".into(), json!(rid));
        if let Some(t) = r.get("type").and_then(Value::as_str) {
            entry.insert("type".into(), json!(t));
        }
        if let Some(name) = lookups.rule_names.get(&rid) {
            entry.insert("name".into(), json!(name));
            rule_names.push(name.clone());
        }
        rules.push(Value::Object(entry));
    }
    if !rules.is_empty() {
        attrs.insert("rules".into(), Value::Array(rules));
    }
    if !rule_names.is_empty() {
        attrs.insert("rule_names".into(), json!(rule_names));
    }
    if let Some(sources) = record.get("log_sources").and_then(Value::as_array) {
        let names: Vec<&str> = sources
            .iter()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
            .collect();
        if !names.is_empty() {
            attrs.insert("log_source_names".into(), json!(names));
        }
    }

    let source_ips: Vec<String> = source_address_ids(record)
        .iter()
        .filter_map(|a| lookups.source_ips.get(a).cloned())
        .collect();
    let destination_ips: Vec<String> = destination_address_ids(record)
        .iter()
        .filter_map(|a| lookups.destination_ips.get(a).cloned())
        .collect();
    if !source_ips.is_empty() {
        attrs.insert("source_ips".into(), json!(source_ips));
    }
    if !destination_ips.is_empty() {
        attrs.insert("destination_ips".into(), json!(destination_ips));
    }

    let mut builder = EventBuilder::new(format!("{id}:{updated_ms}"))
        .time(time)
        .kind(EventKind::Alert)
        .severity(severity)
        .title(title)
        .raw_json(record);
    for ip in source_ips.iter().chain(&destination_ips) {
        builder = builder.observable(ObservableKind::Ip, ip);
    }
    if let Some(source) = record.get("offense_source").and_then(Value::as_str) {
        let source = source.trim();
        if source.parse::<IpAddr>().is_ok() {
            builder = builder.observable(ObservableKind::Ip, source);
        } else {
            match offense_type {
                Some(3) => builder = builder.observable(ObservableKind::User, source),
                Some(7) => builder = builder.observable(ObservableKind::Hostname, source),
                _ => {}
            }
        }
    }
    Ok(builder
        .attributes(Value::Object(attrs))
        .build_at(Timestamp::UNIX_EPOCH))
}
