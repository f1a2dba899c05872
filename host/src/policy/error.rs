//! The one error of the policy point: a kind and a message for people, for secrets and keys
//! alike. Each guest interface maps it once: `wasm-secrets:secrets/types.error` and
//! `keys.key-error` in [`crate::wit`], `wasi:config/store.error` in [`crate::wasi_config`].
//!
//! Messages name the object and the reason. They never hold a secret value, key material, an
//! input or output of a key operation, a token or a credential: they are built only from
//! names, statuses and fixed text.

use super::grants::ObjectKind;
use crate::BackendError;
use crate::keys::{KeyOp, KeyOps};
use crate::name::quoted;
use std::fmt;

/// The kinds of [`Error`], spelled as in the WIT variants (`error` and `key-error`).
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
    /// `invalid-argument`: only key operations refuse an input.
    InvalidArgument,
    /// The component is over its vault-call budget: the guest sees `unavailable`, the audit
    /// log and metrics `over-budget`.
    OverBudget,
}

impl ErrorKind {
    /// The kinds a secret request can end with, in the WIT `error` variant's order.
    pub(crate) const SECRETS: [Self; 6] = [
        Self::InvalidName,
        Self::NotGranted,
        Self::NotFound,
        Self::Forbidden,
        Self::Unavailable,
        Self::OverBudget,
    ];

    /// The WIT spelling of this kind (`over-budget` is the audit log's: the guest sees
    /// `unavailable`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidName => "invalid-name",
            Self::NotGranted => "not-granted",
            Self::NotFound => "not-found",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::InvalidArgument => "invalid-argument",
            Self::OverBudget => "over-budget",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused or failed request for a secret or a key, as the guest will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: String) -> Self {
        Self { kind, message }
    }

    /// Which case of the WIT variant this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message: names the object and the reason, never a value.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn invalid_name(kind: ObjectKind, name: &str) -> Self {
        let message = match kind {
            ObjectKind::Secret => format!(
                "invalid secret name {}: a name is 1 to 127 characters of 0-9, A-Z, a-z and -",
                quoted(name)
            ),
            ObjectKind::Key => format!(
                "\"{}\" is not a valid key name: use 1 to 127 characters of 0-9, A-Z, a-z and -",
                crate::audit::name_for_log(name)
            ),
        };
        Self::new(ErrorKind::InvalidName, message)
    }

    pub(crate) fn not_granted(kind: ObjectKind, name: &str) -> Self {
        let message = match kind {
            ObjectKind::Secret => format!("secret \"{name}\" is not granted to this component"),
            ObjectKind::Key => format!("this component has no key grant for \"{name}\""),
        };
        Self::new(ErrorKind::NotGranted, message)
    }

    /// `get` of a use-only secret.
    pub(crate) fn use_only(name: &str, destinations: &str) -> Self {
        Self::new(
            ErrorKind::NotGranted,
            format!(
                "secret \"{name}\" is use-only: the host applies it to requests to {destinations}, and it cannot be read; put {{{{secret:{name}}}}} in a header of such a request"
            ),
        )
    }

    /// A marker naming a secret whose grant is not use-only.
    pub(crate) fn not_use_only(name: &str) -> Self {
        Self::new(
            ErrorKind::NotGranted,
            format!(
                "secret \"{name}\" has no use-only grant, so the host applies it to no request (a use-only grant says where it may go)"
            ),
        )
    }

    /// A use-only secret asked for a destination its grant does not name.
    pub(crate) fn use_elsewhere(name: &str, destination: &str, destinations: &str) -> Self {
        Self::new(
            ErrorKind::NotGranted,
            format!(
                "secret \"{name}\" may be sent to {destinations} only, not to {destination}; nothing was sent"
            ),
        )
    }

    pub(crate) fn op_not_granted(name: &str, op: KeyOp, allowed: KeyOps) -> Self {
        Self::new(
            ErrorKind::NotGranted,
            format!(
                "this component's grant for key \"{name}\" does not allow {op} (it allows {allowed})"
            ),
        )
    }

    pub(crate) fn invalid_version(name: &str, version: &str) -> Self {
        Self::new(
            ErrorKind::InvalidName,
            format!(
                "invalid version {} of secret \"{name}\": a version is 1 to 64 letters and digits",
                quoted(version)
            ),
        )
    }

    pub(crate) fn version_not_granted(name: &str, version: &str) -> Self {
        Self::new(
            ErrorKind::NotGranted,
            format!(
                "version {} of secret \"{name}\" is not granted to this component (its grant pins another version)",
                quoted(version)
            ),
        )
    }

    /// The grant's vault is not on this host (for a key: not a Key Vault on this host).
    pub(crate) fn no_vault(kind: ObjectKind, name: &str) -> Self {
        let message = match kind {
            ObjectKind::Secret => format!(
                "secret \"{name}\" is unavailable: its vault is not configured on this host"
            ),
            ObjectKind::Key => format!(
                "key \"{name}\" is unavailable: its vault is not a Key Vault configured on this host"
            ),
        };
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Maps a backend failure for the object the guest called `name`.
    pub(crate) fn from_backend(kind: ObjectKind, name: &str, err: &BackendError) -> Self {
        use BackendError as B;
        let (kind, message) = match (kind, err) {
            (ObjectKind::Secret, B::NotFound(d)) => (
                ErrorKind::NotFound,
                format!("secret \"{name}\" was not found: {d}"),
            ),
            (ObjectKind::Secret, B::Forbidden(d)) => (
                ErrorKind::Forbidden,
                format!("the host may not read secret \"{name}\": {d}"),
            ),
            (ObjectKind::Secret, B::Unavailable(d) | B::Invalid(d)) => (
                ErrorKind::Unavailable,
                format!("secret \"{name}\" is unavailable: {d}"),
            ),
            (ObjectKind::Key, B::NotFound(d)) => (
                ErrorKind::NotFound,
                format!("key \"{name}\" was not found: {d}"),
            ),
            (ObjectKind::Key, B::Forbidden(d)) => (
                ErrorKind::Forbidden,
                format!("the vault refused the operation on key \"{name}\": {d}"),
            ),
            (ObjectKind::Key, B::Unavailable(d)) => (
                ErrorKind::Unavailable,
                format!("key \"{name}\" is unavailable: {d}"),
            ),
            (ObjectKind::Key, B::Invalid(d)) => (
                ErrorKind::InvalidArgument,
                format!("the vault refused the input for key \"{name}\": {d}"),
            ),
        };
        Self::new(kind, message)
    }

    /// A vault call for the object the guest called `name` was refused by the component's
    /// vault-call budget; nothing was sent.
    pub(crate) fn over_budget(kind: ObjectKind, name: &str) -> Self {
        let object = match kind {
            ObjectKind::Secret => "secret",
            ObjectKind::Key => "key",
        };
        Self::new(
            ErrorKind::OverBudget,
            format!(
                "{object} \"{name}\" is unavailable: this component is over its vault-call budget (too many vault reads or key operations in a short time); what is cached is still served, and the budget refills within seconds"
            ),
        )
    }

    /// A vault could not list its secrets.
    pub(crate) fn list_failed(err: &BackendError) -> Self {
        let kind = Self::from_backend(ObjectKind::Secret, "*", err).kind;
        Self::new(kind, format!("cannot list secrets: {}", err.detail()))
    }

    /// The request's audit event could not be written; `name` as the log would have had it.
    pub(crate) fn audit_failed(kind: ObjectKind, name: &str) -> Self {
        let object = match kind {
            ObjectKind::Secret => "",
            ObjectKind::Key => "key ",
        };
        Self::new(
            ErrorKind::Unavailable,
            format!(
                "the request for {object}\"{name}\" was refused: the host cannot write its audit log"
            ),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}
