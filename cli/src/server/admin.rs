//! The admin listener: `/metrics` (Prometheus text format), `/healthz` (the process serves) and
//! `/readyz` (every component compiled and every exact grant resolved once; 503 with a one-line
//! reason otherwise). It answers on its own address, off the request path.

use super::{Routes, Server};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// Whether the server is ready for traffic, and if not, why.
///
/// Each [`Readiness::check`] is one round of checking one route table; starting a new one (on
/// a reload) ends the one before, so a loop over a table no longer served can never mark the
/// server ready.
#[derive(Debug)]
pub struct Readiness {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Which check may set `ready`: the latest one started.
    round: u64,
    ready: Result<(), String>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                round: 0,
                ready: Err("starting: grants not resolved yet".to_owned()),
            }),
        }
    }
}

impl Readiness {
    /// `Ok` when ready, else the reason.
    pub fn get(&self) -> Result<(), String> {
        self.lock().ready.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a new round: the checks before it stop, and the server is not ready until this
    /// one has resolved its table's grants.
    fn begin(&self) -> u64 {
        let mut state = self.lock();
        state.round += 1;
        if state.round > 1 {
            state.ready = Err("reloaded: grants not resolved yet".to_owned());
        }
        state.round
    }

    /// Sets the state if round `round` is still the latest; says whether it was.
    fn set(&self, round: u64, ready: Result<(), String>) -> bool {
        let mut state = self.lock();
        if state.round != round {
            return false;
        }
        state.ready = ready;
        true
    }

    /// Resolves every exact grant, secrets and keys, of every component in `routes` once (from
    /// the vault, or the cache) with [`wasm_secrets::SecretsCtx::probe`], again every `retry` until
    /// all have; ready when they have. Each failure is reported as `component C: grant G:
    /// <error kind>` (never a value). A later call (for the table a reload serves) ends this one.
    pub async fn check(&self, routes: Arc<Routes>, retry: Duration) {
        let round = self.begin();
        loop {
            let unresolved = first_unresolved(&routes).await;
            if !self.set(round, unresolved.clone().map_or(Ok(()), Err)) {
                return;
            }
            let Some(why) = unresolved else { return };
            tracing::warn!(reason = %why, "not ready");
            tokio::time::sleep(retry).await;
        }
    }
}

async fn first_unresolved(routes: &Routes) -> Option<String> {
    for (_, component) in routes.iter() {
        if let Err(why) = component.secrets().probe().await {
            return Some(format!("component {}: {why}", component.name()));
        }
    }
    None
}

type Response = hyper::Response<Full<Bytes>>;

fn respond(status: u16, content_type: &'static str, body: String) -> Response {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn answer(path: &str, server: &Server, readiness: &Readiness) -> Response {
    const TEXT: &str = "text/plain; charset=utf-8";
    match path {
        "/metrics" => respond(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            wasm_secrets::metrics::global().encode(),
        ),
        "/healthz" => respond(200, TEXT, "ok\n".to_owned()),
        "/readyz" => match readiness.get() {
            Ok(()) if !server.routes().is_empty() => respond(200, TEXT, "ready\n".to_owned()),
            Ok(()) => respond(503, TEXT, "not ready: no component is served\n".to_owned()),
            Err(why) => respond(503, TEXT, format!("not ready: {why}\n")),
        },
        _ => respond(
            404,
            TEXT,
            "not found: the admin listener serves /metrics, /healthz and /readyz\n".to_owned(),
        ),
    }
}

/// Serves the admin endpoints on `listener` until `shutdown` completes.
pub async fn serve_admin(
    listener: TcpListener,
    server: Arc<Server>,
    readiness: Arc<Readiness>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin listener: accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let (server, readiness) = (server.clone(), readiness.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let response = answer(req.uri().path(), &server, &readiness);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
