//! Backends: where secret values come from. Nothing here knows about wasmtime.
//!
//! A backend answers what one vault holds: a secret's value and metadata, the names it holds,
//! and, for a vault with keys, its keys. The Key Vault client and the local secrets file
//! implement it; so can an embedder's own store. Caching is not its business: see
//! [`crate::cache`].

mod error;
pub mod file;
pub mod keys;
pub mod keyvault;

pub use error::BackendError;

use crate::SecretValue;
use futures::future::BoxFuture;
use std::sync::Arc;

/// The vault meant where none is named: by a grant, or by a secrets file's top-level secrets.
pub const DEFAULT_VAULT: &str = "default";

/// A secret value with the version it came from.
#[derive(Debug, Clone)]
pub struct Secret {
    /// The value, in zeroizing memory.
    pub value: SecretValue,
    /// The version identifier the backend returned (shared, so cache hits copy nothing).
    pub version: Arc<str>,
    /// The secret's name as the vault spells it (Key Vault answers with the name as it was
    /// created, whatever case it was asked in), if the backend said. For the audit log.
    pub name: Option<Arc<str>>,
}

impl Secret {
    /// A value straight from a backend.
    pub fn new(value: SecretValue, version: impl Into<Arc<str>>) -> Self {
        Self {
            value,
            version: version.into(),
            name: None,
        }
    }

    /// The same, naming the secret as the vault spells it.
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// `answered`, the name a vault's answer gives for a request for `asked`, if it is that same
/// name in another case; anything else (a missing name, an invalid one, another name) is not
/// trusted as the object's spelling.
pub fn same_name(asked: &str, answered: Option<String>) -> Option<String> {
    answered.filter(|n| crate::is_valid_name(n) && n.eq_ignore_ascii_case(asked))
}

/// What a backend knows about a secret, without its value. Times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretMeta {
    /// The secret's name as the vault spells it, if the backend said.
    pub name: Option<String>,
    /// The version these metadata are of.
    pub version: String,
    /// The content type, if one was stored.
    pub content_type: Option<String>,
    /// Whether the secret may be read.
    pub enabled: bool,
    /// Not valid before.
    pub not_before: Option<u64>,
    /// Not valid after.
    pub expires: Option<u64>,
    /// Created at.
    pub created: Option<u64>,
    /// Last updated at.
    pub updated: Option<u64>,
    /// Tags, sorted by key.
    pub tags: Vec<(String, String)>,
}

/// A source of secrets: one vault.
///
/// Implementations must never put a value in an error.
pub trait Backend: std::any::Any + Send + Sync {
    /// A short description for logs, such as `file s.toml` or `key vault https://x.vault.azure.net`.
    fn describe(&self) -> String;

    /// The value of `name`: the latest version, or `version` if given.
    fn get<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Secret, BackendError>>;

    /// The vault's keys, if it has any (Key Vault does; the file backend does not).
    fn keys(&self) -> Option<&dyn keys::KeyBackend> {
        None
    }

    /// The metadata of `name`: of its latest version, or of `version` if given (that
    /// version's own, also when it is disabled).
    fn info<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMeta, BackendError>>;

    /// The names of the enabled secrets in this vault.
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>>;
}
