//! One ThreatHawk alert → one unified `alert` event.
//!
//! The article documents what an alert carries ("affected assets, matched rules, raw
//! event IDs, and MITRE ATT&CK mapping", the raw event payload, severity levels
//! `info, low, medium, high, critical`); the exact field names are ours
//! (see the README): `id`, `title`, `description`, `severity`, `status`,
//! `created_at`, `updated_at`, `source`, `matched_rules`, `affected_assets`,
//! `raw_event_ids`, `mitre_attack`, `raw_event`, `custom_fields`. The mapping
//! tolerates the plausible variants of each (strings or objects, numbers as ids).

use std::net::IpAddr;

use portcullis_sdk::json_type_name;
use portcullis_sdk::prelude::*;
use portcullis_sdk::warnings::Warnings;
use serde_json::Map;

/// Most observables kept per event (a hostile alert cannot blow up an event).
pub const MAX_OBSERVABLES: usize = 256;
/// Deepest nesting walked when looking for entities.
const MAX_DEPTH: usize = 16;
/// Longest string considered as an entity value.
const MAX_ENTITY_LEN: usize = 512;

/// ThreatHawk severity → OCSF severity. `None` for a label ThreatHawk does not use.
pub fn severity(label: &str) -> Option<Severity> {
    match label.trim().to_ascii_lowercase().as_str() {
        "info" | "informational" => Some(Severity::Informational),
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

/// The alert id as text: a non-empty string or a number.
pub fn alert_id(alert: &Value) -> std::result::Result<String, String> {
    match alert.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(format!(
            "alert skipped: `id` is {}, not a non-empty string or number",
            json_type_name(other)
        )),
        None => Err("alert skipped: it has no `id`".to_string()),
    }
}

/// The alert's `created_at`, when present and ISO 8601.
pub fn created_at(alert: &Value, w: &mut Warnings) -> Option<Timestamp> {
    match alert.get("created_at") {
        None | Some(Value::Null) => {
            w.add("alert without `created_at`: stamped with the current time");
            None
        }
        Some(v) => match Timestamp::from_json(v) {
            Ok(t) => Some(t),
            Err(_) => {
                w.add("alert `created_at` is not ISO 8601: stamped with the current time");
                None
            }
        },
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_text(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| obj.get(*k).and_then(text))
}

/// `T1234` or `T1234.567` (ATT&CK technique / sub-technique), upper-cased.
pub fn technique_id(s: &str) -> Option<String> {
    let t = s.trim().to_ascii_uppercase();
    let b = t.as_bytes();
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    let ok = match b.len() {
        5 => b[0] == b'T' && digits(&b[1..5]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..9]),
        _ => false,
    };
    ok.then_some(t)
}

/// `TA1234` (ATT&CK tactic), upper-cased.
pub fn tactic_id(s: &str) -> Option<String> {
    let t = s.trim().to_ascii_uppercase();
    let b = t.as_bytes();
    (b.len() == 6 && b.starts_with(b"TA") && b[2..].iter().all(u8::is_ascii_digit)).then_some(t)
}

/// MITRE ATT&CK technique and tactic ids of `mitre_attack`: an array of technique
/// ids, or of objects with `technique_id` / `subtechnique_id` / `id` and `tactic_id`.
pub fn mitre(alert: &Value, w: &mut Warnings) -> (Vec<String>, Vec<String>) {
    let mut techniques: Vec<String> = Vec::new();
    let mut tactics: Vec<String> = Vec::new();
    let push = |list: &mut Vec<String>, v: String| {
        if !list.contains(&v) {
            list.push(v);
        }
    };
    let items: &[Value] = match alert.get("mitre_attack") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(a)) => a,
        Some(single) => std::slice::from_ref(single),
    };
    for item in items {
        match item {
            Value::String(s) => match technique_id(s) {
                Some(t) => push(&mut techniques, t),
                None => w.add("`mitre_attack` entry is not an ATT&CK technique id: ignored"),
            },
            Value::Object(o) => {
                let mut found = false;
                for key in ["technique_id", "subtechnique_id", "id"] {
                    if let Some(t) = o.get(key).and_then(Value::as_str).and_then(technique_id) {
                        push(&mut techniques, t);
                        found = true;
                    }
                }
                if let Some(t) = o
                    .get("tactic_id")
                    .and_then(Value::as_str)
                    .and_then(tactic_id)
                {
                    push(&mut tactics, t);
                    found = true;
                }
                if !found {
                    w.add("`mitre_attack` entry has no ATT&CK technique or tactic id: ignored");
                }
            }
            _ => w.add("`mitre_attack` entry is neither a string nor an object: ignored"),
        }
    }
    (techniques, tactics)
}

/// Rule ids and names of `matched_rules` (strings are names; objects give `id` and
/// `name`).
pub fn rules(alert: &Value) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let items: &[Value] = match alert.get("matched_rules") {
        Some(Value::Array(a)) => a,
        _ => &[],
    };
    for item in items {
        match item {
            Value::String(s) if !s.trim().is_empty() => names.push(s.trim().to_string()),
            Value::Object(o) => {
                if let Some(id) = first_text(o, &["id", "rule_id"]) {
                    ids.push(id);
                }
                if let Some(name) = first_text(o, &["name", "title", "rule_name"]) {
                    names.push(name);
                }
            }
            _ => {}
        }
    }
    (ids, names)
}

/// Raw event ids of `raw_event_ids` (strings or numbers).
pub fn raw_event_ids(alert: &Value) -> Vec<String> {
    match alert.get("raw_event_ids") {
        Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
        Some(v) => text(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// What a JSON key says about the string values under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hint {
    None,
    Host,
    User,
    Hash,
    /// An asset given as a bare string: a host name (or an IP, found anyway).
    Asset,
}

fn hint(key: &str) -> Hint {
    let k: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    if k.contains("md5") || k.contains("sha1") || k.contains("sha256") || k.contains("sha512") {
        return Hint::Hash;
    }
    if k.ends_with("hash") || k.ends_with("hashes") || k.ends_with("checksum") {
        return Hint::Hash;
    }
    if k.ends_with("hostname")
        || k.ends_with("hostnames")
        || k.ends_with("host")
        || k.ends_with("hosts")
        || matches!(
            k.as_str(),
            "fqdn" | "computername" | "devicename" | "workstation"
        )
    {
        return Hint::Host;
    }
    if k.ends_with("user")
        || k.ends_with("username")
        || k.ends_with("users")
        || k.ends_with("usernames")
        || matches!(
            k.as_str(),
            "account" | "accountname" | "samaccountname" | "userprincipalname" | "upn" | "owner"
        )
    {
        return Hint::User;
    }
    if matches!(k.as_str(), "affectedassets" | "assets" | "asset") {
        return Hint::Asset;
    }
    Hint::None
}

fn hash_kind(s: &str) -> Option<ObservableKind> {
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match s.len() {
        32 => Some(ObservableKind::Md5),
        40 => Some(ObservableKind::Sha1),
        64 => Some(ObservableKind::Sha256),
        128 => Some(ObservableKind::Sha512),
        _ => None,
    }
}

fn plausible_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn classify(value: &str, hint: Hint) -> Option<(ObservableKind, String)> {
    let v = value.trim();
    if v.is_empty() || v.len() > MAX_ENTITY_LEN {
        return None;
    }
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some((ObservableKind::Ip, ip.to_string()));
    }
    match hint {
        Hint::Hash => hash_kind(v).map(|k| (k, v.to_ascii_lowercase())),
        Hint::Host | Hint::Asset if plausible_host(v) => {
            Some((ObservableKind::Hostname, v.to_ascii_lowercase()))
        }
        Hint::User if !v.chars().any(char::is_control) => {
            Some((ObservableKind::User, v.to_string()))
        }
        _ => None,
    }
}

/// Top-level alert fields that hold no entities (ids, rule and ATT&CK metadata).
const NOT_ENTITIES: &[&str] = &[
    "id",
    "title",
    "description",
    "severity",
    "status",
    "created_at",
    "updated_at",
    "matched_rules",
    "mitre_attack",
    "raw_event_ids",
];

/// IPs (any string value that is an address), host names, user names and file
/// hashes (by the key they sit under) found anywhere in the alert outside
/// `NOT_ENTITIES` (ids, title, rule and ATT&CK metadata): affected assets, the raw
/// event payload, custom fields.
pub fn entities(alert: &Value) -> Vec<(ObservableKind, String)> {
    let mut out: Vec<(ObservableKind, String)> = Vec::new();
    if let Value::Object(obj) = alert {
        for (k, v) in obj {
            if !NOT_ENTITIES.contains(&k.as_str()) {
                walk(v, hint(k), 0, &mut out);
            }
        }
    }
    out
}

fn walk(v: &Value, h: Hint, depth: usize, out: &mut Vec<(ObservableKind, String)>) {
    if depth > MAX_DEPTH || out.len() >= MAX_OBSERVABLES {
        return;
    }
    match v {
        Value::String(s) => {
            if let Some(found) = classify(s, h)
                && !out.contains(&found)
            {
                out.push(found);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, h, depth + 1, out);
            }
        }
        Value::Object(obj) => {
            for (k, child) in obj {
                // `{"user": {"name": "x"}}`: a generic child key inherits the parent's hint.
                let own = hint(k);
                let h = match (own, k.as_str()) {
                    (Hint::None, "name" | "value" | "id") if h != Hint::Asset => h,
                    _ => own,
                };
                walk(child, h, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// Maps one alert; `Err` says why it was skipped.
pub fn map_alert(
    alert: &Value,
    now: Timestamp,
    w: &mut Warnings,
) -> std::result::Result<(Event, Option<Timestamp>), String> {
    if !alert.is_object() {
        return Err(format!(
            "alert skipped: it is {}, not an object",
            json_type_name(alert)
        ));
    }
    let id = alert_id(alert)?;
    let time = created_at(alert, w);
    let label = alert.get("severity").and_then(Value::as_str);
    let sev = match label {
        Some(l) => severity(l).unwrap_or_else(|| {
            w.add(
                "alert severity is not one of info, low, medium, high, critical: mapped to unknown",
            );
            Severity::Unknown
        }),
        None => {
            w.add("alert without `severity`: mapped to unknown");
            Severity::Unknown
        }
    };
    let obj = alert.as_object();
    let field = |k: &str| obj.and_then(|o| o.get(k)).and_then(text);
    let title = field("title")
        .or_else(|| field("name"))
        .unwrap_or_else(|| format!("ThreatHawk alert {id}"));
    let (techniques, tactics) = mitre(alert, w);
    let (rule_ids, rule_names) = rules(alert);
    let event_ids = raw_event_ids(alert);

    let mut attrs = Map::new();
    attrs.insert("alert_id".into(), Value::String(id.clone()));
    for (key, attr) in [
        ("status", "status"),
        ("severity", "threathawk_severity"),
        ("description", "description"),
        ("created_at", "created_at"),
        ("updated_at", "updated_at"),
        ("source", "source"),
    ] {
        if let Some(v) = field(key) {
            attrs.insert(attr.into(), Value::String(v));
        }
    }
    let list = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    attrs.insert("rule_ids".into(), list(&rule_ids));
    attrs.insert("rule_names".into(), list(&rule_names));
    attrs.insert("mitre_technique_ids".into(), list(&techniques));
    attrs.insert("mitre_tactic_ids".into(), list(&tactics));
    attrs.insert("raw_event_ids".into(), list(&event_ids));
    for key in [
        "matched_rules",
        "affected_assets",
        "mitre_attack",
        "custom_fields",
    ] {
        if let Some(v) = obj.and_then(|o| o.get(key))
            && !v.is_null()
        {
            attrs.insert(key.into(), v.clone());
        }
    }

    let mut observables: Vec<Observable> = Vec::new();
    let mut add = |kind: ObservableKind, value: &str| {
        if observables.len() < MAX_OBSERVABLES
            && !observables
                .iter()
                .any(|o| o.kind == kind && o.value == value)
        {
            observables.push(Observable::new(kind, value));
        }
    };
    for t in &techniques {
        add(ObservableKind::MitreTechnique, t);
    }
    for e in &event_ids {
        add(ObservableKind::EventId, e);
    }
    for (kind, value) in entities(alert) {
        add(kind, &value);
    }

    let event = EventBuilder::new(id)
        .maybe_time(time)
        .kind(EventKind::Alert)
        .severity(sev)
        .title(title)
        .observables(observables)
        .attributes(Value::Object(attrs))
        .raw_json(alert)
        .build_at(now);
    Ok((event, time))
}
