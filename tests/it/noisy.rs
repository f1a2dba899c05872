//! A noisy neighbour: a guest calling `get` in a tight loop (every call a cache hit, so no
//! call ever waits) must not keep the executor from everything else on its thread. On a
//! single-threaded runtime, a ticker that wants to run every 5 ms shares the thread with
//! `bench-get` making two million cached reads; the longest gap between its ticks shows how
//! long the guest held the thread.

use crate::harness::{Counting, run_guest_with};
use std::time::{Duration, Instant};
use wasm_secrets::cache::CacheConfig;
use wasm_secrets::cache::CachedBackend;
use wasm_secrets::{Grants, SecretsCtx, Vaults};

#[tokio::test(flavor = "current_thread")]
async fn a_guest_reading_in_a_tight_loop_does_not_starve_its_thread() {
    let backend = Counting::new(&[("db-password", "pw")]);
    let vaults = Vaults::new().with(
        "default",
        CachedBackend::new(backend, CacheConfig::default()),
    );
    let ctx = SecretsCtx::new("noisy", Grants::parse(["db-password"]).unwrap(), vaults);
    // Compile and warm the cache before measuring.
    assert_eq!(
        run_guest_with("bench-get", ctx.clone(), &["1000", "db-password"])
            .await
            .0,
        0
    );

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut last = Instant::now();
            let mut longest = Duration::ZERO;
            let mut ticks = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                longest = longest.max(last.elapsed());
                last = Instant::now();
                ticks += 1;
            }
            (longest, ticks)
        }
    });
    let started = Instant::now();
    let (code, out) = run_guest_with("bench-get", ctx, &["300000", "db-password"]).await;
    let busy = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (longest, ticks) = ticker.await.unwrap();
    assert_eq!(code, 0, "{out}");
    eprintln!("guest busy {busy:?}; ticker: {ticks} ticks, longest gap {longest:?}; {out}");
    assert!(
        busy > Duration::from_millis(300),
        "the loop ran too briefly to prove anything"
    );
    // The ticker ran all along (a starved ticker would show no ticks at all, and no gap)...
    assert!(
        u128::from(ticks) >= busy.as_millis() / 20,
        "the ticker ran {ticks} times while the guest looped for {busy:?}"
    );
    // ...and never waited long for the thread: a starved ticker waits the whole loop (over
    // 300 ms, checked above); the bound leaves room for a loaded machine's scheduling.
    assert!(
        longest < Duration::from_millis(250),
        "the ticker waited {longest:?} while the guest looped for {busy:?} ({ticks} ticks)"
    );
}
