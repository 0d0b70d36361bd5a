//! The unified event shape and a builder for it.
//!
//! ```
//! use portcullis_sdk::event::{EventBuilder, EventKind, ObservableKind, Severity};
//! use portcullis_sdk::time::Timestamp;
//!
//! let event = EventBuilder::new("alert-42")
//!     .time(Timestamp::parse("2024-05-01T10:00:00+02:00").unwrap())
//!     .kind(EventKind::Alert)
//!     .severity("high".parse::<Severity>().unwrap())
//!     .title("Suspicious login")
//!     .observable(ObservableKind::Ip, "203.0.113.7")
//!     .attribute("user", "alice")
//!     .raw(r#"{"id":42}"#)
//!     .build_at(Timestamp::UNIX_EPOCH);
//! assert_eq!(event.time, "2024-05-01T08:00:00Z");
//! assert_eq!(event.severity.id(), 4);
//! ```

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::time::Timestamp;

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $label:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lowercase wire name (as in the WIT and the configuration files).
            pub fn name(&self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            /// Parses a wire name, ASCII case-insensitively; `_` is accepted for `-`.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim().replace('_', "-");
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(&t))
                    .ok_or_else(|| UnknownName::new($what, s, $name::ALL.iter().map(|v| v.name())))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name that is not one of an enumeration's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    what: &'static str,
    name: String,
    expected: String,
}

impl UnknownName {
    pub(crate) fn new<'a>(
        what: &'static str,
        name: &str,
        expected: impl Iterator<Item = &'a str>,
    ) -> Self {
        UnknownName {
            what,
            name: name.to_string(),
            expected: expected.collect::<Vec<_>>().join(", "),
        }
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (expected one of: {})",
            self.what, self.name, self.expected
        )
    }
}

impl std::error::Error for UnknownName {}

named_enum! {
    /// OCSF `severity_id` 0–6 with its label (default `Unknown`).
    #[derive(Default)]
    Severity, "severity" {
        /// 0: the severity is not known.
        #[default]
        Unknown = "unknown",
        /// 1: informational.
        Informational = "informational",
        /// 2: low.
        Low = "low",
        /// 3: medium.
        Medium = "medium",
        /// 4: high.
        High = "high",
        /// 5: critical.
        Critical = "critical",
        /// 6: fatal.
        Fatal = "fatal",
    }
}

impl Severity {
    /// The OCSF `severity_id` (0–6).
    pub fn id(&self) -> u8 {
        match self {
            Severity::Unknown => 0,
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
            Severity::Fatal => 6,
        }
    }

    /// The OCSF label (`Unknown`, `Informational`, `Low`, `Medium`, `High`,
    /// `Critical`, `Fatal`).
    pub fn label(&self) -> &'static str {
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

    /// The severity with OCSF `severity_id` `id`, if 0–6.
    pub fn from_id(id: u8) -> Option<Severity> {
        Severity::ALL.get(usize::from(id)).copied()
    }
}

named_enum! {
    /// Unified event kinds (default `Log`).
    #[derive(Default)]
    EventKind, "event kind" {
        /// A detection raised by a security product.
        Alert = "alert",
        /// A log record.
        #[default]
        Log = "log",
        /// A threat-intelligence indicator.
        Indicator = "indicator",
        /// A vulnerability record.
        Vulnerability = "vulnerability",
        /// A (blockchain) transaction.
        Transaction = "transaction",
        /// An inventory item.
        Asset = "asset",
        /// A finding (posture, audit).
        Finding = "finding",
    }
}

named_enum! {
    /// Observable types (OCSF observable `type_id` names).
    ObservableKind, "observable kind" {
        /// IPv4 or IPv6 address.
        Ip = "ip",
        /// Domain name.
        Domain = "domain",
        /// Host name.
        Hostname = "hostname",
        /// URL.
        Url = "url",
        /// MD5 hash.
        Md5 = "md5",
        /// SHA-1 hash.
        Sha1 = "sha1",
        /// SHA-256 hash.
        Sha256 = "sha256",
        /// SHA-512 hash.
        Sha512 = "sha512",
        /// E-mail address.
        Email = "email",
        /// CVE identifier.
        Cve = "cve",
        /// CPE name.
        Cpe = "cpe",
        /// Blockchain wallet address.
        WalletAddress = "wallet-address",
        /// User name or id.
        User = "user",
        /// File name.
        FileName = "file-name",
        /// MITRE ATT&CK technique id.
        MitreTechnique = "mitre-technique",
        /// An event id from another system.
        EventId = "event-id",
        /// Anything else.
        Other = "other",
    }
}

/// A value worth pivoting on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Observable {
    /// What the value is.
    pub kind: ObservableKind,
    /// The value.
    pub value: String,
}

impl Observable {
    /// An observable of `kind` with `value`.
    pub fn new(kind: ObservableKind, value: impl Into<String>) -> Self {
        Observable {
            kind,
            value: value.into(),
        }
    }
}

/// One normalised event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Stable id used for deduplication (unique per source).
    pub id: String,
    /// RFC 3339 time in UTC.
    pub time: String,
    /// Kind of event.
    pub kind: EventKind,
    /// OCSF severity.
    pub severity: Severity,
    /// Short human-readable title.
    pub title: String,
    /// Values worth pivoting on.
    pub observables: Vec<Observable>,
    /// Normalised fields.
    pub attributes: Map<String, Value>,
    /// The original record as received (usually JSON text).
    pub raw: String,
}

/// Builds an [`Event`]; defaults: kind `log`, severity `unknown`, empty title,
/// no observables, empty attributes, empty raw.
#[derive(Clone, Debug)]
pub struct EventBuilder {
    id: String,
    time: Option<Timestamp>,
    kind: EventKind,
    severity: Severity,
    title: String,
    observables: Vec<Observable>,
    attributes: Map<String, Value>,
    raw: String,
}

impl EventBuilder {
    /// Starts an event with its deduplication id.
    pub fn new(id: impl Into<String>) -> Self {
        EventBuilder {
            id: id.into(),
            time: None,
            kind: EventKind::default(),
            severity: Severity::default(),
            title: String::new(),
            observables: Vec::new(),
            attributes: Map::new(),
            raw: String::new(),
        }
    }

    /// When the event happened.
    pub fn time(mut self, time: Timestamp) -> Self {
        self.time = Some(time);
        self
    }

    /// Sets the time when `time` is `Some`.
    pub fn maybe_time(mut self, time: Option<Timestamp>) -> Self {
        if time.is_some() {
            self.time = time;
        }
        self
    }

    /// The kind of event.
    pub fn kind(mut self, kind: EventKind) -> Self {
        self.kind = kind;
        self
    }

    /// The severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Adds one observable; blank values are ignored, surrounding whitespace trimmed,
    /// duplicates dropped.
    pub fn observable(mut self, kind: ObservableKind, value: impl AsRef<str>) -> Self {
        self.push_observable(kind, value.as_ref());
        self
    }

    /// Adds several observables (same rules as [`EventBuilder::observable`]).
    pub fn observables<I: IntoIterator<Item = Observable>>(mut self, observables: I) -> Self {
        for o in observables {
            self.push_observable(o.kind, &o.value);
        }
        self
    }

    fn push_observable(&mut self, kind: ObservableKind, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        if self
            .observables
            .iter()
            .any(|o| o.kind == kind && o.value == value)
        {
            return;
        }
        self.observables.push(Observable::new(kind, value));
    }

    /// Sets one attribute.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Merges a JSON object into the attributes; a non-object value is stored under
    /// the key `value`.
    pub fn attributes(mut self, attributes: Value) -> Self {
        match attributes {
            Value::Object(map) => self.attributes.extend(map),
            Value::Null => {}
            other => {
                self.attributes.insert("value".to_string(), other);
            }
        }
        self
    }

    /// The original record as text.
    pub fn raw(mut self, raw: impl Into<String>) -> Self {
        self.raw = raw.into();
        self
    }

    /// The original record as JSON (serialised compactly).
    pub fn raw_json(mut self, raw: &Value) -> Self {
        self.raw = raw.to_string();
        self
    }

    /// Finishes the event; without an explicit time it gets `default_time`.
    pub fn build_at(self, default_time: Timestamp) -> Event {
        Event {
            id: self.id,
            time: self.time.unwrap_or(default_time).to_rfc3339(),
            kind: self.kind,
            severity: self.severity,
            title: self.title,
            observables: self.observables,
            attributes: self.attributes,
            raw: self.raw,
        }
    }

    /// Finishes the event; without an explicit time it gets the host's current time
    /// (the `clock` import, so only inside a plugin).
    pub fn build(self) -> Event {
        let now = if self.time.is_none() {
            crate::clock::now()
        } else {
            Timestamp::UNIX_EPOCH
        };
        self.build_at(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn severity_ids_labels_names() {
        let expected = [
            (0, "Unknown", "unknown"),
            (1, "Informational", "informational"),
            (2, "Low", "low"),
            (3, "Medium", "medium"),
            (4, "High", "high"),
            (5, "Critical", "critical"),
            (6, "Fatal", "fatal"),
        ];
        for (id, label, name) in expected {
            let s = Severity::from_id(id);
            assert_eq!(s.map(|s| s.id()), Some(id));
            assert_eq!(s.map(|s| s.label()), Some(label));
            assert_eq!(s.map(|s| s.name()), Some(name));
            assert_eq!(name.parse::<Severity>().ok(), s);
            assert_eq!(label.parse::<Severity>().ok(), s);
            assert_eq!(name.to_uppercase().parse::<Severity>().ok(), s);
        }
        assert_eq!(Severity::from_id(7), None);
        let err = "severe".parse::<Severity>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "unknown severity \"severe\" (expected one of: unknown, informational, low, medium, high, critical, fatal)"
            )
        );
        assert!(Severity::Critical > Severity::High);
    }

    #[test]
    fn kinds_parse() {
        assert_eq!("wallet_address".parse(), Ok(ObservableKind::WalletAddress));
        assert_eq!("File-Name".parse(), Ok(ObservableKind::FileName));
        assert_eq!("Indicator".parse(), Ok(EventKind::Indicator));
        assert!("ipv4".parse::<ObservableKind>().is_err());
        assert_eq!(ObservableKind::ALL.len(), 17);
        assert_eq!(EventKind::ALL.len(), 7);
        let s: Result<Severity, _> = serde_json::from_value(json!("medium"));
        assert_eq!(s.ok(), Some(Severity::Medium));
        assert_eq!(
            serde_json::to_value(EventKind::Alert).ok(),
            Some(json!("alert"))
        );
    }

    #[test]
    fn builder() {
        let t = Timestamp::parse("2024-05-01T10:00:00.5Z").unwrap_or(Timestamp::UNIX_EPOCH);
        let e = EventBuilder::new("x")
            .kind(EventKind::Indicator)
            .observable(ObservableKind::Domain, " evil.test ")
            .observable(ObservableKind::Domain, "evil.test")
            .observable(ObservableKind::Ip, "  ")
            .observables([Observable::new(ObservableKind::Sha256, "ab")])
            .attributes(json!({"a": 1}))
            .attribute("b", "two")
            .attributes(json!(3))
            .raw_json(&json!({"id": "x"}))
            .build_at(t);
        assert_eq!(e.time, "2024-05-01T10:00:00.500Z");
        assert_eq!(e.severity, Severity::Unknown);
        assert_eq!(
            e.observables,
            [
                Observable::new(ObservableKind::Domain, "evil.test"),
                Observable::new(ObservableKind::Sha256, "ab")
            ]
        );
        assert_eq!(
            Value::Object(e.attributes),
            json!({"a": 1, "b": "two", "value": 3})
        );
        assert_eq!(e.raw, r#"{"id":"x"}"#);
        let with_time = EventBuilder::new("y")
            .maybe_time(Some(t))
            .maybe_time(None)
            .build();
        assert_eq!(with_time.time, "2024-05-01T10:00:00.500Z");
    }
}
