//! What every instance of one served component is made with: the options a platform gives it
//! ([`ProxyOptions`], with how a WASI 0.3 handler's instances are reused, [`Reuse`]) and the
//! one way its stores are made.

use super::engine::Runtime;
use super::limits::Limits;
use super::output::{FramedOutput, HostStream, OutputFormat};
use super::state::HostState;
use crate::SecretsCtx;
use crate::egress::EgressPolicy;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Store;
use wasmtime_wasi::WasiCtx;

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
    /// How a WASI 0.3 handler's instances are reused (a WASI 0.2 handler's never are).
    pub reuse: Reuse,
}

/// How the instances of a WASI 0.3 handler are reused (a WASI 0.2 handler gets a fresh instance
/// for every request). The defaults are `wasmtime serve`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// Requests one instance serves in all before it is retired (1: a fresh instance each).
    pub max_requests: usize,
    /// Requests one instance serves at once; more go to another instance.
    pub max_concurrent: usize,
    /// How long an instance with nothing to do is kept for the next request.
    pub idle_timeout: Duration,
}

impl Default for Reuse {
    fn default() -> Self {
        Self {
            max_requests: 128,
            max_concurrent: 16,
            idle_timeout: Duration::from_secs(1),
        }
    }
}

/// What every instance of one component is made with.
pub(super) struct Setup {
    pub(super) name: String,
    pub(super) runtime: Runtime,
    pub(super) secrets: SecretsCtx,
    pub(super) egress: Arc<EgressPolicy>,
    pub(super) options: ProxyOptions,
}

impl Setup {
    /// A store for one instance: its output framed with the component's name, its environment,
    /// secrets, egress rules and limits.
    pub(super) fn store(&self) -> anyhow::Result<Store<HostState>> {
        let mut wasi = WasiCtx::builder();
        let format = self.options.output_format;
        wasi.stdout(FramedOutput::new(&self.name, HostStream::Stdout, format))
            .stderr(FramedOutput::new(&self.name, HostStream::Stderr, format))
            .envs(&self.options.env);
        self.runtime.new_store(
            wasi,
            self.secrets.clone(),
            self.egress.clone(),
            &self.options.limits,
        )
    }
}
