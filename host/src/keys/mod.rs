//! What keys that never leave the vault are used for (design section 14): the operations a
//! key grant may allow ([`KeyOp`]) and the algorithms ([`SignatureAlgorithm`],
//! [`EncryptionAlgorithm`]), shared by the policy point ([`crate::Keys`]), its grants
//! ([`crate::grants`]) and the vault ([`crate::backend::keys`]); and [`verify`], which checks
//! a signature on a cached public key.

pub mod verify;

use std::fmt;

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
