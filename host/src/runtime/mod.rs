//! Running components: a [`Runtime`] (one engine, its linker and its epoch clock) runs a
//! wasi:cli command to its end ([`Runtime::run_command`]) or serves one wasi:http request in a
//! fresh instance ([`Proxy::handle`]), each guest in a store holding one [`HostState`], within
//! its [`Limits`]; and components load precompiled from a cache on disk no one else can write
//! ([`load_component`]).
//!
//! This is the part of the host that knows about wasmtime beyond the WIT bindings.

mod cache_trust;
mod clock;
mod command;
mod compiled;
mod engine;
mod limits;
mod output;
mod proxy;
mod reuse;
mod state;
mod stopped;

pub use command::{CommandOptions, CommandResult, Outcome};
pub use compiled::{
    CacheUse, compile_cached, default_cache_dir, load_component, prepare_cache_dir,
};
pub use engine::{EngineOptions, Runtime};
pub use limits::Limits;
pub use output::OutputFormat;
pub use proxy::{Proxy, ProxyOptions, text_response};
pub use reuse::Reuse;
pub use state::HostState;
pub use stopped::{Limit, Stopped};
