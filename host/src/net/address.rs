//! What a guest's request may connect to, by address: the check every connection passes after
//! the name is resolved and before the socket opens (Stripe's smokescreen is the model).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Azure's wire server (host agent, DHCP, DNS): never a guest's destination.
pub const WIRE_SERVER: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

/// Where an address lies, as egress sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A public address: any rule for the host reaches it.
    Public,
    /// Loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7) or CGNAT (100.64/10): only a
    /// rule that opts in (names the address, or sets `private = true`) reaches it.
    Private,
    /// Never, whatever the rules say; the reason, for the refusal line.
    Forbidden(&'static str),
}

/// Classifies `ip`. IPv4-mapped and NAT64 (`64:ff9b::/96`) IPv6 addresses are judged by the
/// IPv4 address inside them, since that is where they lead.
pub fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => reach_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => reach_v4(v4),
            None => reach_v6(v6),
        },
    }
}

/// The address without its IPv6 wrapping: `::ffff:127.0.0.1` is `127.0.0.1`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    // NAT64 well-known prefix 64:ff9b::/96: a translator forwards to the IPv4 address.
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

fn reach_v4(ip: Ipv4Addr) -> Reach {
    let [a, b, ..] = ip.octets();
    if ip.is_link_local() {
        Reach::Forbidden("link-local (the instance metadata and identity service)")
    } else if ip == WIRE_SERVER {
        Reach::Forbidden("Azure's wire server")
    } else if a == 0 {
        Reach::Forbidden("unspecified (\"this host\")")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Reach::Forbidden("multicast, broadcast or reserved")
    } else if ip.is_loopback() || ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Reach::Private
    } else {
        Reach::Public
    }
}

fn reach_v6(ip: Ipv6Addr) -> Reach {
    let first = ip.segments()[0];
    if first & 0xffc0 == 0xfe80 {
        Reach::Forbidden("link-local (the instance metadata and identity service)")
    } else if ip.is_unspecified() {
        Reach::Forbidden("unspecified (\"this host\")")
    } else if ip.is_multicast() {
        Reach::Forbidden("multicast, broadcast or reserved")
    } else if ip.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        // Unique local fc00::/7, and the deprecated site-local fec0::/10.
        Reach::Private
    } else {
        Reach::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(s: &str) -> Reach {
        reach(s.parse().unwrap())
    }

    #[test]
    fn identity_service_addresses_are_forbidden_in_every_spelling() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "168.63.129.16",
            "fe80::1",
            "febf::1",
            "::ffff:169.254.169.254",
            "::ffff:168.63.129.16",
            "64:ff9b::a9fe:a9fe",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
            "240.0.0.1",
        ] {
            assert!(matches!(of(ip), Reach::Forbidden(_)), "{ip}");
        }
    }

    #[test]
    fn loopback_private_and_cgnat_need_an_opt_in() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "fc00::1",
            "fd12:3456::1",
            "64:ff9b::a00:1",
        ] {
            assert_eq!(of(ip), Reach::Private, "{ip}");
        }
    }

    #[test]
    fn the_rest_is_public() {
        for ip in [
            "20.38.98.100",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.0",
            "168.63.129.17",
            "169.253.255.255",
            "2603:1030::1",
            "fec0::1:0:0:0:0:1",
        ] {
            let want = if ip.starts_with("fec0") {
                Reach::Private
            } else {
                Reach::Public
            };
            assert_eq!(of(ip), want, "{ip}");
        }
    }

    #[test]
    fn canonical_unwraps_mapped_addresses() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(canonical(mapped), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
