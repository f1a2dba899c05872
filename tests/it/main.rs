//! Integration tests: real guest components (built for wasm32-wasip2 by host/build.rs, and
//! hostile ones in WAT) run by the real host; the azure_* tests run them against the Azure
//! emulator over real loopback sockets.

#[path = "../../cli/benches/shared/announced.rs"]
mod announced;
mod emulator;
mod harness;
mod jws;

mod architecture;
mod azure_cache;
mod azure_canary;
mod azure_credentials;
mod azure_faults;
mod azure_keyvault;
mod azure_stale;
mod azure_trust;
mod budgets;
mod cache_trust;
mod cli;
mod cli_azure;
mod credential_exposure;
mod deploy;
mod egress_addresses;
mod grants;
mod hostile;
mod keys;
mod languages;
mod names;
mod noisy;
mod p3;
mod platform;
mod run_egress;
mod serve;
mod soak;
mod use_only;
mod wasi_config;
