//! Serving a `wasi:http/proxy` component: a fresh instance per request from one
//! pre-instantiated component, per-request limits, a cap on concurrent requests, egress rules,
//! and graceful shutdown.

mod state;

pub use crate::egress::{EgressHooks, EgressKind, EgressPolicy, EgressRule};
pub use state::ProxyState;

use crate::SecretsCtx;
use crate::runtime::{Limits, StoreLimiter};
use anyhow::Context as _;
use bytes_body::text;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The per-request timeout `serve` uses when none is configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server runs guests.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Per-request limits. The timeout covers the whole request: at it the guest is stopped,
    /// its concurrency slot freed, and the client answered 504.
    pub limits: Limits,
    /// Requests handled at once; more get 503.
    pub max_concurrent: usize,
    /// Environment variables for the guest.
    pub env: Vec<(String, String)>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            limits: Limits {
                timeout: Some(DEFAULT_REQUEST_TIMEOUT),
                ..Limits::default()
            },
            max_concurrent: 100,
            env: Vec::new(),
        }
    }
}

/// The tick of the epoch clock that enforces per-request timeouts.
const TICK: Duration = Duration::from_millis(10);

/// A `wasi:http/proxy` component, ready to serve.
pub struct Server {
    pre: ProxyPre<ProxyState>,
    secrets: SecretsCtx,
    egress: Arc<EgressPolicy>,
    options: ServeOptions,
    permits: Arc<Semaphore>,
}

/// An engine for serving: async, epoch interruption, and the pooling allocator sized for
/// `max_concurrent` instances.
pub fn serve_engine(
    max_concurrent: usize,
    fuel: bool,
    max_memory: Option<usize>,
) -> anyhow::Result<Engine> {
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    let n = u32::try_from(max_concurrent.max(1)).unwrap_or(u32::MAX);
    pooling.total_component_instances(n);
    pooling.total_core_instances(n.saturating_mul(4));
    pooling.total_memories(n.saturating_mul(2));
    pooling.total_tables(n.saturating_mul(4));
    if let Some(m) = max_memory {
        pooling.max_memory_size(m);
    }
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(fuel);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config).map_err(anyhow::Error::from)
}

impl Server {
    /// Links WASI, wasi:http, the secrets interfaces and wasi:config, and pre-instantiates
    /// `component`, which must be a `wasi:http/proxy`.
    pub fn new(
        engine: &Engine,
        component: &Component,
        secrets: SecretsCtx,
        egress: EgressPolicy,
        options: ServeOptions,
    ) -> anyhow::Result<Self> {
        let mut linker: Linker<ProxyState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        crate::add_to_linker(&mut linker, ProxyState::secrets_view).map_err(anyhow::Error::from)?;
        crate::add_wasi_config_to_linker(&mut linker, ProxyState::secrets_view)
            .map_err(anyhow::Error::from)?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| anyhow::anyhow!("the component cannot be served: {}", first_line(&e)))?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "the component is not a wasi:http proxy (it must export wasi:http/incoming-handler): {}",
                first_line(&e)
            )
        })?;
        Ok(Self {
            pre,
            secrets,
            egress: Arc::new(egress),
            permits: Arc::new(Semaphore::new(options.max_concurrent.max(1))),
            options,
        })
    }

    fn new_store(&self) -> Store<ProxyState> {
        let limits = self.options.limits;
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout()
            .inherit_stderr()
            .envs(&self.options.env);
        wasi.socket_addr_check(|_, _| Box::pin(async { false }));
        wasi.allow_ip_name_lookup(false);
        let state = ProxyState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: EgressHooks::new(self.egress.clone()),
            secrets: self.secrets.clone(),
            limiter: StoreLimiter::new(&limits),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(limits.max_hostcall_bytes);
        if let Some(fuel) = limits.fuel {
            let _ = store.set_fuel(fuel);
        }
        let ticks = limits.timeout.map_or(u64::MAX / 2, |t| {
            (t.as_millis() / TICK.as_millis()).max(1) as u64 + 1
        });
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }

    /// Handles one request in a fresh instance.
    pub async fn handle(
        &self,
        req: hyper::Request<Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return text(
                503,
                "busy: the server is at its limit of concurrent requests; retry later\n",
            );
        };
        let mut store = self.new_store();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = store
            .data_mut()
            .http_view()
            .new_incoming_request(Scheme::Http, req)
            .and_then(|req| {
                let out = store.data_mut().http_view().new_response_outparam(sender)?;
                Ok((req, out))
            });
        let (req, out) = match prepared {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pass the request to the guest");
                return text(400, "bad request\n");
            }
        };
        let pre = self.pre.clone();
        // The deadline lives inside the guest's task: when it passes, the guest is dropped
        // wherever it is waiting (a host call, outgoing HTTP), and with it the instance and
        // its concurrency permit. Compute inside wasm traps at the same time by epoch.
        let deadline = self
            .options
            .limits
            .timeout
            .map(|t| tokio::time::Instant::now() + t + TICK * 5);
        let task = tokio::spawn(async move {
            let _permit = permit;
            let guest = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            match deadline {
                Some(d) => tokio::time::timeout_at(d, guest)
                    .await
                    .unwrap_or_else(|_| Err(wasmtime::Error::new(TimedOut))),
                None => guest.await,
            }
        });
        match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => {
                tracing::warn!(?code, "the guest answered with an error code");
                text(500, "the component failed to produce a response\n")
            }
            Err(_) => {
                let failure = match task.await {
                    Ok(Ok(())) => Err("the component returned without a response".to_owned()),
                    Ok(Err(e)) if is_timeout(&e) => Ok(()),
                    Ok(Err(e)) => Err(crate::runtime::describe_failure(&e, &self.options.limits)),
                    Err(e) => Err(format!("the component's task failed: {e}")),
                };
                match failure {
                    Ok(()) => {
                        tracing::warn!("request stopped at its time limit");
                        text(504, "the component ran past its time limit (--timeout)\n")
                    }
                    Err(why) => {
                        tracing::warn!(%why, "request failed");
                        text(500, &format!("{why}\n"))
                    }
                }
            }
        }
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops accepting and
    /// waits (up to 30 s) for requests in flight.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let ticker = EpochTicker::start(self.pre.engine().clone());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted.context("accepting a connection")?,
                () = &mut shutdown => break,
            };
            let server = self.clone();
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight after 30 s; stopping anyway");
        }
        drop(ticker);
        Ok(())
    }
}

/// The request's deadline passed while its guest was waiting.
#[derive(Debug)]
struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request ran past its time limit")
    }
}

impl std::error::Error for TimedOut {}

/// Whether the guest was stopped by the request's deadline (the timer, or the epoch trap).
fn is_timeout(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<TimedOut>().is_some()
        || matches!(
            e.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        )
}

fn first_line(e: &wasmtime::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or("").to_owned()
}

/// Advances the engine's epoch every tick while the server runs.
struct EpochTicker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

mod bytes_body {
    use http_body_util::{BodyExt, Full};
    use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

    /// A plain-text response made by the host itself.
    pub fn text(status: u16, body: &str) -> hyper::Response<HyperOutgoingBody> {
        let body = Full::new(hyper::body::Bytes::from(body.to_owned()))
            .map_err(|never| match never {})
            .boxed_unsync();
        let mut r = hyper::Response::new(body);
        *r.status_mut() =
            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}
