//! The one cache policy, for anything read from a vault: a bounded table of answers by key,
//! with TTL, refresh-ahead, stale-while-revalidate, stale-if-error, negative caching,
//! single-flight and backoff. [`super::CachedBackend`] keeps one table per kind of read
//! (values, metadata, name lists, public keys); the rules below are the same for each.
//!
//! What a caller waits for:
//!
//! - an answer younger than its TTL: nothing; past its refresh point (80% of the TTL, less up
//!   to 10% jitter) one background flight starts;
//! - an answer past its TTL but within stale-if-error (usable): at most `refresh-wait` from the
//!   start of the flight, then the stale answer while the flight goes on (RFC 5861); nothing
//!   at all if the vault's last answer for the key was a failure;
//! - nothing usable: the flight, bounded only by the request's own timeout.
//!
//! Every vault call runs in a task of its own (a *flight*), one per key at a time, so a caller
//! that stops waiting never cancels it. A failed flight is remembered: no new one starts for
//! the key until a backoff has passed (0.5 s doubling per failure, capped at the TTL clamped
//! to 1..=30 s, with jitter), so a failing vault sees one call per key per backoff step while
//! callers get the stale answer at once. Callers with nothing usable wait for the backoff to
//! end and share the next call. A not-found is remembered for the negative TTL; a forbidden
//! drops what was held (the host may no longer read it).

use super::CacheConfig;
use super::CacheStatus;
use super::admit::{Admit, Call, refused};
use super::timing;
use super::{Clock, Hasher, lock};
use crate::BackendError;
use futures::future::{BoxFuture, FutureExt, Shared};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// An answer and how the cache served it.
pub type Served<V> = Result<(V, CacheStatus), BackendError>;

/// A vault call in flight, shared by everyone waiting for it.
type Flight<V> = Shared<BoxFuture<'static, Served<V>>>;

enum Held<V> {
    Value(V),
    NotFound(String),
}

struct Entry<V> {
    /// The last answer worth keeping (a value or a not-found), if any.
    held: Option<Held<V>>,
    /// When the request that produced `held` was sent.
    fetched: Instant,
    /// When a hit starts a background refresh.
    refresh_at: Instant,
    /// Until this time on the coarse clock, a held value is a plain hit (see [`coarse_hit`]).
    hit_until: coarsetime::Instant,
    /// The flight for this key and when it started.
    flight: Option<(Flight<V>, Instant)>,
    /// Failed flights in a row.
    failures: u32,
    /// No new flight before this, after a failure.
    retry_at: Option<Instant>,
}

impl<V> Entry<V> {
    fn empty(now: Instant) -> Self {
        Self {
            held: None,
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
enum Plan<V> {
    /// Answer now.
    Ready(Served<V>),
    /// Wait for the flight; with a usable stale answer, only until the deadline.
    Wait {
        flight: Flight<V>,
        stale: Option<(V, Instant)>,
    },
    /// Nothing usable is held and the vault failed lately: plan again at this time, when
    /// the backoff ends.
    Retry(Instant),
    /// The answer needs a wait, which a synchronous caller cannot do.
    Later,
}

/// One kind of vault answer, cached by key. Keys are [`crate::fold`]ed by the caller.
pub(super) struct Table<V> {
    config: CacheConfig,
    clock: Clock,
    /// What the table holds, for log lines ("secret", "public key", ...).
    what: &'static str,
    entries: Mutex<LruCache<String, Entry<V>, Hasher>>,
}

/// How to ask the vault for one key's answer: called only when a flight starts.
pub(super) trait Fetch<V>: Fn() -> BoxFuture<'static, Result<V, BackendError>> {}
impl<V, F: Fn() -> BoxFuture<'static, Result<V, BackendError>>> Fetch<V> for F {}

impl<V: Clone + Send + Sync + 'static> Table<V> {
    pub(super) fn new(config: CacheConfig, clock: Clock, what: &'static str) -> Arc<Self> {
        let bound = NonZeroUsize::new(config.max_entries).unwrap_or(NonZeroUsize::MIN);
        Arc::new(Self {
            config,
            clock,
            what,
            entries: Mutex::new(LruCache::with_hasher(bound, Hasher::default())),
        })
    }

    /// Entries held now.
    pub(super) fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// The answer for `key` if it needs no wait (a refresh it makes due starts behind it, if
    /// `admit` lets it); `None` when the caller must wait for the vault.
    pub(super) fn now(
        self: &Arc<Self>,
        key: &str,
        fetch: impl Fetch<V>,
        admit: &dyn Admit,
    ) -> Option<Served<V>> {
        match self.plan(key, &fetch, admit, false) {
            Plan::Ready(answer) => Some(answer),
            Plan::Wait { .. } | Plan::Retry(_) | Plan::Later => None,
        }
    }

    /// The answer for `key`, from the table or from `fetch`, by the rules of the module docs;
    /// each vault call it would start for this caller first asks `admit`.
    pub(super) async fn get(
        self: &Arc<Self>,
        key: &str,
        fetch: impl Fetch<V>,
        admit: &dyn Admit,
    ) -> Served<V> {
        let mut plan = self.plan(key, &fetch, admit, true);
        loop {
            match plan {
                Plan::Ready(answer) => return answer,
                Plan::Retry(at) => {
                    tokio::time::sleep_until(at).await;
                    plan = self.plan(key, &fetch, admit, true);
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
                        // The vault's own answers about the object win over the stale one.
                        Ok(Err(e @ (BackendError::NotFound(_) | BackendError::Forbidden(_)))) => {
                            Err(e)
                        }
                        Ok(Err(BackendError::Unavailable(_) | BackendError::Invalid(_)))
                        | Err(_) => Ok((stale, CacheStatus::Stale)),
                    };
                }
                Plan::Later => unreachable!("a caller that can wait is never told to come later"),
            }
        }
    }

    /// Decides what a caller for `key` gets, starting a flight where one is due and `admit`
    /// lets it: a refused refresh serves what is held, a refused miss is refused.
    fn plan(
        self: &Arc<Self>,
        key: &str,
        fetch: &impl Fetch<V>,
        admit: &dyn Admit,
        wait: bool,
    ) -> Plan<V> {
        let mut entries = lock(&self.entries);
        let entry = entries.get_mut(key);
        if let Some(Entry {
            held: Some(Held::Value(value)),
            hit_until,
            ..
        }) = &entry
            && self.clock.coarse_now() < *hit_until
        {
            return Plan::Ready(Ok((value.clone(), CacheStatus::Hit)));
        }
        let now = Instant::now();
        let Some(entry) = entry else {
            if !wait {
                return Plan::Later;
            }
            if !admit.admit(Call::Miss) {
                return Plan::Ready(Err(refused()));
            }
            let mut entry = Entry::empty(now);
            let plan = self.start_and_wait(&mut entry, key, fetch, now, None);
            entries.put(key.to_owned(), entry);
            return plan;
        };
        let age = now.saturating_duration_since(entry.fetched);
        let config = &self.config;
        match &entry.held {
            Some(Held::Value(value)) if age < config.ttl => {
                let hit = (value.clone(), CacheStatus::Hit);
                if now >= entry.refresh_at && entry.may_start(now) && admit.admit(Call::Refresh) {
                    self.start(entry, key, fetch, now);
                }
                return Plan::Ready(Ok(hit));
            }
            Some(Held::NotFound(detail)) if age < config.negative_ttl => {
                return Plan::Ready(Err(BackendError::NotFound(detail.clone())));
            }
            Some(Held::Value(value)) if age < config.ttl + config.stale_if_error => {
                let stale = value.clone();
                if let Some((flight, started)) = &entry.flight {
                    let deadline = *started + config.refresh_wait;
                    return if wait && now < deadline && entry.failures == 0 {
                        Plan::Wait {
                            flight: flight.clone(),
                            stale: Some((stale, deadline)),
                        }
                    } else {
                        Plan::Ready(Ok((stale, CacheStatus::Stale)))
                    };
                }
                if !entry.may_start(now) {
                    return Plan::Ready(Ok((stale, CacheStatus::Stale)));
                }
                if entry.failures == 0 && !wait {
                    return Plan::Later;
                }
                if !admit.admit(Call::Refresh) {
                    return Plan::Ready(Ok((stale, CacheStatus::Stale)));
                }
                if entry.failures > 0 {
                    // The vault failed the last call: try again behind the caller, who gets
                    // the stale answer without waiting on a vault that is likely still down.
                    self.start(entry, key, fetch, now);
                    return Plan::Ready(Ok((stale, CacheStatus::Stale)));
                }
                let deadline = now + config.refresh_wait;
                return self.start_and_wait(entry, key, fetch, now, Some((stale, deadline)));
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
        if !admit.admit(Call::Miss) {
            return Plan::Ready(Err(refused()));
        }
        self.start_and_wait(entry, key, fetch, now, None)
    }

    fn start_and_wait(
        self: &Arc<Self>,
        entry: &mut Entry<V>,
        key: &str,
        fetch: &impl Fetch<V>,
        now: Instant,
        stale: Option<(V, Instant)>,
    ) -> Plan<V> {
        match self.start(entry, key, fetch, now) {
            Some(flight) => Plan::Wait { flight, stale },
            None => Plan::Ready(Err(BackendError::Unavailable(
                "the vault cache runs vault calls on a Tokio runtime, and there is none".into(),
            ))),
        }
    }

    /// Starts the flight for `key` in a task of its own and records it in `entry`.
    fn start(
        self: &Arc<Self>,
        entry: &mut Entry<V>,
        key: &str,
        fetch: &impl Fetch<V>,
        now: Instant,
    ) -> Option<Flight<V>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let guard = FlightGuard {
            table: self.clone(),
            key: key.to_owned(),
            armed: true,
        };
        let call = fetch();
        let task = runtime.spawn(async move {
            let mut guard = guard;
            let started = Instant::now();
            let result = call.await;
            guard.armed = false;
            guard.table.settle(&guard.key, result, started)
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
    fn settle(&self, key: &str, result: Result<V, BackendError>, started: Instant) -> Served<V> {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        let answer = |entry: &mut Entry<V>, held: Held<V>| {
            entry.fetched = started;
            entry.refresh_at = started + timing::refresh_after(self.config.ttl);
            entry.hit_until = match held {
                Held::Value(_) => coarse_hit(&self.clock, entry.refresh_at, now),
                Held::NotFound(_) => coarsetime::Instant::default(),
            };
            entry.held = Some(held);
            entry.flight = None;
            entry.failures = 0;
            entry.retry_at = None;
        };
        match result {
            Ok(value) => {
                let entry = entries.get_or_insert_mut(key.to_owned(), || Entry::empty(now));
                answer(entry, Held::Value(value.clone()));
                Ok((value, CacheStatus::Miss))
            }
            Err(BackendError::NotFound(detail)) => {
                let entry = entries.get_or_insert_mut(key.to_owned(), || Entry::empty(now));
                answer(entry, Held::NotFound(detail.clone()));
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
                        what = self.what,
                        key,
                        error = %e,
                        failures = entry.failures,
                        retry_in_ms = wait.as_millis() as u64,
                        "vault call failed; the cached answer, if any, is served until the retry"
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
}

/// The coarse-clock time until which an answer whose refresh is due at `refresh_at` (now
/// being `now`) is a plain hit.
///
/// A hit is the hot path of every guest's `get`, and reading the precise clock is a good part
/// of its cost; the coarse clock (updated every tick, 1 to 4 ms) costs a few loads. The margin
/// covers the coarse clock's lag, so a hit decided this way is one the precise clock would
/// decide too; past this time every decision is made on the precise clock as before.
///
/// The unit tests run the cache on Tokio's paused clock with [`super::CacheClock::Tokio`], so
/// they take this path too.
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

/// Clears a flight whose task ends without settling.
struct FlightGuard<V: Clone + Send + Sync + 'static> {
    table: Arc<Table<V>>,
    key: String,
    armed: bool,
}

impl<V: Clone + Send + Sync + 'static> Drop for FlightGuard<V> {
    fn drop(&mut self) {
        if self.armed {
            self.table.abandon(&self.key);
        }
    }
}
