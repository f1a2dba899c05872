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

/// Whether a vault at `vault` may ask for tokens for `resource`: its host must end with `.`
/// plus the resource's host (`x.vault.azure.net` for `https://vault.azure.net`), as the Azure
/// SDKs check. Loopback vaults (the emulator) are exempt.
pub fn vault_may_ask_for(vault: &Url, resource: &str, vault_is_loopback: bool) -> bool {
    if vault_is_loopback {
        return true;
    }
    let (Some(vault_host), Some(resource_host)) = (
        vault.host_str(),
        Url::parse(resource)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned)),
    ) else {
        return false;
    };
    vault_host
        .to_ascii_lowercase()
        .ends_with(&format!(".{}", resource_host.to_ascii_lowercase()))
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
    }
}
