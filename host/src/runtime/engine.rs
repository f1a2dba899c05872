//! The [`Runtime`]: one wasmtime engine, built from [`EngineOptions`], with its one linker and
//! its one epoch clock.

use super::clock::{self, Clock};
use super::limits::Limits;
use super::state::HostState;
use crate::SecretsCtx;
use crate::egress::EgressPolicy;
use std::sync::Arc;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::WasiCtxBuilder;

/// How to build an engine. A component compiled ahead of time is used only by an engine built
/// from equal options, so whoever compiles for another computes them the same way (for a
/// server: [`EngineOptions::serving`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Count fuel, so that [`Limits::fuel`] can stop a guest.
    pub fuel: bool,
    /// Keep instance slots for this many guests at once, allocated up front (wasmtime's
    /// pooling allocator), as a server does; none: allocate each instance when it is made.
    pub pooled_instances: Option<usize>,
    /// With `pooled_instances`: the largest linear memory a slot holds (none: wasmtime's
    /// default).
    pub max_memory: Option<usize>,
}

impl EngineOptions {
    /// The engine for serving guests with these `limits` (one per component), at most
    /// `max_concurrent` requests at once: fuel counted if any guest has a fuel limit, slots as
    /// large as the largest memory limit (wasmtime's default when a guest has none).
    pub fn serving<'a>(
        max_concurrent: usize,
        limits: impl IntoIterator<Item = &'a Limits>,
    ) -> Self {
        let limits: Vec<&Limits> = limits.into_iter().collect();
        Self {
            fuel: limits.iter().any(|l| l.fuel.is_some()),
            pooled_instances: Some(max_concurrent),
            max_memory: limits
                .iter()
                .map(|l| l.max_memory)
                .collect::<Option<Vec<_>>>()
                .and_then(|m| m.into_iter().max()),
        }
    }

    fn config(&self) -> Config {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(self.fuel);
        if let Some(instances) = self.pooled_instances {
            let mut pooling = PoolingAllocationConfig::default();
            let n = u32::try_from(instances.max(1)).unwrap_or(u32::MAX);
            pooling.total_component_instances(n);
            pooling.total_core_instances(n.saturating_mul(4));
            pooling.total_memories(n.saturating_mul(2));
            pooling.total_tables(n.saturating_mul(4));
            if let Some(m) = self.max_memory {
                pooling.max_memory_size(m);
            }
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        }
        config
    }
}

/// An engine that runs components (commands with [`Runtime::run_command`], wasi:http requests
/// with [`Proxy`](super::Proxy)), with the linker they are linked with and the engine's epoch
/// clock that time limits count on. Cheap to clone; the clock stops when the last clone, and
/// the last store with a time limit, is gone.
///
/// Nothing else advances this engine's epoch: one guest's time limit never stops another.
#[derive(Clone)]
pub struct Runtime(Arc<Inner>);

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    clock: Clock,
    fuel: bool,
}

impl Runtime {
    /// Builds the engine (async host calls, epoch interruption, and what `options` ask) and
    /// its linker.
    pub fn new(options: &EngineOptions) -> anyhow::Result<Self> {
        let engine = Engine::new(&options.config()).map_err(anyhow::Error::from)?;
        Ok(Self(Arc::new(Inner {
            linker: link(&engine)?,
            clock: Clock::new(engine.clone()),
            engine,
            fuel: options.fuel,
        })))
    }

    /// The engine, to compile components with (see [`load_component`](super::load_component)).
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The linker every guest of this runtime is linked with: WASI p2, outgoing wasi:http
    /// (through the guest's egress rules), `wasm-secrets:secrets/store` and `keys`, and
    /// `wasi:config/store`.
    pub fn linker(&self) -> &Linker<HostState> {
        &self.0.linker
    }

    pub(super) fn clock(&self) -> &Clock {
        &self.0.clock
    }

    pub(super) fn counts_fuel(&self) -> bool {
        self.0.fuel
    }

    /// Refuses `limits` with a fuel limit on an engine that does not count fuel.
    pub(super) fn check_fuel(&self, limits: &Limits) -> anyhow::Result<()> {
        anyhow::ensure!(
            limits.fuel.is_none() || self.0.fuel,
            "a fuel limit needs an engine that counts fuel (EngineOptions::fuel)"
        );
        Ok(())
    }
}

fn link(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    // WASI 0.2 and 0.3 side by side: a 0.3 component built from Rust still imports 0.2
    // interfaces through its standard library.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    crate::add_to_linker(&mut linker, HostState::secrets_view)?;
    crate::add_async_to_linker(&mut linker, HostState::secrets_view)?;
    crate::add_wasi_config_to_linker(&mut linker, HostState::secrets_view)?;
    crate::add_spin_variables_to_linker(&mut linker, HostState::secrets_view)?;
    crate::add_wasmcloud_secrets_to_linker(&mut linker, HostState::wasmcloud_secrets_view)?;
    Ok(linker)
}

impl Runtime {
    /// A store on this runtime's engine for one guest with `limits`: memory and tables by the
    /// limiter, bytes per host call, fuel (all of it when the engine counts fuel and `limits`
    /// set none), and a deadline on the engine's clock. The guest gets no sockets and no name
    /// lookups (see [`HostState`]).
    pub(super) fn new_store(
        &self,
        wasi: WasiCtxBuilder,
        secrets: SecretsCtx,
        egress: Arc<EgressPolicy>,
        limits: &Limits,
    ) -> anyhow::Result<Store<HostState>> {
        self.check_fuel(limits)?;
        let time_limit = limits.timeout.map(|t| self.clock().limit(t)).transpose()?;
        let deadline = clock::epoch_deadline(time_limit.as_ref());
        let state = HostState::new(wasi, secrets, egress, limits, time_limit);
        let mut store = Store::new(self.engine(), state);
        store.limiter(|s| s.limiter());
        store.set_hostcall_fuel(limits.max_hostcall_bytes);
        if self.counts_fuel() {
            store.set_fuel(limits.fuel.unwrap_or(u64::MAX))?;
        }
        // Past it, running wasm traps with `Trap::Interrupt`.
        store.set_epoch_deadline(deadline);
        store.epoch_deadline_trap();
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(fuel: Option<u64>, max_memory: Option<usize>) -> Limits {
        Limits {
            fuel,
            max_memory,
            ..Limits::default()
        }
    }

    #[test]
    fn a_servers_engine_counts_fuel_for_any_and_sizes_slots_for_the_largest() {
        let options = EngineOptions::serving(
            7,
            &[limits(None, Some(1 << 20)), limits(Some(5), Some(4 << 20))],
        );
        assert_eq!(
            options,
            EngineOptions {
                fuel: true,
                pooled_instances: Some(7),
                max_memory: Some(4 << 20),
            }
        );
        let unlimited =
            EngineOptions::serving(7, &[limits(None, Some(1 << 20)), limits(None, None)]);
        assert_eq!((unlimited.fuel, unlimited.max_memory), (false, None));
    }
}
