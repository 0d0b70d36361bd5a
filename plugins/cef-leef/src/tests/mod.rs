//! Native tests of the plugin: the conformance data in `../shared/conformance/cef`
//! and `../shared/conformance/leef` checked field by field ([`cef_conformance`],
//! [`leef_conformance`]), and the behaviour of `normalize` and the glue.

mod cef_conformance;
mod leef_conformance;
mod tql;
mod unit;

use serde_json::{Map, Value};

use crate::engine::{self, Instant, LineError, Normalized, ObsKind, Options};

/// The receipt time of every test line: 2024-06-15T12:00:00Z.
pub(crate) const NOW_MS: i64 = 1_718_452_800_000;

pub(crate) fn now() -> Instant {
    Instant::from_millis(NOW_MS).unwrap_or(Instant { secs: 0, nanos: 0 })
}

/// Reads a conformance file in place (`../shared/conformance/<rel>`).
pub(crate) fn conformance(rel: &str) -> String {
    let path = format!(
        "{}/../../../shared/conformance/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub(crate) fn conformance_json(rel: &str) -> Value {
    let text = conformance(rel);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub(crate) fn norm_with(opts: &Options, line: &str) -> Result<Normalized, LineError> {
    engine::normalize(opts, line, now())
}

pub(crate) fn norm(line: &str) -> Result<Normalized, LineError> {
    norm_with(&Options::default(), line)
}

pub(crate) fn ok(line: &str) -> Normalized {
    norm(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

pub(crate) fn err(line: &str) -> LineError {
    match norm(line) {
        Err(e) => e,
        Ok(n) => panic!("{line:?}: expected an error, got {:#?}", n.attributes),
    }
}

/// The attribute at an RFC 6901 pointer.
pub(crate) fn attr<'a>(n: &'a Normalized, pointer: &str) -> Option<&'a Value> {
    let mut cur: Option<&Value> = None;
    let mut map: &Map<String, Value> = &n.attributes;
    for (i, seg) in pointer.split('/').skip(1).enumerate() {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        let next = if i == 0 {
            map.get(&seg)
        } else {
            match cur {
                Some(Value::Object(m)) => {
                    map = m;
                    map.get(&seg)
                }
                Some(Value::Array(a)) => seg.parse::<usize>().ok().and_then(|j| a.get(j)),
                _ => None,
            }
        };
        cur = Some(next?);
    }
    cur
}

/// The attribute at `pointer` as text (strings as is, other scalars printed).
pub(crate) fn attr_text(n: &Normalized, pointer: &str) -> Option<String> {
    attr(n, pointer).map(scalar_text)
}

pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The extension value under `key` (as stored: the full CEF name).
pub(crate) fn ext<'a>(n: &'a Normalized, key: &str) -> Option<&'a Value> {
    n.attributes.get("extensions").and_then(|e| e.get(key))
}

pub(crate) fn warnings(n: &Normalized) -> Vec<String> {
    n.attributes
        .get("warnings")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(scalar_text).collect())
        .unwrap_or_default()
}

pub(crate) fn has_warning(n: &Normalized, needle: &str) -> bool {
    warnings(n).iter().any(|w| w.contains(needle))
}

pub(crate) fn has_obs(n: &Normalized, kind: ObsKind, value: &str) -> bool {
    n.observables.iter().any(|(k, v)| *k == kind && v == value)
}

/// The full name under which `extensions` stores a CEF key.
pub(crate) fn cef_full_name(key: &str) -> String {
    if let Some(c) = engine::dict::custom(key) {
        return format!(
            "{}{}{}",
            c.family.full(),
            c.n,
            if c.label { "Label" } else { "" }
        );
    }
    engine::dict::cef(key).map_or_else(|| key.to_string(), |e| e.full.to_string())
}
