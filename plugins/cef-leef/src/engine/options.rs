//! The connector configuration (JSON), checked in one pass that reports every problem
//! with its RFC 6901 path.

use serde_json::Value;

use super::time::parse_zone;

/// Which record formats a connector accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatChoice {
    /// CEF and LEEF.
    Auto,
    /// CEF only.
    Cef,
    /// LEEF only.
    Leef,
}

/// Unified event kinds (the WIT `event-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Kind {
    Alert,
    Log,
    Indicator,
    Vulnerability,
    Transaction,
    Asset,
    Finding,
}

impl Kind {
    const ALL: [(&'static str, Kind); 7] = [
        ("alert", Kind::Alert),
        ("log", Kind::Log),
        ("indicator", Kind::Indicator),
        ("vulnerability", Kind::Vulnerability),
        ("transaction", Kind::Transaction),
        ("asset", Kind::Asset),
        ("finding", Kind::Finding),
    ];
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Accepted formats (`format`, default `auto`).
    pub format: FormatChoice,
    /// Kind of every event (`kind`, default `log`).
    pub kind: Kind,
    /// Offset east of UTC, in seconds, for timestamps without a zone (`timezone`,
    /// default `UTC`).
    pub default_offset: i32,
    /// Whether a line with warnings is refused (`strict`, default false).
    pub strict: bool,
    /// Longest accepted line in bytes (`max_line_bytes`, default 1 MiB).
    pub max_line_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: FormatChoice::Auto,
            kind: Kind::Log,
            default_offset: 0,
            strict: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Default of `max_line_bytes`.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Bounds of `max_line_bytes`.
pub const MAX_LINE_BYTES_RANGE: (u64, u64) = (64, 16 << 20);

const KEYS: [&str; 5] = ["format", "kind", "timezone", "strict", "max_line_bytes"];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Options {
    /// Checks a configuration document; every problem as `(JSON pointer, message)`.
    pub fn from_json(doc: &Value) -> Result<Options, Vec<(String, String)>> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut o = Options::default();
        let Some(obj) = doc.as_object() else {
            return Err(vec![(
                String::new(),
                format!("configuration must be an object, found {}", type_name(doc)),
            )]);
        };
        for key in obj.keys() {
            if !KEYS.contains(&key.as_str()) {
                errors.push((
                    format!("/{}", key.replace('~', "~0").replace('/', "~1")),
                    format!("unknown field (allowed: {})", KEYS.join(", ")),
                ));
            }
        }
        if let Some(v) = obj.get("format") {
            match v.as_str() {
                Some("auto") => o.format = FormatChoice::Auto,
                Some("cef") => o.format = FormatChoice::Cef,
                Some("leef") => o.format = FormatChoice::Leef,
                Some(other) => errors.push((
                    "/format".into(),
                    format!("unknown format {other:?} (expected auto, cef or leef)"),
                )),
                None => errors.push((
                    "/format".into(),
                    format!("must be a string, found {}", type_name(v)),
                )),
            }
        }
        if let Some(v) = obj.get("kind") {
            match v.as_str() {
                Some(s) => match Kind::ALL.iter().find(|(n, _)| *n == s) {
                    Some((_, k)) => o.kind = *k,
                    None => errors.push((
                        "/kind".into(),
                        format!(
                            "unknown event kind {s:?} (expected one of: {})",
                            Kind::ALL.map(|(n, _)| n).join(", ")
                        ),
                    )),
                },
                None => errors.push((
                    "/kind".into(),
                    format!("must be a string, found {}", type_name(v)),
                )),
            }
        }
        if let Some(v) = obj.get("timezone") {
            match v.as_str() {
                Some(s) => match parse_zone(s) {
                    Some(off) => o.default_offset = off,
                    None => errors.push((
                        "/timezone".into(),
                        format!(
                            "unrecognised time zone {s:?}: use a UTC offset such as \"+02:00\", \
                             \"UTC\" or \"GMT-5\" (no time-zone database in the sandbox)"
                        ),
                    )),
                },
                None => errors.push((
                    "/timezone".into(),
                    format!("must be a string, found {}", type_name(v)),
                )),
            }
        }
        if let Some(v) = obj.get("strict") {
            match v.as_bool() {
                Some(b) => o.strict = b,
                None => errors.push((
                    "/strict".into(),
                    format!("must be a boolean, found {}", type_name(v)),
                )),
            }
        }
        if let Some(v) = obj.get("max_line_bytes") {
            let (lo, hi) = MAX_LINE_BYTES_RANGE;
            match v.as_u64() {
                Some(n) if (lo..=hi).contains(&n) => {
                    o.max_line_bytes = usize::try_from(n).unwrap_or(DEFAULT_MAX_LINE_BYTES);
                }
                _ => errors.push((
                    "/max_line_bytes".into(),
                    format!("must be an integer from {lo} to {hi}"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(o)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_values() {
        assert_eq!(Options::from_json(&json!({})), Ok(Options::default()));
        let o = Options::from_json(&json!({
            "format": "leef", "kind": "alert", "timezone": "+03:00", "strict": true,
            "max_line_bytes": 4096
        }));
        assert_eq!(
            o,
            Ok(Options {
                format: FormatChoice::Leef,
                kind: Kind::Alert,
                default_offset: 10_800,
                strict: true,
                max_line_bytes: 4096
            })
        );
    }

    #[test]
    fn every_problem_with_its_path() {
        let e = Options::from_json(&json!({
            "format": "xml", "kind": 3, "timezone": "Europe/Moscow", "strict": "yes",
            "max_line_bytes": 1, "a/b": true
        }))
        .err()
        .unwrap_or_default();
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/a~1b",
                "/format",
                "/kind",
                "/timezone",
                "/strict",
                "/max_line_bytes"
            ]
        );
        assert!(Options::from_json(&json!([])).is_err_and(|e| e[0].0.is_empty()));
    }
}
