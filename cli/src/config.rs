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
//! secret-calls = "150/s burst 500"     # this host's budget for the vault, shared by components
//! key-calls = "50/s burst 250"         # (the defaults; "off" for none)
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
//! vault-calls = "100/s burst 1000"     # misses, refreshes and key operations; or "off"
//! instance-requests = 128              # a WASI 0.3 handler's instance serves this many requests,
//! instance-concurrency = 16            # this many at once,
//! instance-idle = "1s"                 # and is kept this long with nothing to do
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
use wasm_secrets::runtime::{Limits, Reuse};
use wasm_secrets::{Budget, VaultBudget};

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
    /// This host's budget for secret reads from the vault, all components together.
    #[serde(default, deserialize_with = "opt_budget")]
    pub secret_calls: Option<BudgetSetting>,
    /// This host's budget for key reads and operations on the vault.
    #[serde(default, deserialize_with = "opt_budget")]
    pub key_calls: Option<BudgetSetting>,
}

impl VaultConfig {
    /// The vault's budget: what is set, else the defaults.
    pub fn budget(&self) -> VaultBudget {
        let d = VaultBudget::default();
        VaultBudget {
            secrets: self.secret_calls.map_or(d.secrets, BudgetSetting::budget),
            keys: self.key_calls.map_or(d.keys, BudgetSetting::budget),
        }
    }
}

/// A vault-call budget as written: `RATE/s [burst N]`, `RATE/m [burst N]`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BudgetSetting {
    /// No limit.
    Off,
    /// This budget.
    On(Budget),
}

impl BudgetSetting {
    /// The budget, if there is one.
    pub fn budget(self) -> Option<Budget> {
        match self {
            Self::Off => None,
            Self::On(b) => Some(b),
        }
    }
}

/// Parses `off` or a [`Budget`] (`20/s`, `600/m burst 50`).
pub fn parse_budget(s: &str) -> Result<BudgetSetting, String> {
    match s.trim() {
        "off" => Ok(BudgetSetting::Off),
        t => t
            .parse()
            .map(BudgetSetting::On)
            .map_err(|e: String| format!("{e}, or \"off\"")),
    }
}

fn opt_budget<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BudgetSetting>, D::Error> {
    let s = String::deserialize(d)?;
    parse_budget(&s).map(Some).map_err(serde::de::Error::custom)
}

/// Limits as written in the file; unset fields fall back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
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
    /// The component's own budget of vault calls (misses, refreshes, key operations).
    #[serde(default, deserialize_with = "opt_budget")]
    pub vault_calls: Option<BudgetSetting>,
    /// Requests one instance of a WASI 0.3 handler serves in all (serve).
    pub instance_requests: Option<usize>,
    /// Requests one instance of a WASI 0.3 handler serves at once (serve).
    pub instance_concurrency: Option<usize>,
    /// How long an idle instance of a WASI 0.3 handler is kept (serve).
    #[serde(default, deserialize_with = "opt_duration")]
    pub instance_idle: Option<Duration>,
}

impl LimitsConfig {
    /// `self` with unset fields taken from `fallback`.
    pub fn or(self, fallback: LimitsConfig) -> LimitsConfig {
        LimitsConfig {
            timeout: self.timeout.or(fallback.timeout),
            fuel: self.fuel.or(fallback.fuel),
            max_memory: self.max_memory.or(fallback.max_memory),
            max_hostcall_bytes: self.max_hostcall_bytes.or(fallback.max_hostcall_bytes),
            vault_calls: self.vault_calls.or(fallback.vault_calls),
            instance_requests: self.instance_requests.or(fallback.instance_requests),
            instance_concurrency: self.instance_concurrency.or(fallback.instance_concurrency),
            instance_idle: self.instance_idle.or(fallback.instance_idle),
        }
    }

    /// How a WASI 0.3 handler's instances are reused: what is set, else [`Reuse`]'s defaults.
    /// A bound of 0 is refused.
    pub fn reuse(self) -> anyhow::Result<Reuse> {
        let d = Reuse::default();
        let reuse = Reuse {
            max_requests: self.instance_requests.unwrap_or(d.max_requests),
            max_concurrent: self.instance_concurrency.unwrap_or(d.max_concurrent),
            idle_timeout: self.instance_idle.unwrap_or(d.idle_timeout),
        };
        anyhow::ensure!(
            reuse.max_requests >= 1 && reuse.max_concurrent >= 1,
            "instance-requests and instance-concurrency must be at least 1 (1 instance-requests: a fresh instance per request)"
        );
        Ok(reuse)
    }

    /// The component's vault-call budget: what is set, else [`Budget::COMPONENT`].
    pub fn vault_budget(self) -> Option<Budget> {
        self.vault_calls
            .map_or(Some(Budget::COMPONENT), BudgetSetting::budget)
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

/// Parses grants, allowing whole-vault grants (`*`, `VAULT/*`) only when `allow_whole_vault`
/// (the entry's `allow-whole-vault`, or `--allow-whole-vault`); a refusal says how to allow.
pub fn parse_grants<I, S>(grants: I, allow_whole_vault: bool) -> anyhow::Result<Grants>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let whole_vault = if allow_whole_vault {
        WholeVault::Allow
    } else {
        WholeVault::Refuse
    };
    Grants::parse_with(grants, whole_vault).map_err(|e| {
        if e.is_whole_vault() {
            anyhow::anyhow!(
                "{e}; if that is meant, set allow-whole-vault = true in the component's config (or pass --allow-whole-vault)"
            )
        } else {
            e.into()
        }
    })
}

impl Config {
    /// A component's limits: `flags`, else its `entry`'s, else the config's `[limits]`.
    pub fn limits_for(&self, flags: LimitsConfig, entry: Option<&ComponentConfig>) -> LimitsConfig {
        flags
            .or(entry.map(|c| c.limits).unwrap_or_default())
            .or(self.limits)
    }

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
            parse_grants(&c.grants, c.allow_whole_vault)
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
            grants = ["db-password", "s=payments/stripe-key", "use:k=api-user+api-password for api.example.com:8443 as basic"]
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
        let grants = parse_grants(&c.components["hello"].grants, false).unwrap();
        let k = grants
            .resolve(wasm_secrets::grants::ObjectKind::Secret, "k")
            .unwrap();
        assert!(
            k.use_only
                .is_some_and(|u| u.allows("api.example.com", 8443))
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
            ("[limits]\nvault-calls = \"lots\"", "RATE/s"),
            (
                "[vaults.default]\nurl = \"u\"\nkey-calls = \"5/h\"",
                "or \"off\"",
            ),
            (
                "[vaults.default]\ncredential = \"magic\"",
                "unknown variant `magic`",
            ),
            ("[components.a]\ngrants = [\"a/b/c\"]", "invalid grant"),
            (
                "[components.a]\ngrants = [\"x=a\", \"x=b\"]",
                "already granted",
            ),
            (
                "[components.a]\ngrants = [\"use:k=api-key for https://api.example.com\"]",
                "grants: invalid grant \"use:k=api-key for https://api.example.com\"",
            ),
            (
                "[components.a]\ngrants = [\"use:k=user for api.example.com as basic\"]",
                "takes 2 secrets",
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
    fn instance_reuse_cascades_defaults_and_refuses_zero() {
        let c = Config::parse(
            r#"
            [limits]
            instance-concurrency = 4
            instance-idle = "250ms"
            [components.a]
            limits = { instance-requests = 1 }
            [components.b]
            limits = { instance-concurrency = 0 }
            "#,
        )
        .unwrap();
        let a = c.limits_for(LimitsConfig::default(), c.components.get("a"));
        assert_eq!(
            a.reuse().unwrap(),
            Reuse {
                max_requests: 1,
                max_concurrent: 4,
                idle_timeout: Duration::from_millis(250),
            }
        );
        let flags = LimitsConfig {
            instance_requests: Some(7),
            ..LimitsConfig::default()
        };
        assert_eq!(
            c.limits_for(flags, c.components.get("a"))
                .reuse()
                .unwrap()
                .max_requests,
            7,
            "flags win"
        );
        assert_eq!(
            Config::default()
                .limits_for(LimitsConfig::default(), None)
                .reuse()
                .unwrap(),
            Reuse::default()
        );
        let b = c.limits_for(LimitsConfig::default(), c.components.get("b"));
        let e = b.reuse().unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn budgets_cascade_and_default() {
        let c = Config::parse(
            r#"
            [vaults.default]
            url = "https://x.vault.azure.net"
            secret-calls = "40/s burst 80"
            key-calls = "off"
            [vaults.other]
            url = "https://y.vault.azure.net"
            [limits]
            vault-calls = "5/s"
            [components.a]
            limits = { vault-calls = "off" }
            [components.b]
            "#,
        )
        .unwrap();
        let v = c.vaults["default"].budget();
        assert_eq!(v.secrets, Budget::new(40.0, 80));
        assert_eq!(v.keys, None);
        assert_eq!(c.vaults["other"].budget(), VaultBudget::default());
        let a = c.limits_for(LimitsConfig::default(), c.components.get("a"));
        assert_eq!(a.vault_budget(), None);
        let b = c.limits_for(LimitsConfig::default(), c.components.get("b"));
        assert_eq!(b.vault_budget(), Budget::new(5.0, 50));
        let flags = LimitsConfig {
            vault_calls: Some(parse_budget("1/s burst 3").unwrap()),
            ..LimitsConfig::default()
        };
        assert_eq!(
            c.limits_for(flags, c.components.get("a")).vault_budget(),
            Budget::new(1.0, 3)
        );
        assert_eq!(
            Config::default()
                .limits_for(LimitsConfig::default(), None)
                .vault_budget(),
            Some(Budget::COMPONENT)
        );
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
