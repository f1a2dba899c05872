//! What one store holds: the same for a command, a request and an embedder's guest. (The one
//! way a store is made is `Runtime::new_store`.)

use super::clock::TimeLimit;
use super::limits::{Limits, StoreLimiter};
use crate::egress::{EgressHooks, EgressPolicy};
use crate::{SecretsCtx, SecretsView};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The data of a store running one guest: its WASI and wasi:http state, the egress rules its
/// outgoing requests must pass, the secrets it may read, and its limits.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: EgressHooks,
    secrets: SecretsCtx,
    limiter: StoreLimiter,
    time_limit: Option<TimeLimit>,
}

impl HostState {
    /// The secrets view, for [`crate::add_to_linker`] and [`crate::add_wasi_config_to_linker`].
    pub(super) fn secrets_view(&mut self) -> SecretsView<'_> {
        SecretsView::new(&self.secrets)
    }

    /// The view `wasmcloud:secrets` answers from: the secrets, and the table its handles
    /// live in.
    pub(super) fn wasmcloud_secrets_view(&mut self) -> crate::WasmcloudSecretsView<'_> {
        crate::WasmcloudSecretsView {
            ctx: &self.secrets,
            table: &mut self.table,
        }
    }

    /// Until when the guest may wait in a host call (see [`clock::within`]), if it has a time
    /// limit.
    pub(super) fn wait_until(&self) -> Option<tokio::time::Instant> {
        self.time_limit.as_ref().map(TimeLimit::wait_until)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl HostState {
    /// The state of a guest with `wasi`, `secrets`, `egress` and `limits`, stopped at
    /// `time_limit`. The guest gets no sockets and no name lookups (it reaches the outside only
    /// through the host's wasi:http, past `egress`), whatever `wasi` allowed.
    pub(super) fn new(
        mut wasi: WasiCtxBuilder,
        secrets: SecretsCtx,
        egress: Arc<EgressPolicy>,
        limits: &Limits,
        time_limit: Option<TimeLimit>,
    ) -> Self {
        wasi.socket_addr_check(|_, _| Box::pin(async { false }));
        wasi.allow_ip_name_lookup(false);
        Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: EgressHooks::new(egress, secrets.clone()),
            secrets,
            limiter: StoreLimiter::new(limits),
            time_limit,
        }
    }

    /// The store's limiter, for `Store::limiter`.
    pub(super) fn limiter(&mut self) -> &mut dyn wasmtime::ResourceLimiter {
        &mut self.limiter
    }
}
