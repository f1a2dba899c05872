//! Credential sources: where the host's Azure access tokens come from (design section 5).
//!
//! Each source is one module behind the [`TokenCredential`] trait: [`imds`], [`app_service`]
//! (and its 2017 form), [`arc`], [`workload_identity`], [`client_secret`] and [`azure_cli`].
//! [`from_env`] picks one from a [`CredentialKind`] and the environment. All HTTP goes through
//! [`HttpClient`](crate::http::HttpClient), so the destination rules and the loopback guard
//! apply to every source.
//!
//! Tokens live in zeroizing memory and are never printed: [`AccessToken`]'s `Debug` is
//! redacted, and [`CredentialError`] messages are built from statuses, error codes and fixed
//! text, never from a response body, a token or a secret.
//!
//! [`CredentialKind`]: kind::CredentialKind

pub mod app_service;
pub mod arc;
pub mod azure_cli;
pub mod client_secret;
mod detect;
mod entra;
mod env;
pub(crate) mod expiry;
pub mod exposure;
pub mod imds;
mod kind;
mod retry;
pub mod workload_identity;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use zeroize::Zeroizing;

use crate::BackendError;
use crate::http::HttpError;

pub use detect::from_env;
pub use env::Env;
pub(crate) use expiry::parse_token;
pub use expiry::{parse_epoch, parse_expires_on};
pub use kind::CredentialKind;
pub use retry::RetryPolicy;

/// A source of access tokens.
pub trait TokenCredential: Send + Sync + 'static {
    /// The source: `imds`, `app-service`, `app-service-2017`, `azure-arc`,
    /// `workload-identity`, `client-secret` or `azure-cli`.
    fn kind(&self) -> &'static str;

    /// A token for `resource`, such as `https://vault.azure.net`.
    fn get_token<'a>(
        &'a self,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>>;

    /// Names the source and identity, for token cache keys and logs (no secrets).
    fn cache_key(&self) -> String {
        self.kind().to_owned()
    }
}

impl fmt::Debug for dyn TokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenCredential({})", self.cache_key())
    }
}

/// An access token and its expiry. The token is wiped on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: Zeroizing<String>,
    expires_on: SystemTime,
}

impl AccessToken {
    /// Wraps `token`, valid until `expires_on`.
    pub fn new(token: String, expires_on: SystemTime) -> Self {
        Self {
            token: Zeroizing::new(token),
            expires_on,
        }
    }

    /// The token itself, for an `Authorization` header and nothing else.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// When the token stops being valid.
    pub fn expires_on(&self) -> SystemTime {
        self.expires_on
    }

    pub(crate) fn with_expiry(mut self, expires_on: SystemTime) -> Self {
        self.expires_on = expires_on;
        self
    }

    /// Time left before expiry at `now` (zero if expired).
    pub fn remaining_at(&self, now: SystemTime) -> Duration {
        self.expires_on.duration_since(now).unwrap_or_default()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self
            .expires_on
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        write!(f, "AccessToken(<redacted>, expires_on={secs})")
    }
}

/// Why no token. Messages never hold a token, a secret or a response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The endpoint is unreachable, slow, throttled, failing (5xx) or answered nonsense.
    #[error("token source unavailable: {0}")]
    Unavailable(String),
    /// The endpoint refused (4xx): identity not assigned, bad secret, expired assertion.
    #[error("token request rejected: {0}")]
    Rejected(String),
    /// The source cannot be used as configured: missing variables, bad URLs, refused destination.
    #[error("credential not configured: {0}")]
    NotConfigured(String),
}

impl CredentialError {
    /// The detail text, without the kind.
    pub fn detail(&self) -> &str {
        match self {
            Self::Unavailable(d) | Self::Rejected(d) | Self::NotConfigured(d) => d,
        }
    }

    /// Prefixes the detail with `source` (such as `imds`).
    pub(crate) fn context(self, source: &str) -> Self {
        match self {
            Self::Unavailable(d) => Self::Unavailable(format!("{source}: {d}")),
            Self::Rejected(d) => Self::Rejected(format!("{source}: {d}")),
            Self::NotConfigured(d) => Self::NotConfigured(format!("{source}: {d}")),
        }
    }
}

impl From<HttpError> for CredentialError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Refused(_) | HttpError::Setup(_) => Self::NotConfigured(e.to_string()),
            _ => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<CredentialError> for BackendError {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Rejected(_) => BackendError::Forbidden(e.to_string()),
            _ => BackendError::Unavailable(e.to_string()),
        }
    }
}

/// A user-assigned managed identity, as configured: at most one of the three may be set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAssigned {
    /// By client (application) id.
    pub client_id: Option<String>,
    /// By object (principal) id.
    pub object_id: Option<String>,
    /// By Azure resource id.
    pub resource_id: Option<String>,
}

/// One way to name a user-assigned identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAssignedId {
    /// Client (application) id.
    ClientId(String),
    /// Object (principal) id.
    ObjectId(String),
    /// Azure resource id.
    ResourceId(String),
}

impl UserAssigned {
    /// The one identity named, `None` for system-assigned, or an error if more than one is set.
    pub fn id(&self) -> Result<Option<UserAssignedId>, CredentialError> {
        fn set(o: &Option<String>) -> Option<&str> {
            o.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        let ids: Vec<UserAssignedId> = [
            set(&self.client_id).map(|s| UserAssignedId::ClientId(s.into())),
            set(&self.object_id).map(|s| UserAssignedId::ObjectId(s.into())),
            set(&self.resource_id).map(|s| UserAssignedId::ResourceId(s.into())),
        ]
        .into_iter()
        .flatten()
        .collect();
        match ids.len() {
            0 => Ok(None),
            1 => Ok(ids.into_iter().next()),
            _ => Err(CredentialError::NotConfigured(
                "set at most one of client-id, object-id and resource-id".into(),
            )),
        }
    }
}

impl UserAssignedId {
    /// A short label for cache keys and logs, such as `client_id=...`.
    pub fn label(&self) -> String {
        match self {
            Self::ClientId(v) => format!("client_id={v}"),
            Self::ObjectId(v) => format!("object_id={v}"),
            Self::ResourceId(v) => format!("resource_id={v}"),
        }
    }
}

/// `kind` or `kind/identity`, for [`TokenCredential::cache_key`].
pub(crate) fn key_with(kind: &str, id: Option<&UserAssignedId>) -> String {
    match id {
        Some(id) => format!("{kind}/{}", id.label()),
        None => kind.to_owned(),
    }
}

/// Checks that `resource` is an absolute http(s) URL, so it is safe in a query or an argv.
pub(crate) fn check_resource(resource: &str) -> Result<(), CredentialError> {
    match url::Url::parse(resource) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
        _ => Err(CredentialError::NotConfigured(format!(
            "resource {resource:?} is not an http(s) URL"
        ))),
    }
}
