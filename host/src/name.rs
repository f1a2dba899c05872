//! The rule for secret names, checked at the boundary before anything else.

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
    fn quoting_escapes_and_truncates() {
        assert_eq!(quoted("a\0b"), "\"a\\u{0}b\"");
        assert_eq!(quoted("é"), "\"\\u{e9}\"");
        assert_eq!(
            quoted(&"x".repeat(100)),
            format!("\"{}...\"", "x".repeat(40))
        );
    }
}
