//! The rule for secret names, checked at the boundary before anything else, and the one
//! spelling a name is compared in.
//!
//! Key Vault object names (secrets and keys) and version ids are case-insensitive: `DB-Password`,
//! `db-password` and `DB-PASSWORD` are one secret, and the vault answers with the name as it
//! was first created. The host follows it: grants are matched, and the secret cache keyed, on
//! [`fold`]ed names (ASCII lowercase), so every spelling of a name reaches the same grant, the
//! same pinned version and the same cache entry. (The audit log's rule is in [`crate::audit`].)

/// The longest name a guest may ask for (Azure Key Vault's limit).
pub const MAX_NAME_LEN: usize = 127;

/// Whether `name` is 1 to 127 characters of `0-9`, `A-Z`, `a-z` and `-`.
///
/// ```
/// use wasm_secrets::is_valid_name;
/// assert!(is_valid_name("db-password"));
/// assert!(!is_valid_name("../x"));
/// assert!(!is_valid_name(""));
/// ```
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `version` looks like a vault version identifier: 1 to 64 ASCII letters and digits.
pub fn is_valid_version(version: &str) -> bool {
    (1..=64).contains(&version.len()) && version.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `name` in the one spelling names are compared in: ASCII lowercase, as Key Vault compares
/// them. Borrowed (no allocation) when `name` has no capital letter, which is the usual case.
///
/// ```
/// use wasm_secrets::fold;
/// assert_eq!(fold("DB-Password"), "db-password");
/// assert!(matches!(fold("db-password"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn fold(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// A valid `name` [`fold`]ed, checked and folded in one pass, for the policy point to match;
/// `None` for an invalid one (which is refused, and must never be copied: it may be 100 MiB).
pub(crate) fn fold_valid(name: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !(1..=MAX_NAME_LEN).contains(&name.len()) {
        return None;
    }
    let mut upper = false;
    for b in name.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => {}
            b'A'..=b'Z' => upper = true,
            _ => return None,
        }
    }
    Some(if upper {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    })
}

/// Whether `name` starts with `prefix` and is longer, ignoring ASCII case: how a pattern
/// grant's prefix matches a name.
pub(crate) fn has_prefix(name: &str, prefix: &str) -> bool {
    name.len() > prefix.len()
        && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// A form of untrusted input that is safe to put in a message: at most 40 characters,
/// with control and non-ASCII characters escaped.
pub(crate) fn quoted(input: &str) -> String {
    const SHOWN: usize = 40;
    let mut out = String::with_capacity(SHOWN + 8);
    out.push('"');
    for (i, c) in input.chars().enumerate() {
        if i == SHOWN {
            out.push_str("...");
            break;
        }
        if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name(&"a".repeat(127)));
        for bad in [
            "", "../x", "a/b", "x?y", "%2e", "é", "a\0b", "a b", "a_b", "a.b",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        assert!(!is_valid_name(&"a".repeat(128)));
    }

    #[test]
    fn fold_valid_checks_and_folds_in_one_pass() {
        for name in ["a", "db-password", "DB-Password", "X9-", &"Z".repeat(127)] {
            assert_eq!(
                fold_valid(name).as_deref(),
                Some(&*name.to_ascii_lowercase())
            );
        }
        assert!(matches!(
            fold_valid("db-password"),
            Some(std::borrow::Cow::Borrowed(_))
        ));
        for bad in ["", "../x", "a_b", "é", "A b", &"a".repeat(128)] {
            assert_eq!(fold_valid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn quoting_escapes_and_truncates() {
        assert_eq!(quoted("a\0b"), "\"a\\u{0}b\"");
        assert_eq!(quoted("é"), "\"\\u{e9}\"");
        assert_eq!(
            quoted(&"x".repeat(100)),
            format!("\"{}...\"", "x".repeat(40))
        );
    }
}
