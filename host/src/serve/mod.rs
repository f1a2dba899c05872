//! Serving `wasi:http/proxy` components: each pre-instantiated once, a fresh instance per
//! request, per-request limits, a cap on concurrent requests, egress rules, routes (the longest
//! matching prefix picks the component), a route table that can be replaced while serving, and
//! graceful shutdown.

mod admin;
mod component;
mod routes;
mod state;

pub use crate::egress::{EgressHooks, EgressKind, EgressPolicy, EgressRule};
pub use admin::{Readiness, serve_admin};
pub use component::{ComponentOptions, ServedComponent};
pub use routes::{Routes, check_route, normalize_route};
pub use state::ProxyState;

use crate::SecretsCtx;
use crate::runtime::{Limits, OutputFormat};
use anyhow::Context as _;
use bytes_body::text;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::Component;
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
    /// How guest output lines are framed on the host's stdout and stderr.
    pub output_format: OutputFormat,
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
            output_format: OutputFormat::default(),
        }
    }
}

/// An HTTP server for one or more components, each at its route.
pub struct Server {
    engine: Engine,
    routes: RwLock<Arc<Routes>>,
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
    /// One component (which must be a `wasi:http/proxy`) answering every path.
    pub fn new(
        engine: &Engine,
        component: &Component,
        secrets: SecretsCtx,
        egress: EgressPolicy,
        options: ServeOptions,
    ) -> anyhow::Result<Self> {
        let served = ServedComponent::new(
            secrets.component().to_owned(),
            engine,
            component,
            secrets,
            egress,
            ComponentOptions {
                limits: options.limits,
                env: options.env,
                output_format: options.output_format,
            },
        )?;
        Ok(Self::with_routes(
            engine,
            Routes::single(served),
            options.max_concurrent,
        ))
    }

    /// Components at their routes, all compiled with `engine`; at most `max_concurrent`
    /// requests at once across all of them.
    pub fn with_routes(engine: &Engine, routes: Routes, max_concurrent: usize) -> Self {
        Self {
            engine: engine.clone(),
            routes: RwLock::new(Arc::new(routes)),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// The route table requests are served from now.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Serves new requests from `routes` (its components compiled with this server's engine);
    /// requests in flight finish on the table they started with.
    pub fn set_routes(&self, routes: Routes) {
        *self
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(routes);
    }

    /// Handles one request: the component at the longest matching route, in a fresh instance.
    pub async fn handle(
        &self,
        req: hyper::Request<Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        let started = std::time::Instant::now();
        let routes = self.routes();
        let (label, response) = match routes.route(req.uri().path()) {
            None => (
                "none",
                text(404, "not found: no component serves this path\n"),
            ),
            Some(component) => match self.permits.clone().try_acquire_owned() {
                Ok(permit) => (component.name(), component.handle(req, permit).await),
                Err(_) => (
                    component.name(),
                    text(
                        503,
                        "busy: the server is at its limit of concurrent requests; retry later\n",
                    ),
                ),
            },
        };
        crate::metrics::global().http_request(
            label,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        response
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops accepting and
    /// waits (up to 30 s) for requests in flight.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let ticker = crate::runtime::Ticker::start(self.engine.clone());
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
