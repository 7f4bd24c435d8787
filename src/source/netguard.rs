//! SSRF guard: decides whether an IP address may be fetched by the origin's URL fetcher.
//!
//! An address is refused when the most specific row of [`IPV4_SPECIAL`] / [`IPV6_SPECIAL`] that
//! contains it is not globally reachable. Addresses matching no row are ordinary unicast and allowed.
//!
//! # Sources
//!
//! The registry rows are transcribed from the IANA special-purpose registries (RFC 6890), revision
//! "Last Updated 2025-10-09" for both:
//!
//! * IANA IPv4 Special-Purpose Address Registry,
//!   <https://www.iana.org/assignments/iana-ipv4-special-registry/iana-ipv4-special-registry-1.csv>
//! * IANA IPv6 Special-Purpose Address Registry,
//!   <https://www.iana.org/assignments/iana-ipv6-special-registry/iana-ipv6-special-registry-1.csv>
//!
//! iana.org could not be fetched from the build environment, so the rows were read from verbatim
//! copies of those CSV exports kept in public repositories: a registry inventory that records the
//! pages' "Last Updated 2025-10-09" (retrieved 2026-07-27), and an identical raw CSV snapshot fetched
//! 2026-07-18. Rows present in older revisions were cross-checked against the raw IANA CSV history
//! in `rfinnie/iana-tracker` (`www.iana.org/assignments/iana-ipv{4,6}-special-registry/*-1.csv`) and
//! against `wireshark/wireshark` `epan/iana-ip-data.c` (generated from the same CSV exports).
//!
//! Rows marked "supplement" are not in the special-purpose registries but are not globally
//! reachable either: IPv4 multicast (IPv4 Multicast Address Space, RFC 5771), the deprecated
//! IPv4-compatible IPv6 prefix (RFC 4291), and every block of the IANA IPv6 Address Space registry
//! (Last Updated 2025-10-23) outside 2000::/3 Global Unicast: "Reserved by IETF" blocks, the
//! deprecated site-local fec0::/10 and multicast ff00::/8. Together with the special-purpose rows
//! these cover all IPv6 space outside 2000::/3.
//!
//! # Registry cells that are not plain True/False
//!
//! * Terminated rows (192.88.99.0/24, 2001:10::/28) have empty cells: refused.
//! * 2001::/32 TEREDO is "N/A": refused wholesale (the address says nothing about the real peer).
//! * 127.0.0.0/8 "False [1]", 2001::/23 "False [1]", fc00::/7 "False [4]": False.
//!
//! # Embedded IPv4
//!
//! IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96), the NAT64 well-known prefix (64:ff9b::/96)
//! and 6to4 (2002::/16, registry "N/A") are judged by the IPv4 address they carry, and a refusal
//! names the IPv4 row. The local-use NAT64 prefix 64:ff9b:1::/48 is refused outright per the
//! registry. The `globally_reachable` field always records the registry's own column.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// One row of the special-purpose registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialRange {
    /// CIDR prefix, e.g. "10.0.0.0/8".
    pub prefix: &'static str,
    /// The registry's name for the block.
    pub name: &'static str,
    /// The RFC(s) the registry cites.
    pub rfc: &'static str,
    /// The registry's "Globally Reachable" column (N/A and empty cells are recorded as `false`).
    pub globally_reachable: bool,
}

const fn row(prefix: &'static str, name: &'static str, rfc: &'static str, globally_reachable: bool) -> SpecialRange {
    SpecialRange { prefix, name, rfc, globally_reachable }
}

/// IPv4 rows: prefix, name, RFC, globally reachable.
pub static IPV4_SPECIAL: &[SpecialRange] = &[
    row("0.0.0.0/8", "\"This network\"", "RFC791, Section 3.2", false),
    row("0.0.0.0/32", "\"This host on this network\"", "RFC1122, Section 3.2.1.3", false),
    row("10.0.0.0/8", "Private-Use", "RFC1918", false),
    row("100.64.0.0/10", "Shared Address Space", "RFC6598", false),
    row("127.0.0.0/8", "Loopback", "RFC1122, Section 3.2.1.3", false), // "False [1]"
    row("169.254.0.0/16", "Link Local", "RFC3927", false),
    row("172.16.0.0/12", "Private-Use", "RFC1918", false),
    // "[2] Not useable unless by virtue of a more specific reservation."
    row("192.0.0.0/24", "IETF Protocol Assignments", "RFC6890, Section 2.1", false),
    row("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC7335", false),
    row("192.0.0.8/32", "IPv4 dummy address", "RFC7600", false),
    row("192.0.0.9/32", "Port Control Protocol Anycast", "RFC7723", true),
    row("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC8155", true),
    // One registry row lists both /32s.
    row("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC8880, RFC7050 Section 2.2", false),
    row("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC8880, RFC7050 Section 2.2", false),
    row("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC5737", false),
    row("192.31.196.0/24", "AS112-v4", "RFC7535", true),
    row("192.52.193.0/24", "AMT", "RFC7450", true),
    // Terminated 2015-03; the registry leaves the reachability cells empty.
    row("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC7526", false),
    row("192.88.99.2/32", "6a44-relay anycast address", "RFC6751", false),
    row("192.168.0.0/16", "Private-Use", "RFC1918", false),
    row("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC7534", true),
    row("198.18.0.0/15", "Benchmarking", "RFC2544", false),
    row("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC5737", false),
    row("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC5737", false),
    row("240.0.0.0/4", "Reserved", "RFC1112, Section 4", false),
    row("255.255.255.255/32", "Limited Broadcast", "RFC8190, RFC919 Section 7", false),
    // Supplement: IPv4 Multicast Address Space registry.
    row("224.0.0.0/4", "Multicast", "RFC5771", false),
];

/// IPv6 rows: prefix, name, RFC, globally reachable.
pub static IPV6_SPECIAL: &[SpecialRange] = &[
    row("::1/128", "Loopback Address", "RFC4291", false),
    row("::/128", "Unspecified Address", "RFC4291", false),
    row("::ffff:0:0/96", "IPv4-mapped Address", "RFC4291", false), // judged by the embedded IPv4
    row("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC6052", true),   // judged by the embedded IPv4
    row("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC8215", false),
    row("100::/64", "Discard-Only Address Block", "RFC6666", false),
    row("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC9780", false),
    row("2001::/23", "IETF Protocol Assignments", "RFC2928", false), // "False [1]", unless more specific
    row("2001::/32", "TEREDO", "RFC4380, RFC8190", false),           // "N/A [2]": refused wholesale
    row("2001:1::1/128", "Port Control Protocol Anycast", "RFC7723", true),
    row("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC8155", true),
    row("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC9665", true),
    row("2001:2::/48", "Benchmarking", "RFC5180, RFC Errata 1752", false),
    row("2001:3::/32", "AMT", "RFC7450", true),
    row("2001:4:112::/48", "AS112-v6", "RFC7535", true),
    // Terminated 2014-03; the registry leaves the reachability cells empty.
    row("2001:10::/28", "Deprecated (previously ORCHID)", "RFC4843", false),
    row("2001:20::/28", "ORCHIDv2", "RFC7343", true),
    row("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC9374", true),
    row("2001:db8::/32", "Documentation", "RFC3849", false),
    row("2002::/16", "6to4", "RFC3056", false), // "N/A [3]": judged by the embedded IPv4
    row("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC7534", true),
    row("3fff::/20", "Documentation", "RFC9637", false),
    row("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC9602", false),
    row("fc00::/7", "Unique-Local", "RFC4193, RFC8190", false), // "False [4]"
    row("fe80::/10", "Link-Local Unicast", "RFC4291", false),
    // Supplement: deprecated IPv4-compatible addresses, judged by the embedded IPv4.
    row("::/96", "IPv4-compatible Address (deprecated)", "RFC4291, Section 2.5.5.1", false),
    // Supplement: IANA IPv6 Address Space registry, everything outside 2000::/3 not listed above.
    row("::/8", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("100::/8", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("200::/7", "Reserved by IETF (deprecated NSAP-mapped)", "RFC4048", false),
    row("400::/6", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("800::/5", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("1000::/4", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("4000::/3", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("6000::/3", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("8000::/3", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("a000::/3", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("c000::/3", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("e000::/4", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("f000::/5", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("f800::/6", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("fe00::/9", "Reserved by IETF", "RFC3513, RFC4291", false),
    row("fec0::/10", "Site-Local (deprecated)", "RFC3879", false),
    row("ff00::/8", "Multicast", "RFC3513, RFC4291", false),
];

/// How an IPv6 row carries an IPv4 address that decides its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Embed {
    /// The verdict is the row's own.
    No,
    /// The IPv4 address is the low 32 bits (mapped, compatible, NAT64 well-known prefix).
    Low32,
    /// The IPv4 address is bits 16..48 (6to4).
    SixToFour,
}

struct Net4 {
    net: u32,
    mask: u32,
    row: &'static SpecialRange,
}

struct Net6 {
    net: u128,
    mask: u128,
    embed: Embed,
    row: &'static SpecialRange,
}

/// Splits "addr/len", checking the length fits `bits`.
fn split_prefix(prefix: &str, bits: u32) -> (&str, u32) {
    let (addr, len) = prefix.split_once('/').unwrap_or_else(|| panic!("netguard: no '/' in {prefix}"));
    let len: u32 = len.parse().unwrap_or_else(|_| panic!("netguard: bad length in {prefix}"));
    assert!(len <= bits, "netguard: length too long in {prefix}");
    (addr, len)
}

fn parse4(row: &'static SpecialRange) -> Net4 {
    let (addr, len) = split_prefix(row.prefix, 32);
    let addr: Ipv4Addr = addr.parse().unwrap_or_else(|_| panic!("netguard: bad address in {}", row.prefix));
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    let net = u32::from(addr);
    assert_eq!(net & !mask, 0, "netguard: host bits set in {}", row.prefix);
    Net4 { net, mask, row }
}

fn parse6(row: &'static SpecialRange) -> Net6 {
    let (addr, len) = split_prefix(row.prefix, 128);
    let addr: Ipv6Addr = addr.parse().unwrap_or_else(|_| panic!("netguard: bad address in {}", row.prefix));
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    let net = u128::from(addr);
    assert_eq!(net & !mask, 0, "netguard: host bits set in {}", row.prefix);
    let embed = match row.prefix {
        "::ffff:0:0/96" | "::/96" | "64:ff9b::/96" => Embed::Low32,
        "2002::/16" => Embed::SixToFour,
        _ => Embed::No,
    };
    Net6 { net, mask, embed, row }
}

/// Parsed IPv4 rows, longest prefix first, so the first match is the most specific.
fn table4() -> &'static [Net4] {
    static TABLE: OnceLock<Vec<Net4>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<Net4> = IPV4_SPECIAL.iter().map(parse4).collect();
        table.sort_by_key(|n| std::cmp::Reverse(n.mask.count_ones()));
        table
    })
}

/// Parsed IPv6 rows, longest prefix first, so the first match is the most specific.
fn table6() -> &'static [Net6] {
    static TABLE: OnceLock<Vec<Net6>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<Net6> = IPV6_SPECIAL.iter().map(parse6).collect();
        table.sort_by_key(|n| std::cmp::Reverse(n.mask.count_ones()));
        table
    })
}

fn refusal4(ip: Ipv4Addr) -> Option<&'static SpecialRange> {
    let bits = u32::from(ip);
    let row = table4().iter().find(|n| bits & n.mask == n.net)?.row;
    (!row.globally_reachable).then_some(row)
}

fn refusal6(ip: Ipv6Addr) -> Option<&'static SpecialRange> {
    let bits = u128::from(ip);
    let net = table6().iter().find(|n| bits & n.mask == n.net)?;
    match net.embed {
        Embed::Low32 => refusal4(Ipv4Addr::from(bits as u32)),
        Embed::SixToFour => refusal4(Ipv4Addr::from((bits >> 80) as u32)),
        Embed::No => (!net.row.globally_reachable).then_some(net.row),
    }
}

/// The registry row (most specific match) that makes `ip` unfit as a fetch destination, or None when
/// the address is globally reachable.
///
/// For IPv6 addresses carrying an IPv4 address (mapped, compatible, NAT64 well-known prefix, 6to4)
/// the row is the IPv4 one that refuses the embedded address.
pub fn refusal(ip: IpAddr) -> Option<&'static SpecialRange> {
    match ip {
        IpAddr::V4(v4) => refusal4(v4),
        IpAddr::V6(v6) => refusal6(v6),
    }
}

/// Shorthand: refusal(ip).is_none()
pub fn is_global(ip: IpAddr) -> bool {
    refusal(ip).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    fn refused_by(s: &str) -> Option<&'static str> {
        refusal(ip(s)).map(|r| r.prefix)
    }

    /// First and last address of every row, with the prefix of the row expected to refuse it
    /// (None: allowed). Expectations follow the most specific row and the embedded-IPv4 rule.
    const ENDPOINTS: &[(&str, Option<&str>)] = &[
        // IPv4
        ("0.0.0.0", Some("0.0.0.0/32")),
        ("0.255.255.255", Some("0.0.0.0/8")),
        ("10.0.0.0", Some("10.0.0.0/8")),
        ("10.255.255.255", Some("10.0.0.0/8")),
        ("100.64.0.0", Some("100.64.0.0/10")),
        ("100.127.255.255", Some("100.64.0.0/10")),
        ("127.0.0.0", Some("127.0.0.0/8")),
        ("127.255.255.255", Some("127.0.0.0/8")),
        ("169.254.0.0", Some("169.254.0.0/16")),
        ("169.254.255.255", Some("169.254.0.0/16")),
        ("172.16.0.0", Some("172.16.0.0/12")),
        ("172.31.255.255", Some("172.16.0.0/12")),
        ("192.0.0.0", Some("192.0.0.0/29")),
        ("192.0.0.255", Some("192.0.0.0/24")),
        ("192.0.0.7", Some("192.0.0.0/29")),
        ("192.0.0.8", Some("192.0.0.8/32")),
        ("192.0.0.9", None),
        ("192.0.0.10", None),
        ("192.0.0.170", Some("192.0.0.170/32")),
        ("192.0.0.171", Some("192.0.0.171/32")),
        ("192.0.2.0", Some("192.0.2.0/24")),
        ("192.0.2.255", Some("192.0.2.0/24")),
        ("192.31.196.0", None),
        ("192.31.196.255", None),
        ("192.52.193.0", None),
        ("192.52.193.255", None),
        ("192.88.99.0", Some("192.88.99.0/24")),
        ("192.88.99.255", Some("192.88.99.0/24")),
        ("192.88.99.2", Some("192.88.99.2/32")),
        ("192.168.0.0", Some("192.168.0.0/16")),
        ("192.168.255.255", Some("192.168.0.0/16")),
        ("192.175.48.0", None),
        ("192.175.48.255", None),
        ("198.18.0.0", Some("198.18.0.0/15")),
        ("198.19.255.255", Some("198.18.0.0/15")),
        ("198.51.100.0", Some("198.51.100.0/24")),
        ("198.51.100.255", Some("198.51.100.0/24")),
        ("203.0.113.0", Some("203.0.113.0/24")),
        ("203.0.113.255", Some("203.0.113.0/24")),
        ("240.0.0.0", Some("240.0.0.0/4")),
        ("255.255.255.254", Some("240.0.0.0/4")),
        ("255.255.255.255", Some("255.255.255.255/32")),
        ("224.0.0.0", Some("224.0.0.0/4")),
        ("239.255.255.255", Some("224.0.0.0/4")),
        // IPv6 special-purpose registry
        ("::1", Some("::1/128")),
        ("::", Some("::/128")),
        ("::ffff:0.0.0.0", Some("0.0.0.0/32")),
        ("::ffff:255.255.255.255", Some("255.255.255.255/32")),
        ("64:ff9b::0.0.0.0", Some("0.0.0.0/32")),
        ("64:ff9b::255.255.255.255", Some("255.255.255.255/32")),
        ("64:ff9b:1::", Some("64:ff9b:1::/48")),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some("64:ff9b:1::/48")),
        ("100::", Some("100::/64")),
        ("100::ffff:ffff:ffff:ffff", Some("100::/64")),
        ("100:0:0:1::", Some("100:0:0:1::/64")),
        ("100:0:0:1:ffff:ffff:ffff:ffff", Some("100:0:0:1::/64")),
        ("2001::", Some("2001::/32")),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001::/23")),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001::/32")),
        ("2001:1::1", None),
        ("2001:1::2", None),
        ("2001:1::3", None),
        ("2001:2::", Some("2001:2::/48")),
        ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Some("2001:2::/48")),
        ("2001:3::", None),
        ("2001:3:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:4:112::", None),
        ("2001:4:112:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:10::", Some("2001:10::/28")),
        ("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001:10::/28")),
        ("2001:20::", None),
        ("2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:30::", None),
        ("2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:db8::", Some("2001:db8::/32")),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001:db8::/32")),
        ("2002::", Some("0.0.0.0/32")),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("255.255.255.255/32")),
        ("2620:4f:8000::", None),
        ("2620:4f:8000:ffff:ffff:ffff:ffff:ffff", None),
        ("3fff::", Some("3fff::/20")),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Some("3fff::/20")),
        ("5f00::", Some("5f00::/16")),
        ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("5f00::/16")),
        ("fc00::", Some("fc00::/7")),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fc00::/7")),
        ("fe80::", Some("fe80::/10")),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fe80::/10")),
        // IPv6 supplements
        ("::0.0.0.2", Some("0.0.0.0/8")),
        ("::255.255.255.255", Some("255.255.255.255/32")),
        ("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("::/8")),
        ("1ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("100::/8")),
        ("200::", Some("200::/7")),
        ("3ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("200::/7")),
        ("400::", Some("400::/6")),
        ("7ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("400::/6")),
        ("800::", Some("800::/5")),
        ("fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("800::/5")),
        ("1000::", Some("1000::/4")),
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("1000::/4")),
        ("4000::", Some("4000::/3")),
        ("5fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("4000::/3")),
        ("6000::", Some("6000::/3")),
        ("7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("6000::/3")),
        ("8000::", Some("8000::/3")),
        ("9fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("8000::/3")),
        ("a000::", Some("a000::/3")),
        ("bfff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("a000::/3")),
        ("c000::", Some("c000::/3")),
        ("dfff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("c000::/3")),
        ("e000::", Some("e000::/4")),
        ("efff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("e000::/4")),
        ("f000::", Some("f000::/5")),
        ("f7ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("f000::/5")),
        ("f800::", Some("f800::/6")),
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("f800::/6")),
        ("fe00::", Some("fe00::/9")),
        ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fe00::/9")),
        ("fec0::", Some("fec0::/10")),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fec0::/10")),
        ("ff00::", Some("ff00::/8")),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("ff00::/8")),
    ];

    #[test]
    fn row_endpoints_get_expected_verdict() {
        for &(addr, expected) in ENDPOINTS {
            assert_eq!(refused_by(addr), expected, "{addr}");
        }
    }

    /// Every row's first and last address is listed in ENDPOINTS.
    #[test]
    fn endpoints_cover_every_row() {
        let listed: Vec<IpAddr> = ENDPOINTS.iter().map(|(a, _)| ip(a)).collect();
        for n in table4() {
            for end in [n.net, n.net | !n.mask] {
                assert!(listed.contains(&IpAddr::V4(end.into())), "{} endpoint {end:#x}", n.row.prefix);
            }
        }
        for n in table6() {
            for end in [n.net, n.net | !n.mask] {
                assert!(listed.contains(&IpAddr::V6(end.into())), "{} endpoint {end:#x}", n.row.prefix);
            }
        }
    }

    #[test]
    fn tables_parse_and_have_no_duplicates() {
        assert_eq!(table4().len(), IPV4_SPECIAL.len());
        assert_eq!(table6().len(), IPV6_SPECIAL.len());
        for (i, a) in IPV4_SPECIAL.iter().chain(IPV6_SPECIAL).enumerate() {
            for b in IPV4_SPECIAL.iter().chain(IPV6_SPECIAL).skip(i + 1) {
                assert_ne!(a.prefix, b.prefix);
            }
        }
    }

    #[test]
    fn refusals_point_at_refusing_rows() {
        for &(addr, _) in ENDPOINTS {
            if let Some(row) = refusal(ip(addr)) {
                assert!(!row.globally_reachable, "{addr} refused by reachable row {}", row.prefix);
            }
        }
    }

    #[test]
    fn boundaries_just_outside_ranges_are_allowed() {
        let cases = [
            ("100.63.255.255", None),
            ("100.64.0.0", Some("100.64.0.0/10")),
            ("100.127.255.255", Some("100.64.0.0/10")),
            ("100.128.0.0", None),
            ("172.15.255.255", None),
            ("172.16.0.0", Some("172.16.0.0/12")),
            ("172.31.255.255", Some("172.16.0.0/12")),
            ("172.32.0.0", None),
            ("9.255.255.255", None),
            ("11.0.0.0", None),
            ("1.0.0.0", None),
            ("126.255.255.255", None),
            ("128.0.0.0", None),
            ("169.253.255.255", None),
            ("169.255.0.0", None),
            ("192.0.1.0", None),
            ("192.0.3.0", None),
            ("192.88.98.255", None),
            ("192.88.100.0", None),
            ("192.167.255.255", None),
            ("192.169.0.0", None),
            ("198.17.255.255", None),
            ("198.20.0.0", None),
            ("223.255.255.255", None),
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("1000::/4")),
            ("2000::", None),
            ("2001:200::", None),
            ("2001:1::4", Some("2001::/23")),
            ("2001:1::", Some("2001::/23")),
            ("2001:4:113::", Some("2001::/23")),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("2001:db9::", None),
            ("2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", None),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("3fff:1000::", None),
            ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("4000::", Some("4000::/3")),
            ("64:ff9b:2::", Some("::/8")),
            ("64:ff9b:0:0:1::", Some("::/8")),
        ];
        for (addr, expected) in cases {
            assert_eq!(refused_by(addr), expected, "{addr}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for addr in
            ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450::1", "93.184.216.34", "2001:4860:4860::8888"]
        {
            assert!(is_global(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn embedded_ipv4_is_judged_by_the_ipv4_address() {
        let cases = [
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b::10.0.0.1", Some("10.0.0.0/8")),
            ("64:ff9b::127.0.0.1", Some("127.0.0.0/8")),
            ("64:ff9b::169.254.169.254", Some("169.254.0.0/16")),
            ("64:ff9b:1::8.8.8.8", Some("64:ff9b:1::/48")),
            ("2002:c0a8:0101::", Some("192.168.0.0/16")),
            ("2002:c0a8:0101:1234::5", Some("192.168.0.0/16")),
            ("2002:0808:0808::1", None),
            ("2002:7f00:0001::", Some("127.0.0.0/8")),
            ("2002:c058:6301::", Some("192.88.99.0/24")),
            ("::ffff:8.8.8.8", None),
            ("::ffff:127.0.0.1", Some("127.0.0.0/8")),
            ("::ffff:10.1.2.3", Some("10.0.0.0/8")),
            ("::ffff:169.254.169.254", Some("169.254.0.0/16")),
            ("::ffff:192.0.0.9", None),
            ("::8.8.8.8", None),
            ("::127.0.0.1", Some("127.0.0.0/8")),
            ("::192.168.1.1", Some("192.168.0.0/16")),
            ("::ffff:0:8.8.8.8", Some("::/8")),
        ];
        for (addr, expected) in cases {
            assert_eq!(refused_by(addr), expected, "{addr}");
        }
    }

    #[test]
    fn teredo_is_refused_wholesale() {
        // A Teredo address whose obfuscated client IPv4 would be public (8.8.8.8 ^ 0xffffffff).
        for addr in ["2001:0:4136:e378:8000:63bf:f7f7:f7f7", "2001::1", "2001:0:ffff::"] {
            assert_eq!(refused_by(addr), Some("2001::/32"), "{addr}");
        }
        assert_eq!(refusal(ip("2001::1")).map(|r| r.name), Some("TEREDO"));
    }

    #[test]
    fn cloud_metadata_is_refused() {
        assert_eq!(refused_by("169.254.169.254"), Some("169.254.0.0/16"));
        assert_eq!(refused_by("fd00:ec2::254"), Some("fc00::/7"));
        assert!(!is_global(ip("169.254.169.254")));
        assert!(!is_global(ip("fd00:ec2::254")));
    }

    #[test]
    fn registry_reachable_rows_stay_allowed() {
        for prefix in ["192.31.196.0/24", "192.175.48.0/24", "2001:1::1/128", "2001:4:112::/48", "2620:4f:8000::/48"] {
            let row = IPV4_SPECIAL.iter().chain(IPV6_SPECIAL).find(|r| r.prefix == prefix).expect(prefix);
            assert!(row.globally_reachable, "{prefix}");
            let first = ip(prefix.split_once('/').map(|(a, _)| a).unwrap_or(prefix));
            assert!(is_global(first), "{prefix}");
        }
    }

    /// Outside 2000::/3 only the registry's reachable rows and embedded public IPv4 get through.
    #[test]
    fn ipv6_outside_global_unicast_is_refused() {
        let exceptions = ["::ffff:0:0/96", "::/96", "64:ff9b::/96"];
        for top in 0..=0xffffu128 {
            let addr = Ipv6Addr::from((top << 112) | 0x1234_5678_9abc_def0_1234_5678_9abc);
            let outside = top >> 13 != 1;
            let exempt =
                table6().iter().any(|n| exceptions.contains(&n.row.prefix) && u128::from(addr) & n.mask == n.net);
            if outside && !exempt {
                assert!(!is_global(IpAddr::V6(addr)), "{addr}");
            }
        }
    }
}
