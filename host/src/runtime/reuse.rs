//! WASI 0.3 handlers served from instances that take several requests, some at once: how many,
//! for how long, and each request's limits inside an instance it shares. The dispatching itself
//! (a worker task per instance, a queue of requests, a new instance when none is free) is
//! wasmtime-wasi-http's `ProxyHandler`, as `wasmtime serve` and Spin use it; this module is what
//! it asks of us.
//!
//! Limits in a shared instance: memory and tables are the instance's (its memory lives across
//! requests); each accepted request brings its fuel to the instance's tank (the first also pays
//! for the instance's start) and moves the epoch deadline to its own time limit, so wasm runs no
//! longer than the latest request's limit; a request past its limit is answered 504 and the
//! instance takes no more requests and is retired once the others are done or past theirs, as
//! after a trap.

use super::clock::{self, HOST_CALL_GRACE};
use super::limits::Limits;
use super::setup::{Reuse, Setup};
use super::state::HostState;
use super::stopped::Stopped;
use crate::metrics::InFlight;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy as Handler, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// Makes the instances of one WASI 0.3 handler, each with the store a request of a WASI 0.2
/// handler would get.
pub(super) struct Instances {
    pub(super) setup: Arc<Setup>,
    pub(super) pre: ServicePre<HostState>,
}

impl HandlerState for Instances {
    type StoreData = HostState;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiry, Worker>> {
        let mut store = self.setup.store().map_err(wasmtime::Error::from_anyhow)?;
        // Within the store's first time limit, set when it was made.
        let service = self.pre.instantiate_async(&mut store).await?;
        let options = &self.setup.options;
        Ok(Instance {
            store,
            proxy: Handler::P3(service),
            view: <HostState as WasiHttpView>::http,
            expiration: Expiry::new(options.limits.timeout, options.reuse.idle_timeout),
            state: Worker {
                limits: options.limits,
                reuse: options.reuse,
                started: AtomicBool::new(false),
                _in_flight: crate::metrics::global().instance_in_flight(),
            },
        })
    }
}

/// One instance's bounds and limits, as its worker asks.
pub(super) struct Worker {
    limits: Limits,
    reuse: Reuse,
    /// Whether a request was accepted yet: the first one's fuel was in the tank from the start.
    started: AtomicBool,
    _in_flight: InFlight,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        (): (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let first = !self.started.swap(true, Ordering::Relaxed);
        if let (Some(fuel), false) = (self.limits.fuel, first) {
            // No fuel counted: the engine refused the limit when the handler was made.
            let left = store.get_fuel().unwrap_or(0);
            let _ = store.set_fuel(left.saturating_add(fuel));
        }
        match self.limits.timeout {
            Some(timeout) => {
                store.set_epoch_deadline(clock::ticks(timeout));
                Box::pin(tokio::time::sleep(timeout))
            }
            None => Box::pin(std::future::pending()),
        }
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            let why = Stopped::from_error(&e, &self.limits);
            tracing::debug!(%why, "a reused instance was retired");
        }
        drop(store);
    }
}

/// When an instance is retired from outside its event loop (which a guest spinning in wasm or
/// a host call holding the store can stall): idle past the idle timeout; with requests, past the
/// latest one's time limit and the grace a host call gets; after its responses, when the work
/// left runs past one time limit.
pub(super) struct Expiry {
    timeout: Option<Duration>,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed_for: Option<Instant>,
}

impl Expiry {
    fn new(timeout: Option<Duration>, idle: Duration) -> Self {
        Self {
            timeout,
            idle,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed_for: None,
        }
    }
}

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let limit = match status {
            WorkerStatus::Idle => Some(this.idle),
            WorkerStatus::Requests => this.timeout.map(|t| t + HOST_CALL_GRACE),
            WorkerStatus::PostReturn => this.timeout,
        };
        let Some(at) = limit.and_then(|limit| start.checked_add(limit)) else {
            return Poll::Pending;
        };
        if this.armed_for != Some(at) {
            this.sleep.as_mut().reset(at.into());
            this.armed_for = Some(at);
        }
        this.sleep.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_takes_requests_up_to_its_bounds() {
        let worker = Worker {
            limits: Limits::default(),
            reuse: Reuse {
                max_requests: 3,
                max_concurrent: 2,
                idle_timeout: Duration::from_secs(1),
            },
            started: AtomicBool::new(false),
            _in_flight: crate::metrics::global().instance_in_flight(),
        };
        assert!(matches!(
            worker.should_accept_request(1, 1),
            ShouldAccept::Yes
        ));
        assert!(matches!(
            worker.should_accept_request(2, 2),
            ShouldAccept::No
        ));
        assert!(matches!(
            worker.should_accept_request(0, 3),
            ShouldAccept::Never
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_expires_idle_and_past_its_latest_request() {
        let mut expiry = Box::pin(Expiry::new(
            Some(Duration::from_millis(300)),
            Duration::from_secs(1),
        ));
        let start = Instant::now();
        let poll = |expiry: &mut Pin<Box<Expiry>>, status| {
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            expiry.as_mut().poll(&mut cx, status, start).is_ready()
        };
        assert!(!poll(&mut expiry, WorkerStatus::Requests));
        tokio::time::advance(Duration::from_millis(310)).await;
        assert!(!poll(&mut expiry, WorkerStatus::Requests), "within grace");
        assert!(poll(&mut expiry, WorkerStatus::PostReturn));
        assert!(!poll(&mut expiry, WorkerStatus::Idle));
        tokio::time::advance(Duration::from_millis(700)).await;
        assert!(poll(&mut expiry, WorkerStatus::Idle));
    }
}
