//! Which IP addresses outbound requests may connect to, judged after DNS resolution.
//!
//! Loopback, private (RFC 1918), carrier-grade NAT, link-local, unique-local, unspecified,
//! multicast, reserved and the IPv4-mapped / IPv4-compatible / NAT64 / 6to4 forms of any
//! of them are refused unless the host runs with `allow_private_networks`. Cloud metadata
//! endpoints (169.254.169.254, fd00:ec2::254) are refused always.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is special.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Routable public address.
    Public,
    /// 127.0.0.0/8, ::1, 0.0.0.0.
    Loopback,
    /// RFC 1918, CGNAT, benchmarking.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// fc00::/7 (and deprecated site-local fec0::/10).
    UniqueLocal,
    /// Cloud instance metadata service.
    Metadata,
    /// Multicast, broadcast, reserved, documentation-only.
    Reserved,
}

impl AddressClass {
    /// Human label for error messages.
    pub fn label(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::Metadata => "cloud metadata",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// Classify an IPv4 address.
pub fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        return AddressClass::Metadata;
    }
    if ip.is_loopback() || o[0] == 0 {
        return AddressClass::Loopback;
    }
    if ip.is_private()
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 CGNAT
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
    // 192.0.0.0/24 IETF protocol assignments
    {
        return AddressClass::Private;
    }
    if ip.is_link_local() {
        return AddressClass::LinkLocal;
    }
    if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        return AddressClass::Reserved;
    }
    AddressClass::Public
}

/// Classify an IPv6 address, looking through embedded IPv4 forms.
pub fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let seg = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        return AddressClass::Metadata;
    }
    if ip.is_loopback() || ip.is_unspecified() {
        return AddressClass::Loopback;
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible)
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if seg[0..6] == [0, 0, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(seg[6], seg[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48
    if seg[0] == 0x64 && seg[1] == 0xff9b {
        return match classify_v4(embedded_v4(seg[6], seg[7])) {
            AddressClass::Public if seg[2] == 1 => AddressClass::Private,
            c => c,
        };
    }
    // 6to4 2002:V4ADDR::/48
    if seg[0] == 0x2002 {
        return match classify_v4(embedded_v4(seg[1], seg[2])) {
            AddressClass::Public => AddressClass::Public,
            c => c,
        };
    }
    if (seg[0] & 0xfe00) == 0xfc00 || (seg[0] & 0xffc0) == 0xfec0 {
        return AddressClass::UniqueLocal;
    }
    if (seg[0] & 0xffc0) == 0xfe80 {
        return AddressClass::LinkLocal;
    }
    if ip.is_multicast() || seg[0] == 0x2001 && seg[1] == 0x0db8 {
        return AddressClass::Reserved;
    }
    AddressClass::Public
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
}

/// Classify any address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The address policy of one host process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpPolicy {
    /// Allow loopback, private, link-local and unique-local targets (tests, demos,
    /// on-premises upstreams). Metadata endpoints stay refused.
    pub allow_private_networks: bool,
}

impl IpPolicy {
    /// `Ok` when connecting to `ip` is allowed, otherwise the class that forbids it.
    pub fn check(&self, ip: IpAddr) -> Result<(), AddressClass> {
        match classify(ip) {
            AddressClass::Public => Ok(()),
            AddressClass::Metadata => Err(AddressClass::Metadata),
            c if self.allow_private_networks => {
                let _ = c;
                Ok(())
            }
            c => Err(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classifies_special_ranges() {
        assert_eq!(c("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("0.0.0.0"), AddressClass::Loopback);
        assert_eq!(c("10.1.2.3"), AddressClass::Private);
        assert_eq!(c("172.16.0.1"), AddressClass::Private);
        assert_eq!(c("192.168.1.1"), AddressClass::Private);
        assert_eq!(c("100.64.0.1"), AddressClass::Private);
        assert_eq!(c("169.254.169.254"), AddressClass::Metadata);
        assert_eq!(c("169.254.1.1"), AddressClass::LinkLocal);
        assert_eq!(c("224.0.0.1"), AddressClass::Reserved);
        assert_eq!(c("8.8.8.8"), AddressClass::Public);
        assert_eq!(c("::1"), AddressClass::Loopback);
        assert_eq!(c("::"), AddressClass::Loopback);
        assert_eq!(c("::ffff:127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("::ffff:169.254.169.254"), AddressClass::Metadata);
        assert_eq!(c("::127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("64:ff9b::10.0.0.1"), AddressClass::Private);
        assert_eq!(c("2002:7f00:1::"), AddressClass::Loopback);
        assert_eq!(c("fd12::1"), AddressClass::UniqueLocal);
        assert_eq!(c("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(c("fd00:ec2::254"), AddressClass::Metadata);
        assert_eq!(c("2606:4700::1111"), AddressClass::Public);
    }

    #[test]
    fn policy_allows_private_only_when_configured() {
        let strict = IpPolicy::default();
        let open = IpPolicy {
            allow_private_networks: true,
        };
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let md: IpAddr = "169.254.169.254".parse().unwrap();
        assert_eq!(strict.check(lo), Err(AddressClass::Loopback));
        assert!(open.check(lo).is_ok());
        assert_eq!(open.check(md), Err(AddressClass::Metadata));
    }
}
