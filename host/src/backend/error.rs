//! What a backend reports when it cannot answer. The policy point turns it into the error a
//! guest sees ([`crate::Error`]).
//!
//! Details name the object and the reason. They never hold a secret value, a token or a
//! credential: they are built only from names, statuses and fixed text.

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
