//! What one request's store holds.

use crate::egress::EgressHooks;
use crate::runtime::StoreLimiter;
use crate::{SecretsCtx, SecretsView};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The data of a store serving one request.
pub struct ProxyState {
    /// WASI context.
    pub wasi: WasiCtx,
    /// Resources the guest holds.
    pub table: ResourceTable,
    /// wasi:http context.
    pub http: WasiHttpCtx,
    /// Egress rules for outgoing requests.
    pub hooks: EgressHooks,
    /// The secrets this guest may read.
    pub secrets: SecretsCtx,
    /// Memory and table limits.
    pub limiter: StoreLimiter,
}

impl ProxyState {
    /// The secrets view, for [`crate::add_to_linker`].
    pub fn secrets_view(&mut self) -> SecretsView<'_> {
        SecretsView::new(&self.secrets)
    }

    pub(crate) fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        self.http()
    }
}

impl WasiView for ProxyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ProxyState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
