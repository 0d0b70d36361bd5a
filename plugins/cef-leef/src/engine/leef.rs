//! LEEF 1.0 and 2.0: `LEEF:Version|Vendor|Product|Version|EventID|[Delimiter|]attributes`.
//!
//! - LEEF 1.0 attributes are tab-separated; LEEF 2.0 names its delimiter: one
//!   character, or its hex value `0xHH` / `xHH` (1 or 2 hex digits; 3-4 digits are
//!   ambiguous and refused, as Tenzir does).
//! - Header fields use the CEF header escapes (`\|`, `\\`).
//! - An attribute is split at its first `=` not written `\=`; key and value are
//!   trimmed; `\=` in a value is decoded; a value wholly enclosed in double quotes
//!   may contain the delimiter and is unquoted. Empty attributes (consecutive or
//!   trailing delimiters) are skipped with a warning; an attribute without `=` or
//!   without a key makes the line invalid.

use std::borrow::Cow;

use super::LineError;
use super::cef::header_field;
use super::text::{Warnings, excerpt};

/// A parsed LEEF record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leef<'a> {
    /// `1.0` or `2.0`.
    pub version: &'a str,
    /// Vendor.
    pub vendor: Cow<'a, str>,
    /// Product.
    pub product: Cow<'a, str>,
    /// Product version.
    pub product_version: Cow<'a, str>,
    /// EventID.
    pub event_id: Cow<'a, str>,
    /// The LEEF 2.0 delimiter field as sent.
    pub delimiter_field: Option<Cow<'a, str>>,
    /// The attribute delimiter in use.
    pub delimiter: char,
    /// Attributes in order (duplicates kept).
    pub attributes: Vec<(&'a str, Cow<'a, str>)>,
}

/// Parses a LEEF record (`rec` starts with `LEEF:` at byte `base` of the line).
pub fn parse<'a>(
    rec: &'a str,
    base: usize,
    warnings: &mut Warnings,
) -> Result<Leef<'a>, LineError> {
    let pipe = rec.find('|').ok_or_else(|| LineError {
        offset: base + rec.len(),
        reason: "invalid LEEF record: no `|` after the version".into(),
    })?;
    let version = rec[5..pipe].trim();
    let header_fields = match version {
        "1.0" => 4,
        "2.0" => 5,
        other => {
            return Err(LineError {
                offset: base + 5,
                reason: format!(
                    "unsupported LEEF version `{}` (1.0 and 2.0 are defined)",
                    excerpt(other, 20)
                ),
            });
        }
    };
    const NAMES: [&str; 5] = [
        "vendor",
        "product",
        "product version",
        "event id",
        "delimiter",
    ];
    let mut i = pipe + 1;
    let mut fields: Vec<Cow<'a, str>> = Vec::with_capacity(header_fields);
    for what in NAMES.iter().take(header_fields) {
        match header_field(rec, &mut i, base, what, warnings) {
            Some(v) => fields.push(v),
            None => {
                // Counted as Tenzir does: the version, the complete fields and the rest.
                let got = 1 + fields.len() + 1;
                return Err(LineError {
                    offset: base + rec.len(),
                    reason: format!(
                        "LEEF {version} requires at least {} fields (version, vendor, product, \
                         product version, event id{}, attributes), got {got}{}",
                        header_fields + 2,
                        if header_fields == 5 {
                            ", delimiter"
                        } else {
                            ""
                        },
                        if header_fields == 5 && got == header_fields + 1 {
                            "; the delimiter field is missing"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
    }
    let delimiter_at = base + i;
    let mut it = fields.into_iter();
    let vendor = it.next().unwrap_or_default();
    let product = it.next().unwrap_or_default();
    let product_version = it.next().unwrap_or_default();
    let event_id = it.next().unwrap_or_default();
    let delimiter_field = it.next();
    let delimiter = match &delimiter_field {
        None => '\t',
        Some(d) => parse_delimiter(d).map_err(|reason| LineError {
            offset: delimiter_at.saturating_sub(d.len() + 1),
            reason,
        })?,
    };
    let attributes = parse_attributes(&rec[i..], base + i, delimiter, warnings)?;
    Ok(Leef {
        version,
        vendor,
        product,
        product_version,
        event_id,
        delimiter_field,
        delimiter,
        attributes,
    })
}

/// The LEEF 2.0 delimiter: a single character, or `0xHH` / `xHH` (1-2 hex digits).
pub fn parse_delimiter(field: &str) -> Result<char, String> {
    if field.is_empty() {
        return Err(
            "empty LEEF 2.0 delimiter field: it must be a single character or a hex \
                    value `0xHH` / `xHH`"
                .into(),
        );
    }
    let mut chars = field.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return check_delimiter(c);
    }
    let hex = field
        .strip_prefix("0x")
        .or_else(|| field.strip_prefix("0X"))
        .or_else(|| field.strip_prefix('x'))
        .or_else(|| field.strip_prefix('X'));
    let Some(hex) = hex else {
        return Err(format!(
            "invalid LEEF 2.0 delimiter `{}`: expected a single character (got {}) or a hex \
             value `0xHH` / `xHH`",
            excerpt(field, 20),
            field.chars().count()
        ));
    };
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid hex delimiter `{}`: `0x` / `x` must be followed by hex digits",
            excerpt(field, 20)
        ));
    }
    match hex.len() {
        1 | 2 => {
            let v = u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
            if v >= 0x80 {
                return Err(format!(
                    "hex delimiter `{field}` is not an ASCII character (a byte above 0x7F is not \
                     a character in UTF-8)"
                ));
            }
            check_delimiter(char::from(v))
        }
        3 | 4 => Err(format!(
            "ambiguous hex delimiter `{field}`: {} hex digits cannot be read as one character \
             (use 1 or 2 hex digits)",
            hex.len()
        )),
        n => Err(format!(
            "hex delimiter `{}` has {n} digits (use 1 or 2)",
            excerpt(field, 20)
        )),
    }
}

fn check_delimiter(c: char) -> Result<char, String> {
    if c == '=' {
        Err("`=` cannot be the LEEF attribute delimiter: it separates keys from values".into())
    } else if c == '\\' {
        Err("`\\` cannot be the LEEF attribute delimiter: it is the escape character".into())
    } else {
        Ok(c)
    }
}

/// Splits the attributes part (`s` at byte `base` of the line).
pub fn parse_attributes<'a>(
    s: &'a str,
    base: usize,
    delimiter: char,
    warnings: &mut Warnings,
) -> Result<Vec<(&'a str, Cow<'a, str>)>, LineError> {
    let mut out = Vec::with_capacity(16);
    let dlen = delimiter.len_utf8();
    let mut pos = 0;
    let mut warned_empty = false;
    while pos < s.len() {
        let rest = &s[pos..];
        let next_delim = rest.find(delimiter).unwrap_or(rest.len());
        let pair = &rest[..next_delim];
        let Some(eq) = first_unescaped_eq(pair) else {
            if pair.trim().is_empty() {
                if !warned_empty {
                    warned_empty = true;
                    warnings.push(format!(
                        "empty attribute at byte {} (consecutive or trailing delimiters) ignored",
                        base + pos
                    ));
                }
                pos += next_delim + dlen;
                continue;
            }
            return Err(LineError {
                offset: base + pos,
                reason: format!(
                    "missing key-value separator `=` in LEEF attribute `{}`",
                    excerpt(pair, 40)
                ),
            });
        };
        let key = pair[..eq].trim();
        if key.is_empty() {
            return Err(LineError {
                offset: base + pos,
                reason: format!(
                    "missing key before `=` in LEEF attribute `{}`",
                    excerpt(pair, 40)
                ),
            });
        }
        let after_eq = pos + eq + 1;
        let value_text = &s[after_eq..];
        let lead = value_text.len() - value_text.trim_start_matches(' ').len();
        // A value wholly in double quotes may contain the delimiter.
        if value_text[lead..].starts_with('"')
            && let Some(close) = closing_quote(&value_text[lead + 1..], delimiter)
        {
            let inner = &value_text[lead + 1..lead + 1 + close];
            out.push((key, unescape(inner)));
            let end = after_eq + lead + 1 + close + 1;
            let tail = &s[end..];
            let trailing = tail.len() - tail.trim_start_matches(' ').len();
            pos = end
                + trailing
                + if tail[trailing..].starts_with(delimiter) {
                    dlen
                } else {
                    0
                };
            continue;
        }
        out.push((key, unescape(pair[eq + 1..].trim())));
        pos += next_delim + dlen;
    }
    Ok(out)
}

/// Index in `s` of the `"` that closes a quoted value: followed by optional spaces
/// and then the delimiter or the end.
fn closing_quote(s: &str, delimiter: char) -> Option<usize> {
    let mut from = 0;
    while let Some(q) = s[from..].find('"') {
        let at = from + q;
        let after = s[at + 1..].trim_start_matches(' ');
        if after.is_empty() || after.starts_with(delimiter) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn first_unescaped_eq(pair: &str) -> Option<usize> {
    let b = pair.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'=') => i += 2,
            b'=' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Decodes `\=` (the only escape LEEF values use; other backslashes, e.g. in Windows
/// paths, are data).
fn unescape(v: &str) -> Cow<'_, str> {
    if v.as_bytes().contains(&b'\\') && v.contains("\\=") {
        Cow::Owned(v.replace("\\=", "="))
    } else {
        Cow::Borrowed(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(s: &str, d: char) -> Result<Vec<(String, String)>, LineError> {
        let mut w = Warnings::default();
        parse_attributes(s, 0, d, &mut w).map(|v| {
            v.into_iter()
                .map(|(k, v)| (k.to_string(), v.into_owned()))
                .collect()
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter("^"), Ok('^'));
        assert_eq!(parse_delimiter("x7C"), Ok('|'));
        assert_eq!(parse_delimiter("0x09"), Ok('\t'));
        assert_eq!(parse_delimiter("x9"), Ok('\t'));
        assert_eq!(parse_delimiter("§"), Ok('§'));
        assert_eq!(parse_delimiter("x"), Ok('x'));
        assert!(parse_delimiter("").is_err_and(|e| e.contains("empty")));
        assert!(parse_delimiter("0xGG").is_err_and(|e| e.contains("invalid hex")));
        assert!(parse_delimiter("0x123").is_err_and(|e| e.contains("3 hex digits")));
        assert!(parse_delimiter("xC2A9").is_err_and(|e| e.contains("4 hex digits")));
        assert!(parse_delimiter("ab").is_err_and(|e| e.contains("single character (got 2)")));
        assert!(parse_delimiter("xC2").is_err_and(|e| e.contains("ASCII")));
        assert!(parse_delimiter("=").is_err());
        assert!(parse_delimiter("0x3D").is_err());
    }

    #[test]
    fn attribute_rules() {
        assert_eq!(
            attrs("a=1\tb= two \tc=x=y", '\t'),
            Ok(pairs(&[("a", "1"), ("b", "two"), ("c", "x=y")]))
        );
        assert_eq!(
            attrs(
                r#"q="foo^bar"^e=first\=second^p=C:\dir\^z="unterminated"#,
                '^'
            ),
            Ok(pairs(&[
                ("q", "foo^bar"),
                ("e", "first=second"),
                ("p", "C:\\dir\\"),
                ("z", "\"unterminated")
            ]))
        );
        assert_eq!(
            attrs("file name =pic.gif", '\t'),
            Ok(pairs(&[("file name", "pic.gif")]))
        );
        assert_eq!(
            attrs("a=1\t\tb=2\t", '\t'),
            Ok(pairs(&[("a", "1"), ("b", "2")]))
        );
        assert_eq!(attrs("key=", '\t'), Ok(pairs(&[("key", "")])));
        assert!(attrs("just some random junk", '\t').is_err_and(|e| e.offset == 0));
        assert!(attrs("a=1^=x", '^').is_err_and(|e| e.offset == 4 && e.reason.contains("key")));
    }

    #[test]
    fn headers() {
        let mut w = Warnings::default();
        let l = parse("LEEF:2.0|V|P|1|42|^|a=1^b=2", 0, &mut w).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((l.version, &*l.event_id, l.delimiter), ("2.0", "42", '^'));
        assert_eq!(l.attributes.len(), 2);
        let l = parse("LEEF:1.0|V|P|1|42|", 0, &mut w).unwrap_or_else(|e| panic!("{e}"));
        assert!(l.attributes.is_empty());
        let e = parse("LEEF:1.0|V|P|1", 0, &mut w);
        assert!(
            e.is_err_and(|e| e.reason.contains("at least 6 fields") && e.reason.contains("got 4"))
        );
        let e = parse("LEEF:2.0|V|P|1|42|a=b\tc=d", 0, &mut w);
        assert!(e.is_err_and(|e| e.reason.contains("got 6") && e.reason.contains("delimiter")));
        let e = parse("LEEF:3.0|V|P|1|42|a=b", 0, &mut w);
        assert!(e.is_err_and(|e| e.offset == 5));
        let e = parse("LEEF:2.0|V|P|1|42|0xGG|a=b", 100, &mut w);
        assert!(
            e.is_err_and(|e| e.offset == 118),
            "offset of the delimiter field"
        );
    }
}
