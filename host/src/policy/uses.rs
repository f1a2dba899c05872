//! Use-only grants: a secret the component may have the host apply to its outgoing requests,
//! to the hosts the grant names, and may never read.
//!
//! A use-only grant is a secret grant (same namespace, same vaults, same cache) with a
//! [`UseOnly`] part:
//!
//! ```text
//! use:[ALIAS=][VAULT/]NAME[@VERSION][+[VAULT/]NAME2[@VERSION]] for HOST[:PORT][,HOST[:PORT]...] [as PROCESSOR]
//! ```
//!
//! | grant                                                        | the marker becomes                  |
//! |--------------------------------------------------------------|-------------------------------------|
//! | `use:stripe=stripe-live for api.stripe.com`                  | the value (`as value`, the default) |
//! | `use:api=api-user+api-password for api.example.com as basic` | base64 of `user:password`           |
//! | `use:hook=webhook-key for hooks.example.com as hmac-sha256`  | hex HMAC-SHA256 of the body         |
//! | `use:crm=crm-id+crm-secret for api.crm.example as oauth2 https://login.crm.example/token [SCOPE]` | an OAuth 2 access token |
//!
//! `oauth2` exchanges the client id (the first secret) and the client secret (the second) for
//! an access token at the token URL (client credentials grant, RFC 6749 section 4.4; SCOPE, if
//! given, with commas for spaces), and caches the token until it is due for refresh.
//!
//! The guest writes the marker `{{secret:ALIAS}}` in a header value of its request, in any
//! template (`Bearer {{secret:stripe}}`, a bare `{{secret:stripe}}` in `X-Api-Key`); the host
//! replaces it when the request leaves (see `crate::egress`). A host is https on port 443
//! unless a port is given; plain http is allowed only to loopback addresses (for tests).

use crate::name::{fold, is_valid_name, is_valid_version};
use std::fmt;

/// What a grant string starts with to be use-only.
pub(super) const USE_PREFIX: &str = "use:";

pub(super) const USE_SYNTAX: &str = "expected use:[ALIAS=][VAULT/]NAME[+[VAULT/]NAME2] for HOST[:PORT][,HOST[:PORT]...] [as value|basic|hmac-sha256|oauth2 TOKEN-URL [SCOPE]]";

/// How a use-only secret is applied to a request: what its marker is replaced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Apply {
    /// The secret's value.
    Value,
    /// HTTP Basic credentials: base64 of `USER:PASSWORD`, the user the grant's first secret,
    /// the password its second.
    Basic,
    /// The lowercase hex HMAC-SHA256 of the request's body, keyed with the secret.
    HmacSha256,
    /// An OAuth 2 access token, from the client credentials grant: the first secret is the
    /// client id, the second the client secret.
    OAuth2,
}

impl Apply {
    /// The name a grant gives it after `as`, and the audit log and metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Value => "value",
            Self::Basic => "basic",
            Self::HmacSha256 => "hmac-sha256",
            Self::OAuth2 => "oauth2",
        }
    }

    /// How many secrets it takes.
    fn secrets(self) -> usize {
        match self {
            Self::Basic | Self::OAuth2 => 2,
            Self::Value | Self::HmacSha256 => 1,
        }
    }
}

/// A host a use-only secret may be sent to: a name or an IP address (lowercase, IPv6 without
/// brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The host as the request's URL names it.
    pub host: String,
    /// Its port (443 unless the grant says).
    pub port: u16,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            f.write_str(&host)
        } else {
            write!(f, "{host}:{}", self.port)
        }
    }
}

impl Destination {
    /// Whether a request to `host` (as its URL spells it) on `port` goes here.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.');
        self.port == port && self.host.eq_ignore_ascii_case(host)
    }

    fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("\"{s}\" is not HOST or HOST:PORT (no scheme, path or *)");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
            ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            match after {
                "" => (ip, None),
                p => (ip, Some(p.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let port = match port {
            None => 443,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        };
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let host = host.trim_end_matches('.');
        let ok = host.contains(':') || (host.len() <= 253 && host.split('.').all(valid_label));
        if !ok {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// A secret in a vault, as a use-only grant's second part names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The vault that holds it.
    pub vault: String,
    /// Its name in that vault.
    pub object: String,
    /// The one version allowed, if pinned.
    pub version: Option<String>,
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vault != crate::backend::DEFAULT_VAULT {
            write!(f, "{}/", self.vault)?;
        }
        f.write_str(&self.object)?;
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

impl SecretRef {
    /// Parses `[VAULT/]NAME[@VERSION]`.
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        let (target, version) = match s.split_once('@') {
            Some((t, v)) => (t, Some(v)),
            None => (s, None),
        };
        let (vault, object) = target
            .split_once('/')
            .unwrap_or((crate::backend::DEFAULT_VAULT, target));
        if !is_valid_name(vault) || vault.len() > 63 {
            return Err("the vault name must be 1 to 63 characters of 0-9, A-Z, a-z and -".into());
        }
        if !is_valid_name(object) {
            return Err(format!(
                "the secret name \"{object}\" must be 1 to 127 characters of 0-9, A-Z, a-z and -"
            ));
        }
        if let Some(v) = version
            && !is_valid_version(v)
        {
            return Err("the version must be 1 to 64 letters and digits".into());
        }
        Ok(Self {
            vault: vault.to_owned(),
            object: object.to_owned(),
            version: version.map(str::to_owned),
        })
    }

    /// Whether `other` names the same secret, in any case.
    fn same_as(&self, other: &Self) -> bool {
        self.vault == other.vault
            && fold(&self.object) == fold(&other.object)
            && self.version.as_deref().map(fold) == other.version.as_deref().map(fold)
    }
}

/// Where an `oauth2` grant gets its access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenEndpoint {
    /// The token URL: https, or http to a loopback address (for tests).
    pub url: url::Url,
    /// The `scope` sent, if any (space-separated).
    pub scope: Option<String>,
}

impl TokenEndpoint {
    fn parse(url: &str, scope: Option<&str>) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|_| format!("\"{url}\" is not a token URL"))?;
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(format!(
                    "the token URL \"{url}\" must be https (http only to a loopback address)"
                ));
            }
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("the token URL must not hold credentials".into());
        }
        let scope = scope.map(|s| s.replace(',', " "));
        Ok(Self { url: parsed, scope })
    }
}

/// What makes a secret grant use-only: where the value may go and how it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseOnly {
    /// The hosts (and ports) a request carrying it may go to; at least one.
    pub destinations: Vec<Destination>,
    /// What the marker becomes.
    pub apply: Apply,
    /// The second secret of a processor that takes two (`basic`'s password, `oauth2`'s client
    /// secret).
    pub second: Option<SecretRef>,
    /// For `oauth2`: where the tokens come from.
    pub token_endpoint: Option<TokenEndpoint>,
}

impl UseOnly {
    /// Whether a request to `host` on `port` may carry it.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.destinations.iter().any(|d| d.matches(host, port))
    }

    /// The same grant in any case.
    pub(super) fn same_as(&self, other: &Self) -> bool {
        self.destinations == other.destinations
            && self.apply == other.apply
            && self.token_endpoint == other.token_endpoint
            && match (&self.second, &other.second) {
                (Some(a), Some(b)) => a.same_as(b),
                (a, b) => a == b,
            }
    }

    /// ` for HOSTS as PROCESSOR`, as the grant is written after its target.
    pub(super) fn fmt_tail(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(second) = &self.second {
            write!(f, "+{second}")?;
        }
        f.write_str(" for ")?;
        for (i, d) in self.destinations.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        if self.apply != Apply::Value {
            write!(f, " as {}", self.apply.as_str())?;
        }
        if let Some(t) = &self.token_endpoint {
            write!(f, " {}", t.url)?;
            if let Some(scope) = &t.scope {
                write!(f, " {}", scope.replace(' ', ","))?;
            }
        }
        Ok(())
    }
}

/// Splits the part of a use-only grant after `use:` into its target (`[ALIAS=][VAULT/]NAME`,
/// for the caller to parse) and its [`UseOnly`] part.
pub(super) fn split(rest: &str) -> Result<(&str, UseOnly), String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (target, hosts, apply, args) = match words.as_slice() {
        [target, "for", hosts] => (*target, *hosts, None, &[][..]),
        [target, "for", hosts, "as", apply, args @ ..] => (*target, *hosts, Some(*apply), args),
        [_] => return Err("the hosts it may be sent to are missing (\"for HOST\")".into()),
        _ => return Err("the grant does not read as TARGET for HOSTS [as PROCESSOR]".into()),
    };
    let apply = match apply {
        None | Some("value") => Apply::Value,
        Some("basic") => Apply::Basic,
        Some("hmac-sha256") => Apply::HmacSha256,
        Some("oauth2") => Apply::OAuth2,
        Some(other) => return Err(format!("\"{other}\" is not a processor")),
    };
    let token_endpoint = match (apply, args) {
        (Apply::OAuth2, [url]) => Some(TokenEndpoint::parse(url, None)?),
        (Apply::OAuth2, [url, scope]) => Some(TokenEndpoint::parse(url, Some(scope))?),
        (Apply::OAuth2, _) => {
            return Err("\"as oauth2\" takes the token URL, then an optional scope".into());
        }
        (_, []) => None,
        (_, _) => {
            return Err(format!("\"as {}\" takes nothing after it", apply.as_str()));
        }
    };
    let (target, second) = match target.split_once('+') {
        Some((first, second)) => (first, Some(SecretRef::parse(second)?)),
        None => (target, None),
    };
    let wanted = apply.secrets();
    let given = 1 + usize::from(second.is_some());
    if given != wanted {
        return Err(format!(
            "\"as {}\" takes {wanted} secret{} (NAME{}), not {given}",
            apply.as_str(),
            if wanted == 1 { "" } else { "s" },
            if wanted == 1 { "" } else { "+NAME2" },
        ));
    }
    if target.contains('*') {
        return Err("a use-only grant names one secret, not a pattern".into());
    }
    let destinations = hosts
        .split(',')
        .map(Destination::parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        target,
        UseOnly {
            destinations,
            apply,
            second,
            token_endpoint,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_default_to_443_and_match_ignoring_case_and_brackets() {
        let d = Destination::parse("API.Example.com").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("api.example.com", 443));
        assert!(d.matches("api.example.COM", 443) && d.matches("api.example.com.", 443));
        assert!(!d.matches("api.example.com", 8443) && !d.matches("example.com", 443));
        let v6 = Destination::parse("[::1]:8443").unwrap();
        assert!(v6.matches("[::1]", 8443));
        assert_eq!(v6.to_string(), "[::1]:8443");
        for bad in [
            "https://x.com",
            "x.com/path",
            "*.x.com",
            "x.com:0",
            "x.com:http",
            "",
            "[::1",
            "a..b",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_processor_takes_its_number_of_secrets() {
        assert!(split("api=u+p for h.com as basic").is_ok());
        let e = split("api=u for h.com as basic").unwrap_err();
        assert!(e.contains("takes 2 secrets"), "{e}");
        let e = split("k=a+b for h.com").unwrap_err();
        assert!(e.contains("takes 1 secret"), "{e}");
        let e = split("k for h.com as rot13").unwrap_err();
        assert!(e.contains("not a processor"), "{e}");
        let o = split("crm=id+secret for api.crm.example as oauth2 https://login.crm.example/token read,write")
            .unwrap()
            .1;
        let t = o.token_endpoint.unwrap();
        assert_eq!(
            (t.url.as_str(), t.scope.as_deref()),
            ("https://login.crm.example/token", Some("read write"))
        );
        assert!(split("c=i+s for h.com as oauth2 http://127.0.0.1:9/token").is_ok());
        for bad in [
            "c=i+s for h.com as oauth2",
            "c=i+s for h.com as oauth2 http://login.example/token",
            "c=i+s for h.com as oauth2 ftp://login.example/token",
            "c=i+s for h.com as oauth2 https://u:p@login.example/token",
            "c for h.com as value extra",
        ] {
            assert!(split(bad).is_err(), "{bad}");
        }
        let e = split("k").unwrap_err();
        assert!(e.contains("for HOST"), "{e}");
        let e = split("k-* for h.com").unwrap_err();
        assert!(e.contains("not a pattern"), "{e}");
    }
}
