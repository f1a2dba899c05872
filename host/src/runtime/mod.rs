//! Running components: the engine, per-store limits, guest output framing, and the `run` of a
//! wasi:cli command.
//!
//! This is the part of the host that knows about wasmtime beyond the WIT bindings.

mod cache_trust;
mod command;
mod deadline;
mod engine;
mod limits;
mod output;
mod state;

pub use command::{
    CommandOptions, CommandResult, Outcome, command_linker, describe_failure, run_command,
    run_command_with,
};
pub use deadline::{TICK, Ticker, set_time_limit};
pub use engine::{
    CacheUse, EngineOptions, build_engine, compile_cached, default_cache_dir, load_component,
    prepare_cache_dir,
};
pub use limits::{Limits, LimitsError, StoreLimiter};
pub use output::{FramedOutput, HostStream, MAX_LINE, OutputFormat};
pub use state::HostState;
