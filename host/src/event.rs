//! The unified, OCSF-aligned event every connector produces, in its host-side,
//! serialisable form.

use serde::{Deserialize, Serialize};

use crate::runtime::bindings::latest::portcullis::connector::types as wit;

/// OCSF `severity_id` with its label.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 0 — Unknown.
    Unknown,
    /// 1 — Informational.
    Informational,
    /// 2 — Low.
    Low,
    /// 3 — Medium.
    Medium,
    /// 4 — High.
    High,
    /// 5 — Critical.
    Critical,
    /// 6 — Fatal.
    Fatal,
}

impl Severity {
    /// The OCSF `severity_id`.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The OCSF label (`"High"`).
    pub fn label(self) -> &'static str {
        match self {
            Severity::Unknown => "Unknown",
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
            Severity::Fatal => "Fatal",
        }
    }
}

impl From<wit::Severity> for Severity {
    fn from(s: wit::Severity) -> Self {
        match s {
            wit::Severity::Unknown => Severity::Unknown,
            wit::Severity::Informational => Severity::Informational,
            wit::Severity::Low => Severity::Low,
            wit::Severity::Medium => Severity::Medium,
            wit::Severity::High => Severity::High,
            wit::Severity::Critical => Severity::Critical,
            wit::Severity::Fatal => Severity::Fatal,
        }
    }
}

/// Unified event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A detection or alarm.
    Alert,
    /// A log record.
    Log,
    /// A threat-intelligence indicator.
    Indicator,
    /// A vulnerability record (CVE).
    Vulnerability,
    /// A blockchain transaction.
    Transaction,
    /// An asset inventory record.
    Asset,
    /// A finding (OCSF finding classes).
    Finding,
}

impl From<wit::EventKind> for EventKind {
    fn from(k: wit::EventKind) -> Self {
        match k {
            wit::EventKind::Alert => EventKind::Alert,
            wit::EventKind::Log => EventKind::Log,
            wit::EventKind::Indicator => EventKind::Indicator,
            wit::EventKind::Vulnerability => EventKind::Vulnerability,
            wit::EventKind::Transaction => EventKind::Transaction,
            wit::EventKind::Asset => EventKind::Asset,
            wit::EventKind::Finding => EventKind::Finding,
        }
    }
}

/// A value worth pivoting on (ip, domain, hash, CVE, wallet address, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Observable {
    /// Observable type, kebab-case (`ip`, `sha256`, `wallet-address`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The value.
    pub value: String,
}

fn observable_kind_name(k: wit::ObservableKind) -> &'static str {
    use wit::ObservableKind as O;
    match k {
        O::Ip => "ip",
        O::Domain => "domain",
        O::Hostname => "hostname",
        O::Url => "url",
        O::Md5 => "md5",
        O::Sha1 => "sha1",
        O::Sha256 => "sha256",
        O::Sha512 => "sha512",
        O::Email => "email",
        O::Cve => "cve",
        O::Cpe => "cpe",
        O::WalletAddress => "wallet-address",
        O::User => "user",
        O::FileName => "file-name",
        O::MitreTechnique => "mitre-technique",
        O::EventId => "event-id",
        O::Other => "other",
    }
}

/// One normalised event as the host stores, prints and forwards it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Dedup key, unique per source connector.
    pub id: String,
    /// RFC 3339 UTC time.
    pub time: String,
    /// Event kind.
    pub kind: EventKind,
    /// OCSF `severity_id` (0–6).
    pub severity_id: u8,
    /// OCSF severity label.
    pub severity: String,
    /// Short human title.
    pub title: String,
    /// The connector (or CLI run) that produced the event.
    pub source: String,
    /// Pivotable values.
    pub observables: Vec<Observable>,
    /// Normalised fields (a JSON object).
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    /// The original record.
    pub raw: String,
}

/// Why an event a plugin produced was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event id is empty.
    #[error("event has an empty id")]
    EmptyId,
    /// The time is not RFC 3339.
    #[error("event {id}: time {time:?} is not an RFC 3339 timestamp")]
    BadTime {
        /// Event id.
        id: String,
        /// The offending time.
        time: String,
    },
    /// Attributes are not a JSON object.
    #[error("event {id}: attributes must be a JSON object ({reason})")]
    BadAttributes {
        /// Event id.
        id: String,
        /// Why.
        reason: String,
    },
}

impl Event {
    /// Convert an event a plugin returned, checking what the host relies on: a non-empty id,
    /// an RFC 3339 time (normalised to UTC) and attributes that are a JSON object.
    pub fn from_plugin(ev: wit::Event, source: &str) -> Result<Self, EventError> {
        if ev.id.trim().is_empty() {
            return Err(EventError::EmptyId);
        }
        let time = chrono::DateTime::parse_from_rfc3339(&ev.time)
            .map_err(|_| EventError::BadTime {
                id: ev.id.clone(),
                time: ev.time.clone(),
            })?
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let attributes = if ev.attributes.trim().is_empty() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            match serde_json::from_str::<serde_json::Value>(&ev.attributes) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                Ok(_) => {
                    return Err(EventError::BadAttributes {
                        id: ev.id,
                        reason: "not an object".into(),
                    });
                }
                Err(e) => {
                    return Err(EventError::BadAttributes {
                        id: ev.id,
                        reason: e.to_string(),
                    });
                }
            }
        };
        let severity = Severity::from(ev.severity);
        Ok(Event {
            id: ev.id,
            time,
            kind: ev.kind.into(),
            severity_id: severity.id(),
            severity: severity.label().to_string(),
            title: ev.title,
            source: source.to_string(),
            observables: ev
                .observables
                .into_iter()
                .map(|o| Observable {
                    kind: observable_kind_name(o.kind).to_string(),
                    value: o.value,
                })
                .collect(),
            attributes,
            raw: ev.raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit_event(time: &str, attributes: &str) -> wit::Event {
        wit::Event {
            id: "e1".into(),
            time: time.into(),
            kind: wit::EventKind::Alert,
            severity: wit::Severity::High,
            title: "t".into(),
            observables: vec![wit::Observable {
                kind: wit::ObservableKind::WalletAddress,
                value: "0xabc".into(),
            }],
            attributes: attributes.into(),
            raw: "{}".into(),
        }
    }

    #[test]
    fn converts_severity_and_normalises_time_to_utc() {
        let ev =
            Event::from_plugin(wit_event("2024-05-01T12:00:00+02:00", "{\"a\":1}"), "c1").unwrap();
        assert_eq!(ev.severity_id, 4);
        assert_eq!(ev.severity, "High");
        assert_eq!(ev.time, "2024-05-01T10:00:00Z");
        assert_eq!(ev.observables[0].kind, "wallet-address");
        assert_eq!(ev.source, "c1");
    }

    #[test]
    fn rejects_bad_time_and_non_object_attributes() {
        assert!(matches!(
            Event::from_plugin(wit_event("yesterday", "{}"), "c"),
            Err(EventError::BadTime { .. })
        ));
        assert!(matches!(
            Event::from_plugin(wit_event("2024-05-01T12:00:00Z", "[1]"), "c"),
            Err(EventError::BadAttributes { .. })
        ));
    }
}
