//! The Key Vault 401 challenge: which resource (audience) to get a token for, and the check
//! that the vault may ask for it.

use url::Url;

/// The resource (token audience) a challenge names, such as `https://vault.azure.net`.
///
/// Accepts `Bearer authorization="…", resource="…"` and `Bearer authorization_uri="…",
/// scope="…/.default"` in any order. `None` if it is not a Bearer challenge naming a resource.
pub fn parse_resource(www_authenticate: &str) -> Option<String> {
    let rest = www_authenticate.trim().strip_prefix("Bearer")?;
    let mut resource = None;
    let mut scope = None;
    for part in split_params(rest) {
        let (k, v) = part.split_once('=')?;
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "resource" => resource = Some(v),
            "scope" => scope = Some(v),
            _ => {}
        }
    }
    let r = resource.or_else(|| scope.map(|s| s.trim_end_matches("/.default").to_owned()))?;
    let r = r.trim_end_matches('/').to_owned();
    Url::parse(&r).ok().filter(|u| u.scheme() == "https")?;
    Some(r)
}

/// Splits `a="x, y", b=z` on the commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.retain(|p| !p.is_empty());
    out
}

/// The audiences of Key Vault and Managed HSM in the Azure clouds (public, China, US
/// Government, Germany): the only resources a vault's challenge may name.
pub const KEY_VAULT_RESOURCES: &[&str] = &[
    "https://vault.azure.net",
    "https://vault.azure.cn",
    "https://vault.usgovcloudapi.net",
    "https://vault.microsoftazure.de",
    "https://managedhsm.azure.net",
    "https://managedhsm.azure.cn",
    "https://managedhsm.usgovcloudapi.net",
    "https://managedhsm.microsoftazure.de",
];

/// Whether a vault at `vault` may ask for tokens for `resource`. The resource must be one of
/// [`KEY_VAULT_RESOURCES`], so no vault, loopback included, can make the host get a token for
/// another service; and the vault's host must end with `.` plus the resource's host
/// (`x.vault.azure.net` for `https://vault.azure.net`), as the Azure SDKs check. Loopback vaults
/// (the emulator) have no such host and skip that second check only.
pub fn vault_may_ask_for(vault: &Url, resource: &str, vault_is_loopback: bool) -> bool {
    let resource = resource.trim_end_matches('/');
    let Some(known) = KEY_VAULT_RESOURCES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(resource))
    else {
        return false;
    };
    if vault_is_loopback {
        return true;
    }
    let (Some(vault_host), Some(resource_host)) =
        (vault.host_str(), known.strip_prefix("https://"))
    else {
        return false;
    };
    vault_host
        .to_ascii_lowercase()
        .ends_with(&format!(".{resource_host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_challenge_forms() {
        let a = r#"Bearer authorization="https://login.microsoftonline.com/72f988bf", resource="https://vault.azure.net""#;
        assert_eq!(
            parse_resource(a).as_deref(),
            Some("https://vault.azure.net")
        );
        let b = r#"Bearer authorization_uri="https://login.windows.net/t", scope="https://vault.azure.net/.default""#;
        assert_eq!(
            parse_resource(b).as_deref(),
            Some("https://vault.azure.net")
        );
        assert_eq!(parse_resource("Basic realm=x"), None);
        assert_eq!(parse_resource(r#"Bearer resource="http://evil""#), None);
        assert_eq!(parse_resource("Bearer"), None);
    }

    #[test]
    fn domain_check() {
        let v = Url::parse("https://my.vault.azure.net").unwrap();
        assert!(vault_may_ask_for(&v, "https://vault.azure.net", false));
        assert!(!vault_may_ask_for(&v, "https://storage.azure.com", false));
        let evil = Url::parse("https://vault.azure.net.evil.com").unwrap();
        assert!(!vault_may_ask_for(&evil, "https://vault.azure.net", false));
        let local = Url::parse("https://127.0.0.1:8443").unwrap();
        assert!(!vault_may_ask_for(&local, "https://vault.azure.net", false));
        assert!(vault_may_ask_for(&local, "https://vault.azure.net", true));
        // A loopback vault still may name only a Key Vault audience.
        for other in [
            "https://management.azure.com",
            "https://storage.azure.com",
            "https://graph.microsoft.com",
            "https://vault.azure.net.evil.com",
        ] {
            assert!(!vault_may_ask_for(&local, other, true), "{other}");
        }
        // Sovereign clouds and Managed HSM.
        let cn = Url::parse("https://x.vault.azure.cn").unwrap();
        assert!(vault_may_ask_for(&cn, "https://vault.azure.cn", false));
        assert!(!vault_may_ask_for(&cn, "https://vault.azure.net", false));
        let hsm = Url::parse("https://h.managedhsm.azure.net").unwrap();
        assert!(vault_may_ask_for(
            &hsm,
            "https://managedhsm.azure.net/",
            false
        ));
        // An audience that only looks like one: another host that ends the same way.
        let tricky = Url::parse("https://evilvault.azure.net").unwrap();
        assert!(!vault_may_ask_for(
            &tricky,
            "https://vault.azure.net",
            false
        ));
    }
}
