//! The errors a guest sees, and the errors a backend reports.
//!
//! Messages name the secret and the reason. They never hold a secret value, a token or a
//! credential: they are built only from names, statuses and fixed text.

use std::fmt;

/// Why a backend could not produce a secret. The `detail` strings are for people and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The vault has no such secret or version, or it is disabled.
    #[error("not found: {0}")]
    NotFound(String),
    /// The vault refused the host's identity.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The vault or identity endpoint is unreachable, throttled, too slow or answered nonsense.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The vault refused the request's arguments (400): a digest or algorithm that does not
    /// fit the key, or an input it cannot decrypt.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl BackendError {
    /// The detail text, without the kind.
    pub fn detail(&self) -> &str {
        match self {
            Self::NotFound(d) | Self::Forbidden(d) | Self::Unavailable(d) | Self::Invalid(d) => d,
        }
    }
}

/// The kinds of [`SecretError`], spelled as in the WIT `error` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
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
}

impl ErrorKind {
    /// Every kind, in the WIT variant's order.
    pub const ALL: [ErrorKind; 5] = [
        Self::InvalidName,
        Self::NotGranted,
        Self::NotFound,
        Self::Forbidden,
        Self::Unavailable,
    ];

    /// The WIT spelling of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidName => "invalid-name",
            Self::NotGranted => "not-granted",
            Self::NotFound => "not-found",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request for a secret, as the guest will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretError {
    kind: ErrorKind,
    message: String,
}

impl SecretError {
    pub(crate) fn new(kind: ErrorKind, message: String) -> Self {
        Self { kind, message }
    }

    /// Which case of the WIT `error` variant this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message: names the secret and the reason, never a value.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn invalid_name(name: &str) -> Self {
        Self::new(
            ErrorKind::InvalidName,
            format!(
                "invalid secret name {}: a name is 1 to 127 characters of 0-9, A-Z, a-z and -",
                crate::name::quoted(name)
            ),
        )
    }

    pub(crate) fn invalid_version(name: &str, version: &str) -> Self {
        Self::new(
            ErrorKind::InvalidName,
            format!(
                "invalid version {} of secret \"{name}\": a version is 1 to 64 letters and digits",
                crate::name::quoted(version)
            ),
        )
    }

    pub(crate) fn not_granted(name: &str) -> Self {
        Self::new(
            ErrorKind::NotGranted,
            format!("secret \"{name}\" is not granted to this component"),
        )
    }

    pub(crate) fn version_not_granted(name: &str, version: &str) -> Self {
        Self::new(
            ErrorKind::NotGranted,
            format!(
                "version {} of secret \"{name}\" is not granted to this component (its grant pins another version)",
                crate::name::quoted(version)
            ),
        )
    }

    /// Maps a backend failure for the secret the guest called `name`.
    pub(crate) fn from_backend(name: &str, err: &BackendError) -> Self {
        match err {
            BackendError::NotFound(d) => Self::new(
                ErrorKind::NotFound,
                format!("secret \"{name}\" was not found: {d}"),
            ),
            BackendError::Forbidden(d) => Self::new(
                ErrorKind::Forbidden,
                format!("the host may not read secret \"{name}\": {d}"),
            ),
            BackendError::Unavailable(d) | BackendError::Invalid(d) => Self::new(
                ErrorKind::Unavailable,
                format!("secret \"{name}\" is unavailable: {d}"),
            ),
        }
    }
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for SecretError {}
