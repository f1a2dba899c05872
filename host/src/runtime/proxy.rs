//! Serving one request: a `wasi:http/proxy` component pre-instantiated once, a fresh instance
//! per request with its own grants, egress rules, limits and environment; 504 at its time limit.

use super::clock;
use super::engine::Runtime;
use super::limits::Limits;
use super::output::{FramedOutput, HostStream, OutputFormat};
use super::state::HostState;
use super::stopped::Stopped;
use crate::SecretsCtx;
use crate::egress::EgressPolicy;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::sync::Arc;
use wasmtime::component::Component;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// What a component's requests run with, besides its secrets and egress.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Per-request limits. The timeout covers the whole request: at it the guest is stopped,
    /// whatever the request holds released, and the client answered 504.
    pub limits: Limits,
    /// Environment variables for the guest.
    pub env: Vec<(String, String)>,
    /// How the guest's stdout and stderr lines look on the host's: both streams are shared
    /// by every component (and stderr with the host's logs and maybe the audit log), so each
    /// line is framed with the component's name.
    pub output_format: OutputFormat,
}

/// A `wasi:http/proxy` component ready to serve requests, each in a fresh instance.
pub struct Proxy {
    name: String,
    runtime: Runtime,
    pre: ProxyPre<HostState>,
    secrets: SecretsCtx,
    egress: Arc<EgressPolicy>,
    options: ProxyOptions,
}

impl Proxy {
    /// Pre-instantiates `component` (compiled with `runtime`'s engine), which must be a
    /// `wasi:http/proxy`, with [`Runtime::linker`]. `name` labels its metrics and output lines.
    pub fn new(
        runtime: &Runtime,
        name: impl Into<String>,
        component: &Component,
        secrets: SecretsCtx,
        egress: EgressPolicy,
        options: ProxyOptions,
    ) -> anyhow::Result<Self> {
        runtime.check_fuel(&options.limits)?;
        let pre = runtime
            .linker()
            .instantiate_pre(component)
            .map_err(|e| anyhow::anyhow!("the component cannot be served: {}", first_line(&e)))?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "the component is not a wasi:http proxy (it must export wasi:http/incoming-handler): {}",
                first_line(&e)
            )
        })?;
        Ok(Self {
            name: name.into(),
            runtime: runtime.clone(),
            pre,
            secrets,
            egress: Arc::new(egress),
            options,
        })
    }

    /// The component's name, as its metrics and logs show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secrets this component may read.
    pub fn secrets(&self) -> &SecretsCtx {
        &self.secrets
    }

    /// Handles one request in a fresh instance. `hold` (say, a concurrency permit) is kept
    /// until the guest is done or stopped, which may be after the response is returned (its
    /// body streams from the guest).
    pub async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        hold: impl Send + 'static,
    ) -> hyper::Response<HyperOutgoingBody> {
        let mut wasi = WasiCtx::builder();
        let format = self.options.output_format;
        wasi.stdout(FramedOutput::new(&self.name, HostStream::Stdout, format))
            .stderr(FramedOutput::new(&self.name, HostStream::Stderr, format))
            .envs(&self.options.env);
        let limits = &self.options.limits;
        let store = self
            .runtime
            .new_store(wasi, self.secrets.clone(), self.egress.clone(), limits);
        let mut store = match store {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a store for the request");
                return text_response(500, "the component could not be started\n");
            }
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .and_then(|req| {
                let out = store.data_mut().http().new_response_outparam(sender)?;
                Ok((req, out))
            });
        let (req, out) = match prepared {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pass the request to the guest");
                return text_response(400, "bad request\n");
            }
        };
        let pre = self.pre.clone();
        // The time limit lives inside the guest's task: when it passes, the guest is dropped
        // wherever it is waiting (a host call, outgoing HTTP), and with it the instance and
        // what the request holds. Wasm code traps at the same time by the epoch.
        let wait_until = store.data().wait_until();
        let in_flight = crate::metrics::global().instance_in_flight();
        let task = tokio::spawn(async move {
            let _hold = hold;
            let _in_flight = in_flight;
            let guest = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            clock::within(wait_until, guest)
                .await
                .unwrap_or_else(|| Err(wasmtime::Error::new(TimedOut)))
        });
        match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => {
                tracing::warn!(?code, "the guest answered with an error code");
                text_response(500, "the component failed to produce a response\n")
            }
            Err(_) => {
                let failure = match task.await {
                    Ok(Ok(())) => Err("the component returned without a response".to_owned()),
                    Ok(Err(e)) if is_timeout(&e) => Ok(()),
                    Ok(Err(e)) => Err(Stopped::from_error(&e, limits).to_string()),
                    Err(e) => Err(format!("the component's task failed: {e}")),
                };
                match failure {
                    Ok(()) => {
                        tracing::warn!("request stopped at its time limit");
                        text_response(504, "the component ran past its time limit\n")
                    }
                    Err(why) => {
                        tracing::warn!(%why, "request failed");
                        text_response(500, &format!("{why}\n"))
                    }
                }
            }
        }
    }
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
