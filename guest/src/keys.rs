//! Use keys that never leave the vault: the host has the vault sign, verify, wrap, unwrap,
//! encrypt and decrypt with the key the component was granted (`key:NAME:OPS`). The component
//! sees neither the private key nor a token.
//!
//! ```no_run
//! use wasm_secrets_guest::keys::{self, SignatureAlgorithm};
//! # fn sha256(_: &[u8]) -> [u8; 32] { [0; 32] }
//! let digest = sha256(b"header.payload");
//! let signature = keys::sign("signer", SignatureAlgorithm::Es256, &digest)?;
//! # Ok::<(), keys::KeyError>(())
//! ```

use crate::bindings::wasm_secrets::secrets::keys as wit;
use std::fmt;

pub use wit::{EncryptionAlgorithm, SignatureAlgorithm};

/// Why a key operation failed. Each case holds the host's message for people: it names the key
/// and the reason, and never holds key material, an input, an output or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The name is not 1 to 127 characters of `0-9`, `A-Z`, `a-z` and `-`.
    InvalidName(String),
    /// No key grant for the name, or the grant does not allow the operation.
    NotGranted(String),
    /// The vault has no such key or version.
    NotFound(String),
    /// The vault refused: no right to use the key, the key is disabled, or the key does not
    /// permit the operation.
    Forbidden(String),
    /// The vault or the identity endpoint is unreachable, throttled or too slow.
    Unavailable(String),
    /// The input does not fit the algorithm or the key.
    InvalidArgument(String),
}

impl KeyError {
    /// The kind as spelled in the WIT: `invalid-name`, `not-granted`, `not-found`,
    /// `forbidden`, `unavailable` or `invalid-argument`.
    pub fn kind(&self) -> &'static str {
        match self {
            KeyError::InvalidName(_) => "invalid-name",
            KeyError::NotGranted(_) => "not-granted",
            KeyError::NotFound(_) => "not-found",
            KeyError::Forbidden(_) => "forbidden",
            KeyError::Unavailable(_) => "unavailable",
            KeyError::InvalidArgument(_) => "invalid-argument",
        }
    }

    /// The host's message: names the key and the reason, safe to log.
    pub fn message(&self) -> &str {
        match self {
            KeyError::InvalidName(m)
            | KeyError::NotGranted(m)
            | KeyError::NotFound(m)
            | KeyError::Forbidden(m)
            | KeyError::Unavailable(m)
            | KeyError::InvalidArgument(m) => m,
        }
    }
}

/// Formats as `<kind>: <message>`.
impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for KeyError {}

impl From<wit::KeyError> for KeyError {
    fn from(e: wit::KeyError) -> Self {
        match e {
            wit::KeyError::InvalidName(m) => KeyError::InvalidName(m),
            wit::KeyError::NotGranted(m) => KeyError::NotGranted(m),
            wit::KeyError::NotFound(m) => KeyError::NotFound(m),
            wit::KeyError::Forbidden(m) => KeyError::Forbidden(m),
            wit::KeyError::Unavailable(m) => KeyError::Unavailable(m),
            wit::KeyError::InvalidArgument(m) => KeyError::InvalidArgument(m),
        }
    }
}

/// Signs `digest` (the hash of the message, of the size the algorithm names) with the key
/// granted as `name`. EC signatures are raw `r || s`, as JWS wants them.
pub fn sign(name: &str, algorithm: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
    Ok(wit::sign(name, algorithm, digest)?)
}

/// Whether `signature` is the signature of `digest` by the key granted as `name`.
pub fn verify(
    name: &str,
    algorithm: SignatureAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool, KeyError> {
    Ok(wit::verify(name, algorithm, digest, signature)?)
}

/// Wraps the symmetric key `key` with the key granted as `name`.
pub fn wrap_key(
    name: &str,
    algorithm: EncryptionAlgorithm,
    key: &[u8],
) -> Result<Vec<u8>, KeyError> {
    Ok(wit::wrap_key(name, algorithm, key)?)
}

/// Unwraps a key wrapped by [`wrap_key`].
pub fn unwrap_key(
    name: &str,
    algorithm: EncryptionAlgorithm,
    wrapped: &[u8],
) -> Result<Vec<u8>, KeyError> {
    Ok(wit::unwrap_key(name, algorithm, wrapped)?)
}

/// Encrypts a short `plaintext` with the key granted as `name`.
pub fn encrypt(
    name: &str,
    algorithm: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    Ok(wit::encrypt(name, algorithm, plaintext)?)
}

/// Decrypts a ciphertext made by [`encrypt`].
pub fn decrypt(
    name: &str,
    algorithm: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    Ok(wit::decrypt(name, algorithm, ciphertext)?)
}

/// The public JSON Web Key of the key granted as `name` (never private parts).
pub fn public_key(name: &str) -> Result<String, KeyError> {
    Ok(wit::public_key(name)?)
}

impl SignatureAlgorithm {
    /// The JWA name (`ES256`, `RS256`, ...), as a JWT header's `alg` says it.
    pub fn jwa(self) -> &'static str {
        match self {
            SignatureAlgorithm::Rs256 => "RS256",
            SignatureAlgorithm::Rs384 => "RS384",
            SignatureAlgorithm::Rs512 => "RS512",
            SignatureAlgorithm::Ps256 => "PS256",
            SignatureAlgorithm::Ps384 => "PS384",
            SignatureAlgorithm::Ps512 => "PS512",
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Es384 => "ES384",
            SignatureAlgorithm::Es512 => "ES512",
            SignatureAlgorithm::Es256k => "ES256K",
        }
    }

    /// The algorithm named `jwa` (case-insensitive), if any.
    pub fn from_jwa(jwa: &str) -> Option<Self> {
        [
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
        ]
        .into_iter()
        .find(|a| a.jwa().eq_ignore_ascii_case(jwa))
    }
}
