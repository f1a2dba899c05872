//! Integration tests: real guest components (built for wasm32-wasip2 by host/build.rs, and
//! hostile ones in WAT) run by the real host.

mod harness;

mod cli;
mod cli_azure;
mod grants;
mod hostile;
mod names;
