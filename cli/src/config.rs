//! The config file (TOML). Unknown keys are rejected; command-line flags override it.
//!
//! ```toml
//! secrets-file = "secrets.toml"        # local backend for development, instead of vaults
//! audit-log = "audit.jsonl"            # or "-" for stderr
//!
//! [vaults.default]                     # grants without a vault name read this one
//! url = "https://my-vault.vault.azure.net"
//! credential = "managed-identity"      # auto | managed-identity | workload-identity | client-secret | azure-cli
//! client-id = "..."                    # a user-assigned identity (or object-id / resource-id)
//!
//! [cache]
//! ttl = "5m"
//! stale-if-error = "1h"
//! negative-ttl = "30s"
//! refresh-wait = "50ms"                # past the TTL, wait this long for the vault, then serve stale
//! max-entries = 10000
//!
//! [limits]                             # defaults for every component
//! timeout = "30s"
//! fuel = 1000000000
//! max-memory = "256MiB"
//! max-hostcall-bytes = "1MiB"
//!
//! [components.hello]
//! wasm = "hello.wasm"
//! grants = ["db-password", "stripe=payments/stripe-key"]
//! limits = { timeout = "5s" }
//! ```

use anyhow::Context as _;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasm_secrets::cache::CacheConfig;
use wasm_secrets::credential::CredentialKind;
use wasm_secrets::grants::{Grants, WholeVault};
use wasm_secrets::runtime::Limits;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// A local secrets file to use instead of vaults.
    pub secrets_file: Option<PathBuf>,
    /// Where to write the audit log: a file, or `-` for stderr.
    pub audit_log: Option<String>,
    /// Vaults by name; `default` is the one grants without a vault name read.
    #[serde(default)]
    pub vaults: BTreeMap<String, VaultConfig>,
    /// The secret cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Limits for every component, unless a component sets its own.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Components by name.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentConfig>,
    /// `serve`'s admin listener (`/metrics`, `/healthz`, `/readyz`): `ADDR:PORT`, or a port alone
    /// for loopback. Off unless set.
    pub admin_addr: Option<String>,
}

/// One vault.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VaultConfig {
    /// The vault URL, such as `https://my-vault.vault.azure.net`.
    pub url: Option<String>,
    /// Which credential to use.
    pub credential: Option<CredentialKind>,
    /// User-assigned identity by client id.
    pub client_id: Option<String>,
    /// User-assigned identity by object (principal) id.
    pub object_id: Option<String>,
    /// User-assigned identity by Azure resource id.
    pub resource_id: Option<String>,
    /// Extra PEM root certificate for the vault's TLS (emulators).
    pub ca_cert: Option<PathBuf>,
    /// Key Vault REST api-version.
    pub api_version: Option<String>,
}

/// Limits as written in the file; unset fields fall back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Wall-clock limit.
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// Fuel units.
    pub fuel: Option<u64>,
    /// Memory in bytes (`"64MiB"` or a number): linear memories and tables together.
    #[serde(default, deserialize_with = "opt_bytes")]
    pub max_memory: Option<usize>,
    /// Bytes per host call.
    #[serde(default, deserialize_with = "opt_bytes")]
    pub max_hostcall_bytes: Option<usize>,
}

impl LimitsConfig {
    /// `self` with unset fields taken from `fallback`.
    pub fn or(self, fallback: LimitsConfig) -> LimitsConfig {
        LimitsConfig {
            timeout: self.timeout.or(fallback.timeout),
            fuel: self.fuel.or(fallback.fuel),
            max_memory: self.max_memory.or(fallback.max_memory),
            max_hostcall_bytes: self.max_hostcall_bytes.or(fallback.max_hostcall_bytes),
        }
    }

    /// The runtime limits.
    pub fn to_limits(self) -> Limits {
        let d = Limits::default();
        Limits {
            timeout: self.timeout,
            fuel: self.fuel,
            max_memory: self.max_memory,
            max_hostcall_bytes: self.max_hostcall_bytes.unwrap_or(d.max_hostcall_bytes),
            ..d
        }
    }
}

/// One component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentConfig {
    /// The component file.
    pub wasm: Option<PathBuf>,
    /// Its grants.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Its limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Where its outgoing wasi:http requests may go (`run` and `serve`); nowhere by default.
    #[serde(default)]
    pub egress: Vec<wasm_secrets::egress::EgressRule>,
    /// Whether its grants may cover a whole vault (`*`, `VAULT/*`); refused otherwise.
    #[serde(default)]
    pub allow_whole_vault: bool,
    /// For `serve -c`: the path prefix it answers (`/api`: that path and everything below it;
    /// `/`: everything no longer route takes). Components without a route are not served.
    pub route: Option<String>,
}

impl Config {
    /// Reads and checks a config file. Relative paths in it are taken from its folder.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config =
            Self::parse(&text).with_context(|| format!("config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = config.secrets_file.as_mut() {
            rebase(p);
        }
        for v in config.vaults.values_mut() {
            if let Some(p) = v.ca_cert.as_mut() {
                rebase(p);
            }
        }
        for c in config.components.values_mut() {
            if let Some(p) = c.wasm.as_mut() {
                rebase(p);
            }
        }
        Ok(config)
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                e.message()
                    .lines()
                    .next()
                    .unwrap_or("invalid TOML")
                    .to_owned()
                    + &line_of(text, &e)
            )
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        for name in self.vaults.keys() {
            anyhow::ensure!(
                wasm_secrets::is_valid_name(name),
                "[vaults.{name}]: a vault name is characters of 0-9, A-Z, a-z and -"
            );
        }
        for (name, c) in &self.components {
            let whole_vault = if c.allow_whole_vault {
                WholeVault::Allow
            } else {
                WholeVault::Refuse
            };
            Grants::parse_with(&c.grants, whole_vault)
                .map_err(|e| anyhow::anyhow!("[components.{name}] grants: {e}"))?;
            for rule in &c.egress {
                rule.check()
                    .map_err(|e| anyhow::anyhow!("[components.{name}] egress: {e}"))?;
            }
            if let Some(route) = &c.route {
                crate::server::check_route(route)
                    .map_err(|e| anyhow::anyhow!("[components.{name}] route: {e}"))?;
                anyhow::ensure!(
                    c.wasm.is_some(),
                    "[components.{name}] has a route but no wasm file: add wasm = \"FILE.wasm\""
                );
            }
        }
        let mut routes = BTreeMap::new();
        for (name, c) in &self.components {
            if let Some(route) = &c.route {
                let route = crate::server::normalize_route(route);
                if let Some(other) = routes.insert(route.clone(), name) {
                    anyhow::bail!(
                        "[components.{name}] and [components.{other}] both have route {route:?}: give each its own"
                    );
                }
            }
        }
        anyhow::ensure!(
            self.cache.max_entries > 0,
            "[cache] max-entries must be at least 1"
        );
        anyhow::ensure!(
            !self.cache.ttl.is_zero(),
            "[cache] ttl must be more than 0s"
        );
        Ok(())
    }
}

/// ` (line N)` for the line where the error's span starts, counting from 1.
fn line_of(text: &str, e: &toml::de::Error) -> String {
    e.span()
        .and_then(|s| text.get(..s.start))
        .map(|before| format!(" (line {})", before.matches('\n').count() + 1))
        .unwrap_or_default()
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Bytes {
        N(u64),
        S(String),
    }
    match Bytes::deserialize(d)? {
        Bytes::N(n) => usize::try_from(n)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Bytes::S(s) => parse_bytes(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Parses a duration such as `30s`, `5m`, `1h 30m` or `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("{s:?} is not a duration; write it like 30s, 5m, 1h or 250ms"))
}

/// Parses a size such as `65536`, `64KiB`, `256MiB`, `1GiB`, `10MB`.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let err = || format!("{s:?} is not a size; write it like 65536, 64KiB, 256MiB or 1GiB");
    let n: u64 = num.parse().map_err(|_| err())?;
    let mul: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(err()),
    };
    n.checked_mul(mul)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let c = Config::parse(
            r#"
            secrets-file = "s.toml"
            audit-log = "-"
            [vaults.default]
            url = "https://x.vault.azure.net"
            credential = "managed-identity"
            client-id = "abc"
            [cache]
            ttl = "1m"
            [limits]
            timeout = "2s"
            max-memory = "64MiB"
            [components.hello]
            wasm = "hello.wasm"
            grants = ["db-password", "s=payments/stripe-key"]
            limits = { fuel = 1000 }
            "#,
        )
        .unwrap();
        assert_eq!(c.cache.ttl, Duration::from_secs(60));
        assert_eq!(c.cache.negative_ttl, Duration::from_secs(30));
        assert_eq!(c.limits.max_memory, Some(64 << 20));
        assert_eq!(
            c.vaults["default"].credential,
            Some(CredentialKind::ManagedIdentity)
        );
        let l = c.components["hello"].limits.or(c.limits).to_limits();
        assert_eq!(l.fuel, Some(1000));
        assert_eq!(l.timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn each_rejection_says_what_is_wrong() {
        for (text, expect) in [
            ("colour = 1", "unknown field `colour`"),
            (
                "[vaults.x]\nurl = \"u\"\nflavour = 1",
                "unknown field `flavour`",
            ),
            ("[cache]\nttl = \"soon\"", "is not a duration"),
            ("[cache]\nttl = \"0s\"", "ttl must be more than 0s"),
            ("[cache]\nmax-entries = 0", "max-entries must be at least 1"),
            ("[limits]\nmax-memory = \"lots\"", "is not a size"),
            (
                "[vaults.default]\ncredential = \"magic\"",
                "unknown variant `magic`",
            ),
            ("[components.a]\ngrants = [\"a/b/c\"]", "invalid grant"),
            (
                "[components.a]\ngrants = [\"x=a\", \"x=b\"]",
                "already granted",
            ),
            ("[vaults.\"a b\"]", "vault name"),
            ("[[oops", "line 1"),
            (
                "[components.a]\negress = [{ host = \"x\", kind = \"azure-http\" }]",
                "needs resource",
            ),
            (
                "[components.a]\negress = [{ host = \"x\", port = 1 }]",
                "unknown field `port`",
            ),
        ] {
            let e = format!("{:#}", Config::parse(text).unwrap_err());
            assert!(e.contains(expect), "{text:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999GiB").is_err());
    }
}
