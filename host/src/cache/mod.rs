//! The vault cache (design section 5): everything read from a vault (secret values, their
//! metadata, name lists, public keys) goes through one policy, `table.rs`'s: TTL,
//! refresh-ahead, stale-while-revalidate, stale-if-error, negative caching, single-flight per
//! key and backoff, bounded (LRU), values wiped on eviction. Key operations are never cached:
//! each one is the vault's to do.
//!
//! [`CachedBackend`] wraps any [`Backend`] and is itself one. The policy point finds it behind
//! a vault (`Vaults` looks), and reads through its inherent methods ([`CachedBackend::read_now`]
//! and the other `read_*`), which also say how each answer was served ([`CacheStatus`], for
//! the audit log); the [`Backend`] trait itself speaks only of the vault.
//!
//! Every vault call the cache would start for a caller first asks the caller's [`Admit`]
//! (the policy point's vault-call budgets): a refused refresh serves what is held, a refused
//! miss is refused. A hit, or joining a call already in flight, costs nothing.
//!
//! Keys are [`fold`]ed names (and versions): Key Vault ignores case, so `db-password` and
//! `DB-Password` are one entry, one flight and one vault read.

mod admit;
mod config;
mod keys;
mod table;
mod timing;

use crate::BackendError;
pub use crate::audit::CacheStatus;
use crate::backend::keys::PublicKey;
use crate::backend::{Backend, Secret, SecretMeta};
use crate::name::fold;
pub(crate) use admit::refused;
pub use admit::{Admit, Call, Unlimited};
pub use config::CacheConfig;
use futures::future::{BoxFuture, FutureExt};
use std::sync::{Arc, Mutex, MutexGuard};
pub use table::Served;
use table::Table;
use tokio::time::Instant;

/// Keys are granted names only (the store checks grants first), so a fast hash is safe here.
type Hasher = foldhash::fast::RandomState;

/// The cache key of `name`, or of `name@version`, folded: names cannot hold `@`, so the two
/// never collide.
fn key<'a>(name: &'a str, version: Option<&str>) -> std::borrow::Cow<'a, str> {
    match version {
        None => fold(name),
        Some(v) => std::borrow::Cow::Owned(format!("{name}@{v}").to_ascii_lowercase()),
    }
}

struct Inner {
    backend: Arc<dyn Backend>,
    /// Shared whole, so a hit costs one reference count, whatever the secret carries.
    values: Arc<Table<Arc<Secret>>>,
    infos: Arc<Table<SecretMeta>>,
    lists: Arc<Table<Vec<String>>>,
    public_keys: Arc<Table<PublicKey>>,
}

/// Which clock decides a plain hit on the hot path (see `table::coarse_hit`). Every other decision
/// is made on Tokio's clock, whichever this is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheClock {
    /// The coarse system clock: a hit costs a few loads instead of a precise clock read.
    #[default]
    Coarse,
    /// A coarse clock that follows Tokio's: for tests that pause and advance Tokio's clock,
    /// which the system's coarse clock does not follow. A hit reads Tokio's clock, so this is
    /// slower; the decisions are the same.
    Tokio,
}

/// A [`CacheClock`], ready to read.
#[derive(Debug, Clone, Copy)]
pub(super) enum Clock {
    Coarse,
    /// Tokio's clock since `origin`, counted from `coarse_origin`.
    Tokio {
        origin: Instant,
        coarse_origin: coarsetime::Instant,
    },
}

impl Clock {
    fn new(kind: CacheClock) -> Self {
        match kind {
            CacheClock::Coarse => Clock::Coarse,
            CacheClock::Tokio => Clock::Tokio {
                origin: Instant::now(),
                coarse_origin: coarsetime::Instant::now_without_cache_update(),
            },
        }
    }

    /// Now on the coarse clock. (The system's is read with `now_without_cache_update`:
    /// coarsetime's `now` also stores into a process-wide atomic, a cache line every thread
    /// would write.)
    fn coarse_now(&self) -> coarsetime::Instant {
        match self {
            Clock::Coarse => coarsetime::Instant::now_without_cache_update(),
            Clock::Tokio {
                origin,
                coarse_origin,
            } => {
                *coarse_origin
                    + coarsetime::Duration::from(Instant::now().saturating_duration_since(*origin))
            }
        }
    }
}

/// A [`Backend`] with the secret cache in front of it.
#[derive(Clone)]
pub struct CachedBackend {
    inner: Arc<Inner>,
}

impl crate::metrics::CountEntries for Inner {
    fn entries(&self) -> usize {
        self.values.len()
    }
}

impl CachedBackend {
    /// Caches `backend` with `config`.
    pub fn new(backend: Arc<dyn Backend>, config: CacheConfig) -> Self {
        Self::with_clock(backend, config, CacheClock::default())
    }

    /// Caches `backend` with `config`, deciding plain hits on `clock`.
    pub fn with_clock(backend: Arc<dyn Backend>, config: CacheConfig, clock: CacheClock) -> Self {
        let clock = Clock::new(clock);
        let inner = Arc::new(Inner {
            backend,
            values: Table::new(config, clock, "secret"),
            infos: Table::new(config, clock, "secret metadata"),
            lists: Table::new(config, clock, "secret list"),
            public_keys: Table::new(config, clock, "public key"),
        });
        let counted: Arc<dyn crate::metrics::CountEntries> = inner.clone();
        crate::metrics::global().track_cache(Arc::downgrade(&counted));
        Self { inner }
    }

    /// Secret values held now.
    pub fn len(&self) -> usize {
        self.inner.values.len()
    }

    /// Whether no secret value is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How a flight asks the vault for a value (called only when one starts: a hit
    /// allocates nothing).
    fn fetch_value<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> impl Fn() -> BoxFuture<'static, Result<Arc<Secret>, BackendError>> + 'a {
        move || {
            let backend = self.inner.backend.clone();
            let (name, version) = (name.to_owned(), version.map(str::to_owned));
            async move { backend.get(&name, version.as_deref()).await.map(Arc::new) }.boxed()
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the policy point reads: each answer with how the cache served it. (The [`Backend`]
/// methods give the same answers without it.)
impl CachedBackend {
    /// The value of `name` (or of `version`) if it needs no wait: a hit, or a usable stale
    /// value while the vault is failing. `None`: ask [`Self::read`], which waits.
    pub fn read_now(
        &self,
        name: &str,
        version: Option<&str>,
        admit: &dyn Admit,
    ) -> Option<Served<Arc<Secret>>> {
        self.inner
            .values
            .now(&key(name, version), self.fetch_value(name, version), admit)
    }

    /// The value of `name` (or of `version`).
    pub async fn read(
        &self,
        name: &str,
        version: Option<&str>,
        admit: &dyn Admit,
    ) -> Served<Arc<Secret>> {
        let key = key(name, version);
        self.inner
            .values
            .get(&key, self.fetch_value(name, version), admit)
            .await
    }

    /// The metadata of `name` (or of `version`).
    pub async fn read_info(
        &self,
        name: &str,
        version: Option<&str>,
        admit: &dyn Admit,
    ) -> Served<SecretMeta> {
        let fetch = move || {
            let backend = self.inner.backend.clone();
            let (name, version) = (name.to_owned(), version.map(str::to_owned));
            async move { backend.info(&name, version.as_deref()).await }.boxed()
        };
        self.inner
            .infos
            .get(&key(name, version), fetch, admit)
            .await
    }

    /// The names of the enabled secrets in the vault.
    pub async fn read_list(&self, admit: &dyn Admit) -> Served<Vec<String>> {
        let fetch = move || {
            let backend = self.inner.backend.clone();
            async move { backend.list().await }.boxed()
        };
        // One entry: the whole vault's list.
        self.inner.lists.get("", fetch, admit).await
    }
}

impl Backend for CachedBackend {
    fn describe(&self) -> String {
        format!("{} (cached)", self.inner.backend.describe())
    }

    fn keys(&self) -> Option<&dyn crate::backend::keys::KeyBackend> {
        self.inner.backend.keys().map(|_| self as _)
    }

    fn get<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Secret, BackendError>> {
        async move {
            Ok(Secret::clone(
                &self.read(name, version, &Unlimited).await?.0,
            ))
        }
        .boxed()
    }

    fn info<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
        async move { Ok(self.read_info(name, version, &Unlimited).await?.0) }.boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        async move { Ok(self.read_list(&Unlimited).await?.0) }.boxed()
    }
}

#[cfg(test)]
mod tests;
