//! The vaults a host can read: one [`Backend`] per vault name, shared by every component.

use super::budget::{Class, Pool, Share, VaultBudget};
use super::grants::Grants;
use crate::backend::keys::PublicKey;
use crate::backend::{Backend, BackendError, Secret, SecretMeta};
use crate::cache::{Admit, CacheStatus, CachedBackend, Call, Served, refused};
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// One vault as the policy point reads it: its backend, and the backend's cache when it is a
/// [`CachedBackend`], so that a hit is answered without a future and every answer says how it
/// was served. A backend without a cache answers everything `Uncached`.
///
/// It also holds the vault's budgets for the whole host, one pool per class of call, which
/// every component that uses the vault shares.
#[derive(Clone)]
pub(crate) struct Vault {
    backend: Arc<dyn Backend>,
    cached: Option<CachedBackend>,
    budget: VaultBudget,
    secrets: Option<Arc<Pool>>,
    keys: Option<Arc<Pool>>,
}

impl Vault {
    fn new(backend: Arc<dyn Backend>, budget: VaultBudget) -> Self {
        let any: Arc<dyn Any + Send + Sync> = backend.clone();
        let cached = any.downcast::<CachedBackend>().ok().map(|c| (*c).clone());
        Self {
            backend,
            cached,
            budget,
            secrets: budget.secrets.map(Pool::new),
            keys: budget.keys.map(Pool::new),
        }
    }

    /// `component`'s share of this vault's budget for `class` (`None`: no limit).
    pub(crate) fn join(&self, class: Class, component: &Arc<str>) -> Option<Arc<Share>> {
        let pool = match class {
            Class::Secrets => self.secrets.as_ref(),
            Class::Keys => self.keys.as_ref(),
        };
        pool.map(|p| p.join(component))
    }

    /// The backend itself.
    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// A secret's value if it needs no wait (see [`CachedBackend::read_now`]).
    pub(crate) fn read_now(
        &self,
        name: &str,
        version: Option<&str>,
        admit: &dyn Admit,
    ) -> Option<Served<Arc<Secret>>> {
        self.cached.as_ref()?.read_now(name, version, admit)
    }

    /// A secret's value. Each vault call it needs first asks `admit`, as do those below.
    pub(crate) async fn read(
        &self,
        name: &str,
        version: Option<&str>,
        admit: &dyn Admit,
    ) -> Served<Arc<Secret>> {
        match &self.cached {
            Some(cache) => cache.read(name, version, admit).await,
            None if admit.admit(Call::Miss) => {
                uncached(self.backend.get(name, version).await.map(Arc::new))
            }
            None => Err(refused()),
        }
    }

    /// A secret's metadata.
    pub(crate) async fn read_info(
        &self,
        name: &str,
        version: Option<&str>,
        admit: &dyn Admit,
    ) -> Served<SecretMeta> {
        match &self.cached {
            Some(cache) => cache.read_info(name, version, admit).await,
            None if admit.admit(Call::Miss) => uncached(self.backend.info(name, version).await),
            None => Err(refused()),
        }
    }

    /// The names of the vault's enabled secrets.
    pub(crate) async fn read_list(&self, admit: &dyn Admit) -> Served<Vec<String>> {
        match &self.cached {
            Some(cache) => cache.read_list(admit).await,
            None if admit.admit(Call::Miss) => uncached(self.backend.list().await),
            None => Err(refused()),
        }
    }

    /// A key's public key; the vault must hold keys.
    pub(crate) async fn read_public_key(
        &self,
        name: &str,
        version: Option<&str>,
        admit: &dyn Admit,
    ) -> Served<PublicKey> {
        match (&self.cached, self.backend.keys()) {
            (Some(cache), _) => cache.read_public_key(name, version, admit).await,
            (None, Some(keys)) if admit.admit(Call::Miss) => {
                uncached(keys.public_key(name, version).await)
            }
            (None, Some(_)) => Err(refused()),
            (None, None) => Err(BackendError::Unavailable("this vault holds no keys".into())),
        }
    }
}

fn uncached<T>(answer: Result<T, BackendError>) -> Served<T> {
    answer.map(|v| (v, CacheStatus::Uncached))
}

/// The vaults a host can read, shared by every component it runs. Cheap to clone.
#[derive(Clone, Default)]
pub struct Vaults {
    backends: Arc<HashMap<String, Vault, foldhash::fast::RandomState>>,
}

impl fmt::Debug for Vaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (name, b) in self.backends.iter() {
            m.entry(name, &b.backend.describe());
        }
        m.finish()
    }
}

impl Vaults {
    /// No vaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the vault called `name`, with the default [`VaultBudget`]. Grants
    /// without a vault name use `default`.
    pub fn insert(&mut self, name: impl Into<String>, backend: Arc<dyn Backend>) -> &mut Self {
        self.insert_with_budget(name, backend, VaultBudget::default())
    }

    /// Adds (or replaces) the vault called `name`, whose calls from this host, all components
    /// together, stay within `budget`, shared evenly between the components that use it.
    pub fn insert_with_budget(
        &mut self,
        name: impl Into<String>,
        backend: Arc<dyn Backend>,
        budget: VaultBudget,
    ) -> &mut Self {
        Arc::make_mut(&mut self.backends).insert(name.into(), Vault::new(backend, budget));
        self
    }

    /// The budget of vault `name`.
    pub fn budget(&self, name: &str) -> Option<VaultBudget> {
        self.backends.get(name).map(|v| v.budget)
    }

    /// Builder form of [`Vaults::insert`].
    pub fn with(mut self, name: impl Into<String>, backend: impl Backend) -> Self {
        self.insert(name, Arc::new(backend));
        self
    }

    /// The backend of vault `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Backend>> {
        self.backends.get(name).map(Vault::backend)
    }

    /// Vault `name` as the policy point reads it.
    pub(crate) fn vault(&self, name: &str) -> Option<&Vault> {
        self.backends.get(name)
    }

    /// The vault names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.backends.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Checks that every vault the grants (secret and key grants) name exists; the error says
    /// which is missing.
    pub fn check_grants(&self, grants: &Grants) -> anyhow::Result<()> {
        for g in grants.iter().chain(grants.keys()) {
            anyhow::ensure!(
                self.backends.contains_key(&g.vault),
                "grant \"{g}\" names vault \"{}\", which is not configured (configured: {})",
                g.vault,
                self.names().join(", ")
            );
        }
        Ok(())
    }
}
