//! Small text helpers shared by the parsers and the mapping: key characters, value
//! classification (IP, MAC, hashes, URLs), the event-id hash and the per-line
//! warning list.

use std::net::IpAddr;

/// Bytes that may start a CEF extension key: ASCII letters, digits and `_` (the CEF
/// specification allows alphanumerics; `_` is accepted as by Elastic's decoder).
#[inline]
pub fn is_key_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Bytes that may continue a CEF extension key: also `.`, `,`, `[` and `]`, which
/// real devices put in keys (`ad.Error_,Code`, `ad.field[0]`).
#[inline]
pub fn is_key_char(b: u8) -> bool {
    is_key_start(b) || matches!(b, b'.' | b',' | b'[' | b']')
}

/// Whether `s` is an IPv4 or IPv6 address (an IPv6 zone suffix `%eth0` is allowed).
pub fn is_ip(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 2 || b.len() > 64 {
        return false;
    }
    let first = b[0];
    if !(first.is_ascii_hexdigit() || first == b':') {
        return false;
    }
    let addr = s.split_once('%').map_or(s, |(a, _)| a);
    addr.parse::<IpAddr>().is_ok()
}

/// A MAC address (`aa:bb:..`, `aa-bb-..`, `aabb.ccdd.eeff` or 12 bare hex digits)
/// in lowercase colon form.
pub fn normalize_mac(s: &str) -> Option<String> {
    let t = s.trim();
    let mut hex = [0u8; 12];
    let mut n = 0;
    for b in t.bytes() {
        if b.is_ascii_hexdigit() {
            if n == 12 {
                return None;
            }
            hex[n] = b.to_ascii_lowercase();
            n += 1;
        } else if !matches!(b, b':' | b'-' | b'.') {
            return None;
        }
    }
    let separators = t.len() - n;
    if n != 12 || !(separators == 0 || separators == 5 || separators == 2) {
        return None;
    }
    let mut out = String::with_capacity(17);
    for (i, pair) in hex.chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        for &h in pair {
            out.push(char::from(h));
        }
    }
    Some(out)
}

/// The hash algorithm a hex digest of this length stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    /// 32 hex digits.
    Md5,
    /// 40 hex digits.
    Sha1,
    /// 64 hex digits.
    Sha256,
    /// 128 hex digits.
    Sha512,
}

impl HashAlgo {
    /// OCSF `algorithm` name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "MD5",
            HashAlgo::Sha1 => "SHA-1",
            HashAlgo::Sha256 => "SHA-256",
            HashAlgo::Sha512 => "SHA-512",
        }
    }

    /// OCSF `algorithm_id`.
    pub fn id(self) -> u8 {
        match self {
            HashAlgo::Md5 => 1,
            HashAlgo::Sha1 => 2,
            HashAlgo::Sha256 => 3,
            HashAlgo::Sha512 => 4,
        }
    }
}

/// The algorithm of a bare hex digest, by length.
pub fn hash_algo(s: &str) -> Option<HashAlgo> {
    let algo = match s.len() {
        32 => HashAlgo::Md5,
        40 => HashAlgo::Sha1,
        64 => HashAlgo::Sha256,
        128 => HashAlgo::Sha512,
        _ => return None,
    };
    s.bytes().all(|b| b.is_ascii_hexdigit()).then_some(algo)
}

/// Whether a key or label names a hash (`fileHash`, `TrendMicroDsFileMD5`, `sha1`).
pub fn names_a_hash(name: &str) -> bool {
    let b = name.as_bytes();
    b.windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"md5") || w.eq_ignore_ascii_case(b"sha"))
        || b.windows(4).any(|w| w.eq_ignore_ascii_case(b"hash"))
}

/// Whether a key or label names a user (`userName`, `user`, `accountName`, ...).
pub fn names_a_user(name: &str) -> bool {
    const NAMES: [&str; 8] = [
        "user",
        "username",
        "user_name",
        "user-name",
        "usrname",
        "account",
        "accountname",
        "account_name",
    ];
    (4..=12).contains(&name.len()) && NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Whether `s` looks like an absolute URL (`scheme://...`).
pub fn is_url(s: &str) -> bool {
    let b = s.as_bytes();
    // The scheme is at most 16 characters: look for `://` there only.
    let Some(i) = b.iter().take(17).position(|&c| c == b':') else {
        return false;
    };
    if !b[i..].starts_with(b"://") {
        return false;
    }
    i > 0
        && i <= 16
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s[..i]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && s.len() > i + 3
}

/// A fast, non-cryptographic 128-bit hash of `bytes` (two multiply-rotate lanes
/// over 64-bit words, murmur3 finalisers), as 32 hex digits. Stable across builds
/// and targets: it is the event id (dedup key) of a line.
pub fn hash128_hex(bytes: &[u8]) -> String {
    const K1: u64 = 0x87c3_7b91_1142_53d5;
    const K2: u64 = 0x4cf5_ad43_2745_937f;
    const P1: u64 = 0x9e37_79b9_7f4a_7c15;
    const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let len = bytes.len() as u64;
    let mut h1: u64 = 0x5851_f42d_4c95_7f2d ^ len;
    let mut h2: u64 = 0x1405_7b7e_f767_814f ^ len.rotate_left(32);
    let mut chunks = bytes.chunks_exact(16);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&c[..8]);
        b.copy_from_slice(&c[8..]);
        let k1 = u64::from_le_bytes(a)
            .wrapping_mul(K1)
            .rotate_left(31)
            .wrapping_mul(K2);
        let k2 = u64::from_le_bytes(b)
            .wrapping_mul(K2)
            .rotate_left(33)
            .wrapping_mul(K1);
        h1 = (h1 ^ k1)
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 = (h2 ^ k2)
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = chunks.remainder();
    let mut t = [0u8; 16];
    t[..tail.len()].copy_from_slice(tail);
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&t[..8]);
    b.copy_from_slice(&t[8..]);
    h1 ^= u64::from_le_bytes(a)
        .wrapping_mul(K1)
        .rotate_left(31)
        .wrapping_mul(K2);
    h2 ^= u64::from_le_bytes(b)
        .wrapping_mul(K2)
        .rotate_left(33)
        .wrapping_mul(K1);
    h1 = h1.wrapping_add(h2).wrapping_mul(P1);
    h2 = h2.wrapping_add(h1).wrapping_mul(P2);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    let mut out = String::with_capacity(32);
    for v in [h1, h2] {
        for i in (0..16).rev() {
            let nibble = ((v >> (i * 4)) & 0xf) as u8;
            out.push(char::from(if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            }));
        }
    }
    out
}

fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Warnings about one line: data kept, but something was off. Capped so a hostile
/// line cannot make the event arbitrarily large.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warnings {
    list: Vec<String>,
    dropped: usize,
}

/// At most this many warnings are kept per line.
pub const MAX_WARNINGS: usize = 16;

impl Warnings {
    /// Records a warning.
    pub fn push(&mut self, message: String) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(message);
        } else {
            self.dropped += 1;
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The warnings, with a final note when some were dropped.
    pub fn into_vec(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list
                .push(format!("{} more warnings not shown", self.dropped));
        }
        self.list
    }

    /// The warnings recorded so far.
    pub fn as_slice(&self) -> &[String] {
        &self.list
    }
}

/// At most `max` characters of `s`, with `…` when cut (for quoting input in messages).
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips() {
        for ok in [
            "10.0.0.1",
            "::1",
            "fd00::555",
            "2001:db8::5",
            "fe80::1%eth0",
            "0.0.0.0",
        ] {
            assert!(is_ip(ok), "{ok}");
        }
        for bad in [
            "",
            "foo",
            "hostname",
            "10.0.0",
            "1.2.3.4.5",
            "(no user)",
            "12",
            "g::1",
        ] {
            assert!(!is_ip(bad), "{bad}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(
            normalize_mac("00-50-56-8E-C0-90").as_deref(),
            Some("00:50:56:8e:c0:90")
        );
        assert_eq!(
            normalize_mac("00:0C:29:EB:35:DE").as_deref(),
            Some("00:0c:29:eb:35:de")
        );
        assert_eq!(
            normalize_mac("0050.568e.c090").as_deref(),
            Some("00:50:56:8e:c0:90")
        );
        assert_eq!(
            normalize_mac("0050568ec090").as_deref(),
            Some("00:50:56:8e:c0:90")
        );
        assert_eq!(normalize_mac("00:50:56:8e:c0"), None);
        assert_eq!(normalize_mac("zz:50:56:8e:c0:90"), None);
    }

    #[test]
    fn hashes_and_urls() {
        assert_eq!(
            hash_algo("44D88612FEA8A8F36DE82E1278ABB02F"),
            Some(HashAlgo::Md5)
        );
        assert_eq!(
            hash_algo("55f4a511e6f630a6b1319505414f114e7bcaf13d"),
            Some(HashAlgo::Sha1)
        );
        assert_eq!(hash_algo("1bad1dea"), None);
        assert_eq!(hash_algo("zz4a511e6f630a6b1319505414f114e7bcaf13d"), None);
        assert!(names_a_hash("TrendMicroDsFileSHA256"));
        assert!(names_a_hash("fileHash"));
        assert!(names_a_hash("md5"));
        assert!(!names_a_hash("message"));
        assert!(names_a_user("userName"));
        assert!(names_a_user("Account_Name"));
        assert!(!names_a_user("usernames_seen"));
        assert!(is_url("https://1.1.1.1/incidents/x"));
        assert!(!is_url("example.com"));
        assert!(!is_url("'https://x'"));
        assert!(!is_url("://x"));
    }

    #[test]
    fn hash_is_stable_and_spreads() {
        assert_eq!(hash128_hex(b"").len(), 32);
        assert_eq!(hash128_hex(b"abc"), hash128_hex(b"abc"));
        assert_ne!(hash128_hex(b"abc"), hash128_hex(b"abd"));
        assert_ne!(hash128_hex(&[0u8; 16]), hash128_hex(&[0u8; 17]));
        // Pinned so a change of the function (which would change every event id and
        // defeat deduplication across an upgrade) is noticed.
        assert_eq!(hash128_hex(b"CEF:0|a|b|c|d|e|5|"), PINNED);
        let ids: std::collections::HashSet<String> = (0..2000)
            .map(|i| hash128_hex(format!("line {i}").as_bytes()))
            .collect();
        assert_eq!(ids.len(), 2000);
    }
    const PINNED: &str = "168e1f3c7b140dc9f49b65382b9d08c2";

    #[test]
    fn warnings_are_capped() {
        let mut w = Warnings::default();
        for i in 0..20 {
            w.push(format!("w{i}"));
        }
        let v = w.into_vec();
        assert_eq!(v.len(), MAX_WARNINGS + 1);
        assert_eq!(v[MAX_WARNINGS], "4 more warnings not shown");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ab", 3), "ab");
    }
}
