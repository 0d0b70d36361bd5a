//! Key dictionaries: the ArcSight CEF extension dictionary (short key, full name,
//! data type, and the role a key plays in the unified mapping), the CEF custom-field
//! families with their `*Label` keys, and the predefined LEEF event attributes.
//!
//! Sources: "Micro Focus Security ArcSight Common Event Format, Implementing ArcSight
//! CEF Version 25" (extension dictionary and custom-field tables) and IBM's "Predefined
//! LEEF event attributes" page; see the plugin README.

/// Data type of a dictionary key (as the CEF/LEEF dictionaries declare it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Free text.
    Str,
    /// Integer (32- or 64-bit in the dictionary).
    Int,
    /// Floating point.
    Float,
    /// IPv4 or IPv6 address.
    Ip,
    /// MAC address.
    Mac,
    /// Timestamp (epoch ms or a CEF date form).
    Time,
}

/// What a key means for the unified (OCSF-aligned) mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Role {
    None,
    SrcIp,
    SrcPort,
    SrcHost,
    SrcMac,
    SrcDomain,
    SrcSvc,
    SrcUser,
    SrcUid,
    SrcProc,
    SrcPid,
    SrcNatIp,
    SrcNatPort,
    DstIp,
    DstPort,
    DstHost,
    DstMac,
    DstDomain,
    DstSvc,
    DstUser,
    DstUid,
    DstProc,
    DstPid,
    DstNatIp,
    DstNatPort,
    DvcIp,
    DvcHost,
    DvcMac,
    DvcProc,
    DvcPid,
    AgentIp,
    AgentHost,
    /// Another IP-typed key: an observable only.
    OtherIp,
    /// Another host-name key: an observable only.
    OtherHost,
    /// Another user-name key: an observable only.
    OtherUser,
    Action,
    Outcome,
    CategoryOutcome,
    Category,
    Message,
    Reason,
    Proto,
    App,
    Direction,
    Url,
    HttpMethod,
    UserAgent,
    Referrer,
    FileName,
    FilePath,
    FileHash,
    FileSize,
    OldFileHash,
    BytesIn,
    BytesOut,
    PacketsIn,
    PacketsOut,
    Count,
    Rt,
    Start,
    End,
    Dtz,
    ExternalId,
    EventUid,
    /// LEEF `sev`.
    Severity,
    /// LEEF `devTime`.
    DevTime,
    /// LEEF `devTimeFormat`.
    DevTimeFormat,
    /// LEEF `policy`.
    Policy,
}

/// One dictionary entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The full (long) name, used as the key in `extensions`.
    pub full: &'static str,
    /// Declared data type.
    pub ty: Ty,
    /// Role in the unified mapping.
    pub role: Role,
}

macro_rules! cef_dictionary {
    ($( $short:literal => $full:literal, $ty:ident, $role:ident; )*) => {
        /// Every entry: `(short key, entry)`.
        const CEF_ENTRIES: &[(&str, Entry)] = &[
            $( ($short, Entry { full: $full, ty: Ty::$ty, role: Role::$role }), )*
        ];

        /// Every `(short key, full name)` of the CEF dictionary.
        pub const CEF_KEYS: &[(&str, &str)] = &[ $( ($short, $full), )* ];
    };
}

/// FNV-1a, enough for a fixed table of short ASCII keys.
#[derive(Clone, Copy, Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

/// Short keys and full names → entry, built once.
fn cef_table() -> &'static std::collections::HashMap<&'static str, Entry, FnvBuild> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<&'static str, Entry, FnvBuild>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = std::collections::HashMap::with_capacity_and_hasher(
            CEF_ENTRIES.len() * 2,
            FnvBuild::default(),
        );
        for (short, e) in CEF_ENTRIES {
            m.insert(*short, *e);
            m.insert(e.full, *e);
        }
        m
    })
}

/// The CEF dictionary entry for `key` (its short CEF key or its full name;
/// case-sensitive, as CEF keys are).
#[inline]
pub fn cef(key: &str) -> Option<Entry> {
    cef_table().get(key).copied()
}

cef_dictionary! {
    "act" => "deviceAction", Str, Action;
    "app" => "applicationProtocol", Str, App;
    "cat" => "deviceEventCategory", Str, Category;
    "cnt" => "baseEventCount", Int, Count;
    "destinationDnsDomain" => "destinationDnsDomain", Str, None;
    "destinationServiceName" => "destinationServiceName", Str, DstSvc;
    "destinationTranslatedAddress" => "destinationTranslatedAddress", Ip, DstNatIp;
    "destinationTranslatedPort" => "destinationTranslatedPort", Int, DstNatPort;
    "deviceDirection" => "deviceDirection", Int, Direction;
    "deviceDnsDomain" => "deviceDnsDomain", Str, None;
    "deviceExternalId" => "deviceExternalId", Str, None;
    "deviceFacility" => "deviceFacility", Str, None;
    "deviceInboundInterface" => "deviceInboundInterface", Str, None;
    "deviceNtDomain" => "deviceNtDomain", Str, None;
    "deviceOutboundInterface" => "deviceOutboundInterface", Str, None;
    "devicePayloadId" => "devicePayloadId", Str, None;
    "deviceProcessName" => "deviceProcessName", Str, DvcProc;
    "deviceTranslatedAddress" => "deviceTranslatedAddress", Ip, OtherIp;
    "deviceSeverity" => "deviceSeverity", Str, None;
    "dhost" => "destinationHostName", Str, DstHost;
    "dmac" => "destinationMacAddress", Mac, DstMac;
    "dntdom" => "destinationNtDomain", Str, DstDomain;
    "dpid" => "destinationProcessId", Int, DstPid;
    "dpriv" => "destinationUserPrivileges", Str, None;
    "dproc" => "destinationProcessName", Str, DstProc;
    "dpt" => "destinationPort", Int, DstPort;
    "dst" => "destinationAddress", Ip, DstIp;
    "dtz" => "deviceTimeZone", Str, Dtz;
    "duid" => "destinationUserId", Str, DstUid;
    "duser" => "destinationUserName", Str, DstUser;
    "dvc" => "deviceAddress", Ip, DvcIp;
    "dvchost" => "deviceHostName", Str, DvcHost;
    "dvcmac" => "deviceMacAddress", Mac, DvcMac;
    "dvcpid" => "deviceProcessId", Int, DvcPid;
    "end" => "endTime", Time, End;
    "externalId" => "externalId", Str, ExternalId;
    "fileCreateTime" => "fileCreateTime", Time, None;
    "fileHash" => "fileHash", Str, FileHash;
    "fileId" => "fileId", Str, None;
    "fileModificationTime" => "fileModificationTime", Time, None;
    "filePath" => "filePath", Str, FilePath;
    "filePermission" => "filePermission", Str, None;
    "fileType" => "fileType", Str, None;
    "fname" => "fileName", Str, FileName;
    "fsize" => "fileSize", Int, FileSize;
    "in" => "bytesIn", Int, BytesIn;
    "msg" => "message", Str, Message;
    "oldFileCreateTime" => "oldFileCreateTime", Time, None;
    "oldFileHash" => "oldFileHash", Str, OldFileHash;
    "oldFileId" => "oldFileId", Str, None;
    "oldFileModificationTime" => "oldFileModificationTime", Time, None;
    "oldFileName" => "oldFileName", Str, None;
    "oldFilePath" => "oldFilePath", Str, None;
    "oldFilePermission" => "oldFilePermission", Str, None;
    "oldFileSize" => "oldFileSize", Int, None;
    "oldFileType" => "oldFileType", Str, None;
    "out" => "bytesOut", Int, BytesOut;
    "outcome" => "eventOutcome", Str, Outcome;
    "proto" => "transportProtocol", Str, Proto;
    "reason" => "reason", Str, Reason;
    "request" => "requestUrl", Str, Url;
    "requestClientApplication" => "requestClientApplication", Str, UserAgent;
    "requestContext" => "requestContext", Str, Referrer;
    "requestCookies" => "requestCookies", Str, None;
    "requestMethod" => "requestMethod", Str, HttpMethod;
    "rt" => "deviceReceiptTime", Time, Rt;
    "shost" => "sourceHostName", Str, SrcHost;
    "smac" => "sourceMacAddress", Mac, SrcMac;
    "sntdom" => "sourceNtDomain", Str, SrcDomain;
    "sourceDnsDomain" => "sourceDnsDomain", Str, None;
    "sourceServiceName" => "sourceServiceName", Str, SrcSvc;
    "sourceTranslatedAddress" => "sourceTranslatedAddress", Ip, SrcNatIp;
    "sourceTranslatedPort" => "sourceTranslatedPort", Int, SrcNatPort;
    "spid" => "sourceProcessId", Int, SrcPid;
    "spriv" => "sourceUserPrivileges", Str, None;
    "sproc" => "sourceProcessName", Str, SrcProc;
    "spt" => "sourcePort", Int, SrcPort;
    "src" => "sourceAddress", Ip, SrcIp;
    "start" => "startTime", Time, Start;
    "suid" => "sourceUserId", Str, SrcUid;
    "suser" => "sourceUserName", Str, SrcUser;
    "type" => "type", Int, None;
    "agentDnsDomain" => "agentDnsDomain", Str, None;
    "agentNtDomain" => "agentNtDomain", Str, None;
    "agentTranslatedAddress" => "agentTranslatedAddress", Ip, OtherIp;
    "agentTranslatedZoneExternalID" => "agentTranslatedZoneExternalID", Str, None;
    "agentTranslatedZoneURI" => "agentTranslatedZoneURI", Str, None;
    "agentZoneExternalID" => "agentZoneExternalID", Str, None;
    "agentZoneURI" => "agentZoneURI", Str, None;
    "agt" => "agentAddress", Ip, AgentIp;
    "ahost" => "agentHostName", Str, AgentHost;
    "aid" => "agentId", Str, None;
    "amac" => "agentMacAddress", Mac, None;
    "art" => "agentReceiptTime", Time, None;
    "at" => "agentType", Str, None;
    "atz" => "agentTimeZone", Str, None;
    "av" => "agentVersion", Str, None;
    "customerExternalID" => "customerExternalID", Str, None;
    "customerURI" => "customerURI", Str, None;
    "destinationTranslatedZoneExternalID" => "destinationTranslatedZoneExternalID", Str, None;
    "destinationTranslatedZoneURI" => "destinationTranslatedZoneURI", Str, None;
    "destinationZoneExternalID" => "destinationZoneExternalID", Str, None;
    "destinationZoneURI" => "destinationZoneURI", Str, None;
    "deviceTranslatedZoneExternalID" => "deviceTranslatedZoneExternalID", Str, None;
    "deviceTranslatedZoneURI" => "deviceTranslatedZoneURI", Str, None;
    "deviceZoneExternalID" => "deviceZoneExternalID", Str, None;
    "deviceZoneURI" => "deviceZoneURI", Str, None;
    "dlat" => "destinationGeoLatitude", Float, None;
    "dlong" => "destinationGeoLongitude", Float, None;
    "eventId" => "eventId", Int, EventUid;
    "rawEvent" => "rawEvent", Str, None;
    "slat" => "sourceGeoLatitude", Float, None;
    "slong" => "sourceGeoLongitude", Float, None;
    "sourceTranslatedZoneExternalID" => "sourceTranslatedZoneExternalID", Str, None;
    "sourceTranslatedZoneURI" => "sourceTranslatedZoneURI", Str, None;
    "sourceZoneExternalID" => "sourceZoneExternalID", Str, None;
    "sourceZoneURI" => "sourceZoneURI", Str, None;
    "catdt" => "categoryDeviceType", Str, None;
    "categoryOutcome" => "categoryOutcome", Str, CategoryOutcome;
}

/// The CEF custom-field families: each `<short><n>` / `<full><n>` key has a label
/// key `<short><n>Label` / `<full><n>Label` naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `cs<n>` / `deviceCustomString<n>`.
    String,
    /// `cn<n>` / `deviceCustomNumber<n>`.
    Number,
    /// `cfp<n>` / `deviceCustomFloatingPoint<n>`.
    Float,
    /// `c6a<n>` / `deviceCustomIPv6Address<n>`.
    Ipv6,
    /// `deviceCustomDate<n>`.
    Date,
    /// `flexString<n>`.
    FlexString,
    /// `flexNumber<n>`.
    FlexNumber,
    /// `flexDate<n>`.
    FlexDate,
}

impl Family {
    /// The full-name prefix (`deviceCustomString`, ...).
    pub fn full(self) -> &'static str {
        match self {
            Family::String => "deviceCustomString",
            Family::Number => "deviceCustomNumber",
            Family::Float => "deviceCustomFloatingPoint",
            Family::Ipv6 => "deviceCustomIPv6Address",
            Family::Date => "deviceCustomDate",
            Family::FlexString => "flexString",
            Family::FlexNumber => "flexNumber",
            Family::FlexDate => "flexDate",
        }
    }

    /// Declared data type of the values.
    pub fn ty(self) -> Ty {
        match self {
            Family::String | Family::FlexString => Ty::Str,
            Family::Number | Family::FlexNumber => Ty::Int,
            Family::Float => Ty::Float,
            Family::Ipv6 => Ty::Ip,
            Family::Date | Family::FlexDate => Ty::Time,
        }
    }
}

/// A custom-field key: its family, number, and whether it is the label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Custom {
    /// Which family.
    pub family: Family,
    /// The field number (`cs4` → 4).
    pub n: u16,
    /// Whether this is the `*Label` key.
    pub label: bool,
}

/// Recognises `cs4`, `cs4Label`, `deviceCustomString4`, `cfp15Label`, `flexDate1`, ...
pub fn custom(key: &str) -> Option<Custom> {
    const PREFIXES: [(&str, Family); 12] = [
        ("cs", Family::String),
        ("cn", Family::Number),
        ("cfp", Family::Float),
        ("c6a", Family::Ipv6),
        ("deviceCustomString", Family::String),
        ("deviceCustomNumber", Family::Number),
        ("deviceCustomFloatingPoint", Family::Float),
        ("deviceCustomIPv6Address", Family::Ipv6),
        ("deviceCustomDate", Family::Date),
        ("flexString", Family::FlexString),
        ("flexNumber", Family::FlexNumber),
        ("flexDate", Family::FlexDate),
    ];
    let first = *key.as_bytes().first()?;
    if first != b'c' && first != b'd' && first != b'f' {
        return None;
    }
    for (prefix, family) in PREFIXES {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let (digits, label) = match rest.strip_suffix("Label") {
            Some(d) => (d, true),
            None => (rest, false),
        };
        if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let n: u16 = digits.parse().ok()?;
        if n == 0 {
            return None;
        }
        return Some(Custom { family, n, label });
    }
    None
}

/// Data type and role of the predefined LEEF event attribute `key`, if it is one
/// (case-sensitive). LEEF keys have no long form: `extensions` keeps them as sent.
pub fn leef(key: &str) -> Option<(Ty, Role)> {
    Some(match key {
        "cat" => (Ty::Str, Role::Category),
        "devTime" => (Ty::Str, Role::DevTime),
        "devTimeFormat" => (Ty::Str, Role::DevTimeFormat),
        "proto" => (Ty::Str, Role::Proto),
        "sev" => (Ty::Int, Role::Severity),
        "src" => (Ty::Ip, Role::SrcIp),
        "dst" => (Ty::Ip, Role::DstIp),
        "srcPort" => (Ty::Int, Role::SrcPort),
        "dstPort" => (Ty::Int, Role::DstPort),
        "srcPreNAT" | "srcPostNAT" | "dstPreNAT" | "dstPostNAT" | "identSrc" | "identSecondlp"
        | "vSrc" => (Ty::Ip, Role::OtherIp),
        "srcPreNATPort" | "dstPreNATPort" | "srcPostNATPort" | "dstPostNATPort" => {
            (Ty::Int, Role::None)
        }
        "usrName" => (Ty::Str, Role::DstUser),
        "accountName" | "identUserName" => (Ty::Str, Role::OtherUser),
        "srcMAC" => (Ty::Mac, Role::SrcMac),
        "dstMAC" => (Ty::Mac, Role::DstMac),
        "identMAC" => (Ty::Mac, Role::None),
        "identHostName" => (Ty::Str, Role::OtherHost),
        "srcBytes" => (Ty::Int, Role::BytesOut),
        "dstBytes" => (Ty::Int, Role::BytesIn),
        "srcPackets" => (Ty::Int, Role::PacketsOut),
        "dstPackets" => (Ty::Int, Role::PacketsIn),
        "totalPackets" => (Ty::Int, Role::None),
        "url" => (Ty::Str, Role::Url),
        "policy" => (Ty::Str, Role::Policy),
        "identNetBios" | "identGrpName" | "vSrcName" | "role" | "realm" | "resource"
        | "groupID" | "domain" | "isLoginEvent" | "isLogoutEvent" | "calLanguage"
        | "AttributeLimits" | "calCountryOrRegion" => (Ty::Str, Role::None),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_full_names_resolve_alike() {
        for (short, full) in CEF_KEYS {
            let a = cef(short);
            let b = cef(full);
            assert!(a.is_some(), "{short}");
            assert_eq!(a, b, "{short} / {full}");
            assert_eq!(a.map(|e| e.full), Some(*full));
        }
        assert_eq!(cef("src").map(|e| e.role), Some(Role::SrcIp));
        assert_eq!(cef("sourceAddress").map(|e| e.ty), Some(Ty::Ip));
        assert_eq!(cef("SRC"), None);
        assert_eq!(cef("cs1"), None, "custom fields are a family, not entries");
    }

    #[test]
    fn custom_families() {
        assert_eq!(
            custom("cs4"),
            Some(Custom {
                family: Family::String,
                n: 4,
                label: false
            })
        );
        assert_eq!(
            custom("cfp15Label"),
            Some(Custom {
                family: Family::Float,
                n: 15,
                label: true
            })
        );
        assert_eq!(
            custom("deviceCustomIPv6Address12"),
            Some(Custom {
                family: Family::Ipv6,
                n: 12,
                label: false
            })
        );
        assert_eq!(
            custom("deviceCustomDate2Label").map(|c| c.family),
            Some(Family::Date)
        );
        assert_eq!(
            custom("flexString1").map(|c| c.family),
            Some(Family::FlexString)
        );
        assert_eq!(custom("cs"), None);
        assert_eq!(custom("cs0"), None);
        assert_eq!(custom("csLabel"), None);
        assert_eq!(custom("cnt"), None);
        assert_eq!(custom("cs1x"), None);
    }

    #[test]
    fn leef_keys() {
        assert_eq!(leef("srcPort"), Some((Ty::Int, Role::SrcPort)));
        assert_eq!(leef("calCountryOrRegion"), Some((Ty::Str, Role::None)));
        assert_eq!(leef("src"), Some((Ty::Ip, Role::SrcIp)));
        assert_eq!(leef("Src"), None);
    }
}
