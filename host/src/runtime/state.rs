//! What one store holds: WASI state, the component's secrets context and its limiter.

use super::limits::StoreLimiter;
use crate::egress::EgressHooks;
use crate::{SecretsCtx, SecretsView};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The data of a store running one guest.
pub struct HostState {
    /// WASI context (args, env, stdio, preopens).
    pub wasi: WasiCtx,
    /// Resources the guest holds.
    pub table: ResourceTable,
    /// wasi:http context, for outgoing requests.
    pub http: WasiHttpCtx,
    /// The egress rules outgoing requests must pass.
    pub hooks: EgressHooks,
    /// The secrets this guest may read.
    pub secrets: SecretsCtx,
    /// Memory and table limits.
    pub limiter: StoreLimiter,
}

impl HostState {
    /// The secrets view, for [`crate::add_to_linker`].
    pub fn secrets_view(&mut self) -> SecretsView<'_> {
        SecretsView::new(&self.secrets)
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
