//! Running components: a [`Runtime`] (one engine, its linker and its epoch clock) runs a
//! wasi:cli command to its end ([`Runtime::run_command`]) or serves wasi:http requests
//! ([`Proxy::handle`]: a WASI 0.2 request in a fresh instance, WASI 0.3 ones in instances reused
//! as [`Reuse`] says), each guest in a store holding one [`HostState`], within its [`Limits`];
//! and components load precompiled from a cache on disk no one else can write
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
mod setup;
mod state;
mod stopped;

pub use command::{CommandOptions, CommandResult, Outcome};
pub use compiled::{
    CacheUse, compile_cached, default_cache_dir, load_component, prepare_cache_dir,
};
pub use engine::{EngineOptions, Runtime};
pub use limits::Limits;
pub use output::OutputFormat;
pub use proxy::{Proxy, text_response};
pub use setup::{ProxyOptions, Reuse};
pub use state::HostState;
pub use stopped::{Limit, Stopped};
