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
//!
//! Names are matched ignoring ASCII case, as Key Vault matches them (see [`crate::fold`]): a
//! guest asking for `db-PASSWORD` gets exactly what `db-password` gets, so under
//! `["db-password@V1", "db-*"]` it reaches the pinned grant first and never the pattern. Pattern
//! prefixes and pinned versions compare the same way. Grants keep the spelling they were
//! written in (for [`Grant`]'s `Display`, and for the audit log); two grants that differ only
//! in case are one grant.

use crate::keys::grants::{KEY_PREFIX, KeyGrant, KeyGrants};
use crate::name::{fold, has_prefix, is_valid_name, is_valid_version};
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

    /// Whether this pattern grant covers the vault name `name` (longer than the prefix, and
    /// starting with it in any case). Always false for an exact grant.
    ///
    /// ```
    /// let g: wasm_secrets::Grant = "feature-*".parse().unwrap();
    /// assert!(g.matches("feature-x") && g.matches("FEATURE-X"));
    /// assert!(!g.matches("feature-") && !g.matches("other"));
    /// ```
    pub fn matches(&self, name: &str) -> bool {
        self.pattern && has_prefix(name, &self.secret)
    }

    /// Whether `other` is this grant spelled in another case: the same grant to Key Vault.
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        self.vault == other.vault
            && self.pattern == other.pattern
            && self.guest_name.eq_ignore_ascii_case(&other.guest_name)
            && self.secret.eq_ignore_ascii_case(&other.secret)
            && match (&self.version, &other.version) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (a, b) => a == b,
            }
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
    /// The name as granted: an exact grant's guest name as the grant spells it, or under a
    /// pattern the name as asked.
    pub name: &'a str,
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
    // Looked up on every request with guest-chosen names; foldhash is randomly seeded. Keyed
    // by the folded guest name.
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

    /// Adds one grant. A grant that differs from one already held only in case adds nothing.
    pub fn add(&mut self, grant: Grant) -> Result<(), GrantError> {
        if grant.pattern {
            if !self.patterns.iter().any(|g| g.same_as(&grant)) {
                self.patterns.push(grant);
            }
            return Ok(());
        }
        let key = fold(&grant.guest_name).into_owned();
        match self.exact.get(&key) {
            Some(existing) if existing.same_as(&grant) => Ok(()),
            Some(existing) => Err(GrantError::new(
                &grant.to_string(),
                format!(
                    "the name \"{}\" is already granted by \"{existing}\"; give one of them another alias",
                    grant.guest_name
                ),
            )),
            None => {
                self.exact.insert(key, grant);
                Ok(())
            }
        }
    }

    /// Where the name `name` leads, or `None` if it is not granted. Case is ignored, as Key
    /// Vault ignores it. Exact grants win over patterns; among patterns, the first given wins.
    /// Under a pattern, the target's `name` and `secret` are `name` as given: callers that
    /// want one spelling pass [`fold`]ed names, as the store does.
    pub fn resolve<'a>(&'a self, name: &'a str) -> Option<Target<'a>> {
        if let Some(g) = self.exact.get(&*fold(name)) {
            return Some(Target {
                name: &g.guest_name,
                vault: &g.vault,
                secret: &g.secret,
                version: g.version.as_deref(),
            });
        }
        self.patterns
            .iter()
            .find(|g| g.matches(name))
            .map(|g| Target {
                name,
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
            if vault_names(&g.vault)
                .is_some_and(|names| names.iter().any(|n| n.eq_ignore_ascii_case(&g.secret)))
            {
                out.push(g.guest_name.clone());
            }
        }
        for g in &self.patterns {
            if let Some(names) = vault_names(&g.vault) {
                out.extend(
                    names
                        .iter()
                        .filter(|n| g.matches(n))
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

    type Where<'a> = (&'a str, &'a str, Option<&'a str>);

    /// Where `name` leads: (vault, secret, version).
    fn at<'a>(g: &'a Grants, name: &'a str) -> Option<Where<'a>> {
        g.resolve(name).map(|t| (t.vault, t.secret, t.version))
    }

    fn t<'a>(vault: &'a str, secret: &'a str, version: Option<&'a str>) -> Option<Where<'a>> {
        Some((vault, secret, version))
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
        assert_eq!(at(&g, "db-password"), t("default", "db-password", None));
        assert_eq!(at(&g, "db"), t("default", "prod-db-password", None));
        assert_eq!(at(&g, "stripe-key"), t("payments", "stripe-key", None));
        assert_eq!(at(&g, "stripe"), t("payments", "stripe-live-key", None));
        assert_eq!(at(&g, "feature-x"), t("default", "feature-x", None));
        assert_eq!(
            at(&g, "pinned"),
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
            "Db-",
        ] {
            assert_eq!(g.resolve(denied), None, "{denied}");
        }
    }

    #[test]
    fn any_case_reaches_the_pin_before_a_pattern() {
        // Issue 28: Key Vault names are case-insensitive, so `db-PASSWORD` is `db-password`,
        // and must not slip past its pin through the pattern.
        let g = Grants::parse(["db-password@V1", "db-*"]).unwrap();
        for name in ["db-password", "db-PASSWORD", "DB-Password", "DB-PASSWORD"] {
            assert_eq!(
                at(&g, name),
                t("default", "db-password", Some("V1")),
                "{name}"
            );
            assert_eq!(g.resolve(name).unwrap().name, "db-password", "{name}");
        }
        // Patterns match their prefix in any case; under a pattern the name is as asked.
        assert_eq!(at(&g, "DB-other"), t("default", "DB-other", None));
        assert_eq!(at(&g, "Db-"), None);
        // Aliases and vault-qualified grants too, and the grant's own spelling is kept.
        let g = Grants::parse(["DB=Prod-DB-Password", "payments/Stripe-Key", "Team-*"]).unwrap();
        assert_eq!(at(&g, "db"), t("default", "Prod-DB-Password", None));
        assert_eq!(g.resolve("db").unwrap().name, "DB");
        assert_eq!(at(&g, "stripe-key"), t("payments", "Stripe-Key", None));
        assert_eq!(at(&g, "team-a"), t("default", "team-a", None));
        assert_eq!(at(&g, "prod-db-password"), None);
    }

    #[test]
    fn grants_differing_only_in_case_are_one_grant() {
        let g = Grants::parse(["db-password@ABC", "DB-Password@abc", "x-*", "X-*"]).unwrap();
        assert_eq!(g.iter().count(), 2);
        let e = Grants::parse(["a=x", "A=y"]).unwrap_err().to_string();
        assert!(e.contains("already granted"), "{e}");
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
        let names: Vec<String> = ["DB-Password", "api-key", "Feature-A", "other", "feature-"]
            .map(String::from)
            .to_vec();
        let visible = g.visible_names(|v| (v == "default").then_some(names.as_slice()));
        assert_eq!(visible, ["Feature-A", "alias", "db-password"]);
    }
}
