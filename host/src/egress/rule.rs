//! One egress rule: a host (name or address) and port a guest may call, and what the host
//! does on the way (pass through, or attach its token for an Azure audience).

use std::net::IpAddr;

use super::audiences::{self, Audience};
use crate::net::address::{Reach, reach};
use crate::net::identity_endpoints::is_identity_host;

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EgressRule {
    /// `host:port`, or `host` for the scheme's default port only (443 for https, 80 for
    /// http). An IP address (`10.0.0.5:8080`, `[fd00::5]:8080`) is that address only.
    pub host: String,
    /// `http` (plain pass-through) or `azure-http` (the host attaches its token).
    #[serde(default)]
    pub kind: EgressKind,
    /// For `azure-http`: the token audience, such as `https://storage.azure.com`.
    pub resource: Option<String>,
    /// Whether a host *name* may resolve to loopback, private (10/8, 172.16/12, 192.168/16,
    /// fc00::/7) or CGNAT (100.64/10) addresses. Off by default: a name reaches public
    /// addresses only. A rule naming an IP address reaches that address without it. Never
    /// opens link-local addresses or the host's identity endpoints.
    #[serde(default)]
    pub private: bool,
}

/// What the host does with requests to an allowed destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EgressKind {
    /// Pass the request through (any guest Authorization is removed).
    #[default]
    Http,
    /// Attach the host's bearer token for the rule's resource.
    AzureHttp,
}

impl EgressRule {
    /// A pass-through rule for `host` (`--allow-http HOST[:PORT]`).
    pub fn http(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            kind: EgressKind::Http,
            resource: None,
            private: false,
        }
    }

    /// A rule attaching the host's token for `resource` to requests to `host`.
    pub fn azure_http(host: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            kind: EgressKind::AzureHttp,
            resource: Some(resource.into()),
            private: false,
        }
    }

    /// Lets the rule's host name resolve to private and loopback addresses (see
    /// [`EgressRule::private`]).
    pub fn allow_private(mut self) -> Self {
        self.private = true;
        self
    }

    /// The rule's host (lower case, IPv6 without brackets) and port, if it names one.
    pub(crate) fn host_port(&self) -> (String, Option<u16>) {
        let h = self.host.as_str();
        let (host, port) = if let Some(rest) = h.strip_prefix('[') {
            match rest.split_once(']') {
                Some((ip, tail)) => (ip, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
                None => (h, None),
            }
        } else if h.matches(':').count() == 1 {
            match h.rsplit_once(':') {
                Some((host, p)) => match p.parse::<u16>() {
                    Ok(port) => (host, Some(port)),
                    Err(_) => (h, None),
                },
                None => (h, None),
            }
        } else {
            (h, None)
        };
        (host.trim_end_matches('.').to_ascii_lowercase(), port)
    }

    /// The IP address the rule names, if it names one rather than a host name.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.host_port().0.parse().ok()
    }

    /// Whether the rule reaches `reach`-class addresses: public always, private only by
    /// opt-in (a named IP address, or `private`), forbidden never.
    pub(crate) fn reaches(&self, class: Reach) -> bool {
        match class {
            Reach::Public => true,
            Reach::Private => self.private || self.ip().is_some(),
            Reach::Forbidden(_) => false,
        }
    }

    /// Checks the rule before it is used, as the config, the CLI and an embedder give it:
    /// a well-formed host; no address no guest may reach; for `azure-http`, an https resource
    /// whose token may go to this host (see [`audiences`]). ([`EgressPolicy::new`] also warns
    /// once about a resource the table does not know.)
    ///
    /// [`EgressPolicy::new`]: super::EgressPolicy::new
    pub fn check(&self) -> anyhow::Result<()> {
        let (host, port) = self.host_port();
        anyhow::ensure!(
            !host.is_empty()
                && !host.contains(['/', '@', ' ', '?', '#'])
                && (host.parse::<IpAddr>().is_ok() || !host.contains(':')),
            "egress host {:?} must be HOST, HOST:PORT or [IPv6]:PORT",
            self.host
        );
        if let Some(ip) = self.ip()
            && let Reach::Forbidden(why) = reach(ip)
        {
            anyhow::bail!(
                "egress rule for {}: {ip} is {why}, which no guest may reach; remove the rule",
                self.host
            );
        }
        let ports = port.map_or(vec![80, 443], |p| vec![p]);
        if ports.iter().any(|&p| is_identity_host(&host, p)) {
            anyhow::bail!(
                "egress rule for {}: that is an identity endpoint this host gets its tokens from, which no guest may reach; remove the rule",
                self.host
            );
        }
        if self.kind == EgressKind::AzureHttp {
            self.check_audience(&host)?;
        } else {
            anyhow::ensure!(
                self.resource.is_none(),
                "egress rule for {}: resource is for kind = \"azure-http\" rules only",
                self.host
            );
        }
        Ok(())
    }

    fn check_audience(&self, host: &str) -> anyhow::Result<()> {
        let resource = self.resource.as_deref().unwrap_or("");
        anyhow::ensure!(
            resource.starts_with("https://") || resource.starts_with("api://"),
            "egress rule for {} is azure-http and needs resource = \"https://...\" (or \"api://...\")",
            self.host
        );
        match audiences::classify(resource, host) {
            Audience::Vault => anyhow::bail!(
                "egress rule for {}: azure-http with resource {resource} would hand the guest's requests the host's Key Vault token; components reach secrets and keys through grants, not egress rules",
                self.host
            ),
            Audience::WrongHost(service) => anyhow::bail!(
                "egress rule for {}: a token for {resource} ({}) may go only to hosts in {}; point the rule at one of those or drop it",
                self.host,
                service.name,
                service.domains.join(", ")
            ),
            Audience::Allowed(_) | Audience::Unknown => Ok(()),
        }
    }

    /// Whether this is an `azure-http` rule for a resource the audience table does not know:
    /// its token goes to the rule's host as the operator wrote it.
    pub(crate) fn unknown_audience(&self) -> bool {
        self.kind == EgressKind::AzureHttp
            && self
                .resource
                .as_deref()
                .is_some_and(|r| audiences::classify(r, &self.host_port().0) == Audience::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_parse_in_every_form() {
        let hp = |h: &str| EgressRule::http(h).host_port();
        assert_eq!(hp("API.example.com"), ("api.example.com".into(), None));
        assert_eq!(
            hp("api.example.com:8443"),
            ("api.example.com".into(), Some(8443))
        );
        assert_eq!(hp("10.0.0.5:80"), ("10.0.0.5".into(), Some(80)));
        assert_eq!(hp("[fd00::5]:8080"), ("fd00::5".into(), Some(8080)));
        assert_eq!(hp("[fd00::5]"), ("fd00::5".into(), None));
        assert_eq!(hp("fd00::5"), ("fd00::5".into(), None));
        assert_eq!(EgressRule::http("[fd00::5]:1").ip(), "fd00::5".parse().ok());
        assert_eq!(EgressRule::http("api.example.com").ip(), None);
    }

    #[test]
    fn rules_naming_the_identity_service_are_refused() {
        for host in [
            "169.254.169.254",
            "169.254.169.254:80",
            "168.63.129.16",
            "[fe80::1]:80",
            "[::ffff:169.254.169.254]:80",
            "0.0.0.0:8080",
            "127.0.0.1:40342",
            "localhost:40342",
        ] {
            let e = EgressRule::http(host).check().unwrap_err().to_string();
            assert!(e.contains("no guest may reach"), "{host}: {e}");
        }
    }

    #[test]
    fn private_addresses_need_an_opt_in_that_a_named_address_gives() {
        let private = Reach::Private;
        assert!(!EgressRule::http("api.example.com").reaches(private));
        assert!(
            EgressRule::http("api.example.com")
                .allow_private()
                .reaches(private)
        );
        assert!(EgressRule::http("10.0.0.5:8080").reaches(private));
        assert!(
            !EgressRule::http("10.0.0.5:8080")
                .allow_private()
                .reaches(Reach::Forbidden("x"))
        );
    }

    #[test]
    fn azure_http_rules_carry_tokens_only_to_their_audiences_domains() {
        let vault = EgressRule::azure_http("myvault.vault.azure.net", "https://vault.azure.net");
        let e = vault.check().unwrap_err().to_string();
        assert!(e.contains("through grants"), "{e}");
        let hsm = EgressRule::azure_http("api.example.com", "https://managedhsm.azure.net");
        assert!(
            hsm.check()
                .unwrap_err()
                .to_string()
                .contains("Key Vault token")
        );
        let storage = EgressRule::azure_http("api.example.com", "https://storage.azure.com");
        let e = storage.check().unwrap_err().to_string();
        assert!(
            e.contains("api.example.com") && e.contains("core.windows.net"),
            "{e}"
        );
        EgressRule::azure_http("acct.blob.core.windows.net", "https://storage.azure.com")
            .check()
            .unwrap();
        EgressRule::azure_http("api.example.com:8443", "api://orders-api")
            .check()
            .unwrap();
        let plain = EgressRule {
            resource: Some("https://storage.azure.com".into()),
            ..EgressRule::http("x.example.com")
        };
        assert!(
            plain.check().is_err(),
            "resource on a plain rule is a mistake"
        );
        let no_resource = EgressRule {
            kind: EgressKind::AzureHttp,
            ..EgressRule::http("x.example.com")
        };
        assert!(
            no_resource
                .check()
                .unwrap_err()
                .to_string()
                .contains("needs resource")
        );
    }
}
