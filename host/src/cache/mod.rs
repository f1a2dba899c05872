//! The secret cache (design section 5): TTL, refresh-ahead, stale-while-revalidate,
//! stale-if-error, negative caching, single-flight per key, bounded (LRU), values wiped on
//! eviction.
//!
//! [`CachedBackend`] wraps any [`Backend`] and is itself one, so the store does not know it is
//! there. Every vault call runs in a task of its own (a *flight*), one per key at a time, so a
//! caller that stops waiting never cancels it. What a caller waits for:
//!
//! - a value younger than its TTL: nothing; past its refresh point (80% of the TTL, less up to
//!   10% jitter) one background flight starts;
//! - a value past its TTL but within stale-if-error (usable): at most `refresh-wait` from the
//!   start of the flight, then the stale value while the flight goes on (RFC 5861); nothing
//!   at all if the vault's last answer for the key was a failure;
//! - nothing usable: the flight, bounded only by the request's own timeout.
//!
//! A failed flight is remembered: no new one starts for the key until a backoff has passed
//! (0.5 s doubling per failure, capped at the TTL clamped to 1..=30 s, with jitter), so a
//! failing vault sees one call per key per backoff step while callers get the stale value at
//! once. Callers with nothing usable wait for the backoff to end and share the next call.
//!
//! Keys are [`fold`]ed names (and versions): Key Vault ignores case, so `db-password` and
//! `DB-Password` are one entry, one flight and one vault read.

mod timing;

use crate::BackendError;
use crate::backend::{Backend, CacheStatus, Secret, SecretMeta};
use crate::config::CacheConfig;
use crate::name::fold;
use futures::future::{BoxFuture, FutureExt, Shared};
use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

/// Keys are granted names only (the store checks grants first), so a fast hash is safe here.
type Hasher = foldhash::fast::RandomState;

/// `name`, or `name@version`, folded: names cannot hold `@`, so the two never collide.
type Key = String;

fn key<'a>(name: &'a str, version: Option<&str>) -> std::borrow::Cow<'a, str> {
    match version {
        None => fold(name),
        Some(v) => std::borrow::Cow::Owned(format!("{name}@{v}").to_ascii_lowercase()),
    }
}

/// A vault call in flight, shared by everyone waiting for it.
type Flight = Shared<BoxFuture<'static, Result<Secret, BackendError>>>;

enum Cached {
    Value(Secret),
    NotFound(String),
}

struct Entry {
    /// The last answer worth keeping (a value or a not-found), if any.
    cached: Option<Cached>,
    /// When the request that produced `cached` was sent.
    fetched: Instant,
    /// When a hit starts a background refresh.
    refresh_at: Instant,
    /// Until this time on the coarse clock, a held value is a plain hit (see [`coarse_hit`]).
    hit_until: coarsetime::Instant,
    /// The flight for this key and when it started.
    flight: Option<(Flight, Instant)>,
    /// Failed flights in a row.
    failures: u32,
    /// No new flight before this, after a failure.
    retry_at: Option<Instant>,
}

impl Entry {
    fn empty(now: Instant) -> Self {
        Self {
            cached: None,
            fetched: now,
            refresh_at: now,
            hit_until: coarsetime::Instant::default(),
            flight: None,
            failures: 0,
            retry_at: None,
        }
    }

    /// Whether a new flight may start now: none in the air and no backoff pending.
    fn may_start(&self, now: Instant) -> bool {
        self.flight.is_none() && self.retry_at.is_none_or(|at| now >= at)
    }
}

/// What a caller does next.
enum Plan {
    /// Answer now.
    Ready(Result<Secret, BackendError>),
    /// Wait for the flight; with a usable stale value, only until the deadline.
    Wait {
        flight: Flight,
        stale: Option<(Secret, Instant)>,
    },
    /// Nothing usable is held and the vault failed lately: plan again at this time, when
    /// the backoff ends.
    Retry(Instant),
    /// The answer needs a wait, which a synchronous caller cannot do.
    Later,
}

struct Inner {
    backend: Arc<dyn Backend>,
    config: CacheConfig,
    clock: Clock,
    entries: Mutex<LruCache<Key, Entry, Hasher>>,
    info_flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>, Hasher>>,
    infos: Mutex<LruCache<String, (Instant, SecretMeta), Hasher>>,
    names: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
    /// Public keys, by `name` or `name@version`, with when they were fetched.
    public_keys: Mutex<LruCache<Key, (Instant, crate::backend::keys::PublicKey), Hasher>>,
}

/// Which clock decides a plain hit on the hot path (see [`coarse_hit`]). Every other decision
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
enum Clock {
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
        lock(&self.entries).len()
    }
}

impl CachedBackend {
    /// Caches `backend` with `config`.
    pub fn new(backend: Arc<dyn Backend>, config: CacheConfig) -> Self {
        Self::with_clock(backend, config, CacheClock::default())
    }

    /// Caches `backend` with `config`, deciding plain hits on `clock`.
    pub fn with_clock(backend: Arc<dyn Backend>, config: CacheConfig, clock: CacheClock) -> Self {
        let bound = NonZeroUsize::new(config.max_entries).unwrap_or(NonZeroUsize::MIN);
        let inner = Arc::new(Inner {
            backend,
            config,
            clock: Clock::new(clock),
            entries: Mutex::new(LruCache::with_hasher(bound, Hasher::default())),
            info_flights: Mutex::default(),
            infos: Mutex::new(LruCache::with_hasher(bound, Hasher::default())),
            names: tokio::sync::Mutex::new(None),
            public_keys: Mutex::new(LruCache::with_hasher(bound, Hasher::default())),
        });
        let counted: Arc<dyn crate::metrics::CountEntries> = inner.clone();
        crate::metrics::global().track_cache(Arc::downgrade(&counted));
        Self { inner }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        lock(&self.inner.entries).len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The coarse-clock time until which a value whose refresh is due at `refresh_at` (now being
/// `now`) is a plain hit.
///
/// A hit is the hot path of every guest's `get`, and reading the precise clock is a good part
/// of its cost; the coarse clock (updated every tick, 1 to 4 ms) costs a few loads. The margin
/// covers the coarse clock's lag, so a hit decided this way is one the precise clock would
/// decide too; past this time every decision is made on the precise clock as before.
///
/// The unit tests run the cache on Tokio's paused clock with [`CacheClock::Tokio`], so they
/// take this path too.
fn coarse_hit(clock: &Clock, refresh_at: Instant, now: Instant) -> coarsetime::Instant {
    const MARGIN: std::time::Duration = std::time::Duration::from_millis(20);
    match refresh_at
        .saturating_duration_since(now)
        .checked_sub(MARGIN)
    {
        Some(left) => clock.coarse_now() + coarsetime::Duration::from(left),
        None => coarsetime::Instant::default(),
    }
}

fn with_status(s: &Secret, cache: CacheStatus) -> Secret {
    Secret { cache, ..s.clone() }
}

impl Inner {
    /// Decides what a caller for `key` gets, starting a flight where one is due.
    fn plan(self: &Arc<Self>, key: &str, name: &str, version: Option<&str>, wait: bool) -> Plan {
        let mut entries = lock(&self.entries);
        let entry = entries.get_mut(key);
        if let Some(Entry {
            cached: Some(Cached::Value(secret)),
            hit_until,
            ..
        }) = &entry
            && self.clock.coarse_now() < *hit_until
        {
            return Plan::Ready(Ok(with_status(secret, CacheStatus::Hit)));
        }
        let now = Instant::now();
        let Some(entry) = entry else {
            if !wait {
                return Plan::Later;
            }
            let mut entry = Entry::empty(now);
            let plan = self.start_and_wait(&mut entry, key, name, version, now, None);
            entries.put(key.to_owned(), entry);
            return plan;
        };
        let age = now.saturating_duration_since(entry.fetched);
        match &entry.cached {
            Some(Cached::Value(secret)) if age < self.config.ttl => {
                let hit = with_status(secret, CacheStatus::Hit);
                if now >= entry.refresh_at && entry.may_start(now) {
                    self.start(entry, key, name, version, now);
                }
                return Plan::Ready(Ok(hit));
            }
            Some(Cached::NotFound(detail)) if age < self.config.negative_ttl => {
                return Plan::Ready(Err(BackendError::NotFound(detail.clone())));
            }
            Some(Cached::Value(secret)) if age < self.config.ttl + self.config.stale_if_error => {
                let stale = with_status(secret, CacheStatus::Stale);
                if let Some((flight, started)) = &entry.flight {
                    let deadline = *started + self.config.refresh_wait;
                    return if wait && now < deadline && entry.failures == 0 {
                        Plan::Wait {
                            flight: flight.clone(),
                            stale: Some((stale, deadline)),
                        }
                    } else {
                        Plan::Ready(Ok(stale))
                    };
                }
                if !entry.may_start(now) {
                    return Plan::Ready(Ok(stale));
                }
                if entry.failures > 0 {
                    // The vault failed the last call: try again behind the caller, who gets
                    // the stale value without waiting on a vault that is likely still down.
                    self.start(entry, key, name, version, now);
                    return Plan::Ready(Ok(stale));
                }
                if !wait {
                    return Plan::Later;
                }
                let deadline = now + self.config.refresh_wait;
                return self.start_and_wait(
                    entry,
                    key,
                    name,
                    version,
                    now,
                    Some((stale, deadline)),
                );
            }
            _ => {}
        }
        // Nothing usable is held.
        if let Some((flight, _)) = &entry.flight {
            return if wait {
                Plan::Wait {
                    flight: flight.clone(),
                    stale: None,
                }
            } else {
                Plan::Later
            };
        }
        if let Some(at) = entry.retry_at
            && now < at
        {
            return if wait { Plan::Retry(at) } else { Plan::Later };
        }
        if !wait {
            return Plan::Later;
        }
        self.start_and_wait(entry, key, name, version, now, None)
    }

    fn start_and_wait(
        self: &Arc<Self>,
        entry: &mut Entry,
        key: &str,
        name: &str,
        version: Option<&str>,
        now: Instant,
        stale: Option<(Secret, Instant)>,
    ) -> Plan {
        match self.start(entry, key, name, version, now) {
            Some(flight) => Plan::Wait { flight, stale },
            None => Plan::Ready(Err(BackendError::Unavailable(
                "the secret cache runs vault calls on a Tokio runtime, and there is none".into(),
            ))),
        }
    }

    /// Starts the flight for `key` in a task of its own and records it in `entry`.
    fn start(
        self: &Arc<Self>,
        entry: &mut Entry,
        key: &str,
        name: &str,
        version: Option<&str>,
        now: Instant,
    ) -> Option<Flight> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let guard = FlightGuard {
            inner: self.clone(),
            key: key.to_owned(),
            armed: true,
        };
        let (name, version) = (name.to_owned(), version.map(str::to_owned));
        let task = runtime.spawn(async move {
            let mut guard = guard;
            let started = Instant::now();
            let result = guard.inner.backend.get(&name, version.as_deref()).await;
            guard.armed = false;
            guard.inner.settle(&guard.key, &name, result, started)
        });
        let flight = async move {
            task.await.unwrap_or_else(|_| {
                Err(BackendError::Unavailable(
                    "the vault request stopped before it answered".into(),
                ))
            })
        }
        .boxed()
        .shared();
        entry.flight = Some((flight.clone(), now));
        Some(flight)
    }

    /// Records the answer of a flight sent at `started` and returns what its waiters get.
    fn settle(
        &self,
        key: &str,
        name: &str,
        result: Result<Secret, BackendError>,
        started: Instant,
    ) -> Result<Secret, BackendError> {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        let answer = |entry: &mut Entry, cached: Cached| {
            entry.fetched = started;
            entry.refresh_at = started + timing::refresh_after(self.config.ttl);
            entry.hit_until = match cached {
                Cached::Value(_) => coarse_hit(&self.clock, entry.refresh_at, now),
                Cached::NotFound(_) => coarsetime::Instant::default(),
            };
            entry.cached = Some(cached);
            entry.flight = None;
            entry.failures = 0;
            entry.retry_at = None;
        };
        match result {
            Ok(secret) => {
                let entry = entries.get_or_insert_mut(key.to_owned(), || Entry::empty(now));
                answer(
                    entry,
                    Cached::Value(with_status(&secret, CacheStatus::Uncached)),
                );
                Ok(with_status(&secret, CacheStatus::Miss))
            }
            Err(BackendError::NotFound(detail)) => {
                let entry = entries.get_or_insert_mut(key.to_owned(), || Entry::empty(now));
                answer(entry, Cached::NotFound(detail.clone()));
                Err(BackendError::NotFound(detail))
            }
            // The vault refused us: do not keep serving what we may no longer read.
            Err(e @ BackendError::Forbidden(_)) => {
                entries.pop(key);
                Err(e)
            }
            Err(e @ (BackendError::Unavailable(_) | BackendError::Invalid(_))) => {
                if let Some(entry) = entries.peek_mut(key) {
                    entry.flight = None;
                    entry.failures = entry.failures.saturating_add(1);
                    let wait = timing::backoff(self.config.ttl, entry.failures);
                    entry.retry_at = Some(now + wait);
                    tracing::warn!(
                        secret = %name,
                        error = %e,
                        failures = entry.failures,
                        retry_in_ms = wait.as_millis() as u64,
                        "vault call failed; the cached value, if any, is served until the retry"
                    );
                }
                Err(e)
            }
        }
    }

    /// Called when a flight's task ends without settling (a panic, or the runtime shutting
    /// down): the key must not stay marked as in flight.
    fn abandon(&self, key: &str) {
        if let Some(entry) = lock(&self.entries).peek_mut(key) {
            entry.flight = None;
        }
    }

    fn info_flight(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.info_flights)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Drops the info flight locks nobody holds or waits on.
    fn forget_idle_info_flights(&self) {
        lock(&self.info_flights).retain(|_, f| Arc::strong_count(f) > 1);
    }
}

/// Clears a flight whose task ends without settling.
struct FlightGuard {
    inner: Arc<Inner>,
    key: Key,
    armed: bool,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if self.armed {
            self.inner.abandon(&self.key);
        }
    }
}

impl Inner {
    /// Follows `plan` (and the plans after a backoff) until there is an answer.
    async fn follow(
        self: &Arc<Self>,
        mut plan: Plan,
        key: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Secret, BackendError> {
        loop {
            match plan {
                Plan::Ready(answer) => return answer,
                Plan::Retry(at) => {
                    tokio::time::sleep_until(at).await;
                    plan = self.plan(key, name, version, true);
                }
                Plan::Wait {
                    flight,
                    stale: None,
                } => return flight.await,
                Plan::Wait {
                    flight,
                    stale: Some((stale, deadline)),
                } => {
                    return match tokio::time::timeout_at(deadline, flight).await {
                        Ok(Ok(fresh)) => Ok(fresh),
                        // The vault's own answers about the secret win over the stale value.
                        Ok(Err(e @ (BackendError::NotFound(_) | BackendError::Forbidden(_)))) => {
                            Err(e)
                        }
                        Ok(Err(BackendError::Unavailable(_) | BackendError::Invalid(_)))
                        | Err(_) => Ok(stale),
                    };
                }
                Plan::Later => unreachable!("a caller that can wait is never told to come later"),
            }
        }
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
        let key = key(name, version);
        match self.inner.plan(&key, name, version, true) {
            Plan::Ready(answer) => futures::future::ready(answer).boxed(),
            plan => async move { self.inner.follow(plan, &key, name, version).await }.boxed(),
        }
    }

    fn get_now(&self, name: &str, version: Option<&str>) -> Option<Result<Secret, BackendError>> {
        match self.inner.plan(&key(name, version), name, version, false) {
            Plan::Ready(answer) => Some(answer),
            Plan::Wait { .. } | Plan::Retry(_) | Plan::Later => None,
        }
    }

    /// Metadata is cached for the TTL too (per name and version), one fetch per key at a time.
    fn info<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
        async move {
            let key = key(name, version);
            let fresh = || {
                lock(&self.inner.infos)
                    .get(key.as_ref())
                    .filter(|(at, _)| at.elapsed() < self.inner.config.ttl)
                    .map(|(_, meta)| meta.clone())
            };
            if let Some(meta) = fresh() {
                return Ok(meta);
            }
            let flight = self.inner.info_flight(&key);
            let turn = flight.lock().await;
            if let Some(meta) = fresh() {
                return Ok(meta);
            }
            let meta = self.inner.backend.info(name, version).await?;
            lock(&self.inner.infos).put(key.into_owned(), (Instant::now(), meta.clone()));
            drop(turn);
            drop(flight);
            self.inner.forget_idle_info_flights();
            Ok(meta)
        }
        .boxed()
    }

    /// The name list is cached for the TTL too (listing pages through the whole vault).
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        async move {
            let mut names = self.inner.names.lock().await;
            if let Some((at, list)) = names.as_ref()
                && at.elapsed() < self.inner.config.ttl
            {
                return Ok(list.clone());
            }
            let list = self.inner.backend.list().await?;
            *names = Some((Instant::now(), list.clone()));
            Ok(list)
        }
        .boxed()
    }
}

mod keys;
#[cfg(test)]
mod tests;
