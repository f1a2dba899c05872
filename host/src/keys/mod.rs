//! Keys that never leave the vault (design section 14): the guest names a key it was granted
//! and an operation; the host checks the grant and the input, then asks the vault to do it.
//!
//! - [`grants`]: `key:[ALIAS=][VAULT/]NAME[@VERSION]:OPS` grants, separate from secret grants.
//! - [`policy`]: the policy point, on [`SecretsCtx`](crate::SecretsCtx): name, grant,
//!   operation and input checks before any vault call, then the audit record.
//! - The wire lives with the vault: [`crate::backend::keys`] (what a backend offers) and the
//!   Key Vault client's keys calls; public keys are cached by [`crate::cache`].

pub mod grants;
mod policy;
pub mod verify;

pub use grants::{KeyGrant, KeyGrants, KeyOp, KeyOps};

use std::fmt;

/// A signature algorithm, by its Key Vault (JWA) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// ECDSA on P-521 with SHA-512.
    Es512,
    /// ECDSA on secp256k1 with SHA-256.
    Es256k,
}

impl SignatureAlgorithm {
    /// Every algorithm, in the WIT enum's order.
    pub const ALL: [Self; 10] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::Es256k,
    ];

    /// Key Vault's name (`RS256`, ..., `ES256K`), as sent on the wire and put in a JWT header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Es256k => "ES256K",
        }
    }

    /// The length in bytes of the digest this algorithm signs.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Rs256 | Self::Ps256 | Self::Es256 | Self::Es256k => 32,
            Self::Rs384 | Self::Ps384 | Self::Es384 => 48,
            Self::Rs512 | Self::Ps512 | Self::Es512 => 64,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An encryption or key-wrapping algorithm (RSA keys), by its Key Vault name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionAlgorithm {
    /// RSAES-OAEP with SHA-1.
    RsaOaep,
    /// RSAES-OAEP with SHA-256.
    RsaOaep256,
    /// RSAES-PKCS1-v1_5.
    Rsa1_5,
}

impl EncryptionAlgorithm {
    /// Key Vault's name (`RSA-OAEP`, `RSA-OAEP-256`, `RSA1_5`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaOaep => "RSA-OAEP",
            Self::RsaOaep256 => "RSA-OAEP-256",
            Self::Rsa1_5 => "RSA1_5",
        }
    }
}

impl fmt::Display for EncryptionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of [`KeyError`], spelled as in the WIT `key-error` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyErrorKind {
    /// `invalid-name`
    InvalidName,
    /// `not-granted`
    NotGranted,
    /// `not-found`
    NotFound,
    /// `forbidden`
    Forbidden,
    /// `unavailable`
    Unavailable,
    /// `invalid-argument`
    InvalidArgument,
}

impl KeyErrorKind {
    /// The WIT spelling of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidName => "invalid-name",
            Self::NotGranted => "not-granted",
            Self::NotFound => "not-found",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::InvalidArgument => "invalid-argument",
        }
    }
}

/// Why a key operation failed: a kind and a message for people. The message names the key and
/// the reason; it never holds key material, a digest, a plaintext, a ciphertext, a signature or
/// a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    kind: KeyErrorKind,
    message: String,
}

impl KeyError {
    pub(crate) fn new(kind: KeyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind, as in the WIT variant.
    pub fn kind(&self) -> KeyErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn from_backend(name: &str, err: &crate::BackendError) -> Self {
        use crate::BackendError as B;
        match err {
            B::NotFound(d) => Self::new(
                KeyErrorKind::NotFound,
                format!("key \"{name}\" was not found: {d}"),
            ),
            B::Forbidden(d) => Self::new(
                KeyErrorKind::Forbidden,
                format!("the vault refused the operation on key \"{name}\": {d}"),
            ),
            B::Unavailable(d) => Self::new(
                KeyErrorKind::Unavailable,
                format!("key \"{name}\" is unavailable: {d}"),
            ),
            B::Invalid(d) => Self::new(
                KeyErrorKind::InvalidArgument,
                format!("the vault refused the input for key \"{name}\": {d}"),
            ),
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for KeyError {}
