//! Time limits for guests, the same for `run` and `serve`: each store carries its own
//! wall-clock deadline, and the engine's epoch is only the clock that makes wasm look at it.
//!
//! An epoch is shared by every store of an engine, so a store's deadline must never be "the
//! next tick": a tick from anyone (another run's ticker, a server's) would stop it. Instead a
//! store with a time limit checks its own deadline on every tick and goes on until it passes;
//! a store without one never stops for ticks at all. However many tickers an engine has,
//! each guest is stopped at its own time and no other.

use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// How often a [`Ticker`] advances the epoch: the granularity of time limits.
pub const TICK: Duration = Duration::from_millis(10);

/// Gives `store` a time limit of `timeout` from now (none: it never stops for the epoch).
/// Past it, running wasm traps with [`Trap::Interrupt`] at the next tick.
pub fn set_time_limit<T: 'static>(store: &mut Store<T>, timeout: Option<Duration>) {
    match timeout {
        None => {
            // Unreachable whatever ticks: a limitless guest is never interrupted.
            store.set_epoch_deadline(u64::MAX / 2);
            store.epoch_deadline_trap();
        }
        Some(timeout) => {
            let deadline = Instant::now() + timeout;
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |_| {
                if Instant::now() >= deadline {
                    Err(Trap::Interrupt.into())
                } else {
                    Ok(UpdateDeadline::Continue(1))
                }
            });
        }
    }
}

/// Advances an engine's epoch every [`TICK`] while it lives, so that stores with a time limit
/// look at it. Any number may tick one engine; see the module docs.
pub struct Ticker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Ticker {
    /// Starts ticking `engine`.
    pub fn start(engine: Engine) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
        Self { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
