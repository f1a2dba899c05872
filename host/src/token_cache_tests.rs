use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::future::BoxFuture;

use super::*;

const RESOURCE: &str = "https://vault.azure.net";

/// Mints `tok-N` tokens living `lifetime`, after `delay`; fails while `fail` is set.
struct Fake {
    calls: AtomicUsize,
    fail: AtomicBool,
    lifetime: Duration,
    delay: Duration,
}

impl Fake {
    fn new(lifetime: Duration, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            fail: AtomicBool::new(false),
            lifetime,
            delay,
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TokenCredential for Fake {
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn get_token<'a>(
        &'a self,
        _resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(CredentialError::Unavailable("fake is down".into()));
            }
            Ok(AccessToken::new(
                format!("tok-{n}"),
                SystemTime::now() + self.lifetime,
            ))
        })
    }
}

fn short_policy(refresh_before: Duration) -> TokenCachePolicy {
    TokenCachePolicy {
        refresh_before,
        half_life_from: Duration::from_secs(7200),
        expiry_margin: Duration::from_millis(50),
        failure_cooldown: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_callers_make_one_fetch() {
    let fake = Fake::new(Duration::from_secs(3600), Duration::from_millis(100));
    let cache = Arc::new(TokenCache::new(fake.clone()));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token(RESOURCE).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().secret(), "tok-0");
    }
    assert_eq!(fake.calls(), 1);
    assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
    assert_eq!(fake.calls(), 1);
    // Another resource is another entry.
    cache.token("https://storage.azure.com").await.unwrap();
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn concurrent_failures_share_one_fetch() {
    let fake = Fake::new(Duration::from_secs(3600), Duration::from_millis(100));
    fake.fail.store(true, Ordering::SeqCst);
    let cache = Arc::new(TokenCache::new(fake.clone()));
    let results = futures::future::join_all((0..20).map(|_| cache.token(RESOURCE))).await;
    for r in &results {
        assert_eq!(
            r.as_ref().unwrap_err(),
            &CredentialError::Unavailable("fake is down".into())
        );
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn refreshes_early() {
    // Lives 2 s, refresh when < 1 s remains: due after 1 s.
    let fake = Fake::new(Duration::from_secs(2), Duration::ZERO);
    let cache = TokenCache::with_policy(fake.clone(), short_policy(Duration::from_secs(1)));
    assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
    assert_eq!(fake.calls(), 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    // Due: the caller gets the valid token at once and the refresh runs behind it.
    assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-1");
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn a_slow_refresh_never_delays_a_caller_holding_a_valid_token() {
    let fake = Fake::new(Duration::from_secs(2), Duration::from_secs(5));
    let cache = TokenCache::with_policy(fake.clone(), short_policy(Duration::from_secs(1)));
    cache.token(RESOURCE).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
        assert!(
            start.elapsed() < Duration::from_millis(20),
            "{:?}",
            start.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fake.calls(), 2, "one refresh in flight, not one per caller");
}

#[tokio::test]
async fn failed_refresh_keeps_the_valid_token() {
    let fake = Fake::new(Duration::from_secs(2), Duration::ZERO);
    let cache = TokenCache::with_policy(fake.clone(), short_policy(Duration::from_secs(1)));
    assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
    fake.fail.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Due, the refresh fails, the old token is still valid: served.
    assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
    assert_eq!(fake.calls(), 2);
    // Once it has expired, the failure shows.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let err = cache.token(RESOURCE).await.unwrap_err();
    assert!(err.to_string().contains("fake is down"), "{err}");
}

#[tokio::test]
async fn failure_cooldown_limits_refresh_attempts() {
    let fake = Fake::new(Duration::from_secs(3), Duration::ZERO);
    let policy = TokenCachePolicy {
        failure_cooldown: Duration::from_secs(60),
        ..short_policy(Duration::from_secs(2))
    };
    let cache = TokenCache::with_policy(fake.clone(), policy);
    cache.token(RESOURCE).await.unwrap();
    fake.fail.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for _ in 0..10 {
        assert_eq!(cache.token(RESOURCE).await.unwrap().secret(), "tok-0");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expiring_during_a_run_never_fail_a_request() {
    // Tokens live 600 ms and are refreshed when < 300 ms remain; the fetch takes 20 ms.
    let fake = Fake::new(Duration::from_millis(600), Duration::from_millis(20));
    let cache = Arc::new(TokenCache::with_policy(
        fake.clone(),
        short_policy(Duration::from_millis(300)),
    ));
    let deadline = Instant::now() + Duration::from_secs(2);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut served = 0;
                while Instant::now() < deadline {
                    let t = cache.token(RESOURCE).await.expect("no failed request");
                    assert!(
                        t.expires_on() > SystemTime::now(),
                        "served an expired token"
                    );
                    served += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                served
            })
        })
        .collect();
    for w in workers {
        assert!(w.await.unwrap() > 10);
    }
    // About one fetch per 300 ms, never one per request.
    let calls = fake.calls();
    assert!((4..=12).contains(&calls), "{calls} fetches");
}

#[test]
fn refresh_points() {
    let p = TokenCachePolicy::default();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let h = |s: u64| Duration::from_secs(s);
    // 1 h token: 5 minutes before expiry.
    assert_eq!(p.refresh_at(t0, t0 + h(3600)), t0 + h(3300));
    // 24 h token: half its lifetime.
    assert_eq!(p.refresh_at(t0, t0 + h(86400)), t0 + h(43200));
    // Exactly 2 h: half.
    assert_eq!(p.refresh_at(t0, t0 + h(7200)), t0 + h(3600));
    // 4 minutes: half, not "always".
    assert_eq!(p.refresh_at(t0, t0 + h(240)), t0 + h(120));
    // Already expired: now.
    assert_eq!(p.refresh_at(t0, t0 - h(5)), t0);
}

#[tokio::test]
async fn debug_shows_no_token() {
    let fake = Fake::new(Duration::from_secs(3600), Duration::ZERO);
    let cache = TokenCache::new(fake);
    let t = cache.token(RESOURCE).await.unwrap();
    assert!(!format!("{t:?} {cache:?}").contains("tok-0"));
}
