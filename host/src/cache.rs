//! The secret cache (design section 5): TTL, refresh-ahead, stale-if-error, negative caching,
//! single-flight per key, bounded, values wiped on eviction.
//!
//! [`CachedBackend`] wraps any [`Backend`] and is itself one, so the store does not know it is
//! there. A hit never waits: a value past 80% of its TTL is returned at once and one
//! background refresh starts. Only a miss, or a value past its TTL, waits, and then all
//! concurrent callers for that key share one fetch.

use crate::BackendError;
use crate::backend::{Backend, CacheStatus, Secret, SecretMeta};
use crate::config::CacheConfig;
use futures::future::{BoxFuture, FutureExt};
use std::collections::HashMap;

/// Keys are granted names only (the store checks grants first), so a fast hash is safe here.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// `name`, or `name@version`: names cannot hold `@`, so the two never collide.
type Key = String;

fn key<'a>(name: &'a str, version: Option<&str>) -> std::borrow::Cow<'a, str> {
    match version {
        None => std::borrow::Cow::Borrowed(name),
        Some(v) => std::borrow::Cow::Owned(format!("{name}@{v}")),
    }
}

enum Cached {
    Value(Secret),
    NotFound(String),
}

struct Entry {
    cached: Cached,
    fetched: Instant,
    last_used: Instant,
    refreshing: bool,
}

struct Inner {
    backend: Arc<dyn Backend>,
    config: CacheConfig,
    entries: Mutex<Map<Key, Entry>>,
    flights: Mutex<Map<Key, Arc<tokio::sync::Mutex<()>>>>,
    infos: Mutex<Map<String, (Instant, SecretMeta)>>,
    names: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
}

/// A [`Backend`] with the secret cache in front of it.
#[derive(Clone)]
pub struct CachedBackend {
    inner: Arc<Inner>,
}

enum Lookup {
    Fresh(Result<Secret, BackendError>),
    Expired,
}

impl CachedBackend {
    /// Caches `backend` with `config`.
    pub fn new(backend: Arc<dyn Backend>, config: CacheConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                config,
                entries: Mutex::default(),
                flights: Mutex::default(),
                infos: Mutex::default(),
                names: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Looks `key` up. A fresh value is served (starting a refresh past 80% of the TTL).
    fn lookup(self: &Arc<Self>, key: &str, name: &str, version: Option<&str>) -> Lookup {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = entries.get_mut(key) else {
            return Lookup::Expired;
        };
        let age = now.saturating_duration_since(entry.fetched);
        match &entry.cached {
            Cached::Value(secret) if age < self.config.ttl => {
                entry.last_used = now;
                let mut s = secret.clone();
                s.cache = CacheStatus::Hit;
                if age >= self.config.ttl.mul_f32(0.8)
                    && !entry.refreshing
                    && let Ok(rt) = tokio::runtime::Handle::try_current()
                {
                    entry.refreshing = true;
                    let this = self.clone();
                    let (name, version) = (name.to_owned(), version.map(str::to_owned));
                    rt.spawn(async move { this.refresh(name, version).await });
                }
                Lookup::Fresh(Ok(s))
            }
            Cached::NotFound(detail) if age < self.config.negative_ttl => {
                entry.last_used = now;
                Lookup::Fresh(Err(BackendError::NotFound(detail.clone())))
            }
            _ => Lookup::Expired,
        }
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = flights.get(key) {
            return f.clone();
        }
        flights.entry(key.to_owned()).or_default().clone()
    }

    /// A miss or an expired value: one caller fetches, the others wait for its answer.
    async fn fetch(
        self: &Arc<Self>,
        name: &str,
        version: Option<&str>,
    ) -> Result<Secret, BackendError> {
        let key = key(name, version);
        let flight = self.flight(&key);
        let _turn = flight.lock().await;
        if let Lookup::Fresh(r) = self.lookup(&key, name, version) {
            return r;
        }
        let started = Instant::now();
        let result = self.backend.get(name, version).await;
        let answer = self.store(&key, result, started);
        drop(_turn);
        self.forget_idle_flights();
        answer
    }

    /// Drops the flight locks nobody holds or waits on.
    fn forget_idle_flights(&self) {
        self.flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, f| Arc::strong_count(f) > 1);
    }

    /// A background refresh: replaces the value on success, keeps it on failure.
    async fn refresh(self: Arc<Self>, name: String, version: Option<String>) {
        let key = key(&name, version.as_deref());
        let flight = self.flight(&key);
        let _turn = flight.lock().await;
        let started = Instant::now();
        let result = self.backend.get(&name, version.as_deref()).await;
        if let Err(e) = &result {
            tracing::warn!(secret = %name, error = %e, "background refresh failed; keeping the cached value");
        }
        let _ = self.store(&key, result, started);
    }

    /// Records a backend answer to a request sent at `started` (a value is as old as the
    /// request that fetched it) and returns what the caller gets.
    fn store(
        &self,
        key: &str,
        result: Result<Secret, BackendError>,
        started: Instant,
    ) -> Result<Secret, BackendError> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(mut secret) => {
                secret.cache = CacheStatus::Uncached;
                let served = Secret {
                    cache: CacheStatus::Miss,
                    ..secret.clone()
                };
                entries.insert(
                    key.to_owned(),
                    Entry {
                        cached: Cached::Value(secret),
                        fetched: started,
                        last_used: now,
                        refreshing: false,
                    },
                );
                self.evict(&mut entries);
                Ok(served)
            }
            Err(BackendError::NotFound(detail)) => {
                entries.insert(
                    key.to_owned(),
                    Entry {
                        cached: Cached::NotFound(detail.clone()),
                        fetched: started,
                        last_used: now,
                        refreshing: false,
                    },
                );
                self.evict(&mut entries);
                Err(BackendError::NotFound(detail))
            }
            Err(BackendError::Unavailable(detail)) => {
                let limit = self.config.ttl + self.config.stale_if_error;
                match entries.get_mut(key) {
                    Some(entry) if now.saturating_duration_since(entry.fetched) < limit => {
                        entry.refreshing = false;
                        entry.last_used = now;
                        match &entry.cached {
                            Cached::Value(s) => Ok(Secret {
                                cache: CacheStatus::Stale,
                                ..s.clone()
                            }),
                            Cached::NotFound(_) => Err(BackendError::Unavailable(detail)),
                        }
                    }
                    _ => Err(BackendError::Unavailable(detail)),
                }
            }
            // The vault refused us: do not keep serving what we may no longer read.
            Err(e @ BackendError::Forbidden(_)) => {
                entries.remove(key);
                Err(e)
            }
        }
    }

    /// Drops least-recently-used entries past the bound. Dropping wipes the values.
    fn evict(&self, entries: &mut Map<Key, Entry>) {
        while entries.len() > self.config.max_entries {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => entries.remove(&k),
                None => break,
            };
        }
    }
}

impl Backend for CachedBackend {
    fn describe(&self) -> String {
        format!("{} (cached)", self.inner.backend.describe())
    }

    fn get<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Secret, BackendError>> {
        match self.inner.lookup(&key(name, version), name, version) {
            Lookup::Fresh(r) => futures::future::ready(r).boxed(),
            Lookup::Expired => self.inner.fetch(name, version).boxed(),
        }
    }

    fn get_now(&self, name: &str, version: Option<&str>) -> Option<Result<Secret, BackendError>> {
        match self.inner.lookup(&key(name, version), name, version) {
            Lookup::Fresh(r) => Some(r),
            Lookup::Expired => None,
        }
    }

    /// Metadata is cached for the TTL too, one fetch per name at a time.
    fn info<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
        async move {
            let fresh = || {
                let infos = self.inner.infos.lock().unwrap_or_else(|e| e.into_inner());
                infos
                    .get(name)
                    .filter(|(at, _)| at.elapsed() < self.inner.config.ttl)
                    .map(|(_, meta)| meta.clone())
            };
            if let Some(meta) = fresh() {
                return Ok(meta);
            }
            // Names cannot hold ':', so this key never collides with a value's.
            let flight = self.inner.flight(&format!("info:{name}"));
            let _turn = flight.lock().await;
            if let Some(meta) = fresh() {
                return Ok(meta);
            }
            let meta = self.inner.backend.info(name).await?;
            let mut infos = self.inner.infos.lock().unwrap_or_else(|e| e.into_inner());
            if infos.len() >= self.inner.config.max_entries {
                infos.clear();
            }
            infos.insert(name.to_owned(), (Instant::now(), meta.clone()));
            drop((infos, _turn));
            self.inner.forget_idle_flights();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretValue;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A backend whose answer the test sets, counting calls, answering after `delay`.
    struct Scripted {
        calls: AtomicUsize,
        answer: Mutex<Result<&'static str, BackendError>>,
        delay: Duration,
    }

    impl Scripted {
        fn new(delay: Duration) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                answer: Mutex::new(Ok("v1")),
                delay,
            })
        }
        fn set(&self, a: Result<&'static str, BackendError>) {
            *self.answer.lock().unwrap() = a;
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Backend for Scripted {
        fn describe(&self) -> String {
            "scripted".into()
        }
        fn get<'a>(
            &'a self,
            _: &'a str,
            _: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Secret, BackendError>> {
            async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                let a = self.answer.lock().unwrap().clone();
                a.map(|v| Secret::new(SecretValue::from(v), "ver"))
            }
            .boxed()
        }
        fn info<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(Ok(SecretMeta::default())).boxed()
        }
        fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
            futures::future::ready(Ok(vec![])).boxed()
        }
    }

    fn config() -> CacheConfig {
        CacheConfig {
            ttl: Duration::from_secs(10),
            stale_if_error: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            max_entries: 3,
        }
    }

    fn value(r: &Result<Secret, BackendError>) -> (&str, CacheStatus) {
        let s = r.as_ref().unwrap();
        (s.value.expose(), s.cache)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_fetch() {
        let b = Scripted::new(Duration::from_millis(200));
        let c = CachedBackend::new(b.clone(), config());
        let results = futures::future::join_all((0..100).map(|_| c.get("k", None))).await;
        assert_eq!(b.calls(), 1);
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().unwrap().value.expose() == "v1")
        );
        assert_eq!(value(&c.get("k", None).await), ("v1", CacheStatus::Hit));
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_ahead_never_makes_a_caller_wait() {
        let b = Scripted::new(Duration::from_millis(500));
        let c = CachedBackend::new(b.clone(), config());
        c.get("k", None).await.unwrap();
        b.set(Ok("v2"));
        tokio::time::advance(Duration::from_millis(8_500)).await;
        let start = Instant::now();
        // Past 80% of the TTL: the old value at once, and one refresh behind it.
        assert_eq!(value(&c.get("k", None).await), ("v1", CacheStatus::Hit));
        assert_eq!(value(&c.get("k", None).await), ("v1", CacheStatus::Hit));
        assert_eq!(start.elapsed(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(b.calls(), 2);
        assert_eq!(value(&c.get("k", None).await), ("v2", CacheStatus::Hit));
    }

    #[tokio::test(start_paused = true)]
    async fn stale_if_error_serves_the_last_value_then_stops() {
        let b = Scripted::new(Duration::ZERO);
        let c = CachedBackend::new(b.clone(), config());
        c.get("k", None).await.unwrap();
        b.set(Err(BackendError::Unavailable("vault down".into())));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(value(&c.get("k", None).await), ("v1", CacheStatus::Stale));
        tokio::time::advance(Duration::from_secs(60)).await;
        let e = c.get("k", None).await.unwrap_err();
        assert_eq!(e, BackendError::Unavailable("vault down".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn not_found_is_remembered_for_the_negative_ttl() {
        let b = Scripted::new(Duration::ZERO);
        b.set(Err(BackendError::NotFound("gone".into())));
        let c = CachedBackend::new(b.clone(), config());
        assert!(c.get("k", None).await.is_err());
        assert!(c.get("k", None).await.is_err());
        assert_eq!(b.calls(), 1);
        tokio::time::advance(Duration::from_secs(6)).await;
        b.set(Ok("v1"));
        assert_eq!(value(&c.get("k", None).await), ("v1", CacheStatus::Miss));
    }

    #[tokio::test(start_paused = true)]
    async fn forbidden_drops_the_cached_value() {
        let b = Scripted::new(Duration::ZERO);
        let c = CachedBackend::new(b.clone(), config());
        c.get("k", None).await.unwrap();
        b.set(Err(BackendError::Forbidden("revoked".into())));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(matches!(
            c.get("k", None).await,
            Err(BackendError::Forbidden(_))
        ));
        assert_eq!(c.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn info_is_cached_for_the_ttl() {
        let b = Scripted::new(Duration::ZERO);
        let c = CachedBackend::new(b.clone(), config());
        let all = futures::future::join_all((0..10).map(|_| c.info("k"))).await;
        assert!(all.iter().all(Result::is_ok));
        assert_eq!(b.calls(), 1);
        tokio::time::advance(Duration::from_secs(11)).await;
        c.info("k").await.unwrap();
        assert_eq!(b.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_is_bounded() {
        let b = Scripted::new(Duration::ZERO);
        let c = CachedBackend::new(b.clone(), config());
        for k in ["a", "b", "c", "d", "e"] {
            c.get(k, None).await.unwrap();
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(c.len(), 3);
        // "a" was least recently used and is gone: asking again fetches.
        let before = b.calls();
        c.get("a", None).await.unwrap();
        assert_eq!(b.calls(), before + 1);
    }
}
