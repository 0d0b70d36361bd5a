//! CPE 2.3 formatted strings (NISTIR 7695 §6.2): `cpe:2.3:` followed by eleven
//! components separated by colons, where a backslash quotes the next character
//! (`\:` is a colon inside a component, `\\` a backslash), `*` is the logical value
//! ANY and `-` the logical value NA.

use serde_json::{Map, Value};

/// Names of the eleven components after `cpe:2.3:`, in order.
pub const COMPONENTS: [&str; 11] = [
    "part",
    "vendor",
    "product",
    "version",
    "update",
    "edition",
    "language",
    "sw_edition",
    "target_sw",
    "target_hw",
    "other",
];

/// A parsed CPE 2.3 name: the eleven components, each unescaped.
///
/// Unescaping turns a quoted character into itself (`\:` → `:`, `\&` → `&`); the
/// logical values ANY (`*`) and NA (`-`) stay `*` and `-`. A component that is only a
/// quoted `\*` or `\-` keeps its backslash so it is not mistaken for ANY or NA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpe {
    /// `part`, `vendor`, ... in the order of [`COMPONENTS`].
    pub components: [String; 11],
}

impl Cpe {
    /// The component called `name` (one of [`COMPONENTS`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        COMPONENTS
            .iter()
            .position(|c| *c == name)
            .and_then(|i| self.components.get(i))
            .map(String::as_str)
    }

    /// The components as a JSON object keyed by [`COMPONENTS`].
    pub fn to_json(&self) -> Value {
        let map: Map<String, Value> = COMPONENTS
            .iter()
            .zip(self.components.iter())
            .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
            .collect();
        Value::Object(map)
    }
}

/// Splits `s` at unescaped colons; `Err` carries the byte position of a dangling
/// backslash.
fn split_fields(s: &str) -> Result<Vec<(usize, &str)>, String> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, ch) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' => escaped = true,
            ':' => {
                fields.push((start, &s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if escaped {
        return Err(format!(
            "a backslash at position {} escapes nothing",
            s.len() - 1
        ));
    }
    fields.push((start, &s[start..]));
    Ok(fields)
}

fn unescape(raw: &str) -> String {
    if raw == "*" || raw == "-" {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(ch);
        }
    }
    if out == "*" || out == "-" {
        // `\*` / `\-`: a literal asterisk or hyphen, not ANY / NA.
        return raw.to_string();
    }
    out
}

/// Parses a CPE 2.3 formatted string. Errors say what is wrong and where (byte
/// positions from 0).
pub fn parse(s: &str) -> Result<Cpe, String> {
    let fields = split_fields(s)?;
    if fields.len() != 13 {
        return Err(format!(
            "expected 13 colon-separated parts (cpe, 2.3 and 11 components), found {}",
            fields.len()
        ));
    }
    if !fields[0].1.eq_ignore_ascii_case("cpe") || fields[1].1 != "2.3" {
        return Err(format!(
            "must start with \"cpe:2.3:\", found {:?}",
            format!("{}:{}:", fields[0].1, fields[1].1)
        ));
    }
    let mut components: [String; 11] = Default::default();
    for (i, (pos, raw)) in fields[2..].iter().enumerate() {
        if raw.is_empty() {
            return Err(format!(
                "component {} ({}) at position {pos} is empty",
                i + 1,
                COMPONENTS[i]
            ));
        }
        components[i] = unescape(raw);
    }
    if !matches!(components[0].as_str(), "a" | "o" | "h" | "*" | "-") {
        return Err(format!(
            "part at position {} must be a, o or h, found {:?}",
            fields[2].0, components[0]
        ));
    }
    Ok(Cpe { components })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Cpe {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn plain_name() {
        let c = ok("cpe:2.3:o:tenda:ac15_firmware:15.03.05.19:*:*:*:*:*:*:*");
        assert_eq!(c.get("part"), Some("o"));
        assert_eq!(c.get("vendor"), Some("tenda"));
        assert_eq!(c.get("product"), Some("ac15_firmware"));
        assert_eq!(c.get("version"), Some("15.03.05.19"));
        assert_eq!(c.get("other"), Some("*"));
        assert_eq!(c.get("nope"), None);
        let h = ok("cpe:2.3:h:tenda:ac15:-:*:*:*:*:*:*:*");
        assert_eq!(h.get("version"), Some("-"));
        let j = ok("cpe:2.3:a:gitlab:gitlab:*:*:*:*:community:*:*:*").to_json();
        assert_eq!(j["sw_edition"], "community");
        assert_eq!(j.as_object().map(|o| o.len()), Some(11));
    }

    #[test]
    fn escapes_are_honoured() {
        // From the real NVD sample: `\&` inside a product name.
        let c =
            ok(r"cpe:2.3:a:themeisle:wp_maintenance_mode_\&_coming_soon:*:*:*:*:*:wordpress:*:*");
        assert_eq!(c.get("product"), Some("wp_maintenance_mode_&_coming_soon"));
        assert_eq!(c.get("target_sw"), Some("wordpress"));
        // An escaped colon does not split a component.
        let c = ok(r"cpe:2.3:a:vendor\:inc:prod\\uct:1.0\:beta:*:*:*:*:*:*:*");
        assert_eq!(c.get("vendor"), Some("vendor:inc"));
        assert_eq!(c.get("product"), Some(r"prod\uct"));
        assert_eq!(c.get("version"), Some("1.0:beta"));
        assert_eq!(c.get("update"), Some("*"));
        // A quoted asterisk alone stays distinguishable from ANY.
        let c = ok(r"cpe:2.3:a:v:p:\*:\-:*:*:*:*:*:*");
        assert_eq!(c.get("version"), Some(r"\*"));
        assert_eq!(c.get("update"), Some(r"\-"));
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            parse("cpe:2.3:a:v:p:1:*:*:*:*:*:*").err().as_deref(),
            Some("expected 13 colon-separated parts (cpe, 2.3 and 11 components), found 12")
        );
        assert_eq!(
            parse("cpe:2.2:a:v:p:1:*:*:*:*:*:*:*").err().as_deref(),
            Some("must start with \"cpe:2.3:\", found \"cpe:2.2:\"")
        );
        assert_eq!(
            parse("cpe:2.3:a:v::1:*:*:*:*:*:*:*").err().as_deref(),
            Some("component 3 (product) at position 12 is empty")
        );
        assert_eq!(
            parse("cpe:2.3:x:v:p:1:*:*:*:*:*:*:*").err().as_deref(),
            Some("part at position 8 must be a, o or h, found \"x\"")
        );
        assert_eq!(
            parse(r"cpe:2.3:a:v:p:1:*:*:*:*:*:*:\").err().as_deref(),
            Some("a backslash at position 28 escapes nothing")
        );
        // Too many parts when a colon is not escaped.
        assert!(parse("cpe:2.3:a:vendor:inc:p:1:*:*:*:*:*:*:*").is_err());
    }
}
