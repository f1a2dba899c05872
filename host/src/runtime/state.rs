//! What one store holds (the same for a command, a request and an embedder's guest), and the
//! one way a store is made: with the guest's limits applied.

use super::clock::{self, TimeLimit};
use super::engine::Runtime;
use super::limits::{Limits, StoreLimiter};
use crate::egress::{EgressHooks, EgressPolicy};
use crate::{SecretsCtx, SecretsView};
use std::sync::Arc;
use wasmtime::Store;
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

/// A store on `runtime`'s engine for one guest with `limits`: memory and tables by the limiter,
/// bytes per host call, fuel (all of it when the engine counts fuel and `limits` set none), and
/// a deadline on the engine's clock. The guest gets no sockets and no name lookups (it reaches
/// the outside only through the host's wasi:http, past `egress`), whatever `wasi` allowed.
pub(super) fn new_store(
    runtime: &Runtime,
    mut wasi: WasiCtxBuilder,
    secrets: SecretsCtx,
    egress: Arc<EgressPolicy>,
    limits: &Limits,
) -> anyhow::Result<Store<HostState>> {
    runtime.check_fuel(limits)?;
    wasi.socket_addr_check(|_, _| Box::pin(async { false }));
    wasi.allow_ip_name_lookup(false);
    let time_limit = limits
        .timeout
        .map(|t| runtime.clock().limit(t))
        .transpose()?;
    let deadline = clock::epoch_deadline(time_limit.as_ref());
    let state = HostState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        http: WasiHttpCtx::new(),
        hooks: EgressHooks::new(egress),
        secrets,
        limiter: StoreLimiter::new(limits),
        time_limit,
    };
    let mut store = Store::new(runtime.engine(), state);
    store.limiter(|s| &mut s.limiter);
    store.set_hostcall_fuel(limits.max_hostcall_bytes);
    if runtime.counts_fuel() {
        store.set_fuel(limits.fuel.unwrap_or(u64::MAX))?;
    }
    // Past it, running wasm traps with `Trap::Interrupt`.
    store.set_epoch_deadline(deadline);
    store.epoch_deadline_trap();
    Ok(store)
}
