//! The identity endpoints this process gets tokens from: the places a guest's request must
//! never reach, whatever an egress rule says.
//!
//! Every credential source registers its endpoint when it is made (IMDS and its override, the
//! App Service and legacy MSI endpoint, Arc's agent, and an Entra authority when it is local),
//! so an embedder building credentials by hand is covered as well as `from_env`. The
//! environment's endpoint variables and Arc's default agent address are in the set from the
//! start, credential or not. Link-local addresses (IMDS itself) are refused by address class
//! alone; this set adds the ones that can sit on loopback or a private network.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{LazyLock, RwLock};

use url::{Host, Url};

use super::address::{Reach, canonical, reach};
use crate::http::is_localhost_name;

/// Arc's agent when `IDENTITY_ENDPOINT` does not say otherwise.
pub const ARC_DEFAULT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40342);

/// The environment variables that name an identity endpoint or authority.
const ENDPOINT_VARS: [&str; 5] = [
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
    "IMDS_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_AUTHORITY_HOST",
];

/// One registration's keys, so dropping it takes back exactly what it added.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Keys {
    /// Addresses (canonical: no IPv4-mapped IPv6) and ports.
    addrs: Vec<SocketAddr>,
    /// Host names (lower case) and ports, for endpoints named rather than numbered.
    names: Vec<(String, u16)>,
}

#[derive(Default)]
struct Registered {
    addrs: HashMap<SocketAddr, usize>,
    /// Ports of endpoints on loopback: every loopback address reaches them.
    loopback_ports: HashMap<u16, usize>,
    names: HashMap<(String, u16), usize>,
}

static REGISTERED: LazyLock<RwLock<Registered>> = LazyLock::new(|| {
    let mut r = Registered::default();
    r.add(&Keys {
        addrs: vec![ARC_DEFAULT],
        names: Vec::new(),
    });
    for var in ENDPOINT_VARS {
        if let Some(url) = std::env::var(var).ok().and_then(|v| Url::parse(&v).ok()) {
            r.add(&keys(&url, var != "AZURE_AUTHORITY_HOST"));
        }
    }
    RwLock::new(r)
});

impl Registered {
    fn add(&mut self, keys: &Keys) {
        for addr in &keys.addrs {
            *self.addrs.entry(*addr).or_default() += 1;
            if addr.ip().is_loopback() {
                *self.loopback_ports.entry(addr.port()).or_default() += 1;
            }
        }
        for name in &keys.names {
            *self.names.entry(name.clone()).or_default() += 1;
        }
    }

    fn remove(&mut self, keys: &Keys) {
        fn take<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
        for addr in &keys.addrs {
            take(&mut self.addrs, addr);
            if addr.ip().is_loopback() {
                take(&mut self.loopback_ports, &addr.port());
            }
        }
        for name in &keys.names {
            take(&mut self.names, name);
        }
    }
}

/// What `url` registers. A public address or name only when `always` (a token endpoint
/// proper); an authority such as `login.microsoftonline.com` is a public service guests may
/// call, and counts only when it is local.
fn keys(url: &Url, always: bool) -> Keys {
    let mut k = Keys::default();
    let Some(port) = url.port_or_known_default() else {
        return k;
    };
    let mut ip = |ip: IpAddr| {
        let ip = canonical(ip);
        if always || reach(ip) != Reach::Public {
            k.addrs.push(SocketAddr::new(ip, port));
        }
    };
    match url.host() {
        Some(Host::Ipv4(v4)) => ip(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => ip(IpAddr::V6(v6)),
        Some(Host::Domain(name)) if is_localhost_name(name) => {
            ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
            ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
            k.names.push((name.to_ascii_lowercase(), port));
        }
        Some(Host::Domain(name)) if always => k.names.push((name.to_ascii_lowercase(), port)),
        _ => {}
    }
    k
}

/// An identity endpoint kept out of guests' reach for as long as this lives (a credential
/// source holds one for its endpoint).
#[derive(Debug)]
pub struct Registration(Keys);

impl Drop for Registration {
    fn drop(&mut self) {
        write().remove(&self.0);
    }
}

/// Registers the token endpoint at `url` (IMDS, App Service, Arc): no guest reaches it while
/// the returned registration lives.
#[must_use = "the endpoint is protected only while the registration lives"]
pub fn register(url: &Url) -> Registration {
    register_keys(keys(url, true))
}

/// Registers an Entra authority at `url`, when it is local (loopback, private or link-local
/// address, or a `localhost` name): a public authority stays reachable.
#[must_use = "the endpoint is protected only while the registration lives"]
pub fn register_authority(url: &Url) -> Registration {
    register_keys(keys(url, false))
}

fn register_keys(keys: Keys) -> Registration {
    write().add(&keys);
    Registration(keys)
}

fn write() -> std::sync::RwLockWriteGuard<'static, Registered> {
    REGISTERED.write().unwrap_or_else(|p| p.into_inner())
}

/// Whether `addr` is an identity endpoint this process uses (or Arc's default agent).
pub fn is_identity_address(addr: SocketAddr) -> bool {
    let ip = canonical(addr.ip());
    let r = REGISTERED.read().unwrap_or_else(|p| p.into_inner());
    r.addrs.contains_key(&SocketAddr::new(ip, addr.port()))
        || (ip.is_loopback() && r.loopback_ports.contains_key(&addr.port()))
}

/// Whether `host` (a name or an IP literal, IPv6 in brackets or not) on `port` names an
/// identity endpoint this process uses.
pub fn is_identity_host(host: &str, port: u16) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return is_identity_address(SocketAddr::new(ip, port));
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    if is_localhost_name(&name) {
        return is_identity_address(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    REGISTERED
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .names
        .contains_key(&(name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_registered_loopback_endpoint_is_refused_on_every_loopback_address() {
        let r = register(&url("http://127.0.0.1:47001/msi/token"));
        for addr in [
            "127.0.0.1:47001",
            "127.9.9.9:47001",
            "[::1]:47001",
            "[::ffff:127.0.0.1]:47001",
        ] {
            assert!(is_identity_address(addr.parse().unwrap()), "{addr}");
        }
        assert!(!is_identity_address("127.0.0.1:47002".parse().unwrap()));
        assert!(is_identity_host("127.0.0.1", 47001));
        assert!(is_identity_host("localhost", 47001));
        assert!(!is_identity_host("localhost", 47002));
        drop(r);
        assert!(
            !is_identity_host("127.0.0.1", 47001),
            "a dropped credential's endpoint is free again"
        );
    }

    #[test]
    fn arcs_default_agent_is_always_an_identity_endpoint() {
        assert!(is_identity_address(ARC_DEFAULT));
        assert!(is_identity_host("localhost", 40342));
    }

    #[test]
    fn named_endpoints_match_by_name_and_port() {
        let _r = register(&url("http://identity.internal.test:8081/token"));
        assert!(is_identity_host("Identity.Internal.Test", 8081));
        assert!(!is_identity_host("identity.internal.test", 8082));
    }

    #[test]
    fn a_public_authority_stays_reachable_and_a_local_one_does_not() {
        let _a = register_authority(&url("https://login.microsoftonline.com"));
        assert!(!is_identity_host("login.microsoftonline.com", 443));
        let _b = register_authority(&url("http://127.0.0.1:47003"));
        assert!(is_identity_address("127.0.0.1:47003".parse().unwrap()));
        let _c = register_authority(&url("https://10.1.2.3:8443"));
        assert!(is_identity_address("10.1.2.3:8443".parse().unwrap()));
        let _d = register_authority(&url("https://20.1.2.3:8443"));
        assert!(!is_identity_address("20.1.2.3:8443".parse().unwrap()));
    }
}
