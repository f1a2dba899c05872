//! Serving requests: a `wasi:http/proxy` component (WASI 0.2) or a `wasi:http/handler@0.3.0`
//! one (WASI 0.3), pre-instantiated once, with its grants, egress rules, limits and
//! environment: a WASI 0.2 request in a fresh instance, a WASI 0.3 one in an instance reused
//! (see [`super::reuse`]); 504 at its time limit.

use super::clock::{self, HOST_CALL_GRACE};
use super::engine::Runtime;
use super::reuse::Instances;
use super::setup::{ProxyOptions, Setup};
use super::state::HostState;
use super::stopped::Stopped;
use crate::SecretsCtx;
use crate::egress::EgressPolicy;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmtime::Store;
use wasmtime::component::Component;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{ExpirationError, ProxyHandler, TrapOrPanicError};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// A `wasi:http` component ready to serve requests: a WASI 0.2 handler in a fresh instance per
/// request, a WASI 0.3 one in instances reused as [`ProxyOptions::reuse`] says.
pub struct Proxy {
    setup: Arc<Setup>,
    pre: Pre,
    requests: crate::metrics::RequestSeries,
}

impl Proxy {
    /// Pre-instantiates `component` (compiled with `runtime`'s engine), which must export
    /// `wasi:http/incoming-handler@0.2` (the `wasi:http/proxy` world) or
    /// `wasi:http/handler@0.3.0`, with [`Runtime::linker`]. `name` labels its metrics and
    /// output lines.
    pub fn new(
        runtime: &Runtime,
        name: impl Into<String>,
        component: &Component,
        secrets: SecretsCtx,
        egress: EgressPolicy,
        options: ProxyOptions,
    ) -> anyhow::Result<Self> {
        runtime.check_fuel(&options.limits)?;
        anyhow::ensure!(
            options.reuse.max_requests >= 1 && options.reuse.max_concurrent >= 1,
            "an instance must be allowed at least one request (reuse bounds of 0)"
        );
        let pre = runtime
            .linker()
            .instantiate_pre(component)
            .map_err(|e| anyhow::anyhow!("the component cannot be served: {}", first_line(&e)))?;
        let setup = Arc::new(Setup {
            name: name.into(),
            runtime: runtime.clone(),
            secrets,
            egress: Arc::new(egress),
            options,
        });
        let pre = match ServicePre::new(pre.clone()) {
            Ok(pre) => Pre::P3(ProxyHandler::new(Instances {
                setup: setup.clone(),
                pre,
            })),
            Err(_) => Pre::P2(ProxyPre::new(pre).map_err(|e| {
                anyhow::anyhow!(
                    "the component is not a wasi:http handler (it must export wasi:http/incoming-handler@0.2 or wasi:http/handler@0.3): {}",
                    first_line(&e)
                )
            })?),
        };
        let requests = crate::metrics::global().request_series(setup.name.clone());
        Ok(Self {
            setup,
            pre,
            requests,
        })
    }

    /// The component's name, as its metrics and logs show it.
    pub fn name(&self) -> &str {
        &self.setup.name
    }

    /// Counts one request this component answered with `status` after `seconds`, in
    /// `wasm_secrets_http_requests_total` and `wasm_secrets_http_request_duration_seconds`.
    pub fn count_request(&self, status: u16, seconds: f64) {
        self.requests.count(status, seconds);
    }

    /// The secrets this component may read.
    pub fn secrets(&self) -> &SecretsCtx {
        &self.setup.secrets
    }

    /// Handles one request. `hold` (say, a concurrency permit) is kept until the request is
    /// done, which may be after the response is returned (its body streams from the guest).
    pub async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        hold: impl Send + 'static,
    ) -> hyper::Response<HyperOutgoingBody> {
        match &self.pre {
            Pre::P2(pre) => self.handle_p2(pre, req, hold).await,
            Pre::P3(handler) => self.handle_p3(handler, req, hold).await,
        }
    }

    /// WASI 0.2: a fresh instance, in a task of its own that holds `hold` and stops at the time
    /// limit, wherever the guest is.
    async fn handle_p2(
        &self,
        pre: &ProxyPre<HostState>,
        req: hyper::Request<Incoming>,
        hold: impl Send + 'static,
    ) -> hyper::Response<HyperOutgoingBody> {
        let limits = &self.setup.options.limits;
        let store = match self.setup.store() {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a store for the request");
                return text_response(500, "the component could not be started\n");
            }
        };
        // The time limit lives inside the guest's task: when it passes, the guest is dropped
        // wherever it is waiting (a host call, outgoing HTTP), and with it the instance and
        // what the request holds. Wasm code traps at the same time by the epoch.
        let in_flight = crate::metrics::global().instance_in_flight();
        let hold = (hold, in_flight);
        let (response, task) = match serve_p2(store, pre.clone(), req, hold) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pass the request to the guest");
                return text_response(400, "bad request\n");
            }
        };
        match response.await {
            Some(Ok(response)) => response,
            Some(Err(e)) if is_timeout(&e) => timed_out(),
            Some(Err(e)) => failed(&Stopped::from_error(&e, limits).to_string()),
            None => {
                let failure = match task.await {
                    Ok(Ok(())) => Err("the component returned without a response".to_owned()),
                    Ok(Err(e)) if is_timeout(&e) => Ok(()),
                    Ok(Err(e)) => Err(Stopped::from_error(&e, limits).to_string()),
                    Err(e) => Err(format!("the component's task failed: {e}")),
                };
                match failure {
                    Ok(()) => timed_out(),
                    Err(why) => {
                        tracing::warn!(%why, "request failed");
                        text_response(500, &format!("{why}\n"))
                    }
                }
            }
        }
    }

    /// WASI 0.3: to an instance with room for it (see [`Reuse`]), answered 504 at the time
    /// limit even while that instance is stuck; the response body streams from the guest until
    /// it ends or the time limit passes, and `hold` with it.
    async fn handle_p3(
        &self,
        handler: &ProxyHandler<Instances>,
        req: hyper::Request<Incoming>,
        hold: impl Send + 'static,
    ) -> hyper::Response<HyperOutgoingBody> {
        let limits = &self.setup.options.limits;
        let started = tokio::time::Instant::now();
        // One timer for the whole request: the wait for the response, then its body.
        let mut deadline = limits
            .timeout
            .map(|t| Box::pin(tokio::time::sleep(t + HOST_CALL_GRACE)));
        let req = req.map(|body| body.map_err(Into::into).boxed_unsync());
        let handled = handler.handle((), req);
        let answer = match &mut deadline {
            Some(at) => tokio::select! {
                biased;
                answer = handled => Some(answer),
                () = at.as_mut() => None,
            },
            None => Some(handled.await),
        };
        match answer {
            Some(Ok(response)) => response.map(|body| {
                Streaming {
                    body,
                    deadline,
                    _hold: hold,
                }
                .boxed_unsync()
            }),
            None => timed_out(),
            Some(Err(e)) if e.is::<ExpirationError>() || is_timeout(&e) => timed_out(),
            // The instance stopped at the epoch deadline this request set: its time limit.
            Some(Err(e))
                if e.is::<TrapOrPanicError>()
                    && limits.timeout.is_some_and(|t| started.elapsed() >= t) =>
            {
                timed_out()
            }
            Some(Err(e)) if e.is::<TrapOrPanicError>() => {
                failed("the instance serving the request stopped (another request on it trapped)")
            }
            Some(Err(e)) => failed(&Stopped::from_error(&e, limits).to_string()),
        }
    }
}

/// A pre-instantiated component, by the WASI version of its handler.
enum Pre {
    P2(ProxyPre<HostState>),
    P3(ProxyHandler<Instances>),
}

/// The guest's response (or its error), or `None` when it gave none: then the task says why.
type Answer = futures::future::BoxFuture<
    'static,
    Option<wasmtime::Result<hyper::Response<HyperOutgoingBody>>>,
>;

/// Runs `future` in a task of its own, within the store's time limit.
fn spawn_guest(
    wait_until: Option<tokio::time::Instant>,
    guest: impl Future<Output = wasmtime::Result<()>> + Send + 'static,
    hold: impl Send + 'static,
) -> JoinHandle<wasmtime::Result<()>> {
    tokio::spawn(async move {
        let _hold = hold;
        clock::within(wait_until, guest)
            .await
            .unwrap_or_else(|| Err(wasmtime::Error::new(TimedOut)))
    })
}

/// WASI 0.2: the guest sets its response through a `response-outparam`.
fn serve_p2(
    mut store: Store<HostState>,
    pre: ProxyPre<HostState>,
    req: hyper::Request<Incoming>,
    hold: impl Send + 'static,
) -> wasmtime::Result<(Answer, JoinHandle<wasmtime::Result<()>>)> {
    let (sender, receiver) = oneshot::channel();
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)?;
    let out = store.data_mut().http().new_response_outparam(sender)?;
    let wait_until = store.data().wait_until();
    let guest = async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    };
    let task = spawn_guest(wait_until, guest, hold);
    let answer = async move {
        match receiver.await {
            Ok(Ok(response)) => Some(Ok(response)),
            Ok(Err(code)) => Some(Err(wasmtime::format_err!(
                "the guest answered with error code {code:?}"
            ))),
            Err(_) => None,
        }
    };
    Ok((Box::pin(answer), task))
}

/// A response body streaming from a WASI 0.3 guest, cut at the request's time limit; what the
/// request holds is let go when it ends or is dropped.
struct Streaming<H> {
    body: HyperOutgoingBody,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    _hold: H,
}

// What the request holds is never pinned: only the body and the deadline are polled.
impl<H> Unpin for Streaming<H> {}

impl<H> Body for Streaming<H> {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let past = match &mut this.deadline {
            Some(at) => at.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if !past {
            return Poll::Pending;
        }
        tracing::warn!("a response body was cut at the request's time limit");
        this.deadline = None;
        this.body = Empty::new().map_err(|never| match never {}).boxed_unsync();
        Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseTimeout)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A 500 for a request the guest did not answer, saying why.
fn failed(why: &str) -> hyper::Response<HyperOutgoingBody> {
    tracing::warn!(%why, "the guest answered with an error");
    text_response(500, "the component failed to produce a response\n")
}

fn timed_out() -> hyper::Response<HyperOutgoingBody> {
    tracing::warn!("request stopped at its time limit");
    text_response(504, "the component ran past its time limit\n")
}

/// The request's time limit passed while its guest was waiting.
#[derive(Debug)]
struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request ran past its time limit")
    }
}

impl std::error::Error for TimedOut {}

/// Whether the guest was stopped by the request's time limit (the wait, or the epoch trap).
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

/// A plain-text response made by the host itself.
pub fn text_response(status: u16, body: &str) -> hyper::Response<HyperOutgoingBody> {
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
