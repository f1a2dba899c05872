//! The cache's timing rules, on a paused clock: what a caller waits for, and how often the
//! backend is asked, under each kind of backend answer.

use super::*;
use crate::SecretValue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A backend whose answer and delay the test sets, counting calls.
struct Scripted {
    calls: AtomicUsize,
    answer: Mutex<Result<&'static str, BackendError>>,
    delay: Mutex<Duration>,
}

impl Scripted {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            answer: Mutex::new(Ok("v1")),
            delay: Mutex::new(delay),
        })
    }
    fn set(&self, a: Result<&'static str, BackendError>) {
        *self.answer.lock().unwrap() = a;
    }
    fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
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
            let delay = *self.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let a = self.answer.lock().unwrap().clone();
            a.map(|v| Secret::new(SecretValue::from(v), v))
        }
        .boxed()
    }
    fn info<'a>(
        &'a self,
        _: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
        async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let delay = *self.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let a = self.answer.lock().unwrap().clone();
            a.map(|v| SecretMeta {
                version: version.unwrap_or("latest").to_owned(),
                content_type: Some(v.to_owned()),
                ..SecretMeta::default()
            })
        }
        .boxed()
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let delay = *self.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let a = self.answer.lock().unwrap().clone();
            a.map(|v| vec![v.to_owned()])
        }
        .boxed()
    }
}

fn config() -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_secs(10),
        stale_if_error: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(5),
        refresh_wait: Duration::from_millis(50),
        max_entries: 3,
    }
}

/// A cache over `b` whose hot path follows Tokio's paused clock: the tests take the path
/// production takes.
fn cache(b: Arc<Scripted>, config: CacheConfig) -> CachedBackend {
    CachedBackend::with_clock(b, config, CacheClock::Tokio)
}

fn down() -> BackendError {
    BackendError::Unavailable("vault down".into())
}

fn value(r: &Served<Arc<Secret>>) -> (&str, CacheStatus) {
    let (s, cache) = r.as_ref().unwrap();
    (s.value.expose(), *cache)
}

/// Gets `k` and says how long the caller waited.
async fn timed(c: &CachedBackend) -> (Served<Arc<Secret>>, Duration) {
    let start = Instant::now();
    let r = c.read("k", None, &Unlimited).await;
    (r, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_fetch() {
    let b = Scripted::new(Duration::from_millis(200));
    let c = cache(b.clone(), config());
    let results = futures::future::join_all((0..100).map(|_| c.read("k", None, &Unlimited))).await;
    assert_eq!(b.calls(), 1);
    assert!(
        results
            .iter()
            .all(|r| value(r) == ("v1", CacheStatus::Miss))
    );
    assert_eq!(
        value(&c.read("k", None, &Unlimited).await),
        ("v1", CacheStatus::Hit)
    );
}

#[tokio::test(start_paused = true)]
async fn every_spelling_of_a_name_or_version_is_one_entry() {
    let b = Scripted::new(Duration::from_millis(10));
    let c = cache(b.clone(), config());
    assert_eq!(
        value(&c.read("Db-Password", None, &Unlimited).await),
        ("v1", CacheStatus::Miss)
    );
    for name in ["db-password", "DB-PASSWORD"] {
        assert_eq!(
            value(&c.read(name, None, &Unlimited).await),
            ("v1", CacheStatus::Hit),
            "{name}"
        );
    }
    c.read("db-password", Some("ABC"), &Unlimited)
        .await
        .unwrap();
    assert_eq!(
        value(&c.read("DB-password", Some("abc"), &Unlimited).await),
        ("v1", CacheStatus::Hit)
    );
    c.info("DB-Password", None).await.unwrap();
    c.info("db-password", None).await.unwrap();
    assert_eq!(b.calls(), 3, "one get, one get of the version, one info");
    assert_eq!(c.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_never_makes_a_caller_wait() {
    let b = Scripted::new(Duration::from_millis(500));
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set(Ok("v2"));
    // Before 70% of the TTL nothing is refreshed.
    tokio::time::advance(Duration::from_millis(6_500)).await;
    assert_eq!(
        value(&c.read("k", None, &Unlimited).await),
        ("v1", CacheStatus::Hit)
    );
    tokio::task::yield_now().await;
    assert_eq!(b.calls(), 1);
    // Past 80%: the old value at once, and one refresh behind it.
    tokio::time::advance(Duration::from_millis(2_000)).await;
    for _ in 0..5 {
        let (r, waited) = timed(&c).await;
        assert_eq!(value(&r), ("v1", CacheStatus::Hit));
        assert_eq!(waited, Duration::ZERO);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(b.calls(), 2);
    assert_eq!(
        value(&c.read("k", None, &Unlimited).await),
        ("v2", CacheStatus::Hit)
    );
}

#[tokio::test(start_paused = true)]
async fn past_the_ttl_a_slow_vault_costs_at_most_the_refresh_wait() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set(Ok("v2"));
    b.set_delay(Duration::from_secs(3));
    tokio::time::advance(Duration::from_secs(11)).await;
    // The first caller starts the refresh and waits the budget; then it gets the stale value.
    let (r, waited) = timed(&c).await;
    assert_eq!(value(&r), ("v1", CacheStatus::Stale));
    assert_eq!(waited, Duration::from_millis(50));
    // Everyone after the budget gets it at once; the one refresh stays the only call.
    for _ in 0..10 {
        tokio::time::advance(Duration::from_millis(200)).await;
        let (r, waited) = timed(&c).await;
        assert_eq!(value(&r), ("v1", CacheStatus::Stale));
        assert_eq!(waited, Duration::ZERO);
    }
    assert_eq!(b.calls(), 2);
    // When the slow answer comes, it is served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        value(&c.read("k", None, &Unlimited).await),
        ("v2", CacheStatus::Hit)
    );
    assert_eq!(b.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn callers_joining_a_refresh_wait_only_until_its_budget_ends() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set_delay(Duration::from_secs(5));
    tokio::time::advance(Duration::from_secs(11)).await;
    let first = tokio::spawn({
        let c = c.clone();
        async move { timed(&c).await.1 }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (r, waited) = timed(&c).await;
    assert_eq!(value(&r), ("v1", CacheStatus::Stale));
    assert_eq!(waited, Duration::from_millis(20));
    assert_eq!(first.await.unwrap(), Duration::from_millis(50));
    assert_eq!(b.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_quick_refresh_past_the_ttl_serves_the_new_value() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set(Ok("v2"));
    b.set_delay(Duration::from_millis(10));
    tokio::time::advance(Duration::from_secs(11)).await;
    let (r, waited) = timed(&c).await;
    assert_eq!(value(&r), ("v2", CacheStatus::Miss));
    assert_eq!(waited, Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_failing_vault_is_asked_once_per_backoff_step_and_never_waited_on() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set(Err(down()));
    tokio::time::advance(Duration::from_secs(10)).await;
    // One caller every 10 ms for 10 s, past the TTL.
    for _ in 0..1000 {
        let (r, waited) = timed(&c).await;
        assert_eq!(value(&r), ("v1", CacheStatus::Stale));
        assert_eq!(waited, Duration::ZERO);
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    // Backoff steps of 0.5, 1, 2, 4, 8, 10 (the cap) s, each jittered to 50-100%: five
    // refreshes need at most 0.5+1+2+4 = 7.5 s of waits, a sixth at least 0.25+0.5+1+2+4 =
    // 7.75 s, a seventh at least 5 s more; so 10 s hold 5 or 6 (the first fetch is one more).
    let refreshes = b.calls() - 1;
    assert!((5..=6).contains(&refreshes), "{refreshes} refreshes");
    // Recovery: the new value is served within one capped backoff (the TTL, 10 s) plus one
    // poll: the call made when the backoff ends starts behind a caller who is not kept
    // waiting, so the next poll, 100 ms later, is the first to see its answer.
    b.set(Ok("v2"));
    let mut waited_for = Duration::ZERO;
    loop {
        if value(&c.read("k", None, &Unlimited).await).0 == "v2" {
            break;
        }
        tokio::time::advance(Duration::from_millis(100)).await;
        waited_for += Duration::from_millis(100);
        assert!(waited_for <= Duration::from_millis(10_100), "no recovery");
    }
}

#[tokio::test(start_paused = true)]
async fn once_the_vault_has_failed_no_caller_waits_even_the_budget() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set(Err(down()));
    b.set_delay(Duration::from_secs(2));
    tokio::time::advance(Duration::from_secs(11)).await;
    // The first refresh past the TTL gets the budget: the vault was healthy last time.
    let (r, waited) = timed(&c).await;
    assert_eq!(value(&r), ("v1", CacheStatus::Stale));
    assert_eq!(waited, Duration::from_millis(50));
    // It fails after 2 s; every later refresh starts behind a caller that does not wait.
    for _ in 0..100 {
        tokio::time::advance(Duration::from_millis(100)).await;
        let (r, waited) = timed(&c).await;
        assert_eq!(value(&r), ("v1", CacheStatus::Stale));
        assert_eq!(waited, Duration::ZERO);
    }
    assert!(b.calls() >= 4, "{} calls", b.calls());
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_ends_then_callers_wait_out_the_backoff_and_share_one_call() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set(Err(down()));
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        value(&c.read("k", None, &Unlimited).await),
        ("v1", CacheStatus::Stale)
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    // Past stale-if-error: this caller has nothing usable and gets the vault's answer.
    assert_eq!(c.read("k", None, &Unlimited).await.unwrap_err(), down());
    let calls = b.calls();
    // Right after a failure, callers with nothing usable wait for the backoff to end, and
    // then share one call: the vault is not asked once per caller.
    b.set(Ok("v2"));
    let start = Instant::now();
    let all = futures::future::join_all((0..20).map(|_| c.read("k", None, &Unlimited))).await;
    assert!(all.iter().all(|r| value(r) == ("v2", CacheStatus::Miss)));
    assert_eq!(b.calls(), calls + 1);
    let waited = start.elapsed();
    // The second failure in a row: a backoff of 0.5-1 s.
    assert!(
        waited >= Duration::from_millis(500) && waited <= Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_does_not_cancel_the_fetch() {
    let b = Scripted::new(Duration::from_secs(1));
    let c = cache(b.clone(), config());
    let gave_up =
        tokio::time::timeout(Duration::from_millis(100), c.read("k", None, &Unlimited)).await;
    assert!(gave_up.is_err());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        value(&c.read("k", None, &Unlimited).await),
        ("v1", CacheStatus::Hit)
    );
    assert_eq!(b.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn not_found_is_remembered_for_the_negative_ttl() {
    let b = Scripted::new(Duration::ZERO);
    b.set(Err(BackendError::NotFound("gone".into())));
    let c = cache(b.clone(), config());
    let gone = BackendError::NotFound("gone".into());
    assert_eq!(c.read("k", None, &Unlimited).await.unwrap_err(), gone);
    assert_eq!(
        c.read_now("k", None, &Unlimited).unwrap().unwrap_err(),
        gone
    );
    assert_eq!(b.calls(), 1);
    tokio::time::advance(Duration::from_secs(6)).await;
    b.set(Ok("v1"));
    assert_eq!(
        value(&c.read("k", None, &Unlimited).await),
        ("v1", CacheStatus::Miss)
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_secret_is_not_served_stale() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set(Err(BackendError::NotFound("gone".into())));
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        c.read("k", None, &Unlimited).await.unwrap_err(),
        BackendError::NotFound("gone".into())
    );
}

#[tokio::test(start_paused = true)]
async fn forbidden_drops_the_cached_value() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    c.read("k", None, &Unlimited).await.unwrap();
    b.set(Err(BackendError::Forbidden("revoked".into())));
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        c.read("k", None, &Unlimited).await.unwrap_err(),
        BackendError::Forbidden("revoked".into())
    );
    assert_eq!(c.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn read_now_answers_only_what_needs_no_wait() {
    let b = Scripted::new(Duration::from_secs(1));
    let c = cache(b.clone(), config());
    assert!(c.read_now("k", None, &Unlimited).is_none());
    assert_eq!(
        b.calls(),
        0,
        "read_now must not start a fetch it cannot wait for"
    );
    c.read("k", None, &Unlimited).await.unwrap();
    assert_eq!(
        value(&c.read_now("k", None, &Unlimited).unwrap()),
        ("v1", CacheStatus::Hit)
    );
}

#[tokio::test(start_paused = true)]
async fn info_is_cached_for_the_ttl() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    let all = futures::future::join_all((0..10).map(|_| c.info("k", None))).await;
    assert!(all.iter().all(Result::is_ok));
    assert_eq!(b.calls(), 1);
    // A version's metadata are its own entry, not the latest's.
    assert_eq!(c.info("k", Some("v1")).await.unwrap().version, "v1");
    assert_eq!(c.info("k", None).await.unwrap().version, "latest");
    assert_eq!(b.calls(), 2);
    tokio::time::advance(Duration::from_secs(11)).await;
    c.info("k", None).await.unwrap();
    assert_eq!(b.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_cache_is_bounded_and_drops_the_least_recently_used() {
    let b = Scripted::new(Duration::ZERO);
    let c = cache(b.clone(), config());
    for k in ["a", "b", "c"] {
        c.read(k, None, &Unlimited).await.unwrap();
    }
    // Touch "a" so "b" is now the least recently used.
    c.read("a", None, &Unlimited).await.unwrap();
    for k in ["d", "e"] {
        c.read(k, None, &Unlimited).await.unwrap();
    }
    assert_eq!(c.len(), 3);
    let before = b.calls();
    c.read("a", None, &Unlimited).await.unwrap();
    assert_eq!(b.calls(), before, "a was used recently and is kept");
    c.read("b", None, &Unlimited).await.unwrap();
    assert_eq!(
        b.calls(),
        before + 1,
        "b was least recently used and is gone"
    );
}

/// Metadata and name lists follow the one policy too: concurrent misses share one call,
/// refresh-ahead never makes a caller wait, and past the TTL a failing vault gets one call
/// per backoff step while callers get the stale answer at once.
#[tokio::test(start_paused = true)]
async fn metadata_and_lists_share_calls_refresh_ahead_and_serve_stale_while_the_vault_fails() {
    let b = Scripted::new(Duration::from_millis(200));
    let c = cache(b.clone(), config());
    let infos = futures::future::join_all((0..20).map(|_| c.info("k", None))).await;
    let lists = futures::future::join_all((0..20).map(|_| c.list())).await;
    assert!(
        infos
            .iter()
            .all(|m| m.as_ref().unwrap().content_type.as_deref() == Some("v1"))
    );
    assert!(lists.iter().all(|l| l.as_ref().unwrap() == &["v1"]));
    assert_eq!(
        b.calls(),
        2,
        "one info call and one list call for 40 callers"
    );

    // Past the refresh point (at most 80% of the TTL): answered at once, refreshed behind.
    b.set(Ok("v2"));
    tokio::time::advance(Duration::from_secs(9)).await;
    let start = Instant::now();
    assert_eq!(
        c.info("k", None).await.unwrap().content_type.as_deref(),
        Some("v1")
    );
    assert_eq!(c.list().await.unwrap(), ["v1"]);
    assert_eq!(start.elapsed(), Duration::ZERO, "refresh-ahead never waits");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.calls(), 4);
    assert_eq!(
        c.info("k", None).await.unwrap().content_type.as_deref(),
        Some("v2")
    );
    assert_eq!(c.list().await.unwrap(), ["v2"]);

    // Past the TTL with the vault down: stale within the refresh wait, then at once.
    b.set(Err(down()));
    tokio::time::advance(Duration::from_secs(11)).await;
    let start = Instant::now();
    assert_eq!(
        c.info("k", None).await.unwrap().content_type.as_deref(),
        Some("v2")
    );
    assert_eq!(c.list().await.unwrap(), ["v2"]);
    assert!(
        start.elapsed() <= Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = b.calls();
    for _ in 0..50 {
        assert!(c.info("k", None).await.is_ok());
        assert!(c.list().await.is_ok());
    }
    assert_eq!(b.calls(), calls, "no call during the backoff");
}

/// A metadata read of a secret the vault says is gone is remembered for the negative TTL.
#[tokio::test(start_paused = true)]
async fn a_missing_secrets_metadata_is_remembered_for_the_negative_ttl() {
    let b = Scripted::new(Duration::ZERO);
    b.set(Err(BackendError::NotFound("gone".into())));
    let c = cache(b.clone(), config());
    for _ in 0..5 {
        assert!(matches!(
            c.info("k", None).await,
            Err(BackendError::NotFound(_))
        ));
    }
    assert_eq!(b.calls(), 1);
    tokio::time::advance(Duration::from_secs(6)).await;
    b.set(Ok("back"));
    assert_eq!(
        c.info("k", None).await.unwrap().content_type.as_deref(),
        Some("back")
    );
    assert_eq!(b.calls(), 2);
}
