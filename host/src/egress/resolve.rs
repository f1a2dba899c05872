//! Turns a guest request's host name into the addresses egress checks and connects to.
//!
//! System DNS, except for names pinned to addresses (like curl's `--resolve`): pins are how an
//! operator points a name somewhere on purpose, and how tests make names resolve to loopback
//! without a DNS server. `localhost` names are loopback without a query (RFC 6761). Whatever a
//! name resolves to, egress checks the addresses, not the name.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

use crate::http::is_localhost_name;

/// How egress resolves names. Clones share their pins: a pin set later applies to every
/// policy holding a clone (so a test can move a name between two requests).
#[derive(Clone, Default)]
pub struct Resolver {
    pins: Arc<RwLock<HashMap<String, Vec<IpAddr>>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pins = self.pins.read().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("Resolver").field("pins", &*pins).finish()
    }
}

/// Why a name has no addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// DNS found nothing (or failed).
    NotFound,
    /// Not pinned, and the loopback guard forbids asking DNS.
    LoopbackOnly,
}

impl Resolver {
    /// System DNS, no pins.
    pub fn system() -> Self {
        Self::default()
    }

    /// Pins `name` to `addrs` (replacing an earlier pin): it resolves to exactly these.
    pub fn pin(&self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> &Self {
        let addrs: Vec<IpAddr> = addrs.into_iter().collect();
        self.pins
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(normalize(name), addrs);
        self
    }

    /// The addresses of `name` (a name, not an IP literal). With `loopback_only`, names that
    /// are neither pinned nor `localhost` are not looked up at all.
    pub(crate) async fn lookup(
        &self,
        name: &str,
        port: u16,
        loopback_only: bool,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        if is_localhost_name(name) {
            return Ok(vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        let pinned = self
            .pins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&normalize(name))
            .cloned();
        if let Some(addrs) = pinned {
            return Ok(addrs);
        }
        if loopback_only {
            return Err(ResolveError::LoopbackOnly);
        }
        let addrs: Vec<IpAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| ResolveError::NotFound)?
            .map(|a| a.ip())
            .collect();
        if addrs.is_empty() {
            return Err(ResolveError::NotFound);
        }
        Ok(addrs)
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pins_answer_and_can_move() {
        let r = Resolver::system();
        r.pin(
            "API.vendor.test",
            [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        );
        let clone = r.clone();
        assert_eq!(
            clone.lookup("api.vendor.test.", 80, true).await.unwrap(),
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ]
        );
        r.pin("api.vendor.test", ["10.0.0.5".parse().unwrap()]);
        assert_eq!(
            clone.lookup("api.vendor.test", 80, true).await.unwrap(),
            vec!["10.0.0.5".parse::<IpAddr>().unwrap()]
        );
    }

    #[tokio::test]
    async fn under_the_loopback_guard_unpinned_names_are_not_looked_up() {
        let r = Resolver::system();
        assert_eq!(
            r.lookup("example.com", 443, true).await,
            Err(ResolveError::LoopbackOnly)
        );
        assert_eq!(r.lookup("x.localhost", 443, true).await.unwrap().len(), 2);
    }
}
