//! What one store holds: WASI state, the component's secrets context and its limiter.

use super::limits::StoreLimiter;
use crate::{SecretsCtx, SecretsView};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The data of a store running one guest.
pub struct HostState {
    /// WASI context (args, env, stdio, preopens).
    pub wasi: WasiCtx,
    /// Resources the guest holds.
    pub table: ResourceTable,
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
