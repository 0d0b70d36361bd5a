//! Syslog message parsing: RFC 5424 (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
//! STRUCTURED-DATA [MSG]`, with SD escapes and the UTF-8 BOM before MSG) and RFC 3164
//! (BSD: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[pid]: CONTENT`).
//!
//! The receiver needs the header for routing (source hostname, app-name) and to tell a
//! malformed message from a good one; the connector's plugin receives the whole message
//! text and does its own mapping. Rules:
//! - `<PRI>` is 1–3 digits, 0–191. A message without `<` gets priority 13 (user.notice)
//!   as RFC 3164 §4.3.3 says a relay must, and its BSD header, if any, is still parsed
//!   (QRadar's LEEF guide allows the PRI to be left out). A `<` that does not open a
//!   valid PRI is malformed.
//! - `<PRI>1 ` selects RFC 5424, parsed strictly (field lengths, printable ASCII, RFC 3339
//!   timestamp, well-formed structured data); any violation is malformed.
//! - Otherwise RFC 3164, parsed leniently as the RFC asks of receivers: a missing or
//!   unrecognised timestamp leaves hostname and tag unset and the rest is content. An
//!   RFC 3339 stamp in the BSD position (rsyslog's high-precision format) is accepted.
//! - An empty message (nothing after the header) is malformed.

use serde::Serialize;

/// Which syslog format a message used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// RFC 5424.
    Rfc5424,
    /// RFC 3164 (BSD).
    Rfc3164,
}

/// One structured-data element (`[id name="value" ...]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SdElement {
    /// SD-ID (`exampleSDID@32473`).
    pub id: String,
    /// Parameters in order, values unescaped.
    pub params: Vec<(String, String)>,
}

/// A parsed syslog message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyslogMessage {
    /// Format.
    pub format: SyslogFormat,
    /// Facility (PRI / 8).
    pub facility: u8,
    /// Severity (PRI % 8).
    pub severity: u8,
    /// Timestamp as sent (RFC 3339 for RFC 5424; `Mmm dd hh:mm:ss` for BSD).
    pub timestamp: Option<String>,
    /// HOSTNAME.
    pub hostname: Option<String>,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    pub app_name: Option<String>,
    /// PROCID / `[pid]`.
    pub proc_id: Option<String>,
    /// MSGID (RFC 5424 only).
    pub msg_id: Option<String>,
    /// STRUCTURED-DATA (RFC 5424 only).
    pub structured_data: Vec<SdElement>,
    /// MSG / CONTENT, BOM removed.
    pub message: String,
}

/// Why a message is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyslogError {
    /// Nothing to parse.
    #[error("empty message")]
    Empty,
    /// `<` without a valid `PRI>`.
    #[error("invalid PRI: {0}")]
    Pri(String),
    /// An RFC 5424 header field is invalid.
    #[error("RFC 5424 {field}: {message}")]
    Header {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// RFC 5424 structured data is invalid.
    #[error("RFC 5424 structured data at byte {offset}: {message}")]
    StructuredData {
        /// Byte offset in the message.
        offset: usize,
        /// What is wrong.
        message: String,
    },
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parse one syslog message (one frame, without its trailer).
pub fn parse(input: &[u8]) -> Result<SyslogMessage, SyslogError> {
    let input = trim_trailer(input);
    if input.is_empty() {
        return Err(SyslogError::Empty);
    }
    if input[0] != b'<' {
        return Ok(parse_3164(13, input));
    }
    let close = input
        .iter()
        .take(5)
        .position(|&b| b == b'>')
        .ok_or_else(|| SyslogError::Pri("no `>` within 5 bytes".into()))?;
    let digits = &input[1..close];
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err(SyslogError::Pri(format!(
            "{:?} is not a number 0-191",
            String::from_utf8_lossy(digits)
        )));
    }
    let pri: u16 = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(u16::MAX);
    if pri > 191 {
        return Err(SyslogError::Pri(format!("{pri} is above 191")));
    }
    let pri = pri as u8;
    let rest = &input[close + 1..];
    if rest.starts_with(b"1 ") {
        parse_5424(pri, &rest[2..], close + 3)
    } else {
        let msg = parse_3164(pri, rest);
        if msg.message.is_empty() && msg.hostname.is_none() && msg.timestamp.is_none() {
            return Err(SyslogError::Empty);
        }
        Ok(msg)
    }
}

fn trim_trailer(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., last] = b {
        if *last == b'\n' || *last == b'\r' || *last == 0 {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bsd_content(pri: u8, content: &[u8]) -> SyslogMessage {
    SyslogMessage {
        format: SyslogFormat::Rfc3164,
        facility: pri / 8,
        severity: pri % 8,
        timestamp: None,
        hostname: None,
        app_name: None,
        proc_id: None,
        msg_id: None,
        structured_data: Vec::new(),
        message: text(content),
    }
}

/// Next space-delimited token; returns (token, rest after the space).
fn token(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b' ') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

fn header_field<'a>(
    b: &'a [u8],
    field: &'static str,
    max: usize,
) -> Result<(Option<String>, &'a [u8]), SyslogError> {
    let (tok, rest) = token(b);
    if tok.is_empty() {
        return Err(SyslogError::Header {
            field,
            message: "missing".into(),
        });
    }
    if tok == b"-" {
        return Ok((None, rest));
    }
    if tok.len() > max {
        return Err(SyslogError::Header {
            field,
            message: format!("longer than {max} characters"),
        });
    }
    if !tok.iter().all(|c| (33..=126).contains(c)) {
        return Err(SyslogError::Header {
            field,
            message: "not printable US-ASCII".into(),
        });
    }
    Ok((Some(text(tok)), rest))
}

fn parse_5424(pri: u8, b: &[u8], base: usize) -> Result<SyslogMessage, SyslogError> {
    let (timestamp, b) = header_field(b, "TIMESTAMP", 64)?;
    if let Some(ts) = &timestamp
        && !valid_rfc5424_timestamp(ts)
    {
        return Err(SyslogError::Header {
            field: "TIMESTAMP",
            message: format!("{ts:?} is not an RFC 3339 date-time"),
        });
    }
    let (hostname, b) = header_field(b, "HOSTNAME", 255)?;
    let (app_name, b) = header_field(b, "APP-NAME", 48)?;
    let (proc_id, b) = header_field(b, "PROCID", 128)?;
    let (msg_id, b) = header_field(b, "MSGID", 32)?;
    let consumed_before_sd = base;
    let (structured_data, rest) = parse_sd(b, consumed_before_sd)?;
    let msg = match rest {
        [] => &[][..],
        [b' ', m @ ..] => m,
        _ => {
            return Err(SyslogError::StructuredData {
                offset: base,
                message: "expected a space between STRUCTURED-DATA and MSG".into(),
            });
        }
    };
    let msg = msg.strip_prefix(BOM).unwrap_or(msg);
    Ok(SyslogMessage {
        format: SyslogFormat::Rfc5424,
        facility: pri / 8,
        severity: pri % 8,
        timestamp,
        hostname,
        app_name,
        proc_id,
        msg_id,
        structured_data,
        message: text(msg),
    })
}

/// `FULL-DATE "T" FULL-TIME` per RFC 5424 §6.2.3 (upper-case T and Z, ≤ 6 fraction digits).
fn valid_rfc5424_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 6 {
            return false;
        }
    }
    let offset = &b[i..];
    let ok_offset = offset == b"Z"
        || (offset.len() == 6
            && (offset[0] == b'+' || offset[0] == b'-')
            && offset[1..3].iter().all(u8::is_ascii_digit)
            && offset[3] == b':'
            && offset[4..6].iter().all(u8::is_ascii_digit));
    ok_offset && chrono::DateTime::parse_from_rfc3339(ts).is_ok()
}

fn sd_name(
    b: &[u8],
    start: usize,
    what: &str,
    offset: usize,
) -> Result<(String, usize), SyslogError> {
    let mut i = start;
    while i < b.len() && (33..=126).contains(&b[i]) && !matches!(b[i], b'=' | b']' | b'"' | b' ') {
        i += 1;
    }
    if i == start || i - start > 32 {
        return Err(SyslogError::StructuredData {
            offset: offset + start,
            message: format!("{what} must be 1-32 printable characters"),
        });
    }
    Ok((text(&b[start..i]), i))
}

fn parse_sd(b: &[u8], offset: usize) -> Result<(Vec<SdElement>, &[u8]), SyslogError> {
    let err = |at: usize, m: &str| SyslogError::StructuredData {
        offset: offset + at,
        message: m.to_string(),
    };
    if b.first() == Some(&b'-') {
        return Ok((Vec::new(), &b[1..]));
    }
    if b.first() != Some(&b'[') {
        return Err(err(0, "expected `-` or `[`"));
    }
    let mut elements = Vec::new();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let (id, mut j) = sd_name(b, i + 1, "SD-ID", offset)?;
        let mut params = Vec::new();
        loop {
            match b.get(j) {
                Some(b']') => {
                    j += 1;
                    break;
                }
                Some(b' ') => {
                    let (name, k) = sd_name(b, j + 1, "PARAM-NAME", offset)?;
                    if b.get(k) != Some(&b'=') || b.get(k + 1) != Some(&b'"') {
                        return Err(err(k, "expected `=\"` after PARAM-NAME"));
                    }
                    let mut value = Vec::new();
                    let mut m = k + 2;
                    loop {
                        match b.get(m) {
                            None => return Err(err(m, "unterminated PARAM-VALUE")),
                            Some(b'\\') if matches!(b.get(m + 1), Some(b'"' | b'\\' | b']')) => {
                                value.push(b[m + 1]);
                                m += 2;
                            }
                            Some(b'"') => {
                                m += 1;
                                break;
                            }
                            Some(&c) => {
                                value.push(c);
                                m += 1;
                            }
                        }
                    }
                    let value =
                        String::from_utf8(value).map_err(|_| err(k, "PARAM-VALUE is not UTF-8"))?;
                    params.push((name, value));
                    j = m;
                }
                _ => return Err(err(j, "expected ` PARAM-NAME=\"...\"` or `]`")),
            }
        }
        elements.push(SdElement { id, params });
        i = j;
    }
    Ok((elements, &b[i..]))
}

fn parse_3164(pri: u8, b: &[u8]) -> SyslogMessage {
    let Some((timestamp, rest)) = bsd_timestamp(b) else {
        return bsd_content(pri, b);
    };
    let mut msg = bsd_content(pri, rest);
    msg.timestamp = Some(timestamp);
    // HOSTNAME: the next token, unless it already looks like a tag (`app:` / `app[1]:`).
    let (host, after_host) = token(rest);
    let looks_like_tag = host.ends_with(b":") || host.contains(&b'[');
    let content = if !host.is_empty() && !looks_like_tag && !after_host.is_empty() {
        msg.hostname = Some(text(host));
        after_host
    } else {
        rest
    };
    // TAG: up to 32 alphanumerics (and `-_./`), then `[pid]` and/or `:`.
    let tag_len = content
        .iter()
        .take(48)
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/')))
        .unwrap_or(content.len().min(48));
    let after_tag = &content[tag_len..];
    let (pid, after_pid) = match after_tag.strip_prefix(b"[") {
        Some(r) => match r.iter().position(|&c| c == b']') {
            Some(end) => (Some(text(&r[..end])), &r[end + 1..]),
            None => (None, after_tag),
        },
        None => (None, after_tag),
    };
    if tag_len > 0
        && let Some(body) = after_pid.strip_prefix(b":")
    {
        msg.app_name = Some(text(&content[..tag_len]));
        msg.proc_id = pid;
        msg.message = text(body.strip_prefix(b" ").unwrap_or(body));
    } else {
        msg.message = text(content);
    }
    msg
}

/// `Mmm dd hh:mm:ss ` (day space- or zero-padded), or an RFC 3339 stamp; returns the
/// stamp and the rest after its trailing space.
fn bsd_timestamp(b: &[u8]) -> Option<(String, &[u8])> {
    if b.len() >= 16
        && MONTHS.iter().any(|m| b.starts_with(m.as_bytes()))
        && b[3] == b' '
        && (b[4] == b' ' || b[4].is_ascii_digit())
        && b[5].is_ascii_digit()
        && b[6] == b' '
        && b[7..9].iter().all(u8::is_ascii_digit)
        && b[9] == b':'
        && b[10..12].iter().all(u8::is_ascii_digit)
        && b[12] == b':'
        && b[13..15].iter().all(u8::is_ascii_digit)
        && b[15] == b' '
    {
        return Some((text(&b[..15]), &b[16..]));
    }
    let (tok, rest) = token(b);
    let s = std::str::from_utf8(tok).ok()?;
    if s.len() >= 20 && s.as_bytes()[4] == b'-' && chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return Some((s.to_string(), rest));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_examples_from_the_rfc() {
        // RFC 5424 §6.5, example 1 (with BOM) and example 3 (structured data).
        let m = parse(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8").unwrap();
        assert_eq!(m.format, SyslogFormat::Rfc5424);
        assert_eq!((m.facility, m.severity), (4, 2));
        assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.proc_id, None);
        assert_eq!(m.msg_id.as_deref(), Some("ID47"));
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");

        let m = parse(br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event"#).unwrap();
        assert_eq!(m.structured_data.len(), 2);
        assert_eq!(m.structured_data[0].id, "exampleSDID@32473");
        assert_eq!(
            m.structured_data[0].params[1],
            ("eventSource".to_string(), "Application".to_string())
        );
        assert_eq!(
            m.structured_data[1].params,
            vec![("class".into(), "high".into())]
        );
        assert_eq!(m.message, "An application event");

        // Example 4: structured data only, no MSG; escapes in values.
        let m =
            parse(br#"<165>1 2003-10-11T22:14:15.003-07:00 host app 1234 - [x@1 a="q\"u\]o\\te"]"#)
                .unwrap();
        assert_eq!(m.structured_data[0].params[0].1, r#"q"u]o\te"#);
        assert_eq!(m.proc_id.as_deref(), Some("1234"));
        assert_eq!(m.message, "");
    }

    #[test]
    fn rfc3164_examples_from_the_rfc() {
        let m = parse(
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n",
        )
        .unwrap();
        assert_eq!(m.format, SyslogFormat::Rfc3164);
        assert_eq!(m.timestamp.as_deref(), Some("Oct 11 22:14:15"));
        assert_eq!(m.hostname.as_deref(), Some("mymachine"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");

        let m = parse(b"<13>Feb  5 17:32:18 10.0.0.99 sshd[4123]: Accepted publickey").unwrap();
        assert_eq!(m.timestamp.as_deref(), Some("Feb  5 17:32:18"));
        assert_eq!(m.hostname.as_deref(), Some("10.0.0.99"));
        assert_eq!(m.app_name.as_deref(), Some("sshd"));
        assert_eq!(m.proc_id.as_deref(), Some("4123"));

        // No timestamp: everything is content (RFC 3164 §4.3.2).
        let m = parse(b"<13>Use the BFG!").unwrap();
        assert_eq!(m.hostname, None);
        assert_eq!(m.message, "Use the BFG!");
        // No PRI at all: priority 13 (§4.3.3).
        let m =
            parse(b"Jun 02 16:34:55 zscaler-nss: LEEF:1.0|Zscaler|NSS-FW|5.5|Drop|src=1").unwrap();
        assert_eq!((m.facility, m.severity), (1, 5));
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name.as_deref(), Some("zscaler-nss"));
        assert!(m.message.starts_with("LEEF:1.0|"));
        // RFC 3339 stamp in BSD position.
        let m = parse(b"<86>2024-03-01T10:00:00.123+01:00 fw01 kernel: drop").unwrap();
        assert_eq!(m.hostname.as_deref(), Some("fw01"));
        assert_eq!(m.app_name.as_deref(), Some("kernel"));
    }

    #[test]
    fn malformed_messages() {
        for bad in [
            &b""[..],
            b"\r\n",
            b"<>x",
            b"<999>1 - - - - - -",
            b"<192>x",
            b"<012>x",
            b"<1a>x",
            b"<34",
            b"<34>1 2003-10-11 host app - - - msg",
            b"<34>1 2003-10-11T22:14:15.1234567Z host app - - - msg",
            b"<34>1 2003-10-11T22:14:15Z host app - - [x a=\"1\" msg",
            b"<34>1 2003-10-11T22:14:15Z host app - - [x a=1] msg",
            b"<34>1 2003-10-11T22:14:15Z host app - - nosd msg",
            b"<34>1 2003-10-11T22:14:15Z host",
            b"<34>",
        ] {
            assert!(
                parse(bad).is_err(),
                "{:?} should be malformed",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
