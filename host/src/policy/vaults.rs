//! The vaults a host can read: one [`Backend`] per vault name, shared by every component.

use super::grants::Grants;
use crate::backend::Backend;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The vaults a host can read, shared by every component it runs. Cheap to clone.
#[derive(Clone, Default)]
pub struct Vaults {
    backends: Arc<HashMap<String, Arc<dyn Backend>, foldhash::fast::RandomState>>,
}

impl fmt::Debug for Vaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (name, b) in self.backends.iter() {
            m.entry(name, &b.describe());
        }
        m.finish()
    }
}

impl Vaults {
    /// No vaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the vault called `name`. Grants without a vault name use `default`.
    pub fn insert(&mut self, name: impl Into<String>, backend: Arc<dyn Backend>) -> &mut Self {
        Arc::make_mut(&mut self.backends).insert(name.into(), backend);
        self
    }

    /// Builder form of [`Vaults::insert`].
    pub fn with(mut self, name: impl Into<String>, backend: impl Backend) -> Self {
        self.insert(name, Arc::new(backend));
        self
    }

    /// The backend of vault `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Backend>> {
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
