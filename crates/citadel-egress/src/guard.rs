//! The address guard: which IP addresses a script may reach.
//!
//! Everything that is not a globally routable unicast address is refused:
//! loopback, private and unique-local networks, link-local (where cloud
//! metadata services live: `169.254.169.254`, `fd00:ec2::254`), shared
//! CGNAT space, multicast, broadcast, unspecified, documentation,
//! benchmarking and reserved ranges. IPv6 forms that carry an IPv4 address
//! (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
//! are judged by the IPv4 address they carry; Teredo (`2001::/32`) is
//! refused outright since the address it reaches cannot be told. For IPv6
//! the guard is an allowlist: only global unicast `2000::/3` can pass.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not public. Named in errors instead of the address
/// itself, so a refusal tells a script no more than the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT.
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`; cloud metadata services live here.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`.
    Documentation,
    /// `198.18.0.0/15`.
    Benchmarking,
    /// Teredo `2001::/32`: the IPv4 peer it reaches cannot be checked.
    Teredo,
    /// Anything else that is not global unicast: `192.0.0.0/24`,
    /// `192.88.99.0/24`, `240.0.0.0/4`, IPv6 outside `2000::/3`, ...
    Reserved,
}

impl AddressClass {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private network",
            Self::SharedAddressSpace => "shared address space (CGNAT)",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique local",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Teredo => "Teredo",
            Self::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a script may connect to `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    classify(ip).is_none()
}

/// `None` for a public address, else the class that refuses it.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    const TABLE: &[([u8; 4], u32, AddressClass)] = &[
        ([0, 0, 0, 0], 8, Unspecified),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([255, 255, 255, 255], 32, Broadcast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, class)| *class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let seg = ip.segments();
    let bits = u128::from(ip);
    let embedded = |shift: u32| Ipv4Addr::from((bits >> shift) as u32);
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    // ::ffff:a.b.c.d (IPv4-mapped) and ::a.b.c.d (IPv4-compatible).
    if bits >> 32 == 0xffff || bits >> 32 == 0 {
        return classify_v4(embedded(0));
    }
    // NAT64, well-known prefix 64:ff9b::/96: judged by the IPv4 it reaches.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return classify_v4(embedded(0));
    }
    // Local-use NAT64 64:ff9b:1::/48 reaches a network of its own.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1 {
        return Some(Reserved);
    }
    if seg[0] & 0xff00 == 0xff00 {
        return Some(Multicast);
    }
    if seg[0] & 0xffc0 == 0xfe80 {
        return Some(LinkLocal);
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        return Some(UniqueLocal);
    }
    // Only global unicast 2000::/3 goes on.
    if seg[0] & 0xe000 != 0x2000 {
        return Some(Reserved);
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        return Some(Teredo);
    }
    if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        return Some(Documentation);
    }
    // 2001::/23 is IETF protocol assignments (ORCHID, AMT, ...), beyond
    // Teredo handled above; 3fff::/20 is documentation too.
    if seg[0] == 0x2001 && seg[1] < 0x0200 {
        return Some(Reserved);
    }
    if seg[0] == 0x3fff && seg[1] < 0x1000 {
        return Some(Documentation);
    }
    // 6to4 2002:a.b.c.d::/48: judged by the IPv4 it carries.
    if seg[0] == 0x2002 {
        return classify_v4(embedded(80));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn refused_addresses_and_their_class() {
        use AddressClass::*;
        for (ip, want) in [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.5", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("169.254.169.254", LinkLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("240.0.0.1", Reserved),
            ("::", Unspecified),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b:1::1", Reserved),
            ("fc00::1", UniqueLocal),
            ("fd00:ec2::254", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("ff02::1", Multicast),
            ("2001::1", Teredo),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Teredo),
            ("2001:db8::1", Documentation),
            ("2002:7f00:1::1", Loopback),
            ("2002:a00:5::", Private),
            ("2002:a9fe:a9fe::1", LinkLocal),
            ("100::1", Reserved),
            ("4000::1", Reserved),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
