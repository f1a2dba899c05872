//! Grants: which names a component may ask for, and which vault secret each name means.
//!
//! Syntax of one grant (design section 4):
//!
//! | grant                          | guest asks for | reads                                   |
//! |--------------------------------|----------------|-----------------------------------------|
//! | `db-password`                  | `db-password`  | `db-password` in the default vault      |
//! | `db=prod-db-password`          | `db`           | `prod-db-password` in the default vault |
//! | `payments/stripe-key`          | `stripe-key`   | `stripe-key` in vault `payments`        |
//! | `stripe=payments/stripe-live`  | `stripe`       | `stripe-live` in vault `payments`       |
//! | `feature-*`                    | `feature-...`  | any secret starting with `feature-`     |
//! | `db-password@<version>`        | `db-password`  | that one version only                   |
//!
//! Everything not granted is denied. Keys have grants of their own, `key:...:OPS`
//! ([`crate::keys::grants`]); they are parsed with these and kept apart.

use crate::keys::grants::{KEY_PREFIX, KeyGrant, KeyGrants};
use crate::name::{is_valid_name, is_valid_version};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// The vault a grant names when it names none.
pub const DEFAULT_VAULT: &str = "default";

/// One parsed grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The name the guest uses. For a pattern grant, the prefix before `*`.
    pub guest_name: String,
    /// The vault the secret lives in.
    pub vault: String,
    /// The secret's name in the vault. For a pattern grant, the prefix before `*`.
    pub secret: String,
    /// The one version this grant allows, if pinned.
    pub version: Option<String>,
    /// Whether this is a trailing-`*` pattern.
    pub pattern: bool,
}

/// A grant string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid grant {grant:?}: {reason}")]
pub struct GrantError {
    grant: String,
    reason: String,
}

impl GrantError {
    pub(crate) fn new(grant: &str, reason: impl Into<String>) -> Self {
        Self {
            grant: grant.to_owned(),
            reason: reason.into(),
        }
    }

    /// Why the grant was refused, without the syntax reminder.
    pub(crate) fn reason(&self) -> &str {
        self.reason
            .split_once("; expected")
            .map_or(&self.reason, |(why, _)| why)
    }
}

const SYNTAX: &str = "expected [ALIAS=][VAULT/]NAME[@VERSION] or [VAULT/]PREFIX*";

impl FromStr for Grant {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, GrantError> {
        let err = |reason: &str| GrantError::new(s, format!("{reason}; {SYNTAX}"));
        let (alias, rest) = match s.split_once('=') {
            Some((alias, rest)) => (Some(alias), rest),
            None => (None, s),
        };
        let (target, version) = match rest.split_once('@') {
            Some((target, version)) => (target, Some(version)),
            None => (rest, None),
        };
        let (vault, secret) = match target.split_once('/') {
            Some((vault, secret)) => (vault, secret),
            None => (DEFAULT_VAULT, target),
        };
        if !is_valid_name(vault) || vault.len() > 63 {
            return Err(err(
                "the vault name must be 1 to 63 characters of 0-9, A-Z, a-z and -",
            ));
        }
        if let Some(version) = version
            && !is_valid_version(version)
        {
            return Err(err("the version must be 1 to 64 letters and digits"));
        }
        if let Some(prefix) = secret.strip_suffix('*') {
            if alias.is_some() {
                return Err(err("a pattern grant cannot have an alias"));
            }
            if version.is_some() {
                return Err(err("a pattern grant cannot pin a version"));
            }
            if !prefix.is_empty() && !is_valid_name(prefix) {
                return Err(err(
                    "the prefix before * must be characters of 0-9, A-Z, a-z and -",
                ));
            }
            return Ok(Grant {
                guest_name: prefix.to_owned(),
                vault: vault.to_owned(),
                secret: prefix.to_owned(),
                version: None,
                pattern: true,
            });
        }
        if !is_valid_name(secret) {
            return Err(err(
                "the secret name must be 1 to 127 characters of 0-9, A-Z, a-z and -",
            ));
        }
        let guest_name = alias.unwrap_or(secret);
        if !is_valid_name(guest_name) {
            return Err(err(
                "the alias must be 1 to 127 characters of 0-9, A-Z, a-z and -",
            ));
        }
        Ok(Grant {
            guest_name: guest_name.to_owned(),
            vault: vault.to_owned(),
            secret: secret.to_owned(),
            version: version.map(str::to_owned),
            pattern: false,
        })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.pattern && self.guest_name != self.secret {
            write!(f, "{}=", self.guest_name)?;
        }
        if self.vault != DEFAULT_VAULT {
            write!(f, "{}/", self.vault)?;
        }
        f.write_str(&self.secret)?;
        if self.pattern {
            f.write_str("*")?;
        }
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

impl Grant {
    /// Whether this grant covers every secret of its vault (`*` or `VAULT/*`).
    pub fn is_whole_vault(&self) -> bool {
        self.pattern && self.secret.is_empty()
    }
}

/// Whether grants may cover a whole vault (`*`, `VAULT/*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WholeVault {
    /// Refuse such grants (the default).
    #[default]
    Refuse,
    /// Allow them (`allow-whole-vault = true`, `--allow-whole-vault`).
    Allow,
}

/// Where a granted name leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The vault to read.
    pub vault: &'a str,
    /// The secret's name in that vault.
    pub secret: &'a str,
    /// The pinned version, if the grant pins one.
    pub version: Option<&'a str>,
}

/// The grants of one component: deny by default.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    // Looked up on every request with guest-chosen names; foldhash is randomly seeded.
    exact: HashMap<String, Grant, foldhash::fast::RandomState>,
    patterns: Vec<Grant>,
    keys: KeyGrants,
}

impl Grants {
    /// No grants: every name is denied.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses grant strings. Two grants giving the guest the same name is an error.
    ///
    /// ```
    /// let grants = wasm_secrets::Grants::parse(["db=prod-db-password", "feature-*"]).unwrap();
    /// assert_eq!(grants.resolve("db").unwrap().secret, "prod-db-password");
    /// assert!(grants.resolve("feature-x").is_some());
    /// assert!(grants.resolve("prod-db-password").is_none());
    /// ```
    pub fn parse<I, S>(grants: I) -> Result<Self, GrantError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::parse_with(grants, WholeVault::Refuse)
    }

    /// [`Grants::parse`], saying whether `*` and `VAULT/*` (every secret of a vault) are
    /// allowed. [`Grants::parse`] refuses them: a whole vault must be asked for on purpose.
    ///
    /// ```
    /// use wasm_secrets::grants::{Grants, WholeVault};
    /// assert!(Grants::parse(["*"]).is_err());
    /// let all = Grants::parse_with(["payments/*"], WholeVault::Allow).unwrap();
    /// assert!(all.resolve("anything").is_some());
    /// ```
    pub fn parse_with<I, S>(grants: I, whole_vault: WholeVault) -> Result<Self, GrantError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Self::default();
        for g in grants {
            if g.as_ref().starts_with(KEY_PREFIX) {
                let grant = KeyGrant::parse(g.as_ref())?;
                out.keys.add(grant, whole_vault, g.as_ref())?;
                continue;
            }
            let grant: Grant = g.as_ref().parse()?;
            if grant.is_whole_vault() && whole_vault == WholeVault::Refuse {
                return Err(GrantError::new(
                    g.as_ref(),
                    "it grants every secret in the vault; if that is meant, set allow-whole-vault = true in the component's config (or pass --allow-whole-vault)",
                ));
            }
            out.add(grant)?;
        }
        Ok(out)
    }

    /// Whether any grant covers a whole vault (`*` or `VAULT/*`).
    pub fn has_whole_vault(&self) -> bool {
        self.patterns.iter().any(Grant::is_whole_vault) || self.keys.has_whole_vault()
    }

    /// The key grants (`key:...`), which no secret read consults.
    pub fn keys(&self) -> &KeyGrants {
        &self.keys
    }

    /// Adds one grant.
    pub fn add(&mut self, grant: Grant) -> Result<(), GrantError> {
        if grant.pattern {
            if !self.patterns.contains(&grant) {
                self.patterns.push(grant);
            }
            return Ok(());
        }
        match self.exact.get(&grant.guest_name) {
            Some(existing) if *existing == grant => Ok(()),
            Some(existing) => Err(GrantError::new(
                &grant.to_string(),
                format!(
                    "the name \"{}\" is already granted by \"{existing}\"; give one of them another alias",
                    grant.guest_name
                ),
            )),
            None => {
                self.exact.insert(grant.guest_name.clone(), grant);
                Ok(())
            }
        }
    }

    /// Where the name `name` leads, or `None` if it is not granted. Exact grants win over
    /// patterns; among patterns, the first given wins.
    pub fn resolve<'a>(&'a self, name: &'a str) -> Option<Target<'a>> {
        if let Some(g) = self.exact.get(name) {
            return Some(Target {
                vault: &g.vault,
                secret: &g.secret,
                version: g.version.as_deref(),
            });
        }
        self.patterns
            .iter()
            .find(|g| name.starts_with(&g.secret) && name.len() > g.secret.len())
            .map(|g| Target {
                vault: &g.vault,
                secret: name,
                version: None,
            })
    }

    /// Every grant, exact ones first (sorted by guest name), then patterns in order.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        let mut exact: Vec<&Grant> = self.exact.values().collect();
        exact.sort_by(|a, b| a.guest_name.cmp(&b.guest_name));
        exact.into_iter().chain(self.patterns.iter())
    }

    /// The vaults these grants read from.
    pub fn vaults(&self) -> impl Iterator<Item = &str> {
        let mut v: Vec<&str> = self.iter().map(|g| g.vault.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v.into_iter()
    }

    /// Whether there are no grants at all.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty() && self.keys.is_empty()
    }

    /// The guest names this component may read, given the names each vault holds:
    /// exact grants whose secret exists, and every vault name matching a pattern. Sorted.
    pub fn visible_names<'a>(
        &self,
        vault_names: impl Fn(&str) -> Option<&'a [String]>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in self.exact.values() {
            if vault_names(&g.vault).is_some_and(|names| names.iter().any(|n| n == &g.secret)) {
                out.push(g.guest_name.clone());
            }
        }
        for g in &self.patterns {
            if let Some(names) = vault_names(&g.vault) {
                out.extend(
                    names
                        .iter()
                        .filter(|n| n.starts_with(&g.secret) && n.len() > g.secret.len())
                        // An exact grant or an earlier pattern may claim the same guest name.
                        .filter(|n| matches!(self.resolve(n), Some(t) if t.vault == g.vault))
                        .cloned(),
                );
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_vault_grants_need_the_opt_in() {
        for g in ["*", "payments/*"] {
            let e = Grants::parse([g]).unwrap_err().to_string();
            assert!(e.contains("allow-whole-vault"), "{g}: {e}");
            let all = Grants::parse_with([g], WholeVault::Allow).unwrap();
            assert!(all.has_whole_vault());
            assert!(all.resolve("anything-at-all").is_some());
        }
        // A prefix is not a whole vault.
        let some = Grants::parse(["feature-*", "db"]).unwrap();
        assert!(!some.has_whole_vault());
        assert!(some.resolve("other").is_none());
    }

    fn t<'a>(vault: &'a str, secret: &'a str, version: Option<&'a str>) -> Option<Target<'a>> {
        Some(Target {
            vault,
            secret,
            version,
        })
    }

    #[test]
    fn every_form_resolves_to_its_target_and_nothing_else() {
        let g = Grants::parse([
            "db-password",
            "db=prod-db-password",
            "payments/stripe-key",
            "stripe=payments/stripe-live-key",
            "feature-*",
            "pinned@0123456789abcdef0123456789abcdef",
        ])
        .unwrap();
        assert_eq!(g.resolve("db-password"), t("default", "db-password", None));
        assert_eq!(g.resolve("db"), t("default", "prod-db-password", None));
        assert_eq!(g.resolve("stripe-key"), t("payments", "stripe-key", None));
        assert_eq!(g.resolve("stripe"), t("payments", "stripe-live-key", None));
        assert_eq!(g.resolve("feature-x"), t("default", "feature-x", None));
        assert_eq!(
            g.resolve("pinned"),
            t(
                "default",
                "pinned",
                Some("0123456789abcdef0123456789abcdef")
            )
        );
        for denied in [
            "prod-db-password",
            "stripe-live-key",
            "feature-",
            "feature",
            "other",
            "Db",
        ] {
            assert_eq!(g.resolve(denied), None, "{denied}");
        }
    }

    #[test]
    fn bad_grants_are_refused_with_the_reason() {
        for bad in [
            "", "a/b/c", "x?y", "=x", "a=", "a=b*", "p*@1", "v@", "v@x-y", "../x", "é", "a b",
            "*x", "/x",
        ] {
            let e = bad.parse::<Grant>().unwrap_err().to_string();
            assert!(e.starts_with("invalid grant"), "{bad}: {e}");
        }
        let e = Grants::parse(["a=x", "a=y"]).unwrap_err().to_string();
        assert!(e.contains("already granted"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        for s in ["db", "a=b", "v/x", "a=v/x", "feature-*", "v/p*", "x@abc123"] {
            assert_eq!(s.parse::<Grant>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn visible_names_are_granted_and_existing() {
        let g = Grants::parse(["db-password", "missing", "alias=api-key", "feature-*"]).unwrap();
        let names: Vec<String> = ["db-password", "api-key", "feature-a", "other", "feature-"]
            .map(String::from)
            .to_vec();
        let visible = g.visible_names(|v| (v == "default").then_some(names.as_slice()));
        assert_eq!(visible, ["alias", "db-password", "feature-a"]);
    }
}
