//! The emulator's configuration: TOML, unknown keys rejected, defaults equal to `emulator.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::crypto::{Curve, KeyOp, KeyType, RSA_SIZES};
use crate::faults::FaultSpec;

/// The whole emulator configuration. `Default` is the demo config shipped as `emulator/emulator.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EmulatorConfig {
    /// The Entra tenant id the emulator pretends to be.
    #[serde(default = "d_tenant")]
    pub tenant_id: String,
    /// A string embedded literally in every token minted (characters `[A-Za-z0-9_-]` only).
    #[serde(default = "d_canary")]
    pub canary: String,
    /// Lifetime of minted tokens, in seconds.
    #[serde(default = "d_lifetime")]
    pub token_lifetime_secs: u64,
    /// The form of `expires_on` on the legacy (2017-09-01) App Service endpoint.
    #[serde(default)]
    pub legacy_expires_on: LegacyDateForm,
    /// When true, secret listings insert one empty page that still carries a `nextLink` (as Azure does).
    #[serde(default)]
    pub empty_page: bool,
    /// The names the Key Vault TLS certificate is issued for (default `localhost`, `127.0.0.1`
    /// and `::1`). Tests set another name to show that a client refuses a certificate that does
    /// not name the host it connected to.
    #[serde(default = "d_tls_names")]
    pub tls_names: Vec<String>,
    /// Where to write the CA certificate PEM (default: a file in the emulator's temp state dir).
    #[serde(default)]
    pub ca_cert_path: Option<PathBuf>,
    /// The Azure Arc token folder where challenge `.key` files are written (default: in the state dir).
    #[serde(default)]
    pub arc_token_dir: Option<PathBuf>,
    /// The secret expected in `X-IDENTITY-HEADER` (2019-08-01) and `secret` (2017-09-01).
    #[serde(default = "d_header")]
    pub identity_header: String,
    /// The vault whose URL is exported as `WASM_SECRETS_VAULT` (default: the first vault).
    #[serde(default)]
    pub default_vault: Option<String>,
    /// Ports of the plain HTTP endpoints (0 = any free port).
    #[serde(default)]
    pub ports: Ports,
    /// Key Vault throttling.
    #[serde(default)]
    pub throttle: ThrottleConfig,
    /// The identities the emulator knows.
    #[serde(default)]
    pub identities: Identities,
    /// The vaults, each served on its own HTTPS port.
    #[serde(default)]
    pub vaults: Vec<VaultConfig>,
    /// Fault sequences to start with, per endpoint.
    #[serde(default)]
    pub faults: FaultsConfig,
}

/// The `expires_on` date form of the legacy App Service endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LegacyDateForm {
    /// `09/14/2017 00:00:00 +00:00` (MM/dd/yyyy HH:mm:ss zzz).
    #[default]
    #[serde(rename = "24h")]
    TwentyFourHour,
    /// `1/16/2020 5:24:12 AM +00:00` (M/d/yyyy h:mm:ss tt zzz).
    #[serde(rename = "am-pm")]
    AmPm,
}

/// Ports of the plain-HTTP endpoints and the Entra TLS endpoint. 0 means any free port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct Ports {
    /// IMDS (`/metadata/identity/oauth2/token`, api-version 2018-02-01).
    pub imds: u16,
    /// App Service 2019-08-01 (`/msi/token`).
    pub app_service: u16,
    /// App Service 2017-09-01 (`/msi/token`).
    pub app_service_legacy: u16,
    /// Azure Arc (same path as IMDS, hence its own port).
    pub arc: u16,
    /// Entra token endpoint over plain HTTP.
    pub entra: u16,
    /// Entra token endpoint over HTTPS (MSAL requires an https authority).
    pub entra_tls: u16,
    /// The admin endpoint (counters, faults).
    pub admin: u16,
}

/// Key Vault throttling: more than `max_requests` in `window_ms` per vault gives 429.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct ThrottleConfig {
    /// Whether throttling is on.
    pub enabled: bool,
    /// Requests allowed per window per vault.
    pub max_requests: u64,
    /// The window length in milliseconds.
    pub window_ms: u64,
    /// The `Retry-After` header value in seconds; none means no header.
    pub retry_after_secs: Option<u64>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: false,
            max_requests: 4000,
            window_ms: 10_000,
            retry_after_secs: Some(1),
        }
    }
}

/// The identities known to the emulator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct Identities {
    /// The system-assigned managed identity (IMDS, App Service, Arc without a selector).
    pub system: SystemIdentity,
    /// User-assigned managed identities.
    pub user_assigned: Vec<UserAssignedIdentity>,
    /// App registrations authenticating with a client secret.
    pub service_principals: Vec<ServicePrincipal>,
    /// Workload-identity clients authenticating with a federated assertion.
    pub federated: Vec<FederatedClient>,
}

/// The system-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SystemIdentity {
    /// Its client (application) id.
    pub client_id: String,
    /// Its object (principal) id; Key Vault rights are granted to object ids.
    pub object_id: String,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserAssignedIdentity {
    /// Its client id (`client_id` selector).
    pub client_id: String,
    /// Its object id (`object_id` / `principal_id` selector).
    pub object_id: String,
    /// Its ARM resource id (`msi_res_id` / `mi_res_id` selector).
    pub resource_id: String,
}

/// A service principal with a client secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServicePrincipal {
    /// Its client id.
    pub client_id: String,
    /// Its object id.
    pub object_id: String,
    /// The client secret it must present.
    pub client_secret: String,
}

/// A federated (workload identity) client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FederatedClient {
    /// Its client id.
    pub client_id: String,
    /// Its object id.
    pub object_id: String,
    /// The client assertion (the projected service-account token) accepted for it.
    pub assertion: String,
}

/// One vault.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VaultConfig {
    /// Its name (used in the Rust API and the admin endpoint).
    pub name: String,
    /// Its HTTPS port (0 = any free port).
    #[serde(default)]
    pub port: u16,
    /// Object ids that may read (and list) every secret, unless a secret narrows its readers.
    #[serde(default)]
    pub readers: Vec<String>,
    /// Object ids that may PUT secrets.
    #[serde(default)]
    pub writers: Vec<String>,
    /// The seeded secrets.
    #[serde(default)]
    pub secrets: Vec<SecretConfig>,
    /// The seeded keys (material is generated with real randomness on first use).
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

/// One seeded key (`[[vaults.keys]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyConfig {
    /// The key name (`[0-9a-zA-Z-]`, 1..=127 characters).
    pub name: String,
    /// `RSA` or `EC`.
    pub kty: KeyType,
    /// RSA modulus size in bits: 2048 (default), 3072 or 4096. Not for EC keys.
    #[serde(default)]
    pub size: Option<usize>,
    /// EC curve: `P-256`, `P-384`, `P-521` or `P-256K`. Required for EC keys, not for RSA.
    #[serde(default)]
    pub crv: Option<Curve>,
    /// Permitted operations (`sign`, `verify`, `encrypt`, `decrypt`, `wrapKey`, `unwrapKey`);
    /// default: every one that fits the key type.
    #[serde(default)]
    pub key_ops: Option<Vec<KeyOp>>,
    /// Whether the key's versions are enabled (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Versions, oldest first; the last is the latest. Default: one version with a random id.
    #[serde(default)]
    pub versions: Vec<KeyVersionConfig>,
    /// When set, only these object ids may use this key (replaces the vault's readers).
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One version of a seeded key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyVersionConfig {
    /// A fixed version id (32 lowercase hex characters).
    pub id: String,
    /// Whether this version is enabled (default: the key's `enabled`).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// One seeded secret: either `value` (one version) or `versions` (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretConfig {
    /// The secret name (`[0-9a-zA-Z-]`, 1..=127 characters).
    pub name: String,
    /// A single version's value.
    #[serde(default)]
    pub value: Option<String>,
    /// Whether the single version is enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Several versions, oldest first; the last is the latest.
    #[serde(default)]
    pub versions: Vec<VersionConfig>,
    /// The content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// When set, only these object ids may read this secret (replaces the vault's readers).
    #[serde(default)]
    pub readers: Option<Vec<String>>,
}

/// One version of a seeded secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VersionConfig {
    /// The value.
    pub value: String,
    /// Whether this version is enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A fixed version id (32 lowercase hex characters); random when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// This version's content type; the secret's when absent.
    #[serde(default)]
    pub content_type: Option<String>,
    /// This version's tags; the secret's when absent.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

fn yes() -> bool {
    true
}

/// Initial fault sequences per endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct FaultsConfig {
    /// IMDS.
    pub imds: Vec<FaultSpec>,
    /// App Service 2019-08-01.
    pub app_service: Vec<FaultSpec>,
    /// App Service 2017-09-01.
    pub app_service_legacy: Vec<FaultSpec>,
    /// Azure Arc.
    pub arc: Vec<FaultSpec>,
    /// Entra (both HTTP and HTTPS).
    pub entra: Vec<FaultSpec>,
    /// Key Vault (all vaults).
    pub keyvault: Vec<FaultSpec>,
}

/// Tenant of the default config.
pub const DEFAULT_TENANT_ID: &str = "7e1a0000-0000-4000-8000-00000000e001";
/// Canary of the default config.
pub const DEFAULT_CANARY: &str = "WSCANARY-7f3c9a1e";

const DEFAULT_TOML: &str = include_str!("../emulator.toml");

impl Default for EmulatorConfig {
    /// The demo config: exactly `emulator/emulator.toml`.
    fn default() -> Self {
        match Self::from_toml_str(DEFAULT_TOML) {
            Ok(c) => c,
            // emulator.toml is checked by a unit test; this is unreachable in a built crate.
            Err(e) => panic!("emulator.toml is invalid: {e:#}"),
        }
    }
}

fn d_tenant() -> String {
    DEFAULT_TENANT_ID.into()
}
fn d_canary() -> String {
    DEFAULT_CANARY.into()
}
fn d_tls_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}
fn d_lifetime() -> u64 {
    3600
}
fn d_header() -> String {
    "emulator-identity-header".into()
}

impl Default for Identities {
    fn default() -> Self {
        Identities {
            system: SystemIdentity {
                client_id: "5a1e0000-0000-4000-8000-00000000c001".into(),
                object_id: "5a1e0000-0000-4000-8000-00000000a001".into(),
            },
            user_assigned: Vec::new(),
            service_principals: Vec::new(),
            federated: Vec::new(),
        }
    }
}

impl EmulatorConfig {
    /// Parse and validate a TOML config.
    pub fn from_toml_str(s: &str) -> anyhow::Result<Self> {
        let c: EmulatorConfig = toml::from_str(s).map_err(|e| {
            let line = e
                .span()
                .map(|sp| s[..sp.start.min(s.len())].matches('\n').count() + 1);
            let msg = e.message().replace('\n', " ");
            match line {
                Some(l) => anyhow::anyhow!("line {l}: {}", msg.trim()),
                None => anyhow::anyhow!("{}", msg.trim()),
            }
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Read, parse and validate a TOML config file.
    pub fn from_file(p: &Path) -> anyhow::Result<Self> {
        let s = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read config file {}", p.display()))?;
        Self::from_toml_str(&s).with_context(|| format!("invalid config file {}", p.display()))
    }

    /// The identity with this object id, as (client id, object id).
    pub fn all_identities(&self) -> Vec<(String, String)> {
        let i = &self.identities;
        let mut v = vec![(i.system.client_id.clone(), i.system.object_id.clone())];
        v.extend(
            i.user_assigned
                .iter()
                .map(|u| (u.client_id.clone(), u.object_id.clone())),
        );
        v.extend(
            i.service_principals
                .iter()
                .map(|u| (u.client_id.clone(), u.object_id.clone())),
        );
        v.extend(
            i.federated
                .iter()
                .map(|u| (u.client_id.clone(), u.object_id.clone())),
        );
        v
    }

    /// Check cross-field rules; the error is one line.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.tenant_id.is_empty()
            || !self
                .tenant_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            bail!("tenant_id must be non-empty and contain only letters, digits, '-' and '.'");
        }
        if !self
            .canary
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(
                "canary may contain only letters, digits, '-' and '_' (it is embedded in tokens)"
            );
        }
        if self.identity_header.is_empty()
            || !self.identity_header.chars().all(|c| c.is_ascii_graphic())
        {
            bail!("identity_header must be non-empty printable ASCII without spaces");
        }
        if self.throttle.window_ms == 0 {
            bail!("throttle.window_ms must be at least 1");
        }
        if self.tls_names.is_empty() {
            bail!("tls-names must name at least one host (such as \"localhost\")");
        }
        if self.vaults.is_empty() {
            bail!("at least one [[vaults]] entry is required");
        }
        let mut names = std::collections::HashSet::new();
        for v in &self.vaults {
            if v.name.is_empty()
                || !v
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                bail!(
                    "vault name {:?} must be non-empty letters, digits and '-'",
                    v.name
                );
            }
            if !names.insert(v.name.as_str()) {
                bail!("vault {:?} is defined twice", v.name);
            }
            let mut snames = std::collections::HashSet::new();
            for s in &v.secrets {
                if !valid_secret_name(&s.name) {
                    bail!(
                        "vault {:?}: secret name {:?} must be 1-127 letters, digits and '-'",
                        v.name,
                        s.name
                    );
                }
                // Key Vault names are case-insensitive: `A` and `a` are one secret.
                if !snames.insert(s.name.to_ascii_lowercase()) {
                    bail!("vault {:?}: secret {:?} is defined twice", v.name, s.name);
                }
                match (&s.value, s.versions.is_empty()) {
                    (Some(_), false) => bail!(
                        "vault {:?}: secret {:?} sets both value and versions; use one",
                        v.name,
                        s.name
                    ),
                    (None, true) => bail!(
                        "vault {:?}: secret {:?} needs a value or versions",
                        v.name,
                        s.name
                    ),
                    _ => {}
                }
                if s.enabled.is_some() && s.value.is_none() {
                    bail!(
                        "vault {:?}: secret {:?}: enabled goes on each version when versions are used",
                        v.name,
                        s.name
                    );
                }
                for ver in &s.versions {
                    if let Some(id) = &ver.id
                        && !valid_version(id)
                    {
                        bail!(
                            "vault {:?}: secret {:?}: version id {:?} must be 32 lowercase hex characters",
                            v.name,
                            s.name,
                            id
                        );
                    }
                }
            }
        }
        for v in &self.vaults {
            validate_keys(v)?;
        }
        if let Some(d) = &self.default_vault
            && !names.contains(d.as_str())
        {
            bail!("default_vault {d:?} is not one of the configured vaults");
        }
        let mut ids = std::collections::HashSet::new();
        for (client, object) in self.all_identities() {
            if client.is_empty() || object.is_empty() {
                bail!("every identity needs a non-empty client_id and object_id");
            }
            if !ids.insert(client.clone()) {
                bail!("client_id {client:?} is used by two identities");
            }
        }
        Ok(())
    }
}

fn validate_keys(v: &VaultConfig) -> anyhow::Result<()> {
    let mut knames = std::collections::HashSet::new();
    for k in &v.keys {
        let (vault, key) = (&v.name, &k.name);
        if !valid_secret_name(key) {
            bail!("vault {vault:?}: key name {key:?} must be 1-127 letters, digits and '-'");
        }
        if !knames.insert(key.to_ascii_lowercase()) {
            bail!("vault {vault:?}: key {key:?} is defined twice");
        }
        match k.kty {
            KeyType::Rsa => {
                if k.crv.is_some() {
                    bail!("vault {vault:?}: key {key:?}: crv is for EC keys only");
                }
                if let Some(s) = k.size
                    && !RSA_SIZES.contains(&s)
                {
                    bail!("vault {vault:?}: key {key:?}: size must be 2048, 3072 or 4096");
                }
            }
            KeyType::Ec => {
                if k.size.is_some() {
                    bail!(
                        "vault {vault:?}: key {key:?}: size is for RSA keys only (EC keys take crv)"
                    );
                }
                if k.crv.is_none() {
                    bail!(
                        "vault {vault:?}: key {key:?}: EC keys need crv (P-256, P-384, P-521 or P-256K)"
                    );
                }
            }
        }
        for op in k.key_ops.iter().flatten() {
            if !op.fits(k.kty) {
                bail!(
                    "vault {vault:?}: key {key:?}: operation {} needs an RSA key",
                    op.name()
                );
            }
        }
        let mut ids = std::collections::HashSet::new();
        for ver in &k.versions {
            if !valid_version(&ver.id) {
                bail!(
                    "vault {vault:?}: key {key:?}: version id {:?} must be 32 lowercase hex characters",
                    ver.id
                );
            }
            if !ids.insert(ver.id.as_str()) {
                bail!(
                    "vault {vault:?}: key {key:?}: version {:?} is listed twice",
                    ver.id
                );
            }
        }
    }
    Ok(())
}

/// Key Vault secret names: 1-127 of `[0-9a-zA-Z-]`.
pub fn valid_secret_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 127 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A version id in a request: 32 hex characters in any case (Key Vault matches version ids
/// case-insensitively, as it does names).
pub fn valid_version_in_request(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Key Vault version ids as the emulator makes and answers them: 32 lowercase hex characters.
pub fn valid_version(v: &str) -> bool {
    v.len() == 32
        && v.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let c = EmulatorConfig::default();
        assert_eq!(c.vaults.len(), 2);
        assert_eq!(c.tenant_id, DEFAULT_TENANT_ID);
        let keys: Vec<&str> = c.vaults[0].keys.iter().map(|k| k.name.as_str()).collect();
        for k in [
            "jwt-signing-key",
            "rsa-signing-key",
            "data-kek",
            "verify-only-key",
            "disabled-key",
            "restricted-key",
        ] {
            assert!(keys.contains(&k), "{k} missing from emulator.toml");
        }
    }

    #[test]
    fn unknown_key_rejected() {
        let e = EmulatorConfig::from_toml_str("bogus = 1\n[[vaults]]\nname='a'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn nested_unknown_key_rejected() {
        let e = EmulatorConfig::from_toml_str("[[vaults]]\nname='a'\nnope=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn minimal_config() {
        let c = EmulatorConfig::from_toml_str("[[vaults]]\nname='a'").unwrap();
        assert_eq!(c.vaults[0].name, "a");
        assert_eq!(c.token_lifetime_secs, 3600);
    }

    #[test]
    fn rejections() {
        for bad in [
            "",
            "[[vaults]]\nname='a'\n[[vaults]]\nname='a'",
            "[[vaults]]\nname='a'\n[[vaults.secrets]]\nname='x'",
            "[[vaults]]\nname='a'\n[[vaults.secrets]]\nname='bad name'\nvalue='v'",
            "canary='a b'\n[[vaults]]\nname='a'",
            "default_vault='zz'\n[[vaults]]\nname='a'",
            "legacy_expires_on='12h'\n[[vaults]]\nname='a'",
            "[[vaults]]\nname='a'\n[[vaults.keys]]\nname='k'\nkty='EC'",
            "[[vaults]]\nname='a'\n[[vaults.keys]]\nname='k'\nkty='RSA'\nsize=1024",
            "[[vaults]]\nname='a'\n[[vaults.keys]]\nname='k'\nkty='EC'\ncrv='P-256'\nkey-ops=['encrypt']",
            "[[vaults]]\nname='a'\n[[vaults.keys]]\nname='k'\nkty='EC'\ncrv='P-999'",
            "[[vaults]]\nname='a'\n[[vaults.keys]]\nname='k'\nkty='EC'\ncrv='P-256'\nversions=[{id='x'}]",
            "[[vaults]]\nname='a'\n[[vaults.keys]]\nname='k'\nkty='EC'\ncrv='P-256'\nbogus=1",
        ] {
            assert!(EmulatorConfig::from_toml_str(bad).is_err(), "{bad}");
        }
    }
}
