//! Key grants: which keys a component may use, under which names, for which operations.
//!
//! A key grant is `key:` + the secret-grant forms + `:` + the operations, comma-separated:
//!
//! | grant                               | guest asks for | uses                                   | may        |
//! |-------------------------------------|----------------|----------------------------------------|------------|
//! | `key:signer=jwt-signing-key:sign`   | `signer`       | `jwt-signing-key` in the default vault | sign       |
//! | `key:payments/kek:wrap-key,unwrap-key` | `kek`       | `kek` in vault `payments`              | wrap, unwrap |
//! | `key:signer=jwt-key@<version>:sign,verify` | `signer` | that one version only                 | sign, verify |
//! | `key:team-*:verify`                 | `team-...`     | any key starting with `team-`          | verify     |
//!
//! `public-key` is allowed by every key grant. Key grants and secret grants never cover each
//! other: a secret grant allows no key operation, and a key grant reads no secret.
//!
//! Key names are matched ignoring ASCII case, exactly as secret names are
//! ([`crate::grants`]): `JWT-Signing-Key` reaches the grant for `jwt-signing-key`, its pin and
//! its operations, before any pattern.

use crate::grants::{Grant, GrantError, Target, WholeVault};
use crate::name::fold;
use std::collections::HashMap;
use std::fmt;

/// What a key grant string starts with.
pub const KEY_PREFIX: &str = "key:";

/// An operation on a key that a grant may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyOp {
    /// `sign`
    Sign,
    /// `verify`
    Verify,
    /// `wrap-key`
    WrapKey,
    /// `unwrap-key`
    UnwrapKey,
    /// `encrypt`
    Encrypt,
    /// `decrypt`
    Decrypt,
}

impl KeyOp {
    /// Every operation a grant can name, in the WIT interface's order.
    pub const ALL: [Self; 6] = [
        Self::Sign,
        Self::Verify,
        Self::WrapKey,
        Self::UnwrapKey,
        Self::Encrypt,
        Self::Decrypt,
    ];

    /// The spelling in grants and in the WIT interface.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::WrapKey => "wrap-key",
            Self::UnwrapKey => "unwrap-key",
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
        }
    }

    /// The path segment of Key Vault's REST operation.
    pub fn wire(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::WrapKey => "wrapkey",
            Self::UnwrapKey => "unwrapkey",
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for KeyOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`KeyOp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct KeyOps(u8);

impl KeyOps {
    /// Whether `op` is in the set.
    pub fn allows(self, op: KeyOp) -> bool {
        self.0 & op.bit() != 0
    }

    /// The set with `op` added.
    pub fn with(self, op: KeyOp) -> Self {
        Self(self.0 | op.bit())
    }

    /// The operations in the set, in [`KeyOp::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = KeyOp> {
        KeyOp::ALL.into_iter().filter(move |op| self.allows(*op))
    }
}

impl fmt::Display for KeyOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ops: Vec<&str> = self.iter().map(KeyOp::as_str).collect();
        f.write_str(&ops.join(","))
    }
}

/// One parsed key grant: where the name leads (the secret-grant forms) and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// The name, vault, key (in [`Grant::secret`]), pinned version and pattern flag.
    pub target: Grant,
    /// The operations allowed.
    pub ops: KeyOps,
}

const SYNTAX: &str = "expected key:[ALIAS=][VAULT/]NAME[@VERSION]:OPS or key:[VAULT/]PREFIX*:OPS, where OPS are from sign, verify, wrap-key, unwrap-key, encrypt, decrypt, comma-separated";

impl KeyGrant {
    /// Parses one key grant (with its `key:` prefix).
    ///
    /// ```
    /// use wasm_secrets::keys::{KeyGrant, KeyOp};
    /// let g = KeyGrant::parse("key:signer=jwt-signing-key:sign").unwrap();
    /// assert_eq!(g.target.guest_name, "signer");
    /// assert_eq!(g.target.secret, "jwt-signing-key");
    /// assert!(g.ops.allows(KeyOp::Sign) && !g.ops.allows(KeyOp::Verify));
    /// ```
    pub fn parse(s: &str) -> Result<Self, GrantError> {
        let err = |reason: &str| GrantError::new(s, format!("{reason}; {SYNTAX}"));
        let rest = s
            .strip_prefix(KEY_PREFIX)
            .ok_or_else(|| err("a key grant starts with key:"))?;
        let (target, ops) = rest
            .rsplit_once(':')
            .ok_or_else(|| err("the operations it allows are missing"))?;
        let target: Grant = target
            .parse()
            .map_err(|e: GrantError| err(&e.reason().replace("secret name", "key name")))?;
        let mut allowed = KeyOps::default();
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
            allowed = allowed.with(known);
        }
        Ok(Self {
            target,
            ops: allowed,
        })
    }
}

impl KeyGrant {
    /// Whether `other` is this grant spelled in another case.
    fn same_as(&self, other: &Self) -> bool {
        self.ops == other.ops && self.target.same_as(&other.target)
    }
}

impl fmt::Display for KeyGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}:{}", self.target, self.ops)
    }
}

/// Where a granted key name leads and what the grant allows there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTarget<'a> {
    /// The vault, the key's name in it (`secret`) and the pinned version.
    pub key: Target<'a>,
    /// The operations allowed.
    pub ops: KeyOps,
}

/// One component's key grants: deny by default.
#[derive(Debug, Clone, Default)]
pub struct KeyGrants {
    exact: HashMap<String, KeyGrant, foldhash::fast::RandomState>,
    patterns: Vec<KeyGrant>,
}

impl KeyGrants {
    /// Adds one grant. Two grants giving the guest the same key name is an error.
    pub(crate) fn add(
        &mut self,
        grant: KeyGrant,
        whole_vault: WholeVault,
        given: &str,
    ) -> Result<(), GrantError> {
        if grant.target.pattern {
            if grant.target.is_whole_vault() && whole_vault == WholeVault::Refuse {
                return Err(GrantError::new(
                    given,
                    "it grants every key in the vault; if that is meant, set allow-whole-vault = true in the component's config (or pass --allow-whole-vault)",
                ));
            }
            if !self.patterns.iter().any(|g| g.same_as(&grant)) {
                self.patterns.push(grant);
            }
            return Ok(());
        }
        let key = fold(&grant.target.guest_name).into_owned();
        match self.exact.get(&key) {
            Some(existing) if existing.same_as(&grant) => Ok(()),
            Some(existing) => Err(GrantError::new(
                given,
                format!(
                    "the key name \"{}\" is already granted by \"{existing}\"; give one of them another alias",
                    grant.target.guest_name
                ),
            )),
            None => {
                self.exact.insert(key, grant);
                Ok(())
            }
        }
    }

    /// Where the key name `name` leads, or `None` if no key grant covers it. Case is ignored,
    /// as for secrets ([`crate::Grants::resolve`]). Exact grants win over patterns; among
    /// patterns, the first given wins.
    pub fn resolve<'a>(&'a self, name: &'a str) -> Option<KeyTarget<'a>> {
        if let Some(g) = self.exact.get(&*fold(name)) {
            return Some(KeyTarget {
                key: Target {
                    name: &g.target.guest_name,
                    vault: &g.target.vault,
                    secret: &g.target.secret,
                    version: g.target.version.as_deref(),
                },
                ops: g.ops,
            });
        }
        self.patterns
            .iter()
            .find(|g| g.target.matches(name))
            .map(|g| KeyTarget {
                key: Target {
                    name,
                    vault: &g.target.vault,
                    secret: name,
                    version: None,
                },
                ops: g.ops,
            })
    }

    /// Every key grant, exact ones first (sorted by guest name), then patterns in order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyGrant> {
        let mut exact: Vec<&KeyGrant> = self.exact.values().collect();
        exact.sort_by(|a, b| a.target.guest_name.cmp(&b.target.guest_name));
        exact.into_iter().chain(self.patterns.iter())
    }

    /// Whether there are no key grants.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }

    /// Whether any key grant covers a whole vault.
    pub fn has_whole_vault(&self) -> bool {
        self.patterns.iter().any(|g| g.target.is_whole_vault())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grants;

    #[test]
    fn every_form_parses_and_prints_back() {
        for s in [
            "key:jwt-signing-key:sign",
            "key:signer=jwt-signing-key:sign,verify",
            "key:payments/kek:wrap-key,unwrap-key",
            "key:signer=payments/jwt@0123456789abcdef0123456789abcdef:sign",
            "key:team-*:verify",
            "key:k:sign,verify,wrap-key,unwrap-key,encrypt,decrypt",
        ] {
            assert_eq!(KeyGrant::parse(s).unwrap().to_string(), s);
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
            let e = KeyGrant::parse(s).unwrap_err().to_string();
            assert!(e.contains(says), "{s}: {e}");
            assert!(e.contains("expected key:"), "{s}: {e}");
        }
        let e = Grants::parse(["key:*:sign"]).unwrap_err().to_string();
        assert!(e.contains("allow-whole-vault"), "{e}");
    }

    #[test]
    fn key_grants_and_secret_grants_never_cover_each_other() {
        let g = Grants::parse(["db-password", "key:signer=jwt-signing-key:sign"]).unwrap();
        assert!(g.resolve("signer").is_none(), "a key grant reads no secret");
        assert!(
            g.resolve("jwt-signing-key").is_none(),
            "nor under its vault name"
        );
        assert!(
            g.keys().resolve("db-password").is_none(),
            "a secret grant allows no key operation"
        );
        let t = g.keys().resolve("signer").unwrap();
        assert_eq!(t.key.secret, "jwt-signing-key");
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
    fn patterns_and_pins_resolve_like_secret_grants() {
        let g = Grants::parse([
            "key:team-*:verify",
            "key:old=jwt@0123456789abcdef0123456789abcdef:sign",
        ])
        .unwrap();
        let t = g.keys().resolve("team-a").unwrap();
        assert_eq!((t.key.vault, t.key.secret), ("default", "team-a"));
        assert!(g.keys().resolve("team-").is_none());
        assert_eq!(
            g.keys().resolve("old").unwrap().key.version,
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn any_case_reaches_the_pinned_key_grant_before_a_pattern() {
        let g = Grants::parse(["key:jwt-signing-key@V1:sign", "key:jwt-*:verify"]).unwrap();
        for name in ["jwt-signing-key", "jwt-SIGNING-KEY", "JWT-Signing-Key"] {
            let t = g.keys().resolve(name).unwrap();
            assert_eq!(
                (t.key.name, t.key.secret, t.key.version),
                ("jwt-signing-key", "jwt-signing-key", Some("V1")),
                "{name}"
            );
            assert!(
                t.ops.allows(KeyOp::Sign) && !t.ops.allows(KeyOp::Verify),
                "{name}"
            );
        }
        let t = g.keys().resolve("JWT-other").unwrap();
        assert!(t.ops.allows(KeyOp::Verify) && !t.ops.allows(KeyOp::Sign));
    }
}
