//! CEF (versions 0 and 1): `CEF:Version|Device Vendor|Device Product|Device
//! Version|Device Event Class ID|Name|Severity|Extension`.
//!
//! - Header: seven pipe-terminated fields; only `\|` and `\\` are escapes there.
//! - Extension: space-separated `key=value` pairs; a value runs until the next
//!   ` key=` (a space, a key, an unescaped `=`), so values may contain spaces and
//!   literal pipes; `\=`, `\\`, `\n` and `\r` are its escapes. Trailing whitespace of
//!   the last value is dropped.
//! - Where the public parsers disagree (a `\|` inside an extension value; an
//!   unescaped `=` inside a value) the data is kept as received and a warning is
//!   recorded. Other invalid escapes are kept too, with a warning.

use std::borrow::Cow;

use super::LineError;
use super::text::{Warnings, excerpt, is_key_char, is_key_start};

/// A parsed CEF record, borrowing from the line where no escape had to be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cef<'a> {
    /// The `CEF:` version number.
    pub version: u32,
    /// Device Vendor.
    pub vendor: Cow<'a, str>,
    /// Device Product.
    pub product: Cow<'a, str>,
    /// Device Version.
    pub device_version: Cow<'a, str>,
    /// Device Event Class ID (signature id).
    pub signature_id: Cow<'a, str>,
    /// Name.
    pub name: Cow<'a, str>,
    /// Severity as sent.
    pub severity: Cow<'a, str>,
    /// Extension pairs in order (duplicates kept).
    pub extensions: Vec<(&'a str, Cow<'a, str>)>,
}

const HEADER_FIELDS: [&str; 7] = [
    "version",
    "device vendor",
    "device product",
    "device version",
    "signature id",
    "name",
    "severity",
];

/// One pipe-terminated header field starting at `*i` (CEF and LEEF share the rule:
/// `\|` and `\\` are escapes, any other backslash is kept with a warning). `None`
/// when the text ends before the terminating pipe.
pub(super) fn header_field<'a>(
    rec: &'a str,
    i: &mut usize,
    base: usize,
    what: &str,
    warnings: &mut Warnings,
) -> Option<Cow<'a, str>> {
    let b = rec.as_bytes();
    let start = *i;
    let mut seg = start;
    let mut owned: Option<String> = None;
    let mut j = start;
    let mut warned = false;
    loop {
        match b.get(j) {
            None => {
                *i = j;
                return None;
            }
            Some(b'|') => {
                let value = match owned {
                    Some(mut s) => {
                        s.push_str(&rec[seg..j]);
                        Cow::Owned(s)
                    }
                    None => Cow::Borrowed(&rec[start..j]),
                };
                *i = j + 1;
                return Some(value);
            }
            Some(b'\\') => match b.get(j + 1) {
                Some(&c @ (b'|' | b'\\')) => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&rec[seg..j]);
                    s.push(char::from(c));
                    j += 2;
                    seg = j;
                }
                _ => {
                    if !warned {
                        warned = true;
                        warnings.push(format!(
                            "backslash at byte {} in the {what} header field is not an escape \
                             (only `\\|` and `\\\\` are); kept as received",
                            base + j
                        ));
                    }
                    j += 1;
                }
            },
            Some(_) => j += 1,
        }
    }
}

/// Parses a CEF record (`rec` starts with `CEF:` at byte `base` of the line).
pub fn parse<'a>(rec: &'a str, base: usize, warnings: &mut Warnings) -> Result<Cef<'a>, LineError> {
    let mut i = 4; // after "CEF:"
    let mut fields: [Cow<'a, str>; 7] = Default::default();
    for (n, what) in HEADER_FIELDS.iter().enumerate() {
        let at = i;
        match header_field(rec, &mut i, base, what, warnings) {
            Some(v) => fields[n] = v,
            None => {
                return Err(LineError {
                    offset: base + rec.len(),
                    reason: format!(
                        "incomplete CEF header: found {n} of 7 pipe-terminated fields (version, \
                         device vendor, device product, device version, signature id, name, \
                         severity); the {what} field starting at byte {} is not terminated by `|`",
                        base + at
                    ),
                });
            }
        }
    }
    let [
        version,
        vendor,
        product,
        device_version,
        signature_id,
        name,
        severity,
    ] = fields;
    let v = version.trim();
    let version: u32 = if !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse().unwrap_or(u32::MAX)
    } else {
        return Err(LineError {
            offset: base + 4,
            reason: format!("CEF version `{}` is not a number", excerpt(v, 20)),
        });
    };
    if version > 1 {
        warnings.push(format!(
            "CEF version {version} is not one of the defined versions 0 and 1; parsed with their rules"
        ));
    }
    let extensions = parse_extension(&rec[i..], base + i, warnings)?;
    Ok(Cef {
        version,
        vendor,
        product,
        device_version,
        signature_id,
        name,
        severity,
        extensions,
    })
}

/// Bytes the value scanner must look at: space (a possible ` key=`), backslash
/// (an escape) and `=` (unescaped inside a value).
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'=' as usize] = true;
    t
};

/// End of the key starting at `k` (first byte that is not a key byte).
#[inline]
fn key_end(b: &[u8], k: usize) -> usize {
    let mut e = k;
    while e < b.len() && is_key_char(b[e]) {
        e += 1;
    }
    e
}

/// Parses the extension (`ext` starts at byte `base` of the line).
pub fn parse_extension<'a>(
    ext: &'a str,
    base: usize,
    warnings: &mut Warnings,
) -> Result<Vec<(&'a str, Cow<'a, str>)>, LineError> {
    let b = ext.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let mut out = Vec::with_capacity(16);
    if i == n {
        return Ok(out);
    }
    let first_end = if is_key_start(b[i]) { key_end(b, i) } else { i };
    if first_end == i || first_end >= n || b[first_end] != b'=' {
        return Err(LineError {
            offset: base + i,
            reason: format!(
                "CEF extension must start with `key=value`; found `{}` with no key followed by `=`",
                excerpt(&ext[i..], 40)
            ),
        });
    }
    let (mut key_start, mut key_stop) = (i, first_end);
    loop {
        let vstart = key_stop + 1;
        let mut j = vstart;
        let mut escapes = false;
        let mut eq_at: Option<usize> = None;
        let mut next: Option<(usize, usize)> = None;
        let mut value_end = n;
        while j < n {
            let c = b[j];
            if !SPECIAL[c as usize] {
                j += 1;
                continue;
            }
            match c {
                b'\\' => {
                    escapes = true;
                    j += if j + 1 < n && matches!(b[j + 1], b'=' | b'\\' | b'n' | b'r' | b'|') {
                        2
                    } else {
                        1
                    };
                }
                b'=' => {
                    if eq_at.is_none() {
                        eq_at = Some(j);
                    }
                    j += 1;
                }
                _ => {
                    // A space: does a key followed by `=` start after it?
                    let k = j + 1;
                    if k < n && is_key_start(b[k]) {
                        let e = key_end(b, k);
                        if e < n && b[e] == b'=' {
                            next = Some((k, e));
                            value_end = j;
                            break;
                        }
                        j = e;
                    } else {
                        j += 1;
                    }
                }
            }
        }
        let key = &ext[key_start..key_stop];
        let mut raw = &ext[vstart..value_end];
        if next.is_none() {
            raw = raw.trim_end();
        }
        if let Some(e) = eq_at
            && e < vstart + raw.len()
        {
            warnings.push(format!(
                "unescaped `=` at byte {} in the value of `{key}` (CEF requires `\\=`); the value \
                 is kept as received",
                base + e
            ));
        }
        let value = if escapes {
            unescape_value(raw, key, base + vstart, warnings)
        } else {
            Cow::Borrowed(raw)
        };
        out.push((key, value));
        match next {
            Some((s, e)) => {
                key_start = s;
                key_stop = e;
            }
            None => break,
        }
    }
    Ok(out)
}

/// Decodes `\=`, `\\`, `\n`, `\r`; keeps `\|` and any other backslash as received,
/// with a warning.
fn unescape_value<'a>(v: &'a str, key: &str, at: usize, warnings: &mut Warnings) -> Cow<'a, str> {
    let b = v.as_bytes();
    let mut out = String::with_capacity(v.len());
    let (mut seg, mut i) = (0, 0);
    let (mut warned_pipe, mut warned_other) = (false, false);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let decoded = match b.get(i + 1) {
            Some(b'=') => Some('='),
            Some(b'\\') => Some('\\'),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            Some(b'|') => {
                if !warned_pipe {
                    warned_pipe = true;
                    warnings.push(format!(
                        "`\\|` at byte {} in the value of `{key}` is not an extension escape \
                         (pipes are literal in the extension); kept as received",
                        at + i
                    ));
                }
                i += 2;
                continue;
            }
            _ => {
                if !warned_other {
                    warned_other = true;
                    warnings.push(format!(
                        "backslash at byte {} in the value of `{key}` does not start an escape \
                         (`\\=`, `\\\\`, `\\n`, `\\r`); kept as received",
                        at + i
                    ));
                }
                i += 1;
                continue;
            }
        };
        out.push_str(&v[seg..i]);
        if let Some(c) = decoded {
            out.push(c);
        }
        i += 2;
        seg = i;
    }
    out.push_str(&v[seg..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(s: &str) -> (Vec<(String, String)>, Vec<String>) {
        let mut w = Warnings::default();
        let v = parse_extension(s, 0, &mut w).unwrap_or_else(|e| panic!("{s}: {e}"));
        (
            v.into_iter()
                .map(|(k, v)| (k.to_string(), v.into_owned()))
                .collect(),
            w.into_vec(),
        )
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_run_to_the_next_key() {
        let (v, w) = ext("src=10.0.0.1 msg=hello world | with pipe act=blocked");
        assert_eq!(
            v,
            pairs(&[
                ("src", "10.0.0.1"),
                ("msg", "hello world | with pipe"),
                ("act", "blocked")
            ])
        );
        assert!(w.is_empty());
    }

    #[test]
    fn escapes() {
        let (v, w) = ext(r"a=x\=y\\z\nq\rr b=c");
        assert_eq!(v, pairs(&[("a", "x=y\\z\nq\rr"), ("b", "c")]));
        assert!(w.is_empty());
        let (v, w) = ext(r"a=C:\Users b=1");
        assert_eq!(v, pairs(&[("a", "C:\\Users"), ("b", "1")]));
        assert_eq!(w.len(), 1);
        // `\\` before the separator space does not hide the next key.
        let (v, _) = ext(r"a=c\\ b=d");
        assert_eq!(v, pairs(&[("a", "c\\"), ("b", "d")]));
    }

    #[test]
    fn spaces() {
        let (v, _) = ext("  a=1  b=2 c=  x  ");
        assert_eq!(v, pairs(&[("a", "1 "), ("b", "2"), ("c", "  x")]));
        let (v, _) = ext("a= b=");
        assert_eq!(v, pairs(&[("a", ""), ("b", "")]));
    }

    #[test]
    fn errors() {
        let mut w = Warnings::default();
        let e = parse_extension("missing_separator", 30, &mut w);
        assert_eq!(e.map_err(|e| e.offset), Err(30));
        let e = parse_extension("  =x", 0, &mut w);
        assert_eq!(e.map_err(|e| e.offset), Err(2));
        let e = parse("CEF:0|a|b", 0, &mut w);
        assert!(e.is_err_and(|e| e.reason.contains("found 2 of 7")));
        let e = parse("CEF:x|a|b|c|d|e|f|", 0, &mut w);
        assert!(e.is_err_and(|e| e.offset == 4 && e.reason.contains("not a number")));
    }

    #[test]
    fn header() {
        let mut w = Warnings::default();
        let c = parse(r"CEF:1|a\|b|c\\d|1.0|100|n|Low|", 0, &mut w);
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.version, &*c.vendor, &*c.product), (1, "a|b", "c\\d"));
        assert!(c.extensions.is_empty());
        assert!(w.is_empty());
        let c = parse(r"CEF:0|a\nb|p|v|s|n|3|", 0, &mut w).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&*c.vendor, "a\\nb");
        assert_eq!(w.as_slice().len(), 1);
    }
}
