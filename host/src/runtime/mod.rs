//! Running components: the engine, per-store limits, and the `run` of a wasi:cli command.
//!
//! This is the part of the host that knows about wasmtime beyond the WIT bindings.

mod cache_trust;
mod command;
mod engine;
mod limits;
mod state;

pub use command::{
    CommandOptions, CommandResult, Outcome, command_linker, describe_failure, run_command,
    run_command_with,
};
pub use engine::{
    CacheUse, EngineOptions, build_engine, compile_cached, default_cache_dir, load_component,
    prepare_cache_dir,
};
pub use limits::{Limits, LimitsError, StoreLimiter};
pub use state::HostState;
