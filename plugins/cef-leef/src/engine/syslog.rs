//! The optional syslog header before a CEF or LEEF record: RFC 5424
//! (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`), RFC 3164 / BSD
//! (`[<PRI>]Mmm dd hh:mm:ss [HOST] [TAG[PID]:] MSG`, the priority being optional as
//! QRadar's LEEF guide allows), and — with a warning — any other text that ends at a
//! token starting with `CEF:` or `LEEF:` (kept verbatim as `syslog.header`).

use super::LineError;
use super::text::{Warnings, excerpt};
use super::time::{Fields, parse_iso, parse_syslog_3164_stamp};

/// A parsed syslog header. Borrowed from the line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Syslog<'a> {
    /// `<PRI>` value (facility × 8 + severity).
    pub pri: Option<u8>,
    /// Protocol version (1 for RFC 5424).
    pub version: Option<u8>,
    /// The timestamp as sent.
    pub timestamp: Option<&'a str>,
    /// The timestamp's fields.
    pub time: Option<Fields>,
    /// HOSTNAME.
    pub hostname: Option<&'a str>,
    /// APP-NAME / TAG.
    pub app_name: Option<&'a str>,
    /// PROCID / the `[pid]` of a TAG.
    pub proc_id: Option<&'a str>,
    /// MSGID (RFC 5424).
    pub msg_id: Option<&'a str>,
    /// STRUCTURED-DATA as sent (RFC 5424).
    pub structured_data: Option<&'a str>,
    /// A header that is neither RFC 3164 nor RFC 5424, kept verbatim.
    pub header: Option<&'a str>,
    /// Text between a recognised header and the record, kept verbatim.
    pub extra: Option<&'a str>,
}

/// Where the CEF/LEEF record starts, and the syslog header before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// The header, if the line had one.
    pub syslog: Option<Syslog<'a>>,
    /// Byte offset of `CEF:` / `LEEF:` in the line.
    pub start: usize,
}

/// Whether a CEF or LEEF record starts at `s`.
#[inline]
pub fn starts_record(s: &str) -> bool {
    s.starts_with("CEF:") || s.starts_with("LEEF:")
}

/// Offset of the first token of `s` that starts a record (at 0 or after a space).
pub fn find_record(s: &str) -> Option<usize> {
    let mut best: Option<usize> = None;
    for needle in ["CEF:", "LEEF:"] {
        for (i, _) in s.match_indices(needle) {
            if best.is_some_and(|b| b <= i) {
                break;
            }
            if i == 0 || s.as_bytes()[i - 1] == b' ' {
                best = Some(i);
                break;
            }
        }
    }
    best
}

/// Splits `line` into its syslog header (if any) and the offset of the record.
pub fn split<'a>(line: &'a str, warnings: &mut Warnings) -> Result<Split<'a>, LineError> {
    if starts_record(line) {
        return Ok(Split {
            syslog: None,
            start: 0,
        });
    }
    let bytes = line.as_bytes();
    if bytes.first() == Some(&b'<') {
        let close = bytes[..bytes.len().min(5)]
            .iter()
            .position(|&b| b == b'>')
            .ok_or_else(|| LineError {
                offset: 0,
                reason: "syslog priority `<PRI>` is not closed by `>` within 3 digits".into(),
            })?;
        let digits = &line[1..close];
        let pri: u16 = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().unwrap_or(u16::MAX)
        } else {
            u16::MAX
        };
        let pri = u8::try_from(pri)
            .ok()
            .filter(|p| *p <= 191)
            .ok_or_else(|| LineError {
                offset: 1,
                reason: format!("invalid syslog priority `<{digits}>` (expected 0-191)"),
            })?;
        let after = close + 1;
        let rest = &line[after..];
        if starts_record(rest) {
            return Ok(Split {
                syslog: Some(Syslog {
                    pri: Some(pri),
                    ..Syslog::default()
                }),
                start: after,
            });
        }
        if let Some(body) = rest.strip_prefix("1 ") {
            return rfc5424(after + 2, body, pri, warnings);
        }
        if let Some(split) = rfc3164(line, after, Some(pri), warnings)? {
            return Ok(split);
        }
        return fallback(line, warnings);
    }
    if let Some(split) = rfc3164(line, 0, None, warnings)? {
        return Ok(split);
    }
    fallback(line, warnings)
}

/// Any header text ending at a token that starts a record.
fn fallback<'a>(line: &'a str, warnings: &mut Warnings) -> Result<Split<'a>, LineError> {
    let start = find_record(line).ok_or_else(|| LineError {
        offset: 0,
        reason: "not a CEF or LEEF record: no `CEF:` or `LEEF:` at the start of the line or \
                 after a syslog header"
            .into(),
    })?;
    let header = line[..start].trim_end();
    warnings.push(format!(
        "syslog header `{}` is neither RFC 3164 nor RFC 5424; kept as syslog.header",
        excerpt(header, 60)
    ));
    Ok(Split {
        syslog: Some(Syslog {
            header: Some(header),
            ..Syslog::default()
        }),
        start,
    })
}

/// `Mmm dd hh:mm:ss [HOST] [TAG:] record` starting at `at`. `Ok(None)` when there
/// is no BSD timestamp there.
fn rfc3164<'a>(
    line: &'a str,
    at: usize,
    pri: Option<u8>,
    warnings: &mut Warnings,
) -> Result<Option<Split<'a>>, LineError> {
    let rest = &line[at..];
    let Some((fields, len)) = parse_syslog_3164_stamp(rest) else {
        return Ok(None);
    };
    let mut h = Syslog {
        pri,
        timestamp: Some(&rest[..len]),
        time: Some(fields),
        ..Syslog::default()
    };
    let after_stamp = at + len;
    let tail = &line[after_stamp..];
    let Some(rel) = find_record(tail) else {
        return Err(LineError {
            offset: after_stamp,
            reason: "no `CEF:` or `LEEF:` record after the RFC 3164 syslog header".into(),
        });
    };
    let between = tail[..rel].trim();
    let mut tokens = between.split(' ').filter(|t| !t.is_empty());
    let first = tokens.next();
    let second = tokens.next();
    match (first, second) {
        (None, _) => {}
        (Some(t), None) if t.ends_with(':') => tag(&mut h, t),
        (Some(host), None) => h.hostname = Some(host),
        (Some(host), Some(t)) => {
            h.hostname = Some(host);
            tag(&mut h, t);
            let used = between.find(t).map_or(between.len(), |i| i + t.len());
            let extra = between[used..].trim();
            if !extra.is_empty() {
                h.extra = Some(extra);
                warnings.push(format!(
                    "unexpected text `{}` between the syslog header and the record; kept as \
                     syslog.extra",
                    excerpt(extra, 60)
                ));
            }
        }
    }
    Ok(Some(Split {
        syslog: Some(h),
        start: after_stamp + rel,
    }))
}

/// `app[pid]:` / `app:` / `app`.
fn tag<'a>(h: &mut Syslog<'a>, t: &'a str) {
    let t = t.strip_suffix(':').unwrap_or(t);
    if let Some(open) = t.find('[')
        && t.ends_with(']')
    {
        h.app_name = Some(&t[..open]).filter(|a| !a.is_empty());
        h.proc_id = Some(&t[open + 1..t.len() - 1]).filter(|p| !p.is_empty());
    } else if !t.is_empty() {
        h.app_name = Some(t);
    }
}

/// RFC 5424 after `<PRI>1 `, `body` starting at byte `at` of the line.
fn rfc5424<'a>(
    at: usize,
    body: &'a str,
    pri: u8,
    warnings: &mut Warnings,
) -> Result<Split<'a>, LineError> {
    let mut h = Syslog {
        pri: Some(pri),
        version: Some(1),
        ..Syslog::default()
    };
    let mut pos = 0;
    let field = |what: &str, pos: &mut usize| -> Result<Option<&'a str>, LineError> {
        let rest = &body[*pos..];
        let end = rest.find(' ').ok_or_else(|| LineError {
            offset: at + *pos,
            reason: format!("RFC 5424 header ends before its {what} field"),
        })?;
        let v = &rest[..end];
        *pos += end + 1;
        if v.is_empty() {
            return Err(LineError {
                offset: at + *pos - 1,
                reason: format!("RFC 5424 {what} field is empty (use `-` for none)"),
            });
        }
        Ok((v != "-").then_some(v))
    };
    h.timestamp = field("TIMESTAMP", &mut pos)?;
    if let Some(ts) = h.timestamp {
        h.time = Some(
            parse_iso(ts)
                .filter(|f| f.offset.is_some())
                .ok_or_else(|| LineError {
                    offset: at,
                    reason: format!(
                        "RFC 5424 TIMESTAMP `{}` is not an RFC 3339 date-time",
                        excerpt(ts, 40)
                    ),
                })?,
        );
    }
    h.hostname = field("HOSTNAME", &mut pos)?;
    h.app_name = field("APP-NAME", &mut pos)?;
    h.proc_id = field("PROCID", &mut pos)?;
    h.msg_id = field("MSGID", &mut pos)?;
    // STRUCTURED-DATA: `-` or one or more `[id param="value" ...]`.
    let sd_start = pos;
    let sb = body.as_bytes();
    if sb.get(pos) == Some(&b'-') {
        pos += 1;
    } else {
        if sb.get(pos) != Some(&b'[') {
            return Err(LineError {
                offset: at + pos,
                reason: "RFC 5424 STRUCTURED-DATA must be `-` or start with `[`".into(),
            });
        }
        while sb.get(pos) == Some(&b'[') {
            pos = sd_element_end(sb, pos).ok_or_else(|| LineError {
                offset: at + pos,
                reason: "RFC 5424 STRUCTURED-DATA element is not closed by `]`".into(),
            })?;
        }
        h.structured_data = Some(&body[sd_start..pos]);
    }
    match sb.get(pos) {
        Some(b' ') => pos += 1,
        None => {
            return Err(LineError {
                offset: at + pos,
                reason: "RFC 5424 message has no MSG part (no CEF or LEEF record)".into(),
            });
        }
        Some(_) => {
            return Err(LineError {
                offset: at + pos,
                reason: "expected a space after the RFC 5424 STRUCTURED-DATA".into(),
            });
        }
    }
    let mut msg_at = pos;
    if body[pos..].starts_with('\u{feff}') {
        msg_at += '\u{feff}'.len_utf8();
    }
    let msg = &body[msg_at..];
    if starts_record(msg) {
        return Ok(Split {
            syslog: Some(h),
            start: at + msg_at,
        });
    }
    let rel = find_record(msg).ok_or_else(|| LineError {
        offset: at + msg_at,
        reason: "the RFC 5424 MSG is not a CEF or LEEF record".into(),
    })?;
    let extra = msg[..rel].trim_end();
    h.extra = Some(extra);
    warnings.push(format!(
        "unexpected text `{}` between the syslog header and the record; kept as syslog.extra",
        excerpt(extra, 60)
    ));
    Ok(Split {
        syslog: Some(h),
        start: at + msg_at + rel,
    })
}

/// End (exclusive) of the SD-ELEMENT starting with `[` at `start`: quoted values
/// may hold `\"`, `\\` and `\]`.
fn sd_element_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let mut quoted = false;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b']' if !quoted => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> (Syslog<'_>, &str, Vec<String>) {
        let mut w = Warnings::default();
        let s = split(line, &mut w).unwrap_or_else(|e| panic!("{line}: {e}"));
        (s.syslog.unwrap_or_default(), &line[s.start..], w.into_vec())
    }

    fn err(line: &str) -> LineError {
        let mut w = Warnings::default();
        match split(line, &mut w) {
            Err(e) => e,
            Ok(s) => panic!("{line}: expected an error, got {s:?}"),
        }
    }

    #[test]
    fn no_header() {
        let (h, rec, w) = ok("CEF:0|a|b|c|d|e|5|");
        assert_eq!(
            (h, rec, w.len()),
            (Syslog::default(), "CEF:0|a|b|c|d|e|5|", 0)
        );
    }

    #[test]
    fn bsd_with_tag_only() {
        // Tenzir's zscaler-nss sample: no PRI, no HOSTNAME, TAG `zscaler-nss:`.
        let (h, rec, w) = ok("Jun 02 16:34:55 zscaler-nss: LEEF:1.0|Zscaler|NSS-FW|5.5|Drop|x=1");
        assert_eq!(h.timestamp, Some("Jun 02 16:34:55"));
        assert_eq!(
            (h.hostname, h.app_name, h.pri),
            (None, Some("zscaler-nss"), None)
        );
        assert!(rec.starts_with("LEEF:1.0|Zscaler"));
        assert!(w.is_empty());
    }

    #[test]
    fn bsd_full() {
        let (h, rec, _) = ok(
            "<12>Nov 21 13:44:35 LAPTOP-45Q5L6E5 Microsoft-Windows-Security-Mitigations[4340]: LEEF:2.0|M|P|1|10|0x09|a=b",
        );
        assert_eq!(h.pri, Some(12));
        assert_eq!(h.hostname, Some("LAPTOP-45Q5L6E5"));
        assert_eq!(h.app_name, Some("Microsoft-Windows-Security-Mitigations"));
        assert_eq!(h.proc_id, Some("4340"));
        assert!(rec.starts_with("LEEF:2.0"));
        let (h, rec, _) = ok("<13>Jan 18 11:07:53 192.168.1.1 CEF:0|a|b|c|d|e|5|");
        assert_eq!(
            (h.hostname, h.app_name, rec.len()),
            (Some("192.168.1.1"), None, 18)
        );
        let (h, _, _) = ok("<134>CEF:0|a|b|c|d|e|5|");
        assert_eq!((h.pri, h.timestamp), (Some(134), None));
    }

    #[test]
    fn rfc5424_forms() {
        let (h, rec, w) = ok(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Appli\\]cation\"][x@1 a=\"b\"] \u{feff}CEF:0|a|b|c|d|e|5|x=1",
        );
        assert_eq!(h.version, Some(1));
        assert_eq!(h.hostname, Some("mymachine.example.com"));
        assert_eq!(
            (h.app_name, h.proc_id, h.msg_id),
            (Some("evntslog"), None, Some("ID47"))
        );
        assert_eq!(
            h.structured_data,
            Some("[exampleSDID@32473 iut=\"3\" eventSource=\"Appli\\]cation\"][x@1 a=\"b\"]")
        );
        assert_eq!(rec, "CEF:0|a|b|c|d|e|5|x=1");
        assert!(w.is_empty());
        let (h, rec, _) =
            ok("<13>1 2019-01-18T11:07:53.520+07:00 myhostname - - - - LEEF:1.0|a|b|c|d|");
        assert_eq!((h.hostname, h.structured_data), (Some("myhostname"), None));
        assert!(rec.starts_with("LEEF:1.0"));
        let (h, rec, w) = ok("<13>1 - host app 12 - - host2 CEF:0|a|b|c|d|e|5|");
        assert_eq!(
            (h.timestamp, h.proc_id, h.extra),
            (None, Some("12"), Some("host2"))
        );
        assert!(rec.starts_with("CEF:0"));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn unrecognised_header_is_kept_with_a_warning() {
        let (h, rec, w) = ok("Syslogdate Sysloghost CEF:0|security|threatmanager|1.0|100|x|10|");
        assert_eq!(h.header, Some("Syslogdate Sysloghost"));
        assert!(rec.starts_with("CEF:0|security"));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn errors() {
        assert_eq!(err("not a CEF event").offset, 0);
        assert!(
            err("<999>Jan 18 11:07:53 h CEF:0|")
                .reason
                .contains("priority")
        );
        assert!(err("<13 CEF:0|").reason.contains("not closed"));
        let e = err("<13>1 2019-01-18T11:07:53Z host app - - [unclosed CEF:0|a|b|c|d|e|5|");
        assert!(e.reason.contains("not closed"), "{e}");
        let e = err("<13>1 yesterday host app - - - CEF:0|a|b|c|d|e|5|");
        assert_eq!(e.offset, 6, "{e}");
        let e = err("<13>1 2019-01-18T11:07:53Z host app - - - just text");
        assert!(e.reason.contains("MSG"), "{e}");
        let e = err("Jan 18 11:07:53 host nothing here");
        assert_eq!(e.offset, 15, "{e}");
        // A record start must begin a token.
        assert!(find_record("xCEF:0|").is_none());
        assert_eq!(find_record("a LEEF:1.0| CEF:0|"), Some(2));
    }
}
