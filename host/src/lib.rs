//! Give WebAssembly components capability-scoped secrets, without ever showing them a token.
//!
//! A guest imports the `wasm-secrets:secrets/store` interface (see `wit/secrets.wit`) and asks
//! for secrets by name. The host checks the name against the component's [`Grants`], then
//! reads the secret from a vault [`Backend`]: Azure Key Vault through the host's own
//! identity, or a local secrets file during development. The guest gets the value or a
//! typed error, never a token.
//!
//! The path of one request (design section 2), one module per step:
//!
//! ```text
//! guest --get(name)--> wit          the WIT bindings (wasmtime); wasi_config: wasi:config/store
//!                      policy       name check, this component's grants, audit (secrets and keys)
//!                      cache        TTL, refresh-ahead, stale-if-error, single-flight
//!                      backend      keyvault (Key Vault REST) | file (local secrets file)
//!                      token_cache  per identity and resource, refreshed early
//!                      credential   IMDS | App Service | Arc | workload identity | client secret | CLI
//!                      http         rustls, size caps, the loopback-only guard
//! ```
//!
//! Nothing below `wit` knows about wasmtime; nothing above `backend` knows about HTTP.
//! [`connect`] wires the lower boxes together from settings; [`runtime`] runs components.
//!
//! # Embedding
//!
//! Keep a [`SecretsCtx`] in your store data and add the interface to your linker with
//! [`add_to_linker`] (and [`add_wasi_config_to_linker`] for `wasi:config/store`). The same
//! policy answers without wasm too:
//!
//! ```
//! use wasm_secrets::{backend::file::FileBackend, Grants, SecretsCtx, SecretsView, Vaults};
//! use wasmtime::component::Linker;
//!
//! struct MyState { secrets: SecretsCtx }
//!
//! # fn main() -> anyhow::Result<()> {
//! let file = FileBackend::new("example", [("db-password".into(), "s3cret".into())]);
//! let vaults = Vaults::new().with("default", file);
//! let grants = Grants::parse(["db-password"])?;
//! let secrets = SecretsCtx::new("my-component", grants, vaults);
//!
//! let value = futures::executor::block_on(secrets.get("db-password"))?;
//! assert_eq!(value.expose(), "s3cret");
//! let denied = futures::executor::block_on(secrets.get("other")).unwrap_err();
//! assert_eq!(denied.kind().as_str(), "not-granted");
//!
//! let mut config = wasmtime::Config::new();
//! config.async_support(true);
//! let engine = wasmtime::Engine::new(&config)?;
//! let mut linker: Linker<MyState> = Linker::new(&engine);
//! wasm_secrets::add_to_linker(&mut linker, |s: &mut MyState| SecretsView::new(&s.secrets))?;
//! // Instantiate components importing wasm-secrets:secrets/store with this linker:
//! let store = wasmtime::Store::new(&engine, MyState { secrets });
//! # drop((linker, store));
//! # Ok(()) }
//! ```
//!
//! Or let a [`runtime::Runtime`] run a wasi:cli command with the context (here a command that
//! exits 0 when `get("db-password")` answers, else 1), with the CLI's limits, stdio and egress;
//! [`runtime::Proxy`] serves wasi:http requests the same way:
//!
//! ```
//! use wasm_secrets::runtime::{CommandOptions, EngineOptions, Outcome, Runtime};
//! use wasm_secrets::{backend::file::FileBackend, Grants, SecretsCtx, Vaults};
//!
//! const GET_DB_PASSWORD: &str = r#"(component
//!   (import "wasm-secrets:secrets/store@0.1.0" (instance $store
//!     (type $e (variant (case "invalid-name" string) (case "not-granted" string)
//!       (case "not-found" string) (case "forbidden" string) (case "unavailable" string)))
//!     (export "error" (type $error (eq $e)))
//!     (export "get" (func (param "name" string) (result (result string (error $error)))))))
//!   (core module $mem
//!     (memory (export "memory") 1)
//!     (data (i32.const 64) "db-password")
//!     (global $next (mut i32) (i32.const 1024))
//!     (func (export "realloc") (param i32 i32 i32 i32) (result i32)
//!       (global.get $next)
//!       (global.set $next (i32.add (global.get $next) (local.get 3)))))
//!   (core instance $mem (instantiate $mem))
//!   (core func $get (canon lower (func $store "get")
//!     (memory (core memory $mem "memory")) (realloc (core func $mem "realloc"))))
//!   (core module $main
//!     (import "host" "get" (func $get (param i32 i32 i32)))
//!     (import "host" "memory" (memory 1))
//!     (func (export "run") (result i32)
//!       (call $get (i32.const 64) (i32.const 11) (i32.const 16))
//!       (i32.load8_u (i32.const 16))))
//!   (core instance $main (instantiate $main (with "host" (instance
//!     (export "get" (func $get)) (export "memory" (memory $mem "memory"))))))
//!   (func $run (result (result)) (canon lift (core func $main "run")))
//!   (instance $cli (export "run" (func $run)))
//!   (export "wasi:cli/run@0.2.0" (instance $cli)))"#;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let vaults = Vaults::new().with("default", FileBackend::new("example", [("db-password".into(), "s3cret".into())]));
//! let runtime = Runtime::new(&EngineOptions::default())?;
//! let component = wasmtime::component::Component::new(runtime.engine(), GET_DB_PASSWORD)?;
//! for (grants, exit) in [(vec!["db-password"], 0), (vec![], 1)] {
//!     let secrets = SecretsCtx::new("get-db-password", Grants::parse(grants)?, vaults.clone());
//!     let result = runtime.run_command(&component, secrets, &CommandOptions::default()).await?;
//!     assert!(matches!(result.outcome, Outcome::Exited(code) if code == exit));
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod audit;
pub mod backend;
pub mod cache;
pub mod connect;
pub mod credential;
pub mod egress;
pub mod http;
pub mod keys;
pub mod metrics;
mod name;
mod net;
mod policy;
#[cfg(test)]
mod proptests;
mod revealed;
pub mod runtime;
mod spin_variables;
pub mod token_cache;
mod value;
mod wasi_config;
mod wasmcloud_secrets;
mod wit;
mod wit_async;

pub use backend::{Backend, BackendError};
pub use name::{MAX_NAME_LEN, fold, is_valid_name};
pub use policy::budget::{self, Budget, VaultBudget};
pub use policy::grants::{self, Grant, Grants};
pub use policy::uses;
pub use policy::{Error, ErrorKind, Keys, SecretInfo, SecretsCtx, Unresolved, Vaults};
pub use spin_variables::add_spin_variables_to_linker;
pub use value::SecretValue;
pub use wasi_config::add_wasi_config_to_linker;
pub use wasmcloud_secrets::{WasmcloudSecretsView, add_wasmcloud_secrets_to_linker};
pub use wit::{SecretsView, add_to_linker, wit_store, wit_types};
pub use wit_async::add_async_to_linker;
