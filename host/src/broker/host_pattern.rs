//! Host patterns: `scheme://host[:port]`, used for what a plugin declares, what an operator
//! grants, and where a credential may be sent.
//!
//! - scheme: `http`, `https` or `*`;
//! - host: an exact DNS name (case-insensitive), an IP literal (IPv6 in brackets), `*`
//!   (any host) or `*.example.com` (any subdomain of `example.com`, not the apex);
//! - port: a number or `*`; omitted means the scheme's default port (`*` scheme: 80 or 443).

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// A parsed host pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    scheme: SchemePattern,
    host: HostMatch,
    port: PortPattern,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SchemePattern {
    Any,
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostMatch {
    Any,
    Exact(String),
    Ip(IpAddr),
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PortPattern {
    Any,
    Default,
    Exact(u16),
}

/// Why a host pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPatternError {
    /// Missing `scheme://`.
    #[error("host pattern {0:?}: expected `scheme://host[:port]`")]
    MissingScheme(String),
    /// Unsupported scheme.
    #[error("host pattern {0:?}: scheme must be http, https or *")]
    BadScheme(String),
    /// Path, query, fragment or userinfo present.
    #[error("host pattern {0:?}: must not contain a path, query, fragment or user info")]
    Extra(String),
    /// Bad host.
    #[error("host pattern {0:?}: invalid host ({1})")]
    BadHost(String, String),
    /// Bad port.
    #[error("host pattern {0:?}: port must be a number 1-65535 or *")]
    BadPort(String),
}

fn normalise_domain(d: &str) -> String {
    d.trim_end_matches('.').to_ascii_lowercase()
}

impl HostPattern {
    /// Parse a pattern.
    pub fn parse(input: &str) -> Result<Self, HostPatternError> {
        let source = input.trim().to_string();
        let (scheme, rest) = source
            .split_once("://")
            .ok_or_else(|| HostPatternError::MissingScheme(source.clone()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "*" => SchemePattern::Any,
            "http" => SchemePattern::Http,
            "https" => SchemePattern::Https,
            _ => return Err(HostPatternError::BadScheme(source.clone())),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(HostPatternError::Extra(source.clone()));
        }
        // Split host and port, minding IPv6 brackets.
        let (host_part, port_part) = if let Some(after) = rest.strip_prefix('[') {
            let (inner, tail) = after
                .split_once(']')
                .ok_or_else(|| HostPatternError::BadHost(source.clone(), "unclosed [".into()))?;
            let port = match tail {
                "" => None,
                t => Some(
                    t.strip_prefix(':')
                        .ok_or_else(|| HostPatternError::BadPort(source.clone()))?,
                ),
            };
            (format!("[{inner}]"), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        let port = match port_part {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => PortPattern::Exact(n),
                _ => return Err(HostPatternError::BadPort(source.clone())),
            },
        };
        let host = if host_part == "*" {
            HostMatch::Any
        } else if let Some(inner) = host_part
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
        {
            let ip: std::net::Ipv6Addr = inner.parse().map_err(|_| {
                HostPatternError::BadHost(source.clone(), "bad IPv6 literal".into())
            })?;
            HostMatch::Ip(IpAddr::V6(ip))
        } else if let Some(base) = host_part.strip_prefix("*.") {
            let base = normalise_domain(base);
            check_domain(&source, &base)?;
            HostMatch::Subdomains(base)
        } else if let Ok(ip) = host_part.parse::<std::net::Ipv4Addr>() {
            HostMatch::Ip(IpAddr::V4(ip))
        } else {
            let d = normalise_domain(&host_part);
            check_domain(&source, &d)?;
            HostMatch::Exact(d)
        };
        Ok(HostPattern {
            scheme,
            host,
            port,
            source,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `url` matches this pattern.
    pub fn matches(&self, url: &Url) -> bool {
        let scheme_ok = match self.scheme {
            SchemePattern::Any => matches!(url.scheme(), "http" | "https"),
            SchemePattern::Http => url.scheme() == "http",
            SchemePattern::Https => url.scheme() == "https",
        };
        if !scheme_ok {
            return false;
        }
        let Some(port) = url.port_or_known_default() else {
            return false;
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == port,
            PortPattern::Default => match url.scheme() {
                "http" => port == 80,
                "https" => port == 443,
                _ => false,
            },
        };
        if !port_ok {
            return false;
        }
        match (&self.host, url.host()) {
            (HostMatch::Any, Some(_)) => true,
            (HostMatch::Exact(d), Some(Host::Domain(h))) => normalise_domain(h) == *d,
            (HostMatch::Subdomains(base), Some(Host::Domain(h))) => {
                let h = normalise_domain(h);
                h.len() > base.len() + 1
                    && h.ends_with(base.as_str())
                    && h.as_bytes()[h.len() - base.len() - 1] == b'.'
            }
            (HostMatch::Ip(ip), Some(Host::Ipv4(a))) => *ip == IpAddr::V4(a),
            (HostMatch::Ip(ip), Some(Host::Ipv6(a))) => *ip == IpAddr::V6(a),
            _ => false,
        }
    }

    /// Whether every URL matched by `other` is also matched by `self` (used to check that
    /// a grant stays within what a plugin declared).
    pub fn covers(&self, other: &HostPattern) -> bool {
        let scheme_ok = match (&self.scheme, &other.scheme) {
            (SchemePattern::Any, _) => true,
            (a, b) => a == b,
        };
        let port_ok = match (self.port, other.port) {
            (PortPattern::Any, _) => true,
            (a, b) if a == b => true,
            // `http://h` (default port) covers `http://h:80`, and vice versa.
            (PortPattern::Default, PortPattern::Exact(p))
            | (PortPattern::Exact(p), PortPattern::Default) => match other.scheme {
                SchemePattern::Http => p == 80 && self.scheme != SchemePattern::Https,
                SchemePattern::Https => p == 443 && self.scheme != SchemePattern::Http,
                SchemePattern::Any => false,
            },
            _ => false,
        };
        let host_ok = match (&self.host, &other.host) {
            (HostMatch::Any, _) => true,
            (HostMatch::Exact(a), HostMatch::Exact(b)) => a == b,
            (HostMatch::Ip(a), HostMatch::Ip(b)) => a == b,
            (HostMatch::Subdomains(base), HostMatch::Exact(d))
            | (HostMatch::Subdomains(base), HostMatch::Subdomains(d)) => {
                d.len() > base.len() + 1
                    && d.ends_with(base.as_str())
                    && d.as_bytes()[d.len() - base.len() - 1] == b'.'
                    || (matches!(other.host, HostMatch::Subdomains(_)) && d == base)
            }
            _ => false,
        };
        scheme_ok && port_ok && host_ok
    }
}

fn check_domain(source: &str, d: &str) -> Result<(), HostPatternError> {
    if d.is_empty() || d.contains('*') {
        return Err(HostPatternError::BadHost(
            source.to_string(),
            "wildcards are only allowed as `*` or a leading `*.`".into(),
        ));
    }
    let ok = d.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if ok {
        Ok(())
    } else {
        Err(HostPatternError::BadHost(
            source.to_string(),
            format!("{d:?} is not a DNS name"),
        ))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for HostPattern {
    type Err = HostPatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostPattern::parse(s)
    }
}

impl serde::Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostPattern::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The origin of a URL as `scheme://host:port`, for messages.
pub fn origin_of(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }
    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn exact_default_port() {
        let pat = p("https://api.example.com");
        assert!(pat.matches(&u("https://api.example.com/x?y=1")));
        assert!(pat.matches(&u("https://API.example.com.:443/")));
        assert!(!pat.matches(&u("http://api.example.com/")));
        assert!(!pat.matches(&u("https://api.example.com:8443/")));
        assert!(!pat.matches(&u("https://evil.api.example.com/")));
        assert!(!pat.matches(&u("https://api.example.com.evil.net/")));
    }

    #[test]
    fn wildcards() {
        let pat = p("https://*.example.com:*");
        assert!(pat.matches(&u("https://a.example.com:8443/")));
        assert!(pat.matches(&u("https://a.b.example.com/")));
        assert!(!pat.matches(&u("https://example.com/")));
        assert!(!pat.matches(&u("https://badexample.com/")));
        let any = p("*://*:*");
        assert!(any.matches(&u("http://127.0.0.1:9/")));
        assert!(any.matches(&u("https://[::1]/")));
    }

    #[test]
    fn ip_literals() {
        let pat = p("http://[::ffff:127.0.0.1]:*");
        assert!(pat.matches(&u("http://[::ffff:7f00:1]:8080/")));
        let v4 = p("http://127.0.0.1:8080");
        assert!(v4.matches(&u("http://127.0.0.1:8080/")));
        assert!(!v4.matches(&u("http://127.0.0.1:8081/")));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "example.com",
            "ftp://x",
            "https://x/path",
            "https://u@x",
            "https://x:0",
            "https://x:99999",
            "https://a*.x",
            "https://",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coverage() {
        assert!(p("*://*:*").covers(&p("http://127.0.0.1:8080")));
        assert!(p("https://*.example.com").covers(&p("https://api.example.com")));
        assert!(p("https://*.example.com").covers(&p("https://*.eu.example.com")));
        assert!(!p("https://*.example.com").covers(&p("https://example.com")));
        assert!(!p("https://api.example.com").covers(&p("https://*.example.com")));
        assert!(!p("https://api.example.com").covers(&p("https://api.example.com:*")));
        assert!(p("http://h").covers(&p("http://h:80")));
        assert!(!p("http://h").covers(&p("http://h:8080")));
        assert!(!p("http://h:*").covers(&p("https://h")));
    }
}
