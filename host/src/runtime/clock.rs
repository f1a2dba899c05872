//! Time limits: one epoch clock per engine, and each store's deadline a number of its ticks.
//!
//! The engine's epoch is advanced by one thread only, the clock's ticker, every [`TICK`]: it is
//! started by the first store with a time limit and stops when the last handle to it is gone
//! (the [`Runtime`](super::Runtime) and every store with a time limit hold one). A store's
//! deadline is set in ticks from the epoch at its start, so a guest's limit moves no one
//! else's: stores never tick, and however many run on one engine, each is stopped at its own
//! time. A store without a limit has a deadline no clock reaches.
//!
//! Wasm code looks at the epoch; a guest waiting in a host call does not, so [`within`] also
//! stops the wait, a little after the deadline (the epoch stops running wasm first).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::Engine;

/// How often the clock ticks: the granularity of time limits.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// How long after its deadline a guest waiting in a host call is stopped.
pub(crate) const HOST_CALL_GRACE: Duration = Duration::from_millis(50);

/// A deadline no clock reaches: a store without a time limit is never interrupted.
const NEVER: u64 = u64::MAX / 2;

/// The epoch clock of one engine.
pub(crate) struct Clock {
    engine: Engine,
    ticker: Mutex<Option<Arc<Ticker>>>,
}

impl Clock {
    /// The clock of `engine`, not ticking yet.
    pub(crate) fn new(engine: Engine) -> Self {
        Self {
            engine,
            ticker: Mutex::new(None),
        }
    }

    /// A time limit of `timeout` from now, in this clock's ticks; starts the clock if it is
    /// not ticking yet.
    pub(crate) fn limit(&self, timeout: Duration) -> anyhow::Result<TimeLimit> {
        Ok(TimeLimit {
            ticks: ticks(timeout),
            wait_until: tokio::time::Instant::now() + timeout + HOST_CALL_GRACE,
            _ticker: self.ticker()?,
        })
    }

    fn ticker(&self) -> anyhow::Result<Arc<Ticker>> {
        let mut ticker = self.ticker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = &*ticker {
            return Ok(running.clone());
        }
        let started = Arc::new(Ticker::start(self.engine.clone())?);
        *ticker = Some(started.clone());
        Ok(started)
    }
}

/// A store's time limit. The store's data holds it, and with it the clock's ticker.
pub(crate) struct TimeLimit {
    ticks: u64,
    wait_until: tokio::time::Instant,
    _ticker: Arc<Ticker>,
}

impl TimeLimit {
    /// The latest a guest may still be waiting in a host call: the limit, and a grace for the
    /// epoch to stop running wasm first.
    pub(crate) fn wait_until(&self) -> tokio::time::Instant {
        self.wait_until
    }
}

/// The epoch deadline of a store with `limit`, in ticks from now: the limit's, or never.
pub(crate) fn epoch_deadline(limit: Option<&TimeLimit>) -> u64 {
    limit.map_or(NEVER, |l| l.ticks)
}

/// Runs `guest` to its end, or until `wait_until` (see [`TimeLimit::wait_until`]) while it
/// waits: then `None`, and `guest` is dropped where it waits.
pub(crate) async fn within<F: Future>(
    wait_until: Option<tokio::time::Instant>,
    guest: F,
) -> Option<F::Output> {
    match wait_until {
        Some(at) => tokio::time::timeout_at(at, guest).await.ok(),
        None => Some(guest.await),
    }
}

/// Ticks for `timeout`: rounded up, plus one, since the first tick may come at once. A guest
/// is stopped no earlier than its limit, and at most two ticks after it on a quiet machine.
pub(crate) fn ticks(timeout: Duration) -> u64 {
    let n = timeout.as_nanos().div_ceil(TICK.as_nanos()) + 1;
    u64::try_from(n).unwrap_or(NEVER).min(NEVER)
}

/// The thread advancing the engine's epoch every [`TICK`]; it stops when dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("wasm-secrets-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| anyhow::anyhow!("cannot start the epoch clock's thread: {e}"))?;
        Ok(Self { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_never_shorter_than_asked_and_at_most_two_ticks_longer() {
        assert_eq!(ticks(Duration::ZERO), 1);
        assert_eq!(ticks(TICK), 2);
        assert_eq!(ticks(TICK + Duration::from_nanos(1)), 3);
        assert_eq!(ticks(Duration::from_millis(500)), 51);
        assert_eq!(ticks(Duration::MAX), NEVER);
    }

    #[tokio::test]
    async fn the_clock_starts_once_and_stops_when_its_last_holder_is_gone() {
        let clock = Clock::new(Engine::default());
        let (a, b) = (
            clock.limit(Duration::from_secs(1)).unwrap(),
            clock.limit(Duration::from_secs(1)).unwrap(),
        );
        assert!(Arc::ptr_eq(&a._ticker, &b._ticker), "one ticker per clock");
        let stopped = a._ticker.stop.clone();
        drop((clock, a));
        assert!(!stopped.load(Ordering::Relaxed), "a store still holds it");
        drop(b);
        assert!(stopped.load(Ordering::Relaxed));
    }
}
