//! Secret values in memory that is wiped when dropped and never printed.

use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A secret value. Its memory is zeroed when the last clone is dropped; `Debug` and `Display`
/// print a placeholder. Clones share one buffer, so handing a cached value out copies nothing.
///
/// ```
/// let v = wasm_secrets::SecretValue::new("hunter2".to_string());
/// assert_eq!(v.expose(), "hunter2");
/// assert_eq!(format!("{v:?}"), "SecretValue(<redacted, 7 bytes>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Arc<Zeroizing<String>>);

impl SecretValue {
    /// Takes ownership of `value`; its buffer is zeroed when the `SecretValue` is dropped.
    pub fn new(value: String) -> Self {
        Self(Arc::new(Zeroizing::new(value)))
    }

    /// The value itself. Call this only where the value must leave the host: the guest.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length of the value in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretValue {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl<'de> serde::Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.0.len())
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
