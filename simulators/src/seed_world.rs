//! The seed story's world: the twelve upstream sources of one organisation — two SIEMs,
//! four threat-intel feeds, three OSINT providers, a blockchain monitor and two custom
//! REST APIs — each a local simulator, with the connector and credential definitions an
//! admin would enter for them (as REST bodies of the Portcullis management API).
//!
//! `portcullis serve --demo` and the seed-story end-to-end test both start this world, so
//! what a newcomer watches is exactly what the test checks.
//!
//! - The SIEMs are the real API simulators ([`ThreatHawkServer`] behind OAuth client
//!   credentials, [`QRadarServer`] with a `SEC` token) and run the real `threathawk-siem`
//!   and `qradar-siem` plugins.
//! - The ten others are [`PagedApi`]s serving domain-shaped records (indicators, OSINT
//!   observations, wallet transactions, assets, tickets) read by `rest-generic`, standing
//!   in until their own plugins land; each uses a different authentication and paging.
//! - [`SeedWorld::tick`] makes every source publish new records (current timestamps);
//!   [`SeedWorld::set_fault`] breaks a source the way upstreams break.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::paged::{Auth, Failure, PagedApi, PagedApiConfig};
use crate::qradar::{QRadarAuth, QRadarConfig, QRadarDataset, QRadarServer, generated_offense};
use crate::threathawk::{ThreatHawkConfig, ThreatHawkServer, threathawk_alert};

/// Source categories of the seed story.
pub const CATEGORIES: [&str; 5] = ["siem", "threat-intel", "osint", "blockchain", "custom-api"];

/// The ThreatHawk source's key (the SIEM that floods duplicates in the story).
pub const THREATHAWK: &str = "threathawk";
/// The QRadar source's key.
pub const QRADAR: &str = "qradar";

const QRADAR_TOKEN: &str = "seed-qradar-sec-token-8c1f";

/// How a source misbehaves on request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Back to normal.
    None,
    /// The same records again and again (ThreatHawk: replay mode; feeds: the cursor is
    /// ignored and the newest page served every time).
    DuplicateFlood,
    /// `401` to every request.
    Unauthorized,
    /// `429` with `Retry-After`.
    RateLimited {
        /// Seconds.
        retry_after_secs: u64,
    },
    /// `503` to the next few requests.
    Unavailable,
}

/// One rest-generic-backed source.
#[derive(Debug)]
struct Feed {
    key: &'static str,
    name: &'static str,
    category: &'static str,
    shape: Shape,
    auth: FeedAuth,
    api: PagedApi,
    next: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    IpReputation,
    PhishingDomains,
    MalwareHashes,
    Vulnerabilities,
    CertTransparency,
    PasteMonitor,
    PassiveDns,
    WalletMonitor,
    AssetInventory,
    Ticketing,
}

#[derive(Clone, Debug)]
enum FeedAuth {
    None,
    Bearer(&'static str),
    ApiKeyHeader(&'static str, &'static str),
    ApiKeyQuery(&'static str, &'static str),
    Basic(&'static str, &'static str),
}

/// The twelve running sources.
pub struct SeedWorld {
    /// The ThreatHawk SIEM (OAuth client credentials).
    pub threathawk: ThreatHawkServer,
    /// The QRadar console (`SEC` token).
    pub qradar: QRadarServer,
    feeds: Vec<Feed>,
    threathawk_next: AtomicU64,
    qradar_next: AtomicU64,
}

impl std::fmt::Debug for SeedWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedWorld")
            .field("threathawk", &self.threathawk.base_url())
            .field("qradar", &self.qradar.base_url())
            .field("feeds", &self.feeds.len())
            .finish()
    }
}

/// A connector as `POST /v1/orgs/{org}/connectors` takes it, with the source it reads.
#[derive(Clone, Debug)]
pub struct SeedConnector {
    /// Source key (`threathawk`, `ti-ip`, ...).
    pub source: &'static str,
    /// Category of the source.
    pub category: &'static str,
    /// The request body.
    pub body: Value,
}

/// A credential as `PUT /v1/orgs/{org}/credentials/{name}` takes it.
#[derive(Clone, Debug)]
pub struct SeedCredential {
    /// Credential name.
    pub name: String,
    /// The request body (carries the secret: send it, never print it).
    pub body: Value,
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

impl Shape {
    /// Record number `n` with the current time.
    fn record(self, key: &str, n: u64) -> Value {
        let at = now_rfc3339();
        let sev = SEVERITIES[(n % 4) as usize];
        let octet = n % 254 + 1;
        match self {
            Shape::IpReputation => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": sev,
                "title": format!("Scanning host 198.51.100.{octet} (confidence {}%)", 50 + n % 50),
                "indicator": format!("198.51.100.{octet}"), "confidence": 50 + n % 50,
                "tags": ["scanner", "botnet"],
            }),
            Shape::PhishingDomains => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": sev,
                "title": format!("Phishing kit on login-{n}.example.net"),
                "domain": format!("login-{n}.example.net"),
                "url": format!("https://login-{n}.example.net/secure/verify"),
            }),
            Shape::MalwareHashes => {
                let family = ["AgentTesla", "Qakbot", "IcedID", "Emotet"][(n % 4) as usize];
                json!({
                    "id": format!("{key}-{n:07}"), "created_at": at, "severity": sev,
                    "title": format!("Loader sample {n}"),
                    "sha256": format!("{:064x}", u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    "family": family,
                })
            }
            Shape::Vulnerabilities => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": sev,
                "title": format!("Exploitation of CVE-2026-{:05} observed in the wild", 10_000 + n),
                "cve": format!("CVE-2026-{:05}", 10_000 + n),
            }),
            Shape::CertTransparency => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": "low",
                "title": format!("New certificate for corp-{n}.example.org"),
                "hostname": format!("corp-{n}.example.org"), "issuer": "Example CA R3",
            }),
            Shape::PasteMonitor => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": sev,
                "title": format!("Credentials of user{n}@example.com seen in a paste"),
                "email": format!("user{n}@example.com"),
                "url": format!("https://paste.example.net/raw/{n:08x}"),
            }),
            Shape::PassiveDns => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": "informational",
                "title": format!("cdn-{n}.example.com resolved to 203.0.113.{octet}"),
                "rrname": format!("cdn-{n}.example.com"), "rdata": format!("203.0.113.{octet}"),
            }),
            Shape::WalletMonitor => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": sev,
                "title": format!("Transfer of {}.{:02} ETH from a sanctioned wallet", n % 90 + 1, n % 100),
                "from": format!("0x{:040x}", 0xdead_beef_u64.wrapping_mul(n + 7)),
                "to": format!("0x{:040x}", 0xfeed_f00d_u64.wrapping_mul(n + 11)),
            }),
            Shape::AssetInventory => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": "informational",
                "title": format!("Asset srv-{n:04}.corp.example changed owner"),
                "hostname": format!("srv-{n:04}.corp.example"), "ip": format!("10.30.0.{octet}"),
            }),
            Shape::Ticketing => json!({
                "id": format!("{key}-{n:07}"), "created_at": at, "severity": sev,
                "title": format!("Incident ticket INC-{n:06} opened"),
                "assignee": "soc-tier2",
            }),
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Shape::IpReputation | Shape::PhishingDomains | Shape::MalwareHashes => "indicator",
            Shape::Vulnerabilities => "vulnerability",
            Shape::CertTransparency | Shape::PassiveDns => "asset",
            Shape::PasteMonitor => "finding",
            Shape::WalletMonitor => "transaction",
            Shape::AssetInventory => "asset",
            Shape::Ticketing => "finding",
        }
    }

    fn observables(self) -> Value {
        let o = |kind: &str, pointer: &str| json!({"kind": kind, "pointer": pointer});
        Value::Array(match self {
            Shape::IpReputation => vec![o("ip", "/indicator")],
            Shape::PhishingDomains => vec![o("domain", "/domain"), o("url", "/url")],
            Shape::MalwareHashes => vec![o("sha256", "/sha256")],
            Shape::Vulnerabilities => vec![o("cve", "/cve")],
            Shape::CertTransparency => vec![o("hostname", "/hostname")],
            Shape::PasteMonitor => vec![o("email", "/email"), o("url", "/url")],
            Shape::PassiveDns => vec![o("domain", "/rrname"), o("ip", "/rdata")],
            Shape::WalletMonitor => vec![o("wallet-address", "/from"), o("wallet-address", "/to")],
            Shape::AssetInventory => vec![o("hostname", "/hostname"), o("ip", "/ip")],
            Shape::Ticketing => vec![o("user", "/assignee")],
        })
    }
}

impl FeedAuth {
    fn simulator(&self) -> Auth {
        match self {
            FeedAuth::None => Auth::None,
            FeedAuth::Bearer(t) => Auth::Bearer((*t).to_string()),
            FeedAuth::ApiKeyHeader(name, value) => Auth::ApiKeyHeader {
                name: (*name).to_string(),
                value: (*value).to_string(),
            },
            FeedAuth::ApiKeyQuery(name, value) => Auth::ApiKeyQuery {
                name: (*name).to_string(),
                value: (*value).to_string(),
            },
            FeedAuth::Basic(u, p) => Auth::Basic {
                username: (*u).to_string(),
                password: (*p).to_string(),
            },
        }
    }

    /// The credential body for this auth, bound to `origin`.
    fn credential(&self, origin: &str) -> Option<Value> {
        match self {
            FeedAuth::None => None,
            FeedAuth::Bearer(t) => Some(json!({"kind": "bearer", "token": t, "hosts": [origin]})),
            FeedAuth::ApiKeyHeader(name, value) => {
                Some(json!({"kind": "api-key", "key": value, "header": name, "hosts": [origin]}))
            }
            FeedAuth::ApiKeyQuery(name, value) => {
                Some(json!({"kind": "api-key", "key": value, "query": name, "hosts": [origin]}))
            }
            FeedAuth::Basic(u, p) => {
                Some(json!({"kind": "basic", "username": u, "password": p, "hosts": [origin]}))
            }
        }
    }
}

/// Records every feed starts with.
const INITIAL_RECORDS: u64 = 40;

impl SeedWorld {
    /// Start all twelve sources on loopback.
    pub fn start() -> io::Result<Self> {
        let threathawk = ThreatHawkServer::start(ThreatHawkConfig {
            // The backlog: one alert every 30 s over the last 20 minutes.
            alerts: (1..=40)
                .map(|i| alert_at(i, Utc::now() - TimeDelta::seconds(30 * (41 - i as i64))))
                .collect(),
            ..ThreatHawkConfig::default()
        })?;
        let qradar = QRadarServer::start(QRadarConfig {
            auth: QRadarAuth::Sec(QRADAR_TOKEN.to_string()),
            dataset: QRadarDataset::generate(12),
            ..QRadarConfig::default()
        })?;
        let defs: [(&str, &str, &str, Shape, FeedAuth); 10] = [
            (
                "ti-ip",
                "IP reputation feed",
                "threat-intel",
                Shape::IpReputation,
                FeedAuth::ApiKeyHeader("X-Api-Key", "seed-ti-ip-key-51c2"),
            ),
            (
                "ti-phishing",
                "Phishing domain feed",
                "threat-intel",
                Shape::PhishingDomains,
                FeedAuth::Bearer("seed-ti-phishing-token-a93e"),
            ),
            (
                "ti-malware",
                "Malware hash feed",
                "threat-intel",
                Shape::MalwareHashes,
                FeedAuth::ApiKeyQuery("auth-key", "seed-ti-malware-key-7d20"),
            ),
            (
                "ti-exploited",
                "Exploited vulnerabilities feed",
                "threat-intel",
                Shape::Vulnerabilities,
                FeedAuth::None,
            ),
            (
                "osint-ct",
                "Certificate transparency watch",
                "osint",
                Shape::CertTransparency,
                FeedAuth::None,
            ),
            (
                "osint-paste",
                "Paste-site monitor",
                "osint",
                Shape::PasteMonitor,
                FeedAuth::Bearer("seed-osint-paste-token-0b4f"),
            ),
            (
                "osint-pdns",
                "Passive DNS",
                "osint",
                Shape::PassiveDns,
                FeedAuth::Basic("seed-pdns", "seed-pdns-pass-66aa"),
            ),
            (
                "chain-wallets",
                "Wallet monitor",
                "blockchain",
                Shape::WalletMonitor,
                FeedAuth::ApiKeyHeader("X-Api-Key", "seed-chain-key-e1d9"),
            ),
            (
                "custom-assets",
                "Asset inventory API",
                "custom-api",
                Shape::AssetInventory,
                FeedAuth::Bearer("seed-assets-token-3f77"),
            ),
            (
                "custom-tickets",
                "Ticketing API",
                "custom-api",
                Shape::Ticketing,
                FeedAuth::None,
            ),
        ];
        let mut feeds = Vec::with_capacity(defs.len());
        for (key, name, category, shape, auth) in defs {
            let api = PagedApi::start(PagedApiConfig {
                auth: auth.simulator(),
                records: (1..=INITIAL_RECORDS)
                    .map(|n| shape.record(key, n))
                    .collect(),
                ..PagedApiConfig::default()
            })?;
            feeds.push(Feed {
                key,
                name,
                category,
                shape,
                auth,
                api,
                next: AtomicU64::new(INITIAL_RECORDS + 1),
            });
        }
        Ok(SeedWorld {
            threathawk,
            qradar,
            feeds,
            threathawk_next: AtomicU64::new(41),
            qradar_next: AtomicU64::new(13),
        })
    }

    /// Source keys, SIEMs first.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut v = vec![THREATHAWK, QRADAR];
        v.extend(self.feeds.iter().map(|f| f.key));
        v
    }

    /// The credentials the connectors bind (names are `<source>-api`).
    pub fn credentials(&self) -> Vec<SeedCredential> {
        let th = self.threathawk.oauth();
        let mut v = vec![
            SeedCredential {
                name: format!("{THREATHAWK}-api"),
                body: json!({
                    "kind": "oauth2-client-credentials",
                    "token_url": self.threathawk.token_url(),
                    "client_id": th.client_id(),
                    "client_secret": th.client_secret(),
                    "scopes": ["alerts:read"],
                    "hosts": [origin(&self.threathawk.base_url())],
                }),
            },
            SeedCredential {
                name: format!("{QRADAR}-api"),
                body: json!({
                    "kind": "api-key", "key": QRADAR_TOKEN, "header": "SEC",
                    "hosts": [origin(&self.qradar.base_url())],
                }),
            },
        ];
        for f in &self.feeds {
            if let Some(body) = f.auth.credential(&origin(&f.api.base_url())) {
                v.push(SeedCredential {
                    name: format!("{}-api", f.key),
                    body,
                });
            }
        }
        v
    }

    /// The twelve connectors, polling every `schedule` (ISO 8601, e.g. `PT5S`).
    pub fn connectors(&self, schedule: &str) -> Vec<SeedConnector> {
        let th = origin(&self.threathawk.base_url());
        let qr = origin(&self.qradar.base_url());
        let mut v = vec![
            SeedConnector {
                source: THREATHAWK,
                category: "siem",
                body: json!({
                    "name": "ThreatHawk SIEM",
                    "plugin": "threathawk-siem",
                    "config": {"base_url": self.threathawk.api_url(), "page_size": 50},
                    "credentials": {"api": format!("{THREATHAWK}-api")},
                    "grants": [th],
                    "schedule": schedule,
                }),
            },
            SeedConnector {
                source: QRADAR,
                category: "siem",
                body: json!({
                    "name": "QRadar SIEM",
                    "plugin": "qradar-siem",
                    "config": {"base_url": self.qradar.base_url(), "insecure_http": true,
                               "page_size": 50, "settle_seconds": 0},
                    "credentials": {"api": format!("{QRADAR}-api")},
                    "grants": [qr],
                    "schedule": schedule,
                }),
            },
        ];
        for f in &self.feeds {
            let base = f.api.base_url();
            let mut config = json!({
                "base_url": base,
                "path": "/alerts",
                "records": "",
                "id": "/id",
                "time": "/created_at",
                "title": "/title",
                "pagination": {"type": "link-header"},
                "page_size": 50,
                "page_size_param": "per_page",
                "window": {"param": "since"},
                "kind": f.shape.kind(),
                "severity": {"pointer": "/severity", "map": {"informational": "informational", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}, "default": "unknown"},
                "observables": f.shape.observables(),
            });
            let mut credentials = json!({});
            if !matches!(f.auth, FeedAuth::None) {
                config["credential"] = json!("api");
                credentials = json!({"api": format!("{}-api", f.key)});
            }
            v.push(SeedConnector {
                source: f.key,
                category: f.category,
                body: json!({
                    "name": f.name,
                    "plugin": "rest-generic",
                    "category": f.category,
                    "config": config,
                    "credentials": credentials,
                    "grants": [origin(&base)],
                    "schedule": schedule,
                }),
            });
        }
        v
    }

    /// Every source publishes `n` new records (ThreatHawk alerts, QRadar offenses, feed
    /// records), timestamped now.
    pub fn tick(&self, n: u64) {
        let start = self.threathawk_next.fetch_add(n, Ordering::Relaxed);
        self.threathawk
            .append_alerts((start..start + n).map(|i| live_alert(i as usize)));
        let start = self.qradar_next.fetch_add(n, Ordering::Relaxed);
        self.qradar
            .add_offenses((start..start + n).map(|i| generated_offense(i, now_ms())));
        for f in &self.feeds {
            let start = f.next.fetch_add(n, Ordering::Relaxed);
            f.api
                .append_records((start..start + n).map(|i| f.shape.record(f.key, i)));
        }
    }

    /// Ids of every record `source` has published so far (what a complete ingestion
    /// holds): ThreatHawk alert ids, QRadar offense ids, feed record ids.
    pub fn published_ids(&self, source: &str) -> Vec<String> {
        let id_of = |v: &Value| match &v["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match source {
            THREATHAWK => self.threathawk.alerts().iter().map(id_of).collect(),
            QRADAR => self.qradar.offenses().iter().map(id_of).collect(),
            key => self
                .feeds
                .iter()
                .find(|f| f.key == key)
                .map(|f| f.api.records().iter().map(id_of).collect())
                .unwrap_or_default(),
        }
    }

    /// Base URL of `source`.
    pub fn base_url(&self, source: &str) -> Option<String> {
        match source {
            THREATHAWK => Some(self.threathawk.base_url()),
            QRADAR => Some(self.qradar.base_url()),
            key => self
                .feeds
                .iter()
                .find(|f| f.key == key)
                .map(|f| f.api.base_url()),
        }
    }

    /// Break (or mend) `source`. ThreatHawk floods duplicates through its replay mode;
    /// for the others the fault is injected into their next requests.
    pub fn set_fault(&self, source: &str, fault: Fault) -> Result<(), String> {
        if source == THREATHAWK {
            match fault {
                Fault::None => self.threathawk.set_replay(false),
                Fault::DuplicateFlood => self.threathawk.set_replay(true),
                Fault::Unauthorized => {
                    self.threathawk.fail_next(Failure::Status {
                        status: 401,
                        body: r#"{"error":"unauthorized","message":"invalid token"}"#.into(),
                    });
                }
                Fault::RateLimited { retry_after_secs } => self
                    .threathawk
                    .fail_next(Failure::RateLimited { retry_after_secs }),
                Fault::Unavailable => {
                    for _ in 0..3 {
                        self.threathawk.fail_next(Failure::Status {
                            status: 503,
                            body: r#"{"error":"service_unavailable"}"#.into(),
                        });
                    }
                }
            }
            return Ok(());
        }
        let feed = self.feeds.iter().find(|f| f.key == source).ok_or_else(|| {
            format!(
                "no source {source:?} (known: {})",
                self.sources().join(", ")
            )
        })?;
        match fault {
            Fault::None => feed.api.set_auth(feed.auth.simulator()),
            Fault::Unauthorized => feed.api.set_auth(Auth::Bearer("revoked".into())),
            Fault::RateLimited { retry_after_secs } => feed
                .api
                .fail_next(Failure::RateLimited { retry_after_secs }),
            Fault::Unavailable => {
                for _ in 0..3 {
                    feed.api.fail_next(Failure::Status {
                        status: 503,
                        body: r#"{"message":"Service Unavailable"}"#.into(),
                    });
                }
            }
            Fault::DuplicateFlood => {
                return Err(format!(
                    "{source}: duplicate flooding is simulated by the ThreatHawk SIEM only"
                ));
            }
        }
        Ok(())
    }
}

/// ThreatHawk alert `index` created now.
fn live_alert(index: usize) -> Value {
    alert_at(index, Utc::now())
}

/// ThreatHawk alert `index` created at `at`.
fn alert_at(index: usize, at: DateTime<Utc>) -> Value {
    let mut a = threathawk_alert(index);
    let at = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    a["created_at"] = json!(at);
    a["updated_at"] = json!(at);
    a
}

/// `scheme://host:port` of a URL.
fn origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.to_string(),
    }
}
