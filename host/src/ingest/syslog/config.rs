//! `[[syslog.listeners]]` of the server configuration, and routing of a message to a
//! connector.
//!
//! ```toml
//! [[syslog.listeners]]
//! bind = "0.0.0.0:5514"
//! protocol = "tcp"                  # or "udp"
//! connector = "acme/con_0123abcd"   # optional: where unmatched messages go
//! max_message_bytes = 65536         # default
//!
//! [[syslog.listeners.routes]]       # first match wins; every given field must match
//! source = "10.1.0.0/16"            # sender IP or CIDR
//! hostname = "fw-*"                 # HOSTNAME; `*` matches any run of characters
//! app_name = "CEF"                  # APP-NAME / TAG
//! connector = "acme/con_4567ef01"
//! ```
//!
//! A listener with only `connector` is a per-connector listener; several routes make it
//! a shared one. A message no route matches and no `connector` catches is dropped and
//! counted as unrouted.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

/// `[syslog]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// Listeners.
    pub listeners: Vec<ListenerConfig>,
    /// Messages queued per connector before TCP readers pause and UDP datagrams drop.
    pub queue_per_connector: Option<usize>,
    /// Most messages per `normalize` batch.
    pub batch_max: Option<usize>,
}

/// Transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// RFC 5426.
    Udp,
    /// RFC 6587.
    Tcp,
}

/// One listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address to bind (`127.0.0.1:0` picks a port).
    pub bind: SocketAddr,
    /// `udp` or `tcp`.
    pub protocol: Protocol,
    /// `org/connector_id` for messages no route matches.
    #[serde(default)]
    pub connector: Option<String>,
    /// Routes, first match wins.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Largest message (frame) accepted; larger ones are counted and skipped.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Concurrent TCP connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_message() -> usize {
    64 * 1024
}
fn default_max_connections() -> usize {
    1024
}

/// One route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Sender IP address or CIDR.
    #[serde(default)]
    pub source: Option<String>,
    /// HOSTNAME pattern (`*` wildcard).
    #[serde(default)]
    pub hostname: Option<String>,
    /// APP-NAME pattern (`*` wildcard).
    #[serde(default)]
    pub app_name: Option<String>,
    /// `org/connector_id`.
    pub connector: String,
}

/// A connector a route leads to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Org.
    pub org: String,
    /// Connector id.
    pub connector: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (
                ip.trim().parse::<IpAddr>().ok()?,
                Some(p.trim().parse::<u8>().ok()?),
            ),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net: ip, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `*` matches any run of characters; ASCII case-insensitive.
fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[derive(Debug, Clone)]
struct Route {
    source: Option<Cidr>,
    hostname: Option<String>,
    app_name: Option<String>,
    target: Target,
}

/// The compiled routing table of one listener.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
    default: Option<Target>,
}

fn target(s: &str, path: &str) -> Result<Target, String> {
    match s.split_once('/') {
        Some((org, id)) if !org.is_empty() && !id.is_empty() && !id.contains('/') => Ok(Target {
            org: org.to_string(),
            connector: id.to_string(),
        }),
        _ => Err(format!("{path}: {s:?} must be `org/connector_id`")),
    }
}

impl Router {
    /// Compile a listener's routes; errors name the config key.
    pub fn new(l: &ListenerConfig, path: &str) -> Result<Router, String> {
        let default = l
            .connector
            .as_deref()
            .map(|c| target(c, &format!("{path}.connector")))
            .transpose()?;
        let mut routes = Vec::new();
        for (i, r) in l.routes.iter().enumerate() {
            let rp = format!("{path}.routes[{i}]");
            let source =
                match &r.source {
                    None => None,
                    Some(s) => Some(Cidr::parse(s).ok_or_else(|| {
                        format!("{rp}.source: {s:?} is not an IP address or CIDR")
                    })?),
                };
            routes.push(Route {
                source,
                hostname: r.hostname.clone(),
                app_name: r.app_name.clone(),
                target: target(&r.connector, &format!("{rp}.connector"))?,
            });
        }
        if routes.is_empty() && default.is_none() {
            return Err(format!("{path}: give `connector` or at least one route"));
        }
        Ok(Router { routes, default })
    }

    /// The connector a message from `peer` with these header fields goes to.
    pub fn route(
        &self,
        peer: IpAddr,
        hostname: Option<&str>,
        app_name: Option<&str>,
    ) -> Option<&Target> {
        self.routes
            .iter()
            .find(|r| {
                r.source.is_none_or(|c| c.contains(peer))
                    && r.hostname
                        .as_deref()
                        .is_none_or(|p| hostname.is_some_and(|h| glob(p, h)))
                    && r.app_name
                        .as_deref()
                        .is_none_or(|p| app_name.is_some_and(|a| glob(p, a)))
            })
            .map(|r| &r.target)
            .or(self.default.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_source_hostname_and_app_first_match_wins() {
        let cfg: SyslogConfig = toml::from_str(
            r#"
            [[listeners]]
            bind = "127.0.0.1:0"
            protocol = "udp"
            connector = "o/default"
            [[listeners.routes]]
            source = "10.1.0.0/16"
            hostname = "fw-*"
            connector = "o/fw"
            [[listeners.routes]]
            app_name = "CEF"
            connector = "o/cef"
            [[listeners.routes]]
            source = "192.0.2.7"
            connector = "o/one"
            "#,
        )
        .unwrap();
        let r = Router::new(&cfg.listeners[0], "syslog.listeners[0]").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let to = |peer, h, a| r.route(ip(peer), h, a).map(|t| t.connector.as_str());
        assert_eq!(to("10.1.2.3", Some("FW-01"), None), Some("fw"));
        assert_eq!(to("10.2.2.3", Some("fw-01"), Some("cef")), Some("cef"));
        assert_eq!(to("::ffff:192.0.2.7", None, None), Some("one"));
        assert_eq!(to("10.1.2.3", Some("web-01"), None), Some("default"));
        assert_eq!(to("10.1.2.3", None, None), Some("default"));
    }

    #[test]
    fn server_config_takes_syslog_listeners_and_refuses_unknown_keys() {
        let cfg: crate::server::ServerConfig = toml::from_str(
            r#"
            [syslog]
            queue_per_connector = 100
            [[syslog.listeners]]
            bind = "0.0.0.0:5514"
            protocol = "tcp"
            connector = "acme/con_1"
            [[syslog.listeners.routes]]
            hostname = "fw-*"
            connector = "acme/con_2"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.syslog.queue_per_connector, Some(100));
        let l = &cfg.syslog.listeners[0];
        assert_eq!(
            (l.protocol, l.max_message_bytes),
            (Protocol::Tcp, 64 * 1024)
        );
        assert_eq!(l.routes[0].hostname.as_deref(), Some("fw-*"));
        let e = toml::from_str::<crate::server::ServerConfig>(
            "[[syslog.listeners]]\nbind = \"0.0.0.0:514\"\nprotocol = \"sctp\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("sctp"), "{e}");
        let e = toml::from_str::<crate::server::ServerConfig>(
            "[[syslog.listeners]]\nbind = \"0.0.0.0:514\"\nprotocol = \"udp\"\nport = 1\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }

    #[test]
    fn bad_routes_name_the_key() {
        let l: ListenerConfig = toml::from_str(
            "bind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n[[routes]]\nsource = \"10.0.0.0/40\"\nconnector = \"o/c\"",
        )
        .unwrap();
        let e = Router::new(&l, "syslog.listeners[0]").unwrap_err();
        assert!(e.starts_with("syslog.listeners[0].routes[0].source"), "{e}");
        let l: ListenerConfig =
            toml::from_str("bind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\nconnector = \"nope\"")
                .unwrap();
        assert!(
            Router::new(&l, "x")
                .unwrap_err()
                .contains("org/connector_id")
        );
        assert!(glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY") && glob("*", ""));
    }
}
