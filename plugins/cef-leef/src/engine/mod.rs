//! The CEF / LEEF normaliser: pure Rust with no host imports, so the same code runs
//! in the plugin (wasm32-wasip2) and natively (unit tests, the native benchmark).
//!
//! [`normalize`] takes one syslog-delivered line: an optional RFC 3164 / RFC 5424
//! header ([`syslog`]), then a CEF ([`cef`]) or LEEF ([`leef`]) record, and maps it
//! ([`map`]) to a [`Normalized`] event. A line that cannot be parsed, or whose
//! meaning is ambiguous, is a [`LineError`] naming the byte offset and the reason.
//!
//! This module tree refers to itself only through `super::` paths so that it can be
//! compiled on its own (`#[path = ".../engine/mod.rs"] mod engine;`), which is how
//! the native benchmark in `tests/benches/cef_leef.rs` runs exactly this code.

pub mod cef;
pub mod dict;
pub mod leef;
pub mod map;
pub mod options;
pub mod syslog;
pub mod text;
pub mod time;

use std::fmt;

use serde_json::{Map, Value};

pub use map::ObsKind;
pub use options::{FormatChoice, Kind, Options};
pub use time::Instant;

use map::{Header, Source};
use text::{Warnings, excerpt};

/// Why a line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// Byte offset in the line where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for LineError {}

/// One normalised event (the plugin glue turns it into the SDK's `Event`).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    /// Deduplication id: `cef-` / `leef-` and a 128-bit hash of the line.
    pub id: String,
    /// RFC 3339 UTC time: the record's own time, else its syslog header's, else `now`.
    pub time: String,
    /// Event kind (from the configuration).
    pub kind: Kind,
    /// OCSF severity id.
    pub severity_id: u8,
    /// Title: the CEF Name, or vendor, product and event id.
    pub title: String,
    /// Observables.
    pub observables: Vec<(ObsKind, String)>,
    /// OCSF-aligned attributes.
    pub attributes: Map<String, Value>,
    /// The line as received (without its line terminator).
    pub raw: String,
}

/// Normalises one line. `now` stands for the receipt time: the event time when the
/// line carries none, and the reference for year-less syslog / CEF dates.
pub fn normalize(opts: &Options, input: &str, now: Instant) -> Result<Normalized, LineError> {
    let line = input.trim_end_matches(['\n', '\r']);
    if line.len() > opts.max_line_bytes {
        return Err(LineError {
            offset: opts.max_line_bytes,
            reason: format!(
                "line of {} bytes exceeds max_line_bytes ({})",
                line.len(),
                opts.max_line_bytes
            ),
        });
    }
    let lead = line.len() - line.trim_start_matches([' ', '\t', '\u{feff}']).len();
    let body = line[lead..].trim_end_matches([' ', '\t', '\r', '\n']);
    if body.is_empty() {
        return Err(LineError {
            offset: 0,
            reason: "empty line".into(),
        });
    }
    check_single_line(body, lead)?;

    let mut warnings = Warnings::default();
    let split = syslog::split(body, &mut warnings).map_err(|e| LineError {
        offset: e.offset + lead,
        ..e
    })?;
    let rec = &body[split.start..];
    let base = lead + split.start;
    let (mapped, title, id_prefix) = if rec.starts_with("CEF:") {
        if opts.format == FormatChoice::Leef {
            return Err(LineError {
                offset: base,
                reason: "CEF record, but this connector is configured with `format: leef`".into(),
            });
        }
        let c = cef::parse(rec, base, &mut warnings)?;
        let header = Header {
            vendor: &c.vendor,
            product: &c.product,
            version: &c.device_version,
            event_code: &c.signature_id,
            name: Some(&c.name),
            severity: Some(&c.severity),
            log_name: "CEF",
            log_version: c.version.to_string().into(),
        };
        let mapped = map::map_record(
            Source::Cef,
            &header,
            &c.extensions,
            split.syslog.as_ref(),
            opts,
            now,
            &mut warnings,
        );
        let title = if c.name.trim().is_empty() {
            join_title("CEF", &[&c.vendor, &c.product, &c.signature_id])
        } else {
            c.name.to_string()
        };
        (mapped, title, "cef-")
    } else {
        if opts.format == FormatChoice::Cef {
            return Err(LineError {
                offset: base,
                reason: "LEEF record, but this connector is configured with `format: cef`".into(),
            });
        }
        let l = leef::parse(rec, base, &mut warnings)?;
        let header = Header {
            vendor: &l.vendor,
            product: &l.product,
            version: &l.product_version,
            event_code: &l.event_id,
            name: None,
            severity: None,
            log_name: "LEEF",
            log_version: l.version.into(),
        };
        let mapped = map::map_record(
            Source::Leef,
            &header,
            &l.attributes,
            split.syslog.as_ref(),
            opts,
            now,
            &mut warnings,
        );
        let title = join_title("LEEF", &[&l.vendor, &l.product, &l.event_id]);
        (mapped, title, "leef-")
    };
    if opts.strict && !warnings.is_empty() {
        return Err(LineError {
            offset: base,
            reason: format!(
                "strict mode refuses a line with warnings: {}",
                warnings.into_vec().join("; ")
            ),
        });
    }
    let mut attributes = mapped.attributes;
    if !warnings.is_empty() {
        attributes.insert(
            "warnings".into(),
            Value::Array(warnings.into_vec().into_iter().map(Value::String).collect()),
        );
    }
    let mut id = String::with_capacity(37);
    id.push_str(id_prefix);
    id.push_str(&text::hash128_hex(line.as_bytes()));
    Ok(Normalized {
        id,
        time: mapped.time.unwrap_or(now).to_rfc3339(),
        kind: opts.kind,
        severity_id: mapped.severity_id,
        title,
        observables: mapped.observables,
        attributes,
        raw: line.to_string(),
    })
}

/// The non-empty parts joined by spaces; `"<log name> event"` when all are empty.
fn join_title(log_name: &str, parts: &[&str]) -> String {
    let mut t = String::new();
    for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if !t.is_empty() {
            t.push(' ');
        }
        t.push_str(p);
    }
    if t.is_empty() {
        t = format!("{log_name} event");
    }
    t
}

/// One input is one line: a line break followed by another record means the
/// sender batched several events into one input, which is refused rather than read
/// as one event with a multi-line value. (Line breaks inside a value, with no
/// record after them, are kept.)
fn check_single_line(body: &str, lead: usize) -> Result<(), LineError> {
    let mut from = 0;
    while let Some(nl) = body[from..].find('\n') {
        let at = from + nl + 1;
        let next = &body[at..];
        let next_line = next.split('\n').next().unwrap_or("");
        if syslog::find_record(next_line).is_some() {
            return Err(LineError {
                offset: lead + at,
                reason: format!(
                    "the input holds more than one line: the line starting at byte {} (`{}`) is \
                     another record; send one line per input",
                    lead + at,
                    excerpt(next_line.trim(), 30)
                ),
            });
        }
        from = at;
    }
    Ok(())
}
