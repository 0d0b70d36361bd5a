//! Timestamps: parse ISO 8601 / RFC 3339 and epoch values into UTC, format as RFC 3339.
//!
//! Nothing here reads a wall clock; the current time is only available through
//! [`crate::clock`] (the host's `clock` import).
//!
//! ```
//! use portcullis_sdk::time::Timestamp;
//!
//! let t = Timestamp::parse("2024-03-01T12:30:00.250+02:00").unwrap();
//! assert_eq!(t.to_rfc3339(), "2024-03-01T10:30:00.250Z");
//! assert_eq!(Timestamp::from_epoch(1_709_289_000).unwrap(), Timestamp::parse("2024-03-01T10:30:00Z").unwrap());
//! ```

use std::fmt;
use std::str::FromStr;

/// Seconds from 0000-01-01T00:00:00Z to the Unix epoch.
const MIN_SECS: i64 = -62_167_219_200;
/// Seconds from the Unix epoch to 9999-12-31T23:59:59Z.
const MAX_SECS: i64 = 253_402_300_799;
/// Epoch values with an absolute value at or above this are taken as milliseconds by
/// [`Timestamp::from_epoch`] (1e11 seconds is in the year 5138; 1e11 ms is in 1973).
const EPOCH_MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// An instant in UTC with nanosecond precision, between the years 0000 and 9999
/// (the range RFC 3339 can express).
///
/// Ordering is chronological. Serialised with serde as an RFC 3339 string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// Why a value could not be turned into a [`Timestamp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeError {
    message: String,
}

impl TimeError {
    fn new(message: impl Into<String>) -> Self {
        TimeError {
            message: message.into(),
        }
    }
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TimeError {}

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };

    /// A timestamp from seconds and nanoseconds since the Unix epoch.
    pub fn from_unix(secs: i64, nanos: u32) -> Result<Self, TimeError> {
        if nanos >= 1_000_000_000 {
            return Err(TimeError::new("nanoseconds out of range"));
        }
        if !(MIN_SECS..=MAX_SECS).contains(&secs) {
            return Err(TimeError::new(format!(
                "{secs} seconds since the epoch is outside the years 0000-9999"
            )));
        }
        Ok(Timestamp { secs, nanos })
    }

    /// A timestamp from whole seconds since the Unix epoch.
    pub fn from_unix_secs(secs: i64) -> Result<Self, TimeError> {
        Self::from_unix(secs, 0)
    }

    /// A timestamp from milliseconds since the Unix epoch.
    pub fn from_unix_millis(millis: i64) -> Result<Self, TimeError> {
        let secs = millis.div_euclid(1000);
        let nanos = u32::try_from(millis.rem_euclid(1000) * 1_000_000)
            .map_err(|_| TimeError::new("milliseconds out of range"))?;
        Self::from_unix(secs, nanos)
    }

    /// A timestamp from fractional seconds since the Unix epoch (rounded to the microsecond).
    pub fn from_unix_secs_f64(secs: f64) -> Result<Self, TimeError> {
        if !secs.is_finite() || secs < MIN_SECS as f64 || secs > MAX_SECS as f64 + 1.0 {
            return Err(TimeError::new(format!(
                "{secs} seconds since the epoch is outside the years 0000-9999"
            )));
        }
        let micros = (secs * 1e6).round() as i64;
        let whole = micros.div_euclid(1_000_000);
        let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000)
            .map_err(|_| TimeError::new("fraction out of range"))?;
        Self::from_unix(whole, nanos)
    }

    /// A timestamp from an epoch value in seconds or milliseconds: values whose absolute
    /// value is at least 10^11 are taken as milliseconds, smaller ones as seconds.
    pub fn from_epoch(value: i64) -> Result<Self, TimeError> {
        if value.unsigned_abs() >= EPOCH_MILLIS_THRESHOLD.unsigned_abs() {
            Self::from_unix_millis(value)
        } else {
            Self::from_unix_secs(value)
        }
    }

    /// A timestamp from a JSON value: a string in ISO 8601 / RFC 3339 form or holding
    /// an epoch number, or a JSON number of epoch seconds or milliseconds (see
    /// [`Timestamp::from_epoch`]; fractional numbers are seconds).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, TimeError> {
        match value {
            serde_json::Value::String(s) => Self::parse_any(s),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::from_epoch(i)
                } else if let Some(f) = n.as_f64() {
                    if f.abs() >= EPOCH_MILLIS_THRESHOLD as f64 {
                        Self::from_unix_secs_f64(f / 1000.0)
                    } else {
                        Self::from_unix_secs_f64(f)
                    }
                } else {
                    Err(TimeError::new(format!("{n} is not a usable epoch value")))
                }
            }
            other => Err(TimeError::new(format!(
                "expected a time string or epoch number, found {}",
                crate::json_type_name(other)
            ))),
        }
    }

    /// Parses an ISO 8601 / RFC 3339 string, or a string holding an epoch number.
    pub fn parse_any(s: &str) -> Result<Self, TimeError> {
        let t = s.trim();
        if !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            if let Ok(i) = t.parse::<i64>() {
                return Self::from_epoch(i);
            }
            if t.contains('.')
                && !t.contains('-')
                && let Ok(f) = t.parse::<f64>()
            {
                return Self::from_json(&serde_json::json!(f));
            }
        }
        Self::parse(t)
    }

    /// Parses an ISO 8601 / RFC 3339 date-time and converts it to UTC.
    ///
    /// Accepted: extended (`2024-01-31T10:20:30Z`) and basic (`20240131T102030Z`)
    /// formats; `T`, `t` or a space between date and time; seconds optional; a
    /// fraction of any length after `.` or `,` (kept to the nanosecond); offsets `Z`,
    /// `z`, `±HH:MM`, `±HHMM`, `±HH`; a date alone (midnight). A date-time without an
    /// offset is taken as UTC. `24:00:00` is the end of the day and a leap second
    /// `:60` is carried into the next minute.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let mut p = Parser::new(s.trim());
        let ts = p
            .datetime()
            .map_err(|e| TimeError::new(format!("invalid ISO 8601 / RFC 3339 time {s:?}: {e}")))?;
        Ok(ts)
    }

    /// Parses an HTTP date (RFC 9110 §5.6.7): IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
    /// the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
    /// (`Sun Nov  6 08:49:37 1994`).
    pub fn parse_http_date(s: &str) -> Result<Self, TimeError> {
        parse_http_date(s.trim()).ok_or_else(|| TimeError::new(format!("invalid HTTP date {s:?}")))
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// Milliseconds since the Unix epoch (rounded down).
    pub fn unix_millis(&self) -> i64 {
        self.secs * 1000 + i64::from(self.nanos / 1_000_000)
    }

    /// Nanoseconds past [`Timestamp::unix_secs`].
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// This instant moved by `millis` milliseconds, when the result stays in range.
    pub fn checked_add_millis(&self, millis: i64) -> Option<Self> {
        let total = i128::from(self.secs) * 1_000_000_000
            + i128::from(self.nanos)
            + i128::from(millis) * 1_000_000;
        let secs = i64::try_from(total.div_euclid(1_000_000_000)).ok()?;
        let nanos = u32::try_from(total.rem_euclid(1_000_000_000)).ok()?;
        Self::from_unix(secs, nanos).ok()
    }

    /// Signed milliseconds from `earlier` to `self`.
    pub fn millis_since(&self, earlier: &Timestamp) -> i64 {
        self.unix_millis() - earlier.unix_millis()
    }

    /// RFC 3339 in UTC with the shortest exact fraction: none, 3, 6 or 9 digits
    /// (`2024-01-31T10:20:30Z`, `2024-01-31T10:20:30.500Z`).
    pub fn to_rfc3339(&self) -> String {
        let digits = if self.nanos == 0 {
            0
        } else if self.nanos.is_multiple_of(1_000_000) {
            3
        } else if self.nanos.is_multiple_of(1000) {
            6
        } else {
            9
        };
        self.format(digits)
    }

    /// RFC 3339 in UTC with exactly three fraction digits (`2024-01-31T10:20:30.000Z`),
    /// the form of the host's `clock.now`.
    pub fn to_rfc3339_millis(&self) -> String {
        self.format(3)
    }

    fn format(&self, digits: u32) -> String {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut out = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
        if digits > 0 {
            let frac = self.nanos / 10u32.pow(9 - digits);
            out.push_str(&format!(".{frac:0width$}", width = digits as usize));
        }
        out.push('Z');
        out
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Builds a timestamp from validated calendar fields and an offset east of UTC.
#[allow(clippy::too_many_arguments)]
fn from_fields(
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    nanos: u32,
    offset_secs: i64,
) -> Result<Timestamp, TimeError> {
    if !(1..=12).contains(&mo) {
        return Err(TimeError::new(format!("month {mo} out of range")));
    }
    if d == 0 || d > days_in_month(y, mo) {
        return Err(TimeError::new(format!("day {d} out of range")));
    }
    if h > 24 || (h == 24 && (mi != 0 || s != 0 || nanos != 0)) {
        return Err(TimeError::new(format!("hour {h} out of range")));
    }
    if mi > 59 {
        return Err(TimeError::new(format!("minute {mi} out of range")));
    }
    if s > 60 {
        return Err(TimeError::new(format!("second {s} out of range")));
    }
    let secs = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s)
        - offset_secs;
    Timestamp::from_unix(secs, nanos)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn digits(&mut self, n: usize, what: &str) -> Result<u32, String> {
        let end = self.pos + n;
        let slice = self
            .s
            .get(self.pos..end)
            .ok_or_else(|| format!("expected {n} digits for the {what}"))?;
        let mut v: u32 = 0;
        for &b in slice {
            if !b.is_ascii_digit() {
                return Err(format!("expected {n} digits for the {what}"));
            }
            v = v * 10 + u32::from(b - b'0');
        }
        self.pos = end;
        Ok(v)
    }

    fn at_digit(&self) -> bool {
        self.peek().is_some_and(|b| b.is_ascii_digit())
    }

    fn datetime(&mut self) -> Result<Timestamp, String> {
        let y = i64::from(self.digits(4, "year")?);
        let extended = self.eat(b'-');
        let mo = self.digits(2, "month")?;
        if extended && !self.eat(b'-') {
            return Err("expected '-' after the month".into());
        }
        let d = self.digits(2, "day")?;
        if self.peek().is_none() {
            return from_fields(y, mo, d, 0, 0, 0, 0, 0).map_err(|e| e.message);
        }
        match self.peek() {
            Some(b'T' | b't' | b' ') => self.pos += 1,
            _ => return Err("expected 'T' between date and time".into()),
        }
        let h = self.digits(2, "hour")?;
        let colon = self.eat(b':');
        let mi = self.digits(2, "minute")?;
        let mut s = 0;
        if (colon && self.eat(b':')) || (!colon && self.at_digit()) {
            s = self.digits(2, "second")?;
        }
        let mut nanos = 0u32;
        if self.eat(b'.') || self.eat(b',') {
            if !self.at_digit() {
                return Err("expected digits after the decimal sign".into());
            }
            let mut scale = 100_000_000u32;
            while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
                nanos += u32::from(b - b'0') * scale;
                scale /= 10;
                self.pos += 1;
            }
        }
        let offset = match self.peek() {
            None => 0,
            Some(b'Z' | b'z') => {
                self.pos += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                self.pos += 1;
                let oh = self.digits(2, "offset hours")?;
                let om = if self.eat(b':') || self.at_digit() {
                    self.digits(2, "offset minutes")?
                } else {
                    0
                };
                if oh > 23 || om > 59 {
                    return Err("offset out of range".into());
                }
                let secs = i64::from(oh * 3600 + om * 60);
                if sign == b'-' { -secs } else { secs }
            }
            Some(_) => return Err("unexpected character after the time".into()),
        };
        if self.pos != self.s.len() {
            return Err("unexpected trailing characters".into());
        }
        from_fields(y, mo, d, h, mi, s, nanos, offset).map_err(|e| e.message)
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_number(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == lower)
        .and_then(|i| u32::try_from(i + 1).ok())
}

fn parse_hms(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(':');
    let h = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let sec = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((h, m, sec))
}

fn parse_http_date(s: &str) -> Option<Timestamp> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let (y, mo, d, hms) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, mo, y, hms, "GMT"] => (
            y.parse::<i64>().ok()?,
            month_number(mo)?,
            d.parse().ok()?,
            *hms,
        ),
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, hms, "GMT"] => {
            let mut it = dmy.split('-');
            let d = it.next()?.parse().ok()?;
            let mo = month_number(it.next()?)?;
            let yy: i64 = it.next()?.parse().ok()?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past
            // century; without a clock, 00-69 are read as 20xx and 70-99 as 19xx.
            let y = if yy >= 100 {
                yy
            } else if yy < 70 {
                2000 + yy
            } else {
                1900 + yy
            };
            (y, mo, d, *hms)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, mo, d, hms, y] => (
            y.parse::<i64>().ok()?,
            month_number(mo)?,
            d.parse().ok()?,
            *hms,
        ),
        _ => return None,
    };
    let (h, mi, sec) = parse_hms(hms)?;
    from_fields(y, mo, d, h, mi, sec, 0, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Timestamp {
        match Timestamp::parse(s) {
            Ok(t) => t,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Timestamp::UNIX_EPOCH);
        assert_eq!(p("2024-01-31T10:20:30Z").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31t10:20:30z").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31 10:20:30Z").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31T12:20:30+02:00").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31T05:20:30-05:00").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31T05:50:30-0430").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31T15:20:30+05").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31T10:20:30+00:00").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31T10:20:30-00:00").unix_secs(), 1_706_696_430);
        // No offset: UTC.
        assert_eq!(p("2024-01-31T10:20:30").unix_secs(), 1_706_696_430);
        // Basic format and minutes-only.
        assert_eq!(p("20240131T102030Z").unix_secs(), 1_706_696_430);
        assert_eq!(p("2024-01-31T10:20Z").unix_secs(), 1_706_696_400);
        // Date only.
        assert_eq!(p("2024-01-31").unix_secs(), 1_706_659_200);
    }

    #[test]
    fn fractions() {
        let t = p("2024-01-31T10:20:30.123456789Z");
        assert_eq!(t.subsec_nanos(), 123_456_789);
        assert_eq!(t.to_rfc3339(), "2024-01-31T10:20:30.123456789Z");
        assert_eq!(t.to_rfc3339_millis(), "2024-01-31T10:20:30.123Z");
        assert_eq!(
            p("2024-01-31T10:20:30.5Z").to_rfc3339(),
            "2024-01-31T10:20:30.500Z"
        );
        assert_eq!(p("2024-01-31T10:20:30,25Z").subsec_nanos(), 250_000_000);
        assert_eq!(
            p("2024-01-31T10:20:30.123456Z").to_rfc3339(),
            "2024-01-31T10:20:30.123456Z"
        );
        // Digits past nanoseconds are dropped.
        assert_eq!(
            p("2024-01-31T10:20:30.1234567891Z").subsec_nanos(),
            123_456_789
        );
        // NVD style: milliseconds, no offset.
        assert_eq!(
            p("2024-04-12T08:15:06.230").to_rfc3339(),
            "2024-04-12T08:15:06.230Z"
        );
    }

    #[test]
    fn offsets_cross_day_and_year() {
        assert_eq!(
            p("2024-01-01T01:00:00+02:00").to_rfc3339(),
            "2023-12-31T23:00:00Z"
        );
        assert_eq!(
            p("2023-12-31T23:30:00-01:00").to_rfc3339(),
            "2024-01-01T00:30:00Z"
        );
        assert_eq!(
            p("2024-02-29T00:00:00Z").to_rfc3339(),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            p("2024-01-31T24:00:00Z").to_rfc3339(),
            "2024-02-01T00:00:00Z"
        );
        assert_eq!(
            p("2016-12-31T23:59:60Z").to_rfc3339(),
            "2017-01-01T00:00:00Z"
        );
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "",
            "2024",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-32T00:00:00Z",
            "2024-01-01T25:00:00Z",
            "2024-01-01T24:00:01Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:61Z",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-01X00:00:00Z",
            "yesterday",
            "2024-01-01T00:00:00 UTC",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn roundtrip_across_range() {
        for s in [
            "0000-01-01T00:00:00Z",
            "0001-03-01T00:00:00Z",
            "1600-02-29T12:00:00Z",
            "1899-12-31T23:59:59Z",
            "1969-12-31T23:59:59.999Z",
            "2000-02-29T00:00:00Z",
            "2100-03-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            assert_eq!(p(s).to_rfc3339(), s);
        }
        assert_eq!(p("1969-12-31T23:59:59.999Z").unix_millis(), -1);
    }

    #[test]
    fn epochs() {
        let t = p("2024-01-31T10:20:30Z");
        assert_eq!(Timestamp::from_unix_secs(1_706_696_430), Ok(t));
        assert_eq!(Timestamp::from_unix_millis(1_706_696_430_000), Ok(t));
        assert_eq!(Timestamp::from_epoch(1_706_696_430), Ok(t));
        assert_eq!(Timestamp::from_epoch(1_706_696_430_000), Ok(t));
        assert_eq!(
            Timestamp::from_unix_millis(-1).map(|t| t.to_rfc3339()),
            Ok("1969-12-31T23:59:59.999Z".to_string())
        );
        assert_eq!(
            Timestamp::from_unix_secs_f64(1_706_696_430.25).map(|t| t.to_rfc3339()),
            Ok("2024-01-31T10:20:30.250Z".to_string())
        );
        assert!(Timestamp::from_unix_secs(i64::MAX).is_err());
        assert!(Timestamp::from_unix_millis(i64::MIN).is_err());
        assert!(Timestamp::from_unix_secs_f64(f64::NAN).is_err());
        assert_eq!(t.unix_millis(), 1_706_696_430_000);
    }

    #[test]
    fn from_json_values() {
        use serde_json::json;
        let t = p("2024-01-31T10:20:30Z");
        assert_eq!(Timestamp::from_json(&json!("2024-01-31T10:20:30Z")), Ok(t));
        assert_eq!(Timestamp::from_json(&json!(1_706_696_430)), Ok(t));
        assert_eq!(Timestamp::from_json(&json!(1_706_696_430_000i64)), Ok(t));
        assert_eq!(Timestamp::from_json(&json!("1706696430")), Ok(t));
        assert_eq!(Timestamp::from_json(&json!("1706696430000")), Ok(t));
        assert_eq!(
            Timestamp::from_json(&json!(1_706_696_430.5)).map(|t| t.to_rfc3339()),
            Ok("2024-01-31T10:20:30.500Z".to_string())
        );
        assert_eq!(
            Timestamp::from_json(&json!("1706696430.5")).map(|t| t.to_rfc3339()),
            Ok("2024-01-31T10:20:30.500Z".to_string())
        );
        assert!(Timestamp::from_json(&json!(null)).is_err());
        assert!(Timestamp::from_json(&json!({"a": 1})).is_err());
        assert!(Timestamp::from_json(&json!("not a time")).is_err());
    }

    #[test]
    fn http_dates() {
        let t = p("1994-11-06T08:49:37Z");
        assert_eq!(
            Timestamp::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Ok(t)
        );
        assert_eq!(
            Timestamp::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Ok(t)
        );
        assert_eq!(
            Timestamp::parse_http_date("Sun Nov  6 08:49:37 1994"),
            Ok(t)
        );
        assert!(Timestamp::parse_http_date("Sun, 06 Nov 1994 08:49:37 PST").is_err());
        assert!(Timestamp::parse_http_date("120").is_err());
    }

    #[test]
    fn arithmetic_and_order() {
        let t = p("2024-01-31T10:20:30Z");
        let later = t.checked_add_millis(1500).map(|t| t.to_rfc3339());
        assert_eq!(later.as_deref(), Some("2024-01-31T10:20:31.500Z"));
        assert!(p("2024-01-31T10:20:30.001Z") > t);
        assert_eq!(p("2024-01-31T10:20:31Z").millis_since(&t), 1000);
        assert!(Timestamp::UNIX_EPOCH.checked_add_millis(i64::MAX).is_none());
    }

    #[test]
    fn serde_as_string() {
        let t = p("2024-01-31T10:20:30.5Z");
        let s = serde_json::to_string(&t).unwrap_or_default();
        assert_eq!(s, "\"2024-01-31T10:20:30.500Z\"");
        let back: Result<Timestamp, _> = serde_json::from_str(&s);
        assert_eq!(back.ok(), Some(t));
    }
}
