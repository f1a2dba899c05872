//! One served component: pre-instantiated once, a fresh instance per request, with its own
//! grants, egress rules, limits and environment.

use super::bytes_body::text;
use super::first_line;
use crate::SecretsCtx;
use crate::egress::{EgressHooks, EgressPolicy};
use crate::runtime::TICK;
use crate::runtime::{FramedOutput, HostStream, Limits, OutputFormat, StoreLimiter};
use hyper::body::Incoming;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::ProxyState;

/// What a component's requests run with, besides its secrets and egress.
#[derive(Debug, Clone, Default)]
pub struct ComponentOptions {
    /// Per-request limits. The timeout covers the whole request: at it the guest is stopped,
    /// its concurrency slot freed, and the client answered 504.
    pub limits: Limits,
    /// Environment variables for the guest.
    pub env: Vec<(String, String)>,
    /// How the guest's stdout and stderr lines look on the host's: both streams are shared
    /// by every component (and stderr with the host's logs and maybe the audit log), so each
    /// line is framed (see [`FramedOutput`]) with the component's name.
    pub output_format: OutputFormat,
}

/// A `wasi:http/proxy` component ready to serve requests.
pub struct ServedComponent {
    name: String,
    pre: ProxyPre<ProxyState>,
    secrets: SecretsCtx,
    egress: Arc<EgressPolicy>,
    options: ComponentOptions,
}

impl ServedComponent {
    /// Links WASI, wasi:http, the secrets interfaces and wasi:config, and pre-instantiates
    /// `component`, which must be a `wasi:http/proxy`. `name` labels its metrics and logs.
    pub fn new(
        name: impl Into<String>,
        engine: &Engine,
        component: &Component,
        secrets: SecretsCtx,
        egress: EgressPolicy,
        options: ComponentOptions,
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
            name: name.into(),
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

    fn new_store(&self) -> Store<ProxyState> {
        let limits = self.options.limits;
        let mut wasi = WasiCtx::builder();
        let format = self.options.output_format;
        wasi.stdout(FramedOutput::new(&self.name, HostStream::Stdout, format))
            .stderr(FramedOutput::new(&self.name, HostStream::Stderr, format))
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
        // The engine meters fuel when any component has a fuel limit; the others get all of it.
        if store.get_fuel().is_ok() {
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        crate::runtime::set_time_limit(&mut store, limits.timeout);
        store
    }

    /// Handles one request in a fresh instance, holding `permit` (a concurrency slot) until the
    /// guest is done or stopped.
    pub async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        permit: OwnedSemaphorePermit,
    ) -> hyper::Response<HyperOutgoingBody> {
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
        let in_flight = crate::metrics::global().instance_in_flight();
        let task = tokio::spawn(async move {
            let _permit = permit;
            let _in_flight = in_flight;
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
                    .unwrap_or_else(|_| Err(wasmtime::Error::new(super::TimedOut))),
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
                    Ok(Err(e)) if super::is_timeout(&e) => Ok(()),
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
}
