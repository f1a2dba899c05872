//! Serving `wasi:http/proxy` components over HTTP: the listener, a cap on concurrent requests,
//! routes (the longest matching prefix picks the component), a route table that can be
//! replaced while serving, the admin listener, and graceful shutdown. Each request itself is
//! served by the runtime ([`Proxy::handle`]): a fresh instance, its limits, 504 at its timeout.

mod admin;
mod routes;

pub use admin::{Readiness, serve_admin};
pub use routes::{Routes, check_route, normalize_route};
pub use wasm_secrets::egress::{EgressHooks, EgressKind, EgressPolicy, EgressRule};

use anyhow::Context as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasm_secrets::SecretsCtx;
use wasm_secrets::runtime::text_response as text;
use wasm_secrets::runtime::{Limits, OutputFormat, Proxy, ProxyOptions, Reuse, Runtime};
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
    /// How a WASI 0.3 handler's instances are reused.
    pub reuse: Reuse,
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
            reuse: Reuse::default(),
        }
    }
}

/// An HTTP server for one or more components, each at its route.
pub struct Server {
    routes: RwLock<Arc<Routes>>,
    permits: Arc<Semaphore>,
}

impl Server {
    /// One component (which must be a `wasi:http/proxy`, compiled with `runtime`'s engine)
    /// answering every path.
    pub fn new(
        runtime: &Runtime,
        component: &Component,
        secrets: SecretsCtx,
        egress: EgressPolicy,
        options: ServeOptions,
    ) -> anyhow::Result<Self> {
        let proxy = Proxy::new(
            runtime,
            secrets.component().to_owned(),
            component,
            secrets,
            egress,
            ProxyOptions {
                limits: options.limits,
                env: options.env,
                output_format: options.output_format,
                reuse: options.reuse,
            },
        )?;
        Ok(Self::with_routes(
            Routes::single(proxy),
            options.max_concurrent,
        ))
    }

    /// Components at their routes; at most `max_concurrent` requests at once across all of
    /// them.
    pub fn with_routes(routes: Routes, max_concurrent: usize) -> Self {
        Self {
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

    /// Serves new requests from `routes`; requests in flight finish on the table they started
    /// with.
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
        let Some(component) = routes.route(req.uri().path()) else {
            let response = text(404, "not found: no component serves this path\n");
            let seconds = started.elapsed().as_secs_f64();
            wasm_secrets::metrics::global().http_request("none", 404, seconds);
            return response;
        };
        let response = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => component.handle(req, permit).await,
            Err(_) => text(
                503,
                "busy: the server is at its limit of concurrent requests; retry later\n",
            ),
        };
        component.count_request(response.status().as_u16(), started.elapsed().as_secs_f64());
        response
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops accepting and
    /// waits (up to 30 s) for requests in flight.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted.context("accepting a connection")?,
                () = &mut shutdown => break,
            };
            // No Nagle: a response's head and its body may be written apart (a WASI 0.3 guest
            // writes its body after returning the response), and the second write must not
            // wait for the client's ACK of the first.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
            }
            let server = self.clone();
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
            });
            // One flat buffer per write (as stock `wasmtime serve` sends): a small response in
            // one `send` costs less than a `writev` of its five pieces (head, chunk size,
            // body, CRLF, last chunk): 0.6% fewer instructions per request in the process and
            // less in the kernel (cli/benches/instructions.sh, perf).
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .writev(false)
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
        Ok(())
    }
}
