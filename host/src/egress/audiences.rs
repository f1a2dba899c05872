//! Where an Azure token may go: the well-known audiences (token resources) and the domains of
//! the services that accept them, for every Azure cloud, in one table.
//!
//! An `azure-http` egress rule sends the host's own token for its `resource` to its `host`.
//! [`classify`] says whether that pair is safe: a Key Vault or Managed HSM token never leaves
//! (grants are how a component reaches secrets and keys), a well-known audience goes only to
//! its service's domains, and any other resource (an app registration's `api://...`) goes to
//! the host as the operator wrote it, with a warning.
//!
//! Sources: the Azure SDKs' cloud settings (`azure-identity`'s `AzureAuthorityHosts` and each
//! client's default `.default` scope) and Azure's documentation of the Microsoft Entra
//! resource IDs of the services that support managed identities
//! (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/services-id-authentication-support>),
//! for the public cloud, Azure China (21Vianet) and Azure US Government.

/// One Azure service: the audiences of its tokens and the domains that accept them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// What an operator calls it, for messages.
    pub name: &'static str,
    /// The hosts of its audience URIs (`https://storage.azure.com` is `storage.azure.com`).
    pub audiences: &'static [&'static str],
    /// The domains its endpoints live in: a host is in `core.windows.net` if it is that name
    /// or ends in `.core.windows.net`.
    pub domains: &'static [&'static str],
}

/// Key Vault and Managed HSM: their tokens never go to a guest's egress rule.
pub const VAULT: Service = Service {
    name: "Key Vault / Managed HSM",
    audiences: &[
        "vault.azure.net",
        "vault.azure.cn",
        "vault.usgovcloudapi.net",
        "vault.microsoftazure.de",
        "managedhsm.azure.net",
        "managedhsm.azure.cn",
        "managedhsm.usgovcloudapi.net",
    ],
    domains: &[
        "vault.azure.net",
        "vault.azure.cn",
        "vault.usgovcloudapi.net",
        "vault.microsoftazure.de",
        "managedhsm.azure.net",
        "managedhsm.azure.cn",
        "managedhsm.usgovcloudapi.net",
    ],
};

/// The well-known audiences an `azure-http` rule may carry, each with where it may go.
pub const SERVICES: &[Service] = &[
    Service {
        name: "Azure Storage",
        audiences: &["storage.azure.com"],
        domains: &[
            "core.windows.net",
            "core.chinacloudapi.cn",
            "core.usgovcloudapi.net",
            "storage.azure.net",
        ],
    },
    Service {
        name: "Azure Resource Manager",
        audiences: &[
            "management.azure.com",
            "management.core.windows.net",
            "management.chinacloudapi.cn",
            "management.core.chinacloudapi.cn",
            "management.usgovcloudapi.net",
            "management.core.usgovcloudapi.net",
        ],
        domains: &[
            "management.azure.com",
            "management.core.windows.net",
            "management.chinacloudapi.cn",
            "management.core.chinacloudapi.cn",
            "management.usgovcloudapi.net",
            "management.core.usgovcloudapi.net",
        ],
    },
    Service {
        name: "Microsoft Graph",
        audiences: &[
            "graph.microsoft.com",
            "microsoftgraph.chinacloudapi.cn",
            "graph.microsoft.us",
            "dod-graph.microsoft.us",
        ],
        domains: &[
            "graph.microsoft.com",
            "microsoftgraph.chinacloudapi.cn",
            "graph.microsoft.us",
            "dod-graph.microsoft.us",
        ],
    },
    Service {
        name: "Azure SQL Database",
        audiences: &[
            "database.windows.net",
            "database.chinacloudapi.cn",
            "database.usgovcloudapi.net",
        ],
        domains: &[
            "database.windows.net",
            "database.chinacloudapi.cn",
            "database.usgovcloudapi.net",
        ],
    },
    Service {
        name: "Azure Service Bus / Event Hubs",
        audiences: &["servicebus.azure.net", "eventhubs.azure.net"],
        domains: &[
            "servicebus.windows.net",
            "servicebus.chinacloudapi.cn",
            "servicebus.usgovcloudapi.net",
        ],
    },
    Service {
        name: "Azure Cosmos DB",
        audiences: &["cosmos.azure.com", "cosmos.azure.cn", "cosmos.azure.us"],
        domains: &[
            "documents.azure.com",
            "documents.azure.cn",
            "documents.azure.us",
        ],
    },
    Service {
        name: "Azure Monitor",
        audiences: &[
            "monitor.azure.com",
            "monitor.azure.cn",
            "monitor.azure.us",
            "api.loganalytics.io",
            "api.loganalytics.azure.cn",
            "api.loganalytics.us",
        ],
        domains: &[
            "monitor.azure.com",
            "monitor.azure.cn",
            "monitor.azure.us",
            "api.loganalytics.io",
            "api.loganalytics.azure.cn",
            "api.loganalytics.us",
        ],
    },
    Service {
        name: "Azure App Configuration",
        audiences: &["azconfig.io", "appconfig.azure.cn", "appconfig.azure.us"],
        domains: &["azconfig.io", "azconfig.azure.cn", "azconfig.azure.us"],
    },
];

/// What an `azure-http` rule's (resource, host) pair amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The resource is Key Vault or Managed HSM: refused, grants are the way to secrets.
    Vault,
    /// A well-known audience going to one of its own domains.
    Allowed(&'static Service),
    /// A well-known audience going somewhere else: refused.
    WrongHost(&'static Service),
    /// A resource this table does not know: the token goes to the host as is.
    Unknown,
}

/// Classifies the token for `resource` (`https://storage.azure.com`, with or without a path
/// such as `/.default`) going to `host` (a host name, with or without `:port`).
pub fn classify(resource: &str, host: &str) -> Audience {
    let audience = resource_host(resource);
    let host = bare_host(host);
    if in_any(&audience, VAULT.audiences) || in_any(&audience, VAULT.domains) {
        return Audience::Vault;
    }
    let fits = |service: &'static Service, ok: bool| {
        if ok {
            Audience::Allowed(service)
        } else {
            Audience::WrongHost(service)
        }
    };
    // The service's own audience goes anywhere in its domains.
    if let Some(service) = SERVICES
        .iter()
        .find(|s| s.audiences.contains(&audience.as_str()))
    {
        return fits(service, in_any(&host, service.domains));
    }
    // A resource-specific audience inside a service's domains
    // (`https://account.blob.core.windows.net`) goes to that very host.
    if let Some(service) = SERVICES.iter().find(|s| in_any(&audience, s.domains)) {
        return fits(service, host == audience);
    }
    Audience::Unknown
}

/// The host of a resource URI, lower case: `https://Storage.azure.com/.default` is
/// `storage.azure.com`; `api://my-app` is `my-app`.
fn resource_host(resource: &str) -> String {
    let rest = resource.split_once("://").map_or(resource, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    bare_host(authority)
}

/// A host without its port or trailing dot, lower case.
fn bare_host(host: &str) -> String {
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':')
            .filter(|(_, p)| p.parse::<u16>().is_ok())
            .map_or(host, |(h, _)| h)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` is one of `domains` or a name inside one.
fn in_any(host: &str, domains: &[&str]) -> bool {
    domains.iter().any(|d| {
        host == *d
            || host
                .strip_suffix(d)
                .is_some_and(|prefix| prefix.ends_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> &'static Service {
        SERVICES.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn every_vault_and_hsm_audience_is_refused_whatever_the_host() {
        for audience in VAULT.audiences {
            for resource in [
                format!("https://{audience}"),
                format!("https://{audience}/"),
                format!("https://{audience}/.default"),
                format!("HTTPS://{}", audience.to_uppercase()),
            ] {
                for host in ["api.example.com", "myvault.vault.azure.net:443", audience] {
                    assert_eq!(
                        classify(&resource, host),
                        Audience::Vault,
                        "{resource} {host}"
                    );
                }
            }
        }
        // A vault's own URL as the resource is a vault token too.
        assert_eq!(
            classify("https://myvault.vault.azure.net", "myvault.vault.azure.net"),
            Audience::Vault
        );
        assert_eq!(
            classify("https://pool.managedhsm.azure.net/", "x.example.com"),
            Audience::Vault
        );
    }

    /// Every row: each audience goes to a host in each of its domains (a subdomain, and the
    /// domain itself), never to a host outside them or to a look-alike suffix.
    #[test]
    fn every_audience_goes_to_its_domains_only() {
        for s in SERVICES {
            for audience in s.audiences {
                let resource = format!("https://{audience}/.default");
                for domain in s.domains {
                    for host in [format!("acct.{domain}"), format!("{domain}:443")] {
                        assert_eq!(
                            classify(&resource, &host),
                            Audience::Allowed(s),
                            "{resource} to {host}"
                        );
                    }
                    let lookalike = format!("evil{domain}");
                    assert_eq!(
                        classify(&resource, &lookalike),
                        Audience::WrongHost(s),
                        "{resource} to {lookalike}"
                    );
                    let suffixed = format!("{domain}.attacker.test");
                    assert_eq!(
                        classify(&resource, &suffixed),
                        Audience::WrongHost(s),
                        "{resource} to {suffixed}"
                    );
                }
                for host in ["api.example.com", "127.0.0.1:8080", "localhost"] {
                    assert_eq!(classify(&resource, host), Audience::WrongHost(s), "{host}");
                }
            }
        }
    }

    #[test]
    fn the_pairs_operators_write() {
        let storage = service("Azure Storage");
        assert_eq!(
            classify("https://storage.azure.com", "myacct.blob.core.windows.net"),
            Audience::Allowed(storage)
        );
        assert_eq!(
            classify("https://storage.azure.com", "api.example.com"),
            Audience::WrongHost(storage)
        );
        assert_eq!(
            classify("https://management.azure.com/", "management.azure.com:443"),
            Audience::Allowed(service("Azure Resource Manager"))
        );
        assert_eq!(
            classify(
                "https://graph.microsoft.com/.default",
                "graph.microsoft.com"
            ),
            Audience::Allowed(service("Microsoft Graph"))
        );
        assert_eq!(
            classify("https://database.windows.net/", "srv.database.windows.net"),
            Audience::Allowed(service("Azure SQL Database"))
        );
        assert_eq!(
            classify("https://eventhubs.azure.net", "ns.servicebus.windows.net"),
            Audience::Allowed(service("Azure Service Bus / Event Hubs"))
        );
        assert_eq!(
            classify("https://cosmos.azure.com", "acct.documents.azure.com"),
            Audience::Allowed(service("Azure Cosmos DB"))
        );
        assert_eq!(
            classify(
                "https://monitor.azure.com",
                "dce.westeurope-1.ingest.monitor.azure.com"
            ),
            Audience::Allowed(service("Azure Monitor"))
        );
        assert_eq!(
            classify("https://azconfig.io", "store.azconfig.io"),
            Audience::Allowed(service("Azure App Configuration"))
        );
    }

    #[test]
    fn a_resource_specific_audience_goes_to_that_host_only() {
        let storage = service("Azure Storage");
        let resource = "https://acct.blob.core.windows.net";
        assert_eq!(
            classify(resource, "acct.blob.core.windows.net:443"),
            Audience::Allowed(storage)
        );
        assert_eq!(
            classify(resource, "other.blob.core.windows.net"),
            Audience::WrongHost(storage)
        );
    }

    #[test]
    fn other_resources_are_unknown() {
        for resource in [
            "api://my-app",
            "api://00000000-0000-0000-0000-000000000001/.default",
            "https://api.example.com",
            "https://contoso.onmicrosoft.com/orders",
            // Not the storage audience: a look-alike.
            "https://storage.azure.com.attacker.test",
            "https://evilcore.windows.net",
        ] {
            assert_eq!(
                classify(resource, "api.example.com"),
                Audience::Unknown,
                "{resource}"
            );
        }
    }

    #[test]
    fn hosts_are_compared_without_port_case_or_trailing_dot() {
        assert_eq!(
            bare_host("Acct.Blob.Core.Windows.Net.:8443"),
            "acct.blob.core.windows.net"
        );
        assert_eq!(bare_host("[::1]:8080"), "[::1]");
        assert_eq!(
            resource_host("https://user@Storage.Azure.com:443/x?y"),
            "storage.azure.com"
        );
        assert_eq!(resource_host("api://my-app"), "my-app");
    }
}
