//! Instants, calendar arithmetic, RFC 3339 output and the timestamp forms found in
//! CEF, LEEF and syslog: epoch milliseconds, the eight CEF date forms
//! (`MMM dd [yyyy] HH:mm:ss[.SSS] [zzz]`), ISO 8601 / RFC 3339, RFC 3164 syslog
//! stamps and LEEF `devTimeFormat` patterns (a Java `SimpleDateFormat` subset).
//!
//! No time-zone database is available in the sandbox: zones are UTC offsets, `Z`,
//! `UTC`/`GMT`/`UT`, `GMT±hh:mm` and a few unambiguous abbreviations (US zones, CET,
//! CEST); anything else is reported by the caller.

/// An instant in UTC with nanosecond precision (years 0000-9999).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds past `secs`.
    pub nanos: u32,
}

const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

impl Instant {
    /// The instant `secs` seconds and `nanos` nanoseconds after the epoch, if in range.
    pub fn new(secs: i64, nanos: u32) -> Option<Instant> {
        ((MIN_SECS..=MAX_SECS).contains(&secs) && nanos < 1_000_000_000)
            .then_some(Instant { secs, nanos })
    }

    /// The instant `ms` milliseconds after the epoch, if in range.
    pub fn from_millis(ms: i64) -> Option<Instant> {
        let nanos = u32::try_from(ms.rem_euclid(1000) * 1_000_000).ok()?;
        Instant::new(ms.div_euclid(1000), nanos)
    }

    /// Milliseconds since the epoch (rounded down).
    pub fn millis(&self) -> i64 {
        self.secs * 1000 + i64::from(self.nanos / 1_000_000)
    }

    /// The calendar year (UTC).
    pub fn year(&self) -> i64 {
        civil_from_days(self.secs.div_euclid(86_400)).0
    }

    /// RFC 3339 in UTC with the shortest exact fraction (none, 3, 6 or 9 digits).
    pub fn to_rfc3339(self) -> String {
        let mut out = String::with_capacity(30);
        self.write_rfc3339(&mut out);
        out
    }

    /// Appends [`Instant::to_rfc3339`] to `out`.
    pub fn write_rfc3339(&self, out: &mut String) {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        push_num(out, y, 4);
        out.push('-');
        push_num(out, i64::from(m), 2);
        out.push('-');
        push_num(out, i64::from(d), 2);
        out.push('T');
        push_num(out, sod / 3600, 2);
        out.push(':');
        push_num(out, (sod / 60) % 60, 2);
        out.push(':');
        push_num(out, sod % 60, 2);
        if self.nanos != 0 {
            out.push('.');
            let (value, width) = if self.nanos.is_multiple_of(1_000_000) {
                (self.nanos / 1_000_000, 3)
            } else if self.nanos.is_multiple_of(1000) {
                (self.nanos / 1000, 6)
            } else {
                (self.nanos, 9)
            };
            push_num(out, i64::from(value), width);
        }
        out.push('Z');
    }
}

/// Appends `v` (non-negative) zero-padded to `width` digits.
fn push_num(out: &mut String, v: i64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    while n > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let digits = buf.len() - i;
    for _ in digits..width {
        out.push('0');
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Calendar fields of a local time, validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// Year (`None`: not given, to be inferred).
    pub year: Option<i64>,
    /// Month 1-12.
    pub month: u32,
    /// Day 1-31.
    pub day: u32,
    /// Hour 0-23 (24 only with 00:00).
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second (60 is carried into the next minute).
    pub second: u32,
    /// Nanoseconds.
    pub nanos: u32,
    /// Offset east of UTC in seconds, when the text carried a zone.
    pub offset: Option<i32>,
}

impl Fields {
    /// The instant, with `default_offset` for a missing zone and the year inferred
    /// from `now` for a missing year (the most recent such date not more than a week
    /// in the future, as for RFC 3164 stamps received around New Year).
    pub fn resolve(&self, default_offset: i32, now: Instant) -> Result<Instant, String> {
        let offset = i64::from(self.offset.unwrap_or(default_offset));
        let at = |year: i64| -> Result<Instant, String> {
            if !(1..=12).contains(&self.month) {
                return Err(format!("month {} out of range", self.month));
            }
            if self.day == 0 || self.day > days_in_month(year, self.month) {
                return Err(format!(
                    "day {} out of range for month {}",
                    self.day, self.month
                ));
            }
            let end_of_day =
                self.hour == 24 && self.minute == 0 && self.second == 0 && self.nanos == 0;
            if (self.hour > 23 && !end_of_day) || self.minute > 59 || self.second > 60 {
                return Err(format!(
                    "time {:02}:{:02}:{:02} out of range",
                    self.hour, self.minute, self.second
                ));
            }
            let secs = days_from_civil(year, self.month, self.day) * 86_400
                + i64::from(self.hour) * 3600
                + i64::from(self.minute) * 60
                + i64::from(self.second)
                - offset;
            Instant::new(secs, self.nanos).ok_or_else(|| "outside the years 0000-9999".to_string())
        };
        match self.year {
            Some(y) => at(y),
            None => {
                let this_year = at(now.year())?;
                if this_year.secs > now.secs + 7 * 86_400 {
                    at(now.year() - 1)
                } else {
                    Ok(this_year)
                }
            }
        }
    }
}

/// Month number of an English month name or its three-letter abbreviation
/// (ASCII case-insensitive).
pub fn month_number(name: &str) -> Option<u32> {
    const NAMES: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if name.len() < 3 {
        return None;
    }
    NAMES
        .iter()
        .position(|full| {
            (name.len() == 3 && full[..3].eq_ignore_ascii_case(name))
                || full.eq_ignore_ascii_case(name)
                || (name.len() == 4 && name.eq_ignore_ascii_case("sept") && *full == "september")
        })
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// A UTC offset in seconds from a zone designator: `Z`, `UTC`, `GMT`, `UT`,
/// `±hh`, `±hhmm`, `±hh:mm`, `GMT±h[h][:mm]`, `UTC±...`, or a few unambiguous
/// abbreviations. `None` for anything else.
pub fn parse_zone(s: &str) -> Option<i32> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let upper_eq = |a: &str| t.eq_ignore_ascii_case(a);
    if upper_eq("Z")
        || upper_eq("UTC")
        || upper_eq("GMT")
        || upper_eq("UT")
        || upper_eq("Etc/UTC")
        || upper_eq("Etc/GMT")
    {
        return Some(0);
    }
    const ABBREVIATIONS: [(&str, i32); 10] = [
        ("EST", -5),
        ("EDT", -4),
        ("CST", -6),
        ("CDT", -5),
        ("MST", -7),
        ("MDT", -6),
        ("PST", -8),
        ("PDT", -7),
        ("CET", 1),
        ("CEST", 2),
    ];
    if let Some((_, h)) = ABBREVIATIONS.iter().find(|(a, _)| upper_eq(a)) {
        return Some(h * 3600);
    }
    let b = t.as_bytes();
    let rest = if b.len() > 3
        && (b[..3].eq_ignore_ascii_case(b"GMT") || b[..3].eq_ignore_ascii_case(b"UTC"))
    {
        // The first three bytes are ASCII, so byte 3 is a character boundary.
        t.get(3..).unwrap_or("")
    } else {
        t
    };
    parse_numeric_offset(rest)
}

/// `±hh`, `±h`, `±hhmm`, `±hh:mm`, `±h:mm`.
fn parse_numeric_offset(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &s[1..];
    if !body.bytes().all(|c| c.is_ascii_digit() || c == b':') {
        return None;
    }
    // ASCII from here on: byte offsets are character boundaries.
    let (h, m) = if let Some((h, m)) = body.split_once(':') {
        (h, m)
    } else if body.len() == 4 {
        body.split_at(2)
    } else {
        (body, "0")
    };
    if h.is_empty() || h.len() > 2 || m.is_empty() || m.len() > 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// A tiny cursor over ASCII text.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(s: &'a str) -> Self {
        Cur {
            b: s.as_bytes(),
            i: 0,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    /// Between `min` and `max` digits.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut v: u32 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        if self.i - start >= min {
            Some(v)
        } else {
            self.i = start;
            None
        }
    }
    /// A fraction after `.` or `,`: nanoseconds (digits beyond 9 are dropped).
    fn fraction(&mut self) -> Option<u32> {
        let start = self.i;
        let mut nanos: u32 = 0;
        let mut n = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            if n < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
                n += 1;
            }
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
        Some(nanos)
    }
    fn skip_spaces(&mut self) -> usize {
        let start = self.i;
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        self.i - start
    }
    fn rest(&self) -> &'a str {
        std::str::from_utf8(&self.b[self.i.min(self.b.len())..]).unwrap_or("")
    }
    fn word(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.b[start..self.i]).unwrap_or("")
    }
}

/// `HH:mm[:ss[.fff]]` into `f`.
fn clock(c: &mut Cur<'_>, f: &mut Fields, seconds_required: bool) -> Option<()> {
    f.hour = c.digits(1, 2)?;
    if !c.eat(b':') {
        return None;
    }
    f.minute = c.digits(2, 2)?;
    if c.eat(b':') {
        f.second = c.digits(2, 2)?;
        if c.eat(b'.') || c.eat(b',') {
            f.nanos = c.fraction()?;
        }
    } else if seconds_required {
        return None;
    }
    Some(())
}

/// ISO 8601 / RFC 3339: `yyyy-MM-dd[(T|t| )HH:mm[:ss[.f]]][Z|±hh[:mm]]`.
pub fn parse_iso(s: &str) -> Option<Fields> {
    let mut c = Cur::new(s.trim());
    let mut f = Fields {
        year: Some(i64::from(c.digits(4, 4)?)),
        ..Fields::default()
    };
    if !c.eat(b'-') {
        return None;
    }
    f.month = c.digits(2, 2)?;
    if !c.eat(b'-') {
        return None;
    }
    f.day = c.digits(2, 2)?;
    if c.done() {
        return Some(f);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    clock(&mut c, &mut f, false)?;
    let zone = c.rest();
    if !zone.is_empty() {
        f.offset = Some(parse_zone(zone.trim_start())?);
    }
    Some(f)
}

/// The CEF date forms: `MMM dd[ yyyy] HH:mm:ss[.SSS][ zzz]` (day padded with a
/// space or zero, 1-9 fraction digits).
pub fn parse_cef_date(s: &str) -> Option<Fields> {
    let mut c = Cur::new(s.trim());
    let month = month_number(c.word())?;
    if c.skip_spaces() == 0 {
        return None;
    }
    let mut f = Fields {
        month,
        day: c.digits(1, 2)?,
        ..Fields::default()
    };
    if c.skip_spaces() == 0 {
        return None;
    }
    // A year, or straight to the clock.
    let save = c.i;
    if let Some(y) = c.digits(4, 4) {
        if c.peek() == Some(b' ') {
            f.year = Some(i64::from(y));
            c.skip_spaces();
        } else {
            c.i = save;
        }
    }
    clock(&mut c, &mut f, true)?;
    if c.skip_spaces() > 0 && !c.done() {
        f.offset = Some(parse_zone(c.rest())?);
    } else if !c.done() {
        return None;
    }
    Some(f)
}

/// An unsigned or signed integer of epoch milliseconds (a plain digit string).
pub fn parse_epoch_millis(s: &str) -> Option<Instant> {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Instant::from_millis(t.parse().ok()?)
}

/// A CEF timestamp (`rt`, `start`, `end`, `art`, `deviceCustomDate*`, ...): epoch
/// milliseconds or a CEF date form, and (leniently) ISO 8601. Returns the instant and
/// whether the text carried its own zone.
pub fn parse_cef_time(
    s: &str,
    default_offset: i32,
    now: Instant,
) -> Result<(Instant, bool), String> {
    if let Some(t) = parse_epoch_millis(s) {
        return Ok((t, true));
    }
    let fields = parse_cef_date(s).or_else(|| parse_iso(s)).ok_or_else(|| {
        "not epoch milliseconds, a CEF date (MMM dd [yyyy] HH:mm:ss[.SSS] [zone]) or ISO 8601"
            .to_string()
    })?;
    Ok((
        fields.resolve(default_offset, now)?,
        fields.offset.is_some(),
    ))
}

/// An RFC 3164 stamp `Mmm dd hh:mm:ss` (also with a year after the day, a fraction,
/// or an RFC 3339 stamp in its place). Returns the fields and the byte length consumed.
pub fn parse_syslog_3164_stamp(s: &str) -> Option<(Fields, usize)> {
    let b = s.as_bytes();
    if b.first().is_some_and(u8::is_ascii_digit) {
        // RFC 3339 in a BSD header (rsyslog's high-precision template and others).
        let end = s.find(' ').unwrap_or(s.len());
        return parse_iso(&s[..end]).map(|f| (f, end));
    }
    let mut c = Cur::new(s);
    let month = month_number(c.word())?;
    if c.skip_spaces() == 0 {
        return None;
    }
    let mut f = Fields {
        month,
        day: c.digits(1, 2)?,
        ..Fields::default()
    };
    if c.skip_spaces() == 0 {
        return None;
    }
    let save = c.i;
    if let Some(y) = c.digits(4, 4) {
        if c.peek() == Some(b' ') {
            f.year = Some(i64::from(y));
            c.skip_spaces();
        } else {
            c.i = save;
        }
    }
    clock(&mut c, &mut f, true)?;
    // The stamp must end at a space or the end of the text.
    if !(c.done() || c.peek() == Some(b' ')) {
        return None;
    }
    Some((f, c.i))
}

/// Parses `value` with a Java `SimpleDateFormat` pattern (the subset LEEF devices
/// use: `y M d H h k K m s S a z Z X E` and quoted literals).
pub fn parse_with_pattern(value: &str, pattern: &str) -> Result<Fields, String> {
    let mut f = Fields::default();
    let mut c = Cur::new(value.trim());
    let p: Vec<char> = pattern.chars().collect();
    let mut pm: Option<bool> = None;
    let mut twelve_hour = false;
    let mut i = 0;
    while i < p.len() {
        let ch = p[i];
        let mut n = 1;
        while i + n < p.len() && p[i + n] == ch {
            n += 1;
        }
        match ch {
            '\'' => {
                // Quoted literal ('' is a single quote).
                let mut j = i + 1;
                if j < p.len() && p[j] == '\'' {
                    if !c.eat(b'\'') {
                        return Err("expected ' in the value".into());
                    }
                    i = j + 1;
                    continue;
                }
                while j < p.len() && p[j] != '\'' {
                    let mut buf = [0u8; 4];
                    for &b in p[j].encode_utf8(&mut buf).as_bytes() {
                        if !c.eat(b) {
                            return Err(format!("expected literal {:?}", p[j]));
                        }
                    }
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            'y' | 'u' => {
                let y = if n == 2 {
                    c.digits(2, 2).map(|y| 2000 + i64::from(y))
                } else {
                    c.digits(1, 4).map(i64::from)
                };
                f.year = Some(y.ok_or("expected a year")?);
            }
            'M' | 'L' => {
                f.month = if n >= 3 {
                    month_number(c.word()).ok_or("expected a month name")?
                } else {
                    c.digits(1, 2).ok_or("expected a month number")?
                };
            }
            'd' => f.day = c.digits(1, 2).ok_or("expected a day")?,
            'H' | 'k' => {
                f.hour = c.digits(1, 2).ok_or("expected an hour")?;
                if ch == 'k' && f.hour == 24 {
                    f.hour = 0;
                }
            }
            'h' | 'K' => {
                twelve_hour = true;
                f.hour = c.digits(1, 2).ok_or("expected an hour")?;
                if ch == 'h' && f.hour == 12 {
                    f.hour = 0;
                }
            }
            'm' => f.minute = c.digits(1, 2).ok_or("expected minutes")?,
            's' => f.second = c.digits(1, 2).ok_or("expected seconds")?,
            'S' => f.nanos = c.fraction().ok_or("expected a fraction of a second")?,
            'a' => {
                let w = c.word();
                pm = Some(if w.eq_ignore_ascii_case("pm") {
                    true
                } else if w.eq_ignore_ascii_case("am") {
                    false
                } else {
                    return Err("expected AM or PM".into());
                });
            }
            'E' => {
                if c.word().is_empty() {
                    return Err("expected a day name".into());
                }
            }
            'z' | 'Z' | 'X' => {
                let rest = c.rest();
                let end = rest
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || "+-:/_".contains(ch)))
                    .unwrap_or(rest.len());
                f.offset = Some(parse_zone(&rest[..end]).ok_or("unrecognised time zone")?);
                c.i += end;
            }
            other if other.is_ascii_alphabetic() => {
                return Err(format!("unsupported pattern letter {other:?}"));
            }
            other => {
                for _ in 0..n {
                    let mut buf = [0u8; 4];
                    for &b in other.encode_utf8(&mut buf).as_bytes() {
                        if !c.eat(b) {
                            return Err(format!("expected {other:?}"));
                        }
                    }
                }
            }
        }
        i += n;
    }
    if !c.done() {
        return Err(format!("unexpected text {:?} after the pattern", c.rest()));
    }
    if twelve_hour && pm == Some(true) {
        f.hour += 12;
    }
    if f.month == 0 {
        return Err("pattern has no month".into());
    }
    if f.day == 0 {
        return Err("pattern has no day".into());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Instant {
        // 2024-06-15T12:00:00Z
        Instant::new(1_718_452_800, 0).unwrap_or(Instant { secs: 0, nanos: 0 })
    }

    fn iso(s: &str) -> String {
        parse_cef_time(s, 0, now())
            .map(|(t, _)| t.to_rfc3339())
            .unwrap_or_else(|e| e)
    }

    #[test]
    fn rfc3339_output() {
        let t = Instant::from_millis(1_543_270_652_000);
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("2018-11-26T22:17:32Z")
        );
        let t = Instant::from_millis(1_500_404_470_493);
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("2017-07-18T19:01:10.493Z")
        );
        let t = Instant::new(0, 1_000);
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("1970-01-01T00:00:00.000001Z")
        );
        let t = Instant::from_millis(-1);
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("1969-12-31T23:59:59.999Z")
        );
    }

    #[test]
    fn cef_forms() {
        assert_eq!(iso("1543270652000"), "2018-11-26T22:17:32Z");
        assert_eq!(iso("Sep 07 2018 14:50:39"), "2018-09-07T14:50:39Z");
        assert_eq!(iso("Jul 19 2017 10:50:21.127"), "2017-07-19T10:50:21.127Z");
        assert_eq!(
            iso("Mar 09 2015 17:05:21 GMT+00:00"),
            "2015-03-09T17:05:21Z"
        );
        assert_eq!(
            iso("Mar  9 2015 17:05:21.5 +0200"),
            "2015-03-09T15:05:21.500Z"
        );
        assert_eq!(iso("Apr 11 2020 10:42:13"), "2020-04-11T10:42:13Z");
        assert_eq!(iso("Jun 01 10:00:00 PST"), "2024-06-01T18:00:00Z");
        // No year: the most recent such date not more than a week ahead of `now`.
        assert_eq!(iso("Dec 31 23:00:00"), "2023-12-31T23:00:00Z");
        assert_eq!(iso("Jun 20 00:00:00"), "2024-06-20T00:00:00Z");
        assert_eq!(iso("2024-01-02T03:04:05Z"), "2024-01-02T03:04:05Z");
        assert_eq!(
            iso("2024-01-02 03:04:05.25+01:00"),
            "2024-01-02T02:04:05.250Z"
        );
        assert!(parse_cef_time("Feb 30 2021 00:00:00", 0, now()).is_err());
        assert!(parse_cef_time("Sep 07 2018 14:50:39 Mars/Olympus", 0, now()).is_err());
        assert!(parse_cef_time("yesterday", 0, now()).is_err());
        assert!(parse_cef_time("", 0, now()).is_err());
        // The default offset applies to zoneless forms only.
        let (t, zoned) =
            parse_cef_time("Jul 19 2017 10:50:21.127", 3 * 3600, now()).unwrap_or((now(), true));
        assert_eq!(
            (t.to_rfc3339().as_str(), zoned),
            ("2017-07-19T07:50:21.127Z", false)
        );
    }

    #[test]
    fn zones() {
        assert_eq!(parse_zone("Z"), Some(0));
        assert_eq!(parse_zone("+05:30"), Some(19_800));
        assert_eq!(parse_zone("-0400"), Some(-14_400));
        assert_eq!(parse_zone("GMT-3"), Some(-10_800));
        assert_eq!(parse_zone("utc"), Some(0));
        assert_eq!(parse_zone("Europe/Moscow"), None);
        assert_eq!(parse_zone("+25:00"), None);
        assert_eq!(parse_zone("Z€host"), None);
        assert_eq!(parse_zone("+1€"), None);
        assert_eq!(parse_zone("G€"), None);
    }

    #[test]
    fn syslog_stamps() {
        let (f, n) = parse_syslog_3164_stamp("Nov 21 13:44:35 host").unwrap_or_default();
        assert_eq!((f.month, f.day, f.hour, f.second, n), (11, 21, 13, 35, 15));
        let (f, n) = parse_syslog_3164_stamp("Jan  2 01:02:03 x").unwrap_or_default();
        assert_eq!((f.day, n), (2, 15));
        let (f, _) = parse_syslog_3164_stamp("2019-11-21T13:44:35.5+01:00 h").unwrap_or_default();
        assert_eq!(
            (f.year, f.nanos, f.offset),
            (Some(2019), 500_000_000, Some(3600))
        );
        assert!(parse_syslog_3164_stamp("Syslogdate Sysloghost").is_none());
        assert!(parse_syslog_3164_stamp("Jun 02 16:34:55zscaler").is_none());
    }

    #[test]
    fn java_patterns() {
        let f = parse_with_pattern("2019-11-21 13:44:35", "yyyy-MM-dd HH:mm:ss");
        assert_eq!(
            f.and_then(|f| f.resolve(0, now())).map(|t| t.to_rfc3339()),
            Ok("2019-11-21T13:44:35Z".to_string())
        );
        let f = parse_with_pattern(
            "Jan 5 2015 01:02:03.123 PST",
            "MMM dd yyyy HH:mm:ss.SSS zzz",
        );
        assert_eq!(
            f.and_then(|f| f.resolve(0, now())).map(|t| t.to_rfc3339()),
            Ok("2015-01-05T09:02:03.123Z".to_string())
        );
        let f = parse_with_pattern("2015-01-05T01:02:03Z", "yyyy-MM-dd'T'HH:mm:ssX");
        assert_eq!(f.map(|f| (f.hour, f.offset)), Ok((1, Some(0))));
        let f = parse_with_pattern("01/05/15 12:30 PM", "MM/dd/yy hh:mm a");
        assert_eq!(f.map(|f| (f.year, f.hour)), Ok((Some(2015), 12)));
        assert!(parse_with_pattern("2019-11-21", "yyyy-MM-dd HH").is_err());
        assert!(parse_with_pattern("2019-11-21 extra", "yyyy-MM-dd").is_err());
        assert!(parse_with_pattern("2019", "yyyy").is_err());
    }

    #[test]
    fn months() {
        assert_eq!(month_number("jan"), Some(1));
        assert_eq!(month_number("September"), Some(9));
        assert_eq!(month_number("Sept"), Some(9));
        assert_eq!(month_number("Ja"), None);
        assert_eq!(month_number("Foo"), None);
    }
}
