//! Mapping of a parsed CEF or LEEF record onto the unified event: an OCSF-aligned
//! attribute set, the observables (every IP, host, URL, file hash and user found),
//! the severity and the event time.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::dict::{self, Custom, Role, Ty};
use super::options::Options;
use super::syslog::Syslog;
use super::text::{
    HashAlgo, Warnings, excerpt, hash_algo, is_ip, is_url, names_a_hash, names_a_user,
    normalize_mac,
};
use super::time::{Instant, parse_cef_time, parse_with_pattern};

/// Observable kinds this plugin emits (a subset of the WIT `observable-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObsKind {
    /// IPv4 or IPv6 address.
    Ip,
    /// Host name.
    Hostname,
    /// URL.
    Url,
    /// MD5 digest.
    Md5,
    /// SHA-1 digest.
    Sha1,
    /// SHA-256 digest.
    Sha256,
    /// SHA-512 digest.
    Sha512,
    /// User name or id.
    User,
}

impl ObsKind {
    /// The observable kind of a digest.
    pub fn of_hash(a: HashAlgo) -> ObsKind {
        match a {
            HashAlgo::Md5 => ObsKind::Md5,
            HashAlgo::Sha1 => ObsKind::Sha1,
            HashAlgo::Sha256 => ObsKind::Sha256,
            HashAlgo::Sha512 => ObsKind::Sha512,
        }
    }
}

/// Which record format is being mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// CEF.
    Cef,
    /// LEEF.
    Leef,
}

/// The outcome of mapping one record.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    /// OCSF severity id (0 unknown, 2 low, 3 medium, 4 high, 5 critical).
    pub severity_id: u8,
    /// Event time found in the record or its syslog header.
    pub time: Option<Instant>,
    /// Observables, deduplicated, in order of appearance.
    pub observables: Vec<(ObsKind, String)>,
    /// The attributes object.
    pub attributes: Map<String, Value>,
}

/// Header values of a record, format-neutral.
#[derive(Clone, Debug, Default)]
pub struct Header<'a> {
    /// Device vendor.
    pub vendor: &'a str,
    /// Device product.
    pub product: &'a str,
    /// Device / product version.
    pub version: &'a str,
    /// Signature id / LEEF EventID.
    pub event_code: &'a str,
    /// CEF Name.
    pub name: Option<&'a str>,
    /// CEF header severity.
    pub severity: Option<&'a str>,
    /// `CEF` or `LEEF`.
    pub log_name: &'static str,
    /// CEF version number or LEEF version.
    pub log_version: Cow<'a, str>,
}

/// CEF / LEEF severity to `(OCSF severity_id, level)`: 0-3 Low, 4-6 Medium,
/// 7-8 High, 9-10 Very-High (OCSF 2, 3, 4, 5); the names `Unknown`, `Low`, `Medium`,
/// `High`, `Very-High` (ASCII case-insensitive).
pub fn severity(s: &str) -> Option<(u8, &'static str)> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u8>() {
        return match n {
            0..=3 => Some((2, "Low")),
            4..=6 => Some((3, "Medium")),
            7..=8 => Some((4, "High")),
            9..=10 => Some((5, "Very-High")),
            _ => None,
        };
    }
    let named = [
        ("unknown", (0, "Unknown")),
        ("low", (2, "Low")),
        ("medium", (3, "Medium")),
        ("high", (4, "High")),
        ("very-high", (5, "Very-High")),
        ("very high", (5, "Very-High")),
        ("veryhigh", (5, "Very-High")),
    ];
    named
        .iter()
        .find(|(n, _)| t.eq_ignore_ascii_case(n))
        .map(|(_, v)| *v)
}

/// Inserts `value` under `key`, turning repeated keys into an array.
fn insert_multi(map: &mut Map<String, Value>, key: String, value: Value) {
    use serde_json::map::Entry;
    match map.entry(key) {
        Entry::Vacant(v) => {
            v.insert(value);
        }
        Entry::Occupied(mut o) => match o.get_mut() {
            Value::Array(list) => list.push(value),
            existing => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
        },
    }
}

/// The full name of a custom-field key (`cs4Label` → `deviceCustomString4Label`).
fn custom_full_name(c: Custom) -> String {
    let prefix = c.family.full();
    let mut s = String::with_capacity(prefix.len() + 9);
    s.push_str(prefix);
    push_u16(&mut s, c.n);
    if c.label {
        s.push_str("Label");
    }
    s
}

fn push_u16(s: &mut String, n: u16) {
    if n >= 10 {
        push_u16(s, n / 10);
    }
    s.push(char::from(b'0' + (n % 10) as u8));
}

fn put(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    map.insert(key.to_string(), value.into());
}

fn put_obj(map: &mut Map<String, Value>, key: &str, obj: Map<String, Value>) {
    if !obj.is_empty() {
        map.insert(key.to_string(), Value::Object(obj));
    }
}

struct Mapper<'p, 'w> {
    opts: &'p Options,
    now: Instant,
    w: &'w mut Warnings,
    src: Map<String, Value>,
    dst: Map<String, Value>,
    device: Map<String, Value>,
    actor_user: Map<String, Value>,
    actor_process: Map<String, Value>,
    user: Map<String, Value>,
    process: Map<String, Value>,
    http: Map<String, Value>,
    url: Map<String, Value>,
    file: Map<String, Value>,
    hashes: Vec<Value>,
    traffic: Map<String, Value>,
    conn: Map<String, Value>,
    top: Map<String, Value>,
    metadata: Map<String, Value>,
    ext: Map<String, Value>,
    customs: Vec<(Custom, &'p str)>,
    obs: Vec<(ObsKind, String)>,
    rt: Option<&'p str>,
    start: Option<&'p str>,
    end: Option<&'p str>,
    dtz: Option<&'p str>,
    dev_time: Option<&'p str>,
    dev_time_format: Option<&'p str>,
    leef_sev: Option<&'p str>,
    category_outcome: Option<&'p str>,
    event_uid: Option<&'p str>,
}

impl<'p, 'w> Mapper<'p, 'w> {
    fn new(opts: &'p Options, now: Instant, w: &'w mut Warnings) -> Self {
        Mapper {
            opts,
            now,
            w,
            src: Map::new(),
            dst: Map::new(),
            device: Map::new(),
            actor_user: Map::new(),
            actor_process: Map::new(),
            user: Map::new(),
            process: Map::new(),
            http: Map::new(),
            url: Map::new(),
            file: Map::new(),
            hashes: Vec::new(),
            traffic: Map::new(),
            conn: Map::new(),
            top: Map::new(),
            metadata: Map::new(),
            ext: Map::new(),
            customs: Vec::new(),
            obs: Vec::with_capacity(8),
            rt: None,
            start: None,
            end: None,
            dtz: None,
            dev_time: None,
            dev_time_format: None,
            leef_sev: None,
            category_outcome: None,
            event_uid: None,
        }
    }

    fn observe(&mut self, kind: ObsKind, value: &str) {
        let v = value.trim();
        if v.is_empty() || self.obs.iter().any(|(k, o)| *k == kind && o == v) {
            return;
        }
        self.obs.push((kind, v.to_string()));
    }

    /// A host name or, when it is an address, an IP.
    fn observe_host(&mut self, value: &str) {
        if is_ip(value.trim()) {
            self.observe(ObsKind::Ip, value);
        } else {
            self.observe(ObsKind::Hostname, value);
        }
    }

    fn int(&mut self, key: &str, v: &str) -> Option<i64> {
        match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.w.push(format!(
                    "`{key}`: `{}` is not an integer; kept in extensions only",
                    excerpt(v, 40)
                ));
                None
            }
        }
    }

    fn port(&mut self, key: &str, v: &str) -> Option<u16> {
        let n = self.int(key, v)?;
        match u16::try_from(n) {
            Ok(p) => Some(p),
            Err(_) => {
                self.w
                    .push(format!("`{key}`: {n} is not a port number (0-65535)"));
                None
            }
        }
    }

    /// Heuristics for keys with no declared meaning: whole-value IPs and URLs, users
    /// under a key (or label) that names a user, and digests under one that names a
    /// hash.
    fn sniff(&mut self, name: &str, v: &str) {
        if v.is_empty() {
            return;
        }
        if is_ip(v) {
            self.observe(ObsKind::Ip, v);
        } else if names_a_user(name) {
            self.observe(ObsKind::User, v);
        } else if let Some(a) = hash_algo(v)
            && names_a_hash(name)
        {
            self.observe(ObsKind::of_hash(a), v);
        } else if is_url(v) {
            self.observe(ObsKind::Url, v);
        }
    }

    fn pair(&mut self, source: Source, key: &'p str, value: &'p str) {
        match source {
            Source::Cef => {
                if let Some(e) = dict::cef(key) {
                    insert_multi(
                        &mut self.ext,
                        e.full.to_string(),
                        Value::String(value.to_string()),
                    );
                    self.apply(e.ty, e.role, key, value);
                } else if let Some(c) = dict::custom(key) {
                    insert_multi(
                        &mut self.ext,
                        custom_full_name(c),
                        Value::String(value.to_string()),
                    );
                    self.customs.push((c, value));
                } else {
                    insert_multi(
                        &mut self.ext,
                        key.to_string(),
                        Value::String(value.to_string()),
                    );
                    self.sniff(key, value.trim());
                }
            }
            Source::Leef => {
                insert_multi(
                    &mut self.ext,
                    key.to_string(),
                    Value::String(value.to_string()),
                );
                // Predefined LEEF attributes first; many LEEF producers also use CEF
                // dictionary keys (`suser`, `shost`, `act`, `msg`, ...), which keep
                // their CEF meaning.
                if let Some((ty, role)) = dict::leef(key) {
                    self.apply(ty, role, key, value);
                } else if let Some(e) = dict::cef(key) {
                    self.apply(e.ty, e.role, key, value);
                } else {
                    self.sniff(key, value.trim());
                }
            }
        }
    }

    fn apply(&mut self, ty: Ty, role: Role, key: &'p str, value: &'p str) {
        let v = value.trim();
        if v.is_empty() {
            return;
        }
        // Declared types first: a value of the wrong type is kept in `extensions`
        // only, with a warning.
        let mut mac = None;
        match ty {
            Ty::Ip if !is_ip(v) => {
                self.w.push(format!(
                    "`{key}`: `{}` is not an IP address; kept in extensions only",
                    excerpt(v, 40)
                ));
                return;
            }
            Ty::Mac => match normalize_mac(v) {
                Some(m) => mac = Some(m),
                None => {
                    self.w.push(format!(
                        "`{key}`: `{}` is not a MAC address; kept in extensions only",
                        excerpt(v, 40)
                    ));
                    return;
                }
            },
            Ty::Float if v.parse::<f64>().is_err() => {
                self.w.push(format!(
                    "`{key}`: `{}` is not a number; kept in extensions only",
                    excerpt(v, 40)
                ));
                return;
            }
            Ty::Time if !matches!(role, Role::Rt | Role::Start | Role::End) => {
                if let Err(e) = parse_cef_time(v, self.opts.default_offset, self.now) {
                    self.w.push(format!("`{key}`: `{}` is {e}", excerpt(v, 40)));
                }
                return;
            }
            Ty::Int if matches!(role, Role::None) => {
                self.int(key, v);
                return;
            }
            _ => {}
        }
        match role {
            Role::None => {}
            Role::SrcIp => {
                put(&mut self.src, "ip", v);
                self.observe(ObsKind::Ip, v);
            }
            Role::DstIp => {
                put(&mut self.dst, "ip", v);
                self.observe(ObsKind::Ip, v);
            }
            Role::DvcIp => {
                put(&mut self.device, "ip", v);
                self.observe(ObsKind::Ip, v);
            }
            Role::SrcNatIp | Role::DstNatIp | Role::AgentIp | Role::OtherIp => {
                self.observe(ObsKind::Ip, v);
            }
            Role::SrcPort => {
                if let Some(p) = self.port(key, v) {
                    put(&mut self.src, "port", p);
                }
            }
            Role::DstPort => {
                if let Some(p) = self.port(key, v) {
                    put(&mut self.dst, "port", p);
                }
            }
            Role::SrcNatPort | Role::DstNatPort => {
                self.port(key, v);
            }
            Role::SrcHost => {
                put(&mut self.src, "hostname", v);
                self.observe_host(v);
            }
            Role::DstHost => {
                put(&mut self.dst, "hostname", v);
                self.observe_host(v);
            }
            Role::DvcHost => {
                put(&mut self.device, "hostname", v);
                self.observe_host(v);
            }
            Role::AgentHost | Role::OtherHost => self.observe_host(v),
            Role::SrcMac => put(&mut self.src, "mac", mac.unwrap_or_default()),
            Role::DstMac => put(&mut self.dst, "mac", mac.unwrap_or_default()),
            Role::DvcMac => put(&mut self.device, "mac", mac.unwrap_or_default()),
            Role::SrcDomain => put(&mut self.src, "domain", v),
            Role::DstDomain => put(&mut self.dst, "domain", v),
            Role::SrcSvc => put(&mut self.src, "svc_name", v),
            Role::DstSvc => put(&mut self.dst, "svc_name", v),
            Role::SrcUser => {
                put(&mut self.actor_user, "name", v);
                self.observe(ObsKind::User, v);
            }
            Role::SrcUid => {
                put(&mut self.actor_user, "uid", v);
                self.observe(ObsKind::User, v);
            }
            Role::DstUser => {
                put(&mut self.user, "name", v);
                self.observe(ObsKind::User, v);
            }
            Role::DstUid => {
                put(&mut self.user, "uid", v);
                self.observe(ObsKind::User, v);
            }
            Role::OtherUser => self.observe(ObsKind::User, v),
            Role::SrcProc => put(&mut self.actor_process, "name", v),
            Role::DstProc => put(&mut self.process, "name", v),
            Role::DvcProc => {}
            Role::SrcPid => {
                if let Some(n) = self.int(key, v) {
                    put(&mut self.actor_process, "pid", n);
                }
            }
            Role::DstPid => {
                if let Some(n) = self.int(key, v) {
                    put(&mut self.process, "pid", n);
                }
            }
            Role::DvcPid => {
                self.int(key, v);
            }
            Role::Action => put(&mut self.top, "action", v),
            Role::Outcome => put(&mut self.top, "outcome", v),
            Role::CategoryOutcome => self.category_outcome = Some(v),
            Role::Category => put(&mut self.top, "category", v),
            Role::Message => put(&mut self.top, "message", value),
            Role::Reason => put(&mut self.top, "reason", v),
            Role::App => put(&mut self.top, "app_name", v),
            Role::Proto => {
                if let Ok(n) = v.parse::<u8>() {
                    put(&mut self.conn, "protocol_num", n);
                } else {
                    put(&mut self.conn, "protocol_name", v.to_ascii_lowercase());
                }
            }
            Role::Direction => {
                if let Some(n) = self.int(key, v) {
                    let (id, name) = match n {
                        0 => (1, "Inbound"),
                        1 => (2, "Outbound"),
                        _ => (99, "Other"),
                    };
                    put(&mut self.conn, "direction_id", id);
                    put(&mut self.conn, "direction", name);
                }
            }
            Role::Url => {
                put(&mut self.url, "url_string", v);
                self.observe(ObsKind::Url, v);
            }
            Role::HttpMethod => put(&mut self.http, "http_method", v),
            Role::UserAgent => put(&mut self.http, "user_agent", v),
            Role::Referrer => {
                put(&mut self.http, "referrer", v);
                if is_url(v) {
                    self.observe(ObsKind::Url, v);
                }
            }
            Role::FileName => put(&mut self.file, "name", v),
            Role::FilePath => put(&mut self.file, "path", v),
            Role::FileSize => {
                if let Some(n) = self.int(key, v) {
                    put(&mut self.file, "size", n);
                }
            }
            Role::FileHash => {
                let mut h = Map::new();
                match hash_algo(v) {
                    Some(a) => {
                        put(&mut h, "algorithm_id", a.id());
                        put(&mut h, "algorithm", a.name());
                        self.observe(ObsKind::of_hash(a), v);
                    }
                    None => {
                        put(&mut h, "algorithm_id", 0);
                        put(&mut h, "algorithm", "Unknown");
                    }
                }
                put(&mut h, "value", v);
                self.hashes.push(Value::Object(h));
            }
            Role::OldFileHash => {
                if let Some(a) = hash_algo(v) {
                    self.observe(ObsKind::of_hash(a), v);
                }
            }
            Role::BytesIn | Role::BytesOut | Role::PacketsIn | Role::PacketsOut => {
                if let Some(n) = self.int(key, v) {
                    let name = match role {
                        Role::BytesIn => "bytes_in",
                        Role::BytesOut => "bytes_out",
                        Role::PacketsIn => "packets_in",
                        _ => "packets_out",
                    };
                    put(&mut self.traffic, name, n);
                }
            }
            Role::Count => {
                if let Some(n) = self.int(key, v) {
                    put(&mut self.top, "count", n);
                }
            }
            Role::Rt => self.rt = Some(v),
            Role::Start => self.start = Some(v),
            Role::End => self.end = Some(v),
            Role::Dtz => self.dtz = Some(v),
            Role::ExternalId => put(&mut self.metadata, "uid", v),
            Role::EventUid => {
                if self.int(key, v).is_some() {
                    self.event_uid = Some(v);
                }
            }
            Role::Severity => self.leef_sev = Some(v),
            Role::DevTime => self.dev_time = Some(v),
            Role::DevTimeFormat => self.dev_time_format = Some(v),
            Role::Policy => {
                let mut p = Map::new();
                put(&mut p, "name", v);
                put_obj(&mut self.top, "policy", p);
            }
        }
    }

    /// Custom fields named by their labels, with the label-less ones left in
    /// `extensions` only.
    fn customs(&mut self) -> Map<String, Value> {
        let mut out = Map::new();
        let customs = std::mem::take(&mut self.customs);
        for (c, value) in customs.iter().filter(|(c, _)| !c.label) {
            let label = customs
                .iter()
                .rev()
                .find(|(l, _)| l.label && l.family == c.family && l.n == c.n)
                .map(|(_, v)| v.trim())
                .filter(|l| !l.is_empty());
            let v = value.trim();
            let key = custom_full_name(Custom { label: false, ..*c });
            let typed = if v.is_empty() {
                Value::String(String::new())
            } else {
                match c.family.ty() {
                    Ty::Ip => {
                        if is_ip(v) {
                            self.observe(ObsKind::Ip, v);
                        } else {
                            self.w.push(format!(
                                "`{key}`: `{}` is not an IP address",
                                excerpt(v, 40)
                            ));
                        }
                        Value::String(v.to_string())
                    }
                    Ty::Int => match v.parse::<i64>() {
                        Ok(n) => Value::from(n),
                        Err(_) => {
                            self.w.push(format!(
                                "`{key}`: `{}` is not an integer; kept as text",
                                excerpt(v, 40)
                            ));
                            Value::String(v.to_string())
                        }
                    },
                    Ty::Float => match v.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
                    {
                        Some(n) => Value::Number(n),
                        None => {
                            self.w.push(format!(
                                "`{key}`: `{}` is not a number; kept as text",
                                excerpt(v, 40)
                            ));
                            Value::String(v.to_string())
                        }
                    },
                    Ty::Time => {
                        if let Err(e) = parse_cef_time(v, self.opts.default_offset, self.now) {
                            self.w.push(format!("`{key}`: `{}` is {e}", excerpt(v, 40)));
                        }
                        Value::String(v.to_string())
                    }
                    Ty::Str | Ty::Mac => {
                        self.sniff(label.unwrap_or(&key), v);
                        Value::String((*value).to_string())
                    }
                }
            };
            if let Some(label) = label {
                insert_multi(&mut out, label.to_string(), typed);
            }
        }
        out
    }

    /// Resolves a CEF timestamp field; warns when invalid.
    fn cef_time(
        &mut self,
        key: &str,
        raw: Option<&str>,
        zone: i32,
        dtz_unresolved: bool,
    ) -> Option<Instant> {
        let raw = raw?;
        match parse_cef_time(raw, zone, self.now) {
            Ok((t, zoned)) => {
                if !zoned && dtz_unresolved {
                    self.w.push(format!(
                        "`{key}` has no zone and `dtz` `{}` is not a UTC offset (no time-zone \
                         database in the sandbox); taken at the configured timezone",
                        excerpt(self.dtz.unwrap_or(""), 40)
                    ));
                }
                Some(t)
            }
            Err(e) => {
                self.w
                    .push(format!("`{key}`: `{}` is {e}; ignored", excerpt(raw, 40)));
                None
            }
        }
    }
}

/// Maps one record. `pairs` are its extensions / attributes in order.
pub fn map_record<'p>(
    source: Source,
    header: &Header<'p>,
    pairs: &'p [(&'p str, Cow<'p, str>)],
    syslog: Option<&Syslog<'_>>,
    opts: &Options,
    now: Instant,
    warnings: &mut Warnings,
) -> Mapped {
    let mut m = Mapper::new(opts, now, warnings);
    for (k, v) in pairs {
        m.pair(source, k, v);
    }
    let custom_fields = m.customs();

    // Severity.
    let (severity_id, vendor_severity) = match source {
        Source::Cef => {
            let raw = header.severity.unwrap_or("");
            match severity(raw) {
                _ if raw.trim().is_empty() => (0, None),
                Some((id, _)) => (id, Some(raw)),
                None => {
                    m.w.push(format!(
                        "CEF severity `{}` is neither 0-10 nor Unknown, Low, Medium, High or \
                         Very-High; severity unknown",
                        excerpt(raw, 20)
                    ));
                    (0, Some(raw))
                }
            }
        }
        Source::Leef => match m.leef_sev {
            None => (0, None),
            Some(raw) => match severity(raw) {
                Some((id, _)) => (id, Some(raw)),
                None => {
                    m.w.push(format!(
                        "LEEF `sev` `{}` is not 1-10; severity unknown",
                        excerpt(raw, 20)
                    ));
                    (0, Some(raw))
                }
            },
        },
    };

    // Times.
    let mut event_time: Option<(Instant, &str)> = None;
    match source {
        Source::Cef => {
            let (zone, dtz_unresolved) = match m.dtz.map(super::time::parse_zone) {
                Some(Some(off)) => (off, false),
                Some(None) => (opts.default_offset, true),
                None => (opts.default_offset, false),
            };
            let rt = m.cef_time("rt", m.rt, zone, dtz_unresolved);
            let start = m.cef_time("start", m.start, zone, dtz_unresolved);
            let end = m.cef_time("end", m.end, zone, dtz_unresolved);
            if let Some(t) = start {
                put(&mut m.top, "start_time_dt", t.to_rfc3339());
            }
            if let Some(t) = end {
                put(&mut m.top, "end_time_dt", t.to_rfc3339());
            }
            event_time = rt.zip(m.rt).or(end.zip(m.end)).or(start.zip(m.start));
        }
        Source::Leef => {
            if let Some(raw) = m.dev_time {
                let parsed = match m.dev_time_format {
                    Some(fmt) => parse_with_pattern(raw, fmt)
                        .and_then(|f| f.resolve(opts.default_offset, now))
                        .map_err(|e| {
                            format!("does not match devTimeFormat `{}`: {e}", excerpt(fmt, 40))
                        }),
                    None => parse_cef_time(raw, opts.default_offset, now).map(|(t, _)| t),
                };
                match parsed {
                    Ok(t) => event_time = Some((t, raw)),
                    Err(e) => {
                        m.w.push(format!("`devTime` `{}` {e}; ignored", excerpt(raw, 40)))
                    }
                }
            }
        }
    }
    if let Some((_, raw)) = event_time {
        put(&mut m.metadata, "original_time", raw);
    }
    let mut time = event_time.map(|(t, _)| t);

    // Syslog header.
    let mut syslog_obj = Map::new();
    if let Some(h) = syslog {
        if let Some(p) = h.pri {
            put(&mut syslog_obj, "facility", p / 8);
            put(&mut syslog_obj, "severity", p % 8);
        }
        if let Some(v) = h.version {
            put(&mut syslog_obj, "version", v);
        }
        if let Some(ts) = h.timestamp {
            put(&mut syslog_obj, "timestamp", ts);
        }
        if let Some(f) = h.time {
            match f.resolve(opts.default_offset, now) {
                Ok(t) => {
                    put(&mut syslog_obj, "time_dt", t.to_rfc3339());
                    time = time.or(Some(t));
                }
                Err(e) => m.w.push(format!("syslog timestamp: {e}")),
            }
        }
        for (k, v) in [
            ("hostname", h.hostname),
            ("app_name", h.app_name),
            ("proc_id", h.proc_id),
            ("msg_id", h.msg_id),
            ("structured_data", h.structured_data),
            ("header", h.header),
            ("extra", h.extra),
        ] {
            if let Some(v) = v {
                put(&mut syslog_obj, k, v);
            }
        }
        if let Some(host) = h.hostname {
            m.observe_host(host);
        }
    }

    if !m.top.contains_key("outcome")
        && let Some(co) = m.category_outcome
    {
        let co = co.trim_start_matches('/');
        if !co.is_empty() {
            put(&mut m.top, "outcome", co);
        }
    }
    if !m.metadata.contains_key("uid")
        && let Some(uid) = m.event_uid
    {
        put(&mut m.metadata, "uid", uid);
    }

    // Assemble.
    let mut a = std::mem::take(&mut m.top);
    let mut product = Map::new();
    put(&mut product, "vendor_name", header.vendor);
    put(&mut product, "name", header.product);
    put(&mut product, "version", header.version);
    let mut metadata = std::mem::take(&mut m.metadata);
    metadata.insert("product".into(), Value::Object(product));
    put(&mut metadata, "event_code", header.event_code);
    put(&mut metadata, "log_name", header.log_name);
    put(&mut metadata, "log_version", header.log_version.as_ref());
    a.insert("metadata".into(), Value::Object(metadata));
    if let Some(name) = header.name {
        put(&mut a, "name", name);
    }
    let label = match severity_id {
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        _ => "Unknown",
    };
    put(&mut a, "severity_id", severity_id);
    put(&mut a, "severity", label);
    if let Some(raw) = vendor_severity {
        put(&mut a, "vendor_severity", raw);
    }
    put_obj(&mut a, "src_endpoint", std::mem::take(&mut m.src));
    put_obj(&mut a, "dst_endpoint", std::mem::take(&mut m.dst));
    put_obj(&mut a, "device", std::mem::take(&mut m.device));
    let mut actor = Map::new();
    put_obj(&mut actor, "user", std::mem::take(&mut m.actor_user));
    put_obj(&mut actor, "process", std::mem::take(&mut m.actor_process));
    put_obj(&mut a, "actor", actor);
    put_obj(&mut a, "user", std::mem::take(&mut m.user));
    put_obj(&mut a, "process", std::mem::take(&mut m.process));
    let mut http = std::mem::take(&mut m.http);
    put_obj(&mut http, "url", std::mem::take(&mut m.url));
    put_obj(&mut a, "http_request", http);
    let mut file = std::mem::take(&mut m.file);
    let hashes = std::mem::take(&mut m.hashes);
    if !hashes.is_empty() {
        file.insert("hashes".into(), Value::Array(hashes));
    }
    put_obj(&mut a, "file", file);
    put_obj(&mut a, "traffic", std::mem::take(&mut m.traffic));
    put_obj(&mut a, "connection_info", std::mem::take(&mut m.conn));
    put_obj(&mut a, "custom_fields", custom_fields);
    put_obj(&mut a, "extensions", std::mem::take(&mut m.ext));
    put_obj(&mut a, "syslog", syslog_obj);
    let observables = std::mem::take(&mut m.obs);
    Mapped {
        severity_id,
        time,
        observables,
        attributes: a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities() {
        for (s, id) in [
            ("0", 2),
            ("3", 2),
            ("4", 3),
            ("6", 3),
            ("7", 4),
            ("8", 4),
            ("9", 5),
            ("10", 5),
            ("Unknown", 0),
            ("low", 2),
            ("Medium", 3),
            ("HIGH", 4),
            ("Very-High", 5),
            ("very-high", 5),
        ] {
            assert_eq!(severity(s).map(|(i, _)| i), Some(id), "{s}");
        }
        for bad in ["11", "-1", "|10", "", "5.0", "critical"] {
            assert_eq!(severity(bad), None, "{bad}");
        }
    }

    #[test]
    fn repeated_keys_become_arrays() {
        let mut m = Map::new();
        insert_multi(&mut m, "k".into(), Value::from("1"));
        insert_multi(&mut m, "k".into(), Value::from("two"));
        insert_multi(&mut m, "k".into(), Value::from(3));
        assert_eq!(
            custom_full_name(Custom {
                family: dict::Family::Float,
                n: 15,
                label: true
            }),
            "deviceCustomFloatingPoint15Label"
        );
        assert_eq!(
            custom_full_name(Custom {
                family: dict::Family::String,
                n: 4,
                label: false
            }),
            "deviceCustomString4"
        );
        assert_eq!(Value::Object(m), serde_json::json!({"k": ["1", "two", 3]}));
    }
}
