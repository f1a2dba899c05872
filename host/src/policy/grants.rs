//! Grants: which names a component may ask for, what each name leads to in which vault, and
//! for keys which operations it allows. One table holds both kinds.
//!
//! Syntax of a secret grant (design section 4):
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
//! A key grant (design section 14) is `key:` + the same forms + `:` + the operations,
//! comma-separated:
//!
//! | grant                                      | guest asks for | uses                                   | may          |
//! |--------------------------------------------|----------------|----------------------------------------|--------------|
//! | `key:signer=jwt-signing-key:sign`          | `signer`       | `jwt-signing-key` in the default vault | sign         |
//! | `key:payments/kek:wrap-key,unwrap-key`     | `kek`          | `kek` in vault `payments`              | wrap, unwrap |
//! | `key:signer=jwt-key@<version>:sign,verify` | `signer`       | that one version only                  | sign, verify |
//! | `key:team-*:verify`                        | `team-...`     | any key starting with `team-`          | verify       |
//!
//! A use-only grant (`use:` + the target + ` for HOSTS [as PROCESSOR]`, see [`super::uses`])
//! is a secret grant the guest can never read: `get` answers `not-granted`, and the host
//! applies the value to the guest's requests to those hosts only.
//!
//! `public-key` is allowed by every key grant. Everything not granted is denied. Secrets and
//! keys are two namespaces ([`ObjectKind`]): a secret grant allows no key operation, a key
//! grant reads no secret, and one guest name may be both.
//!
//! Names are matched ignoring ASCII case, as Key Vault matches them (see [`crate::fold`]): a
//! guest asking for `db-PASSWORD` gets exactly what `db-password` gets, so under
//! `["db-password@V1", "db-*"]` it reaches the pinned grant first and never the pattern. Pattern
//! prefixes and pinned versions compare the same way. Grants keep the spelling they were
//! written in (for [`Grant`]'s `Display`, and for the audit log); two grants that differ only
//! in case are one grant.

use super::uses::{self, USE_PREFIX, USE_SYNTAX, UseOnly};
use crate::keys::{KeyOp, KeyOps};
use crate::name::{fold, has_prefix, is_valid_name, is_valid_version};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

pub use crate::backend::DEFAULT_VAULT;

/// What a key grant string starts with.
const KEY_PREFIX: &str = "key:";

/// The two kinds of vault object a grant can name. Each is a namespace of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A secret: its value is read.
    Secret,
    /// A key: the vault uses it, its private half never leaves the vault.
    Key,
}

impl ObjectKind {
    fn index(self) -> usize {
        match self {
            Self::Secret => 0,
            Self::Key => 1,
        }
    }

    /// `secret` or `key`, as messages name the object.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Key => "key",
        }
    }
}

/// One parsed grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Whether it grants a secret or a key.
    pub kind: ObjectKind,
    /// The name the guest uses. For a pattern grant, the prefix before `*`.
    pub guest_name: String,
    /// The vault the object lives in.
    pub vault: String,
    /// The object's name in the vault. For a pattern grant, the prefix before `*`.
    pub object: String,
    /// The one version this grant allows, if pinned.
    pub version: Option<String>,
    /// Whether this is a trailing-`*` pattern.
    pub pattern: bool,
    /// The operations a key grant allows (at least one); empty for a secret grant.
    pub ops: KeyOps,
    /// For a use-only secret grant (`use:...`): where its value may be sent and how it is
    /// applied. Such a secret is never read by the guest.
    pub use_only: Option<Box<UseOnly>>,
}

/// A grant string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid grant {grant:?}: {reason}")]
pub struct GrantError {
    grant: String,
    reason: String,
    whole_vault: bool,
}

impl GrantError {
    fn new(grant: &str, reason: impl Into<String>) -> Self {
        Self {
            grant: grant.to_owned(),
            reason: reason.into(),
            whole_vault: false,
        }
    }

    /// Whether the grant was refused only because it covers a whole vault and
    /// [`WholeVault::Refuse`] was in force: a caller can say how its user allows that.
    pub fn is_whole_vault(&self) -> bool {
        self.whole_vault
    }
}

const SYNTAX: &str = "expected [ALIAS=][VAULT/]NAME[@VERSION] or [VAULT/]PREFIX*";

const KEY_SYNTAX: &str = "expected key:[ALIAS=][VAULT/]NAME[@VERSION]:OPS or key:[VAULT/]PREFIX*:OPS, where OPS are from sign, verify, wrap-key, unwrap-key, encrypt, decrypt, comma-separated";

impl FromStr for Grant {
    type Err = GrantError;

    /// Parses a secret grant, or a key grant (`key:...:OPS`).
    ///
    /// ```
    /// use wasm_secrets::grants::{Grant, ObjectKind};
    /// use wasm_secrets::keys::KeyOp;
    /// let g: Grant = "key:signer=jwt-signing-key:sign".parse().unwrap();
    /// assert_eq!((g.kind, g.guest_name.as_str(), g.object.as_str()), (ObjectKind::Key, "signer", "jwt-signing-key"));
    /// assert!(g.ops.allows(KeyOp::Sign) && !g.ops.allows(KeyOp::Verify));
    /// ```
    fn from_str(s: &str) -> Result<Self, GrantError> {
        if let Some(rest) = s.strip_prefix(USE_PREFIX) {
            let err = |reason: String| GrantError::new(s, format!("{reason}; {USE_SYNTAX}"));
            let (target, use_only) = uses::split(rest).map_err(err)?;
            let mut grant = parse_target(target, ObjectKind::Secret).map_err(err)?;
            grant.use_only = Some(Box::new(use_only));
            return Ok(grant);
        }
        let Some(rest) = s.strip_prefix(KEY_PREFIX) else {
            return parse_target(s, ObjectKind::Secret)
                .map_err(|reason| GrantError::new(s, format!("{reason}; {SYNTAX}")));
        };
        let err = |reason: &str| GrantError::new(s, format!("{reason}; {KEY_SYNTAX}"));
        let (target, ops) = rest
            .rsplit_once(':')
            .ok_or_else(|| err("the operations it allows are missing"))?;
        let mut grant = parse_target(target, ObjectKind::Key).map_err(|reason| err(&reason))?;
        for op in ops.split(',') {
            let op = op.trim();
            let known = KeyOp::ALL
                .into_iter()
                .find(|k| k.as_str() == op)
                .ok_or_else(|| {
                    if op.is_empty() {
                        err("an operation is empty")
                    } else {
                        err(&format!("\"{op}\" is not an operation"))
                    }
                })?;
            grant.ops = grant.ops.with(known);
        }
        Ok(grant)
    }
}

/// Parses `[ALIAS=][VAULT/]NAME[@VERSION]` or `[VAULT/]PREFIX*` as a grant of `kind` (with no
/// operations yet), or says why not.
fn parse_target(s: &str, kind: ObjectKind) -> Result<Grant, String> {
    let (alias, rest) = match s.split_once('=') {
        Some((alias, rest)) => (Some(alias), rest),
        None => (None, s),
    };
    let (target, version) = match rest.split_once('@') {
        Some((target, version)) => (target, Some(version)),
        None => (rest, None),
    };
    let (vault, object) = match target.split_once('/') {
        Some((vault, object)) => (vault, object),
        None => (DEFAULT_VAULT, target),
    };
    if !is_valid_name(vault) || vault.len() > 63 {
        return Err("the vault name must be 1 to 63 characters of 0-9, A-Z, a-z and -".into());
    }
    if let Some(version) = version
        && !is_valid_version(version)
    {
        return Err("the version must be 1 to 64 letters and digits".into());
    }
    let grant = |guest_name: &str, object: &str, pattern: bool| Grant {
        kind,
        guest_name: guest_name.to_owned(),
        vault: vault.to_owned(),
        object: object.to_owned(),
        version: version.map(str::to_owned),
        pattern,
        ops: KeyOps::default(),
        use_only: None,
    };
    if let Some(prefix) = object.strip_suffix('*') {
        if alias.is_some() {
            return Err("a pattern grant cannot have an alias".into());
        }
        if version.is_some() {
            return Err("a pattern grant cannot pin a version".into());
        }
        if !prefix.is_empty() && !is_valid_name(prefix) {
            return Err("the prefix before * must be characters of 0-9, A-Z, a-z and -".into());
        }
        return Ok(grant(prefix, prefix, true));
    }
    if !is_valid_name(object) {
        return Err(format!(
            "the {} name must be 1 to 127 characters of 0-9, A-Z, a-z and -",
            kind.noun()
        ));
    }
    let guest_name = alias.unwrap_or(object);
    if !is_valid_name(guest_name) {
        return Err("the alias must be 1 to 127 characters of 0-9, A-Z, a-z and -".into());
    }
    Ok(grant(guest_name, object, false))
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ObjectKind::Key {
            f.write_str(KEY_PREFIX)?;
        }
        if self.use_only.is_some() {
            f.write_str(USE_PREFIX)?;
        }
        if !self.pattern && self.guest_name != self.object {
            write!(f, "{}=", self.guest_name)?;
        }
        if self.vault != DEFAULT_VAULT {
            write!(f, "{}/", self.vault)?;
        }
        f.write_str(&self.object)?;
        if self.pattern {
            f.write_str("*")?;
        }
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        if self.kind == ObjectKind::Key {
            write!(f, ":{}", self.ops)?;
        }
        if let Some(u) = &self.use_only {
            u.fmt_tail(f)?;
        }
        Ok(())
    }
}

impl Grant {
    /// Whether this grant covers every object of its kind in its vault (`*`, `VAULT/*`,
    /// `key:*:OPS`).
    pub fn is_whole_vault(&self) -> bool {
        self.pattern && self.object.is_empty()
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
        self.pattern && has_prefix(name, &self.object)
    }

    /// Whether `other` is this grant spelled in another case: the same grant to Key Vault.
    fn same_as(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.ops == other.ops
            && self.vault == other.vault
            && self.pattern == other.pattern
            && self.guest_name.eq_ignore_ascii_case(&other.guest_name)
            && self.object.eq_ignore_ascii_case(&other.object)
            && match (&self.version, &other.version) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (a, b) => a == b,
            }
            && match (&self.use_only, &other.use_only) {
                (Some(a), Some(b)) => a.same_as(b),
                (a, b) => a.is_none() && b.is_none(),
            }
    }
}

/// Whether grants may cover a whole vault (`*`, `VAULT/*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WholeVault {
    /// Refuse such grants (the default).
    #[default]
    Refuse,
    /// Allow them.
    Allow,
}

/// Where a granted name leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The name as granted: an exact grant's guest name as the grant spells it, or under a
    /// pattern the name as asked.
    pub name: &'a str,
    /// The vault that holds the object.
    pub vault: &'a str,
    /// The object's name in that vault.
    pub object: &'a str,
    /// The pinned version, if the grant pins one.
    pub version: Option<&'a str>,
    /// The operations a key grant allows; empty for a secret.
    pub ops: KeyOps,
    /// For a use-only grant: where the value may go and how it is applied.
    pub use_only: Option<&'a UseOnly>,
    /// The vault's place in [`Grants::vault_names`].
    pub(crate) vault_index: usize,
    /// The place of the vault of a use-only grant's second secret.
    pub(crate) second_vault_index: Option<usize>,
}

/// One grant and the place of its vault in [`Grants::vault_names`].
#[derive(Debug, Clone)]
struct Entry {
    grant: Grant,
    vault: usize,
    /// The vault of a use-only grant's second secret.
    second_vault: Option<usize>,
}

impl Entry {
    /// Where this grant leads for the name `name` (asked for, folded, under a pattern).
    fn target<'a>(&'a self, name: &'a str) -> Target<'a> {
        let g = &self.grant;
        let (name, object) = if g.pattern {
            (name, name)
        } else {
            (g.guest_name.as_str(), g.object.as_str())
        };
        Target {
            name,
            vault: &g.vault,
            object,
            version: g.version.as_deref(),
            ops: g.ops,
            use_only: g.use_only.as_deref(),
            vault_index: self.vault,
            second_vault_index: self.second_vault,
        }
    }
}

/// The grants of one component, secrets and keys: deny by default.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    // Looked up on every request with guest-chosen names; foldhash is randomly seeded. One
    // map per [`ObjectKind`], keyed by the folded guest name.
    exact: [HashMap<String, Entry, foldhash::fast::RandomState>; 2],
    patterns: Vec<Entry>,
    /// Every vault a grant names, in the order first named.
    vaults: Vec<String>,
}

impl Grants {
    /// No grants: every name is denied.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses grant strings, secret and key grants alike. Two grants giving the guest the same
    /// name for the same kind of object is an error.
    ///
    /// ```
    /// use wasm_secrets::grants::{Grants, ObjectKind::{Key, Secret}};
    /// let grants = wasm_secrets::Grants::parse(["db=prod-db-password", "feature-*", "key:signer:sign"]).unwrap();
    /// assert_eq!(grants.resolve(Secret, "db").unwrap().object, "prod-db-password");
    /// assert!(grants.resolve(Secret, "feature-x").is_some());
    /// assert!(grants.resolve(Secret, "prod-db-password").is_none());
    /// assert!(grants.resolve(Key, "signer").is_some() && grants.resolve(Secret, "signer").is_none());
    /// ```
    pub fn parse<I, S>(grants: I) -> Result<Self, GrantError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::parse_with(grants, WholeVault::Refuse)
    }

    /// [`Grants::parse`], saying whether `*` and `VAULT/*` (every secret, or key, of a vault)
    /// are allowed. [`Grants::parse`] refuses them: a whole vault must be asked for on purpose.
    ///
    /// ```
    /// use wasm_secrets::grants::{Grants, ObjectKind, WholeVault};
    /// assert!(Grants::parse(["*"]).is_err());
    /// let all = Grants::parse_with(["payments/*"], WholeVault::Allow).unwrap();
    /// assert!(all.resolve(ObjectKind::Secret, "anything").is_some());
    /// ```
    pub fn parse_with<I, S>(grants: I, whole_vault: WholeVault) -> Result<Self, GrantError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Self::default();
        for given in grants {
            let given = given.as_ref();
            let grant: Grant = given.parse()?;
            if grant.is_whole_vault() && whole_vault == WholeVault::Refuse {
                return Err(GrantError {
                    whole_vault: true,
                    ..GrantError::new(
                        given,
                        format!(
                            "it grants every {} in the vault, which must be allowed on purpose",
                            grant.kind.noun()
                        ),
                    )
                });
            }
            // A conflict names a key grant as written, a secret grant as it reads.
            let shown = match grant.kind {
                ObjectKind::Secret => grant.to_string(),
                ObjectKind::Key => given.to_owned(),
            };
            out.insert(grant, &shown)?;
        }
        Ok(out)
    }

    /// Whether any grant covers a whole vault (`*` or `VAULT/*`).
    pub fn has_whole_vault(&self) -> bool {
        self.patterns.iter().any(|e| e.grant.is_whole_vault())
    }

    /// Adds one grant. A grant that differs from one already held only in case adds nothing.
    pub fn add(&mut self, grant: Grant) -> Result<(), GrantError> {
        let shown = grant.to_string();
        self.insert(grant, &shown)
    }

    /// [`Grants::add`]; a conflict's error names the new grant as `shown`.
    fn insert(&mut self, grant: Grant, shown: &str) -> Result<(), GrantError> {
        let vault = self.vault_index(&grant.vault);
        let second_vault = grant
            .use_only
            .as_ref()
            .and_then(|u| u.second.as_ref())
            .map(|s| self.vault_index(&s.vault));
        if grant.pattern {
            if !self.patterns.iter().any(|e| e.grant.same_as(&grant)) {
                self.patterns.push(Entry {
                    grant,
                    vault,
                    second_vault,
                });
            }
            return Ok(());
        }
        let exact = &mut self.exact[grant.kind.index()];
        let folded = fold(&grant.guest_name).into_owned();
        match exact.get(&folded) {
            Some(existing) if existing.grant.same_as(&grant) => Ok(()),
            Some(existing) => Err(GrantError::new(
                shown,
                format!(
                    "the {}name \"{}\" is already granted by \"{}\"; give one of them another alias",
                    match grant.kind {
                        ObjectKind::Secret => "",
                        ObjectKind::Key => "key ",
                    },
                    grant.guest_name,
                    existing.grant
                ),
            )),
            None => {
                exact.insert(
                    folded,
                    Entry {
                        grant,
                        vault,
                        second_vault,
                    },
                );
                Ok(())
            }
        }
    }

    /// The place of `vault` in [`Grants::vault_names`], added if new.
    fn vault_index(&mut self, vault: &str) -> usize {
        match self.vaults.iter().position(|v| v == vault) {
            Some(i) => i,
            None => {
                self.vaults.push(vault.to_owned());
                self.vaults.len() - 1
            }
        }
    }

    /// Where the name `name` of a `kind` object leads, or `None` if it is not granted. Case
    /// is ignored, as Key Vault ignores it. Exact grants win over patterns; among patterns,
    /// the first given wins. Under a pattern, the target's `name` and `object` are `name` as
    /// given: callers that want one spelling pass [`fold`]ed names, as the policy point does.
    pub fn resolve<'a>(&'a self, kind: ObjectKind, name: &'a str) -> Option<Target<'a>> {
        self.find(kind, &fold(name), name)
    }

    /// [`Grants::resolve`] for a name already [`fold`]ed: the policy point's one lookup.
    pub(crate) fn lookup<'a>(&'a self, kind: ObjectKind, folded: &'a str) -> Option<Target<'a>> {
        self.find(kind, folded, folded)
    }

    /// Where `name`, whose folded spelling is `folded`, leads.
    fn find<'a>(&'a self, kind: ObjectKind, folded: &str, name: &'a str) -> Option<Target<'a>> {
        if let Some(e) = self.exact[kind.index()].get(folded) {
            return Some(e.target(name));
        }
        self.patterns
            .iter()
            .find(|e| e.grant.kind == kind && e.grant.matches(name))
            .map(|e| e.target(name))
    }

    /// The grants of `kind`, exact ones first (sorted by guest name), then patterns in order.
    fn of(&self, kind: ObjectKind) -> impl Iterator<Item = &Grant> {
        let mut exact: Vec<&Grant> = self.exact[kind.index()]
            .values()
            .map(|e| &e.grant)
            .collect();
        exact.sort_by(|a, b| a.guest_name.cmp(&b.guest_name));
        exact.into_iter().chain(
            self.patterns
                .iter()
                .map(|e| &e.grant)
                .filter(move |g| g.kind == kind),
        )
    }

    /// The secret grants, exact ones first (sorted by guest name), then patterns in order.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.of(ObjectKind::Secret)
    }

    /// The key grants, in the same order as [`Grants::iter`].
    pub fn keys(&self) -> impl Iterator<Item = &Grant> {
        self.of(ObjectKind::Key)
    }

    /// Every vault a grant (of either kind) names, in the order first named.
    pub(crate) fn vault_names(&self) -> &[String] {
        &self.vaults
    }

    /// The places in [`Grants::vault_names`] of the vaults `kind` grants name, sorted by
    /// vault name.
    pub(crate) fn vaults_of(&self, kind: ObjectKind) -> Vec<usize> {
        let mut v: Vec<usize> = self.exact[kind.index()]
            .values()
            .chain(&self.patterns)
            .filter(|e| e.grant.kind == kind)
            .flat_map(|e| std::iter::once(e.vault).chain(e.second_vault))
            .collect();
        v.sort_unstable_by(|a, b| self.vaults[*a].cmp(&self.vaults[*b]));
        v.dedup();
        v
    }

    /// Whether there are no grants at all.
    pub fn is_empty(&self) -> bool {
        self.exact.iter().all(HashMap::is_empty) && self.patterns.is_empty()
    }

    /// The guest names of secrets this component may read, given the names each vault holds:
    /// exact grants whose secret exists, and every vault name matching a pattern. Sorted.
    pub fn visible_names<'a>(
        &self,
        vault_names: impl Fn(&str) -> Option<&'a [String]>,
    ) -> Vec<String> {
        let secret = ObjectKind::Secret;
        let mut out: Vec<String> = Vec::new();
        for e in self.exact[secret.index()].values() {
            let g = &e.grant;
            if vault_names(&g.vault)
                .is_some_and(|names| names.iter().any(|n| n.eq_ignore_ascii_case(&g.object)))
            {
                out.push(g.guest_name.clone());
            }
        }
        for g in self.patterns.iter().map(|e| &e.grant) {
            if g.kind != secret {
                continue;
            }
            if let Some(names) = vault_names(&g.vault) {
                out.extend(
                    names
                        .iter()
                        .filter(|n| g.matches(n))
                        // An exact grant or an earlier pattern may claim the same guest name.
                        .filter(
                            |n| matches!(self.resolve(secret, n), Some(t) if t.vault == g.vault),
                        )
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
    use super::ObjectKind::{Key, Secret};
    use super::*;

    #[test]
    fn whole_vault_grants_need_the_opt_in() {
        for g in ["*", "payments/*"] {
            let e = Grants::parse([g]).unwrap_err();
            assert!(e.is_whole_vault(), "{g}: {e}");
            assert!(e.to_string().contains("allowed on purpose"), "{g}: {e}");
            let all = Grants::parse_with([g], WholeVault::Allow).unwrap();
            assert!(all.has_whole_vault());
            assert!(all.resolve(Secret, "anything-at-all").is_some());
        }
        // A prefix is not a whole vault.
        let some = Grants::parse(["feature-*", "db"]).unwrap();
        assert!(!some.has_whole_vault());
        assert!(some.resolve(Secret, "other").is_none());
    }

    type Where<'a> = (&'a str, &'a str, Option<&'a str>);

    /// Where the secret name `name` leads: (vault, secret, version).
    fn at<'a>(g: &'a Grants, name: &'a str) -> Option<Where<'a>> {
        g.resolve(Secret, name)
            .map(|t| (t.vault, t.object, t.version))
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
            assert_eq!(g.resolve(Secret, denied), None, "{denied}");
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
            assert_eq!(
                g.resolve(Secret, name).unwrap().name,
                "db-password",
                "{name}"
            );
        }
        // Patterns match their prefix in any case; under a pattern the name is as asked.
        assert_eq!(at(&g, "DB-other"), t("default", "DB-other", None));
        assert_eq!(at(&g, "Db-"), None);
        // Aliases and vault-qualified grants too, and the grant's own spelling is kept.
        let g = Grants::parse(["DB=Prod-DB-Password", "payments/Stripe-Key", "Team-*"]).unwrap();
        assert_eq!(at(&g, "db"), t("default", "Prod-DB-Password", None));
        assert_eq!(g.resolve(Secret, "db").unwrap().name, "DB");
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

    #[test]
    fn every_key_form_parses_and_prints_back() {
        for s in [
            "key:jwt-signing-key:sign",
            "key:signer=jwt-signing-key:sign,verify",
            "key:payments/kek:wrap-key,unwrap-key",
            "key:signer=payments/jwt@0123456789abcdef0123456789abcdef:sign",
            "key:team-*:verify",
            "key:k:sign,verify,wrap-key,unwrap-key,encrypt,decrypt",
        ] {
            let g: Grant = s.parse().unwrap();
            assert_eq!(g.kind, Key, "{s}");
            assert_eq!(g.to_string(), s);
        }
    }

    #[test]
    fn bad_key_grants_say_what_is_wrong() {
        for (s, says) in [
            ("key:signer", "operations it allows are missing"),
            ("key:signer:", "an operation is empty"),
            ("key:signer:sign,", "an operation is empty"),
            ("key:signer:delete", "\"delete\" is not an operation"),
            (
                "key:signer:public-key",
                "\"public-key\" is not an operation",
            ),
            ("key:bad_name:sign", "key name must be"),
            ("key:a=b*:sign", "pattern grant cannot have an alias"),
        ] {
            let e = s.parse::<Grant>().unwrap_err().to_string();
            assert!(e.contains(says), "{s}: {e}");
            assert!(e.contains("expected key:"), "{s}: {e}");
        }
        let e = Grants::parse(["key:*:sign"]).unwrap_err();
        assert!(e.is_whole_vault(), "{e}");
        // Any other refusal is not a whole-vault one.
        assert!(!Grants::parse(["key:*"]).unwrap_err().is_whole_vault());
    }

    #[test]
    fn key_grants_and_secret_grants_never_cover_each_other() {
        let g = Grants::parse(["db-password", "key:signer=jwt-signing-key:sign"]).unwrap();
        assert!(
            g.resolve(Secret, "signer").is_none(),
            "a key grant reads no secret"
        );
        assert!(
            g.resolve(Secret, "jwt-signing-key").is_none(),
            "nor under its vault name"
        );
        assert!(
            g.resolve(Key, "db-password").is_none(),
            "a secret grant allows no key operation"
        );
        let t = g.resolve(Key, "signer").unwrap();
        assert_eq!(t.object, "jwt-signing-key");
        assert!(t.ops.allows(KeyOp::Sign) && !t.ops.allows(KeyOp::Decrypt));
        // The same guest name may be a secret and a key: they are different namespaces.
        Grants::parse(["signer", "key:signer:sign"]).unwrap();
        // Two key grants for one guest name are refused.
        let e = Grants::parse(["key:s=a:sign", "key:s=b:sign"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("already granted"), "{e}");
    }

    #[test]
    fn key_patterns_and_pins_resolve_like_secret_grants() {
        let g = Grants::parse([
            "key:team-*:verify",
            "key:old=jwt@0123456789abcdef0123456789abcdef:sign",
        ])
        .unwrap();
        let t = g.resolve(Key, "team-a").unwrap();
        assert_eq!((t.vault, t.object), ("default", "team-a"));
        assert!(g.resolve(Key, "team-").is_none());
        assert_eq!(
            g.resolve(Key, "old").unwrap().version,
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn any_case_reaches_the_pinned_key_grant_before_a_pattern() {
        let g = Grants::parse(["key:jwt-signing-key@V1:sign", "key:jwt-*:verify"]).unwrap();
        for name in ["jwt-signing-key", "jwt-SIGNING-KEY", "JWT-Signing-Key"] {
            let t = g.resolve(Key, name).unwrap();
            assert_eq!(
                (t.name, t.object, t.version),
                ("jwt-signing-key", "jwt-signing-key", Some("V1")),
                "{name}"
            );
            assert!(
                t.ops.allows(KeyOp::Sign) && !t.ops.allows(KeyOp::Verify),
                "{name}"
            );
        }
        let t = g.resolve(Key, "JWT-other").unwrap();
        assert!(t.ops.allows(KeyOp::Verify) && !t.ops.allows(KeyOp::Sign));
    }

    /// The policy point looks names up already folded; the vault list it asks for `list`
    /// holds only vaults with secret grants.
    #[test]
    fn the_folded_lookup_and_the_vaults_of_a_kind() {
        let g = Grants::parse(["b/x", "key:k/signer:sign", "a/y-*", "b/z"]).unwrap();
        assert_eq!(g.lookup(Secret, "x"), g.resolve(Secret, "X"));
        assert_eq!(g.lookup(Secret, "y-1").unwrap().object, "y-1");
        let names = |kind| -> Vec<&str> {
            g.vaults_of(kind)
                .into_iter()
                .map(|i| g.vault_names()[i].as_str())
                .collect()
        };
        assert_eq!(names(Secret), ["a", "b"]);
        assert_eq!(names(Key), ["k"]);
        let t = g.resolve(Key, "signer").unwrap();
        assert_eq!(g.vault_names()[t.vault_index], "k");
    }

    #[test]
    fn use_only_grants_parse_print_and_resolve_as_secrets() {
        let g = Grants::parse([
            "use:stripe=payments/stripe-live@abc123 for api.stripe.com,127.0.0.1:8443",
            "use:api=api-user+other/api-password for API.example.com as basic",
            "use:hook-key for hooks.example.com as hmac-sha256",
        ])
        .unwrap();
        let shown: Vec<String> = g.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "use:api=api-user+other/api-password for api.example.com as basic",
                "use:hook-key for hooks.example.com as hmac-sha256",
                "use:stripe=payments/stripe-live@abc123 for api.stripe.com,127.0.0.1:8443",
            ]
        );
        for s in &shown {
            assert_eq!(s.parse::<Grant>().unwrap().to_string(), *s, "round trip");
        }
        let t = g.resolve(Secret, "stripe").unwrap();
        assert_eq!((t.vault, t.object), ("payments", "stripe-live"));
        assert!(t.use_only.unwrap().allows("api.stripe.com", 443));
        assert!(
            g.vault_names().contains(&"other".to_owned()),
            "the second secret's vault is known"
        );
        assert!(g.resolve(Key, "stripe").is_none());
        for bad in [
            "use:stripe",
            "use:stripe for",
            "use:stripe for https://api.stripe.com",
            "use:a+b for h.com",
            "use:a for h.com as basic",
            "use:a-* for h.com",
            "use:a for h.com as nothing",
        ] {
            let e = Grants::parse([bad]).unwrap_err().to_string();
            assert!(e.contains("use:[ALIAS=]"), "{bad}: {e}");
            assert!(e.contains(bad), "the error names the grant: {e}");
        }
        let e = Grants::parse(["use:db for h.com", "db"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("already granted"), "{e}");
    }
}
