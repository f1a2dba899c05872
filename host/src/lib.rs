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
//! Keep a [`SecretsCtx`] in your store data and add the interface to your linker:
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
//! let engine = wasmtime::Engine::default();
//! let mut linker: Linker<MyState> = Linker::new(&engine);
//! wasm_secrets::add_to_linker(&mut linker, |s: &mut MyState| SecretsView::new(&s.secrets))?;
//! // ... instantiate a component that imports wasm-secrets:secrets/store with
//! // `Store::new(&engine, MyState { secrets })` and call it with the async API.
//!
//! // The same policy is available without wasm, for example in tests:
//! # let ctx = SecretsCtx::new("my-component", Grants::parse(["db-password"])?,
//! #     Vaults::new().with("default", FileBackend::new("example", [("db-password".into(), "s3cret".into())])));
//! let value = futures::executor::block_on(ctx.get("db-password"))?;
//! assert_eq!(value.expose(), "s3cret");
//! let denied = futures::executor::block_on(ctx.get("other")).unwrap_err();
//! assert_eq!(denied.kind().as_str(), "not-granted");
//! # Ok(()) }
//! ```
//!
//! Or let a [`runtime::Runtime`] run a wasi:cli command with the same context (here the
//! example guest `secrets-get`, which prints `name=value` for each name it is given), or serve
//! wasi:http requests with it ([`runtime::Proxy`]):
//!
//! ```
//! # use wasm_secrets::{backend::file::FileBackend, Grants, SecretsCtx, Vaults};
//! # use wasm_secrets::runtime::{load_component, CommandOptions, EngineOptions, Outcome, Runtime};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! # let guest = std::path::Path::new(env!("WASM_SECRETS_GUEST_DIR")).join("secrets-get.wasm");
//! let vaults = Vaults::new().with("default", FileBackend::new("example", [("db-password".into(), "s3cret".into())]));
//! let secrets = SecretsCtx::new("secrets-get", Grants::parse(["db-password"])?, vaults);
//!
//! let runtime = Runtime::new(&EngineOptions::default())?;
//! let (component, _) = load_component(runtime.engine(), &guest, None)?;
//! let options = CommandOptions {
//!     args: vec!["secrets-get".into(), "db-password".into(), "api-key".into()],
//!     capture_output: true,
//!     ..CommandOptions::default()
//! };
//! let result = runtime.run_command(&component, secrets, &options).await?;
//! let out = String::from_utf8(result.stdout)?;
//! assert!(out.starts_with("db-password=s3cret\napi-key: not-granted: "));
//! assert!(matches!(result.outcome, Outcome::Exited(1)));
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod audit;
pub mod backend;
pub mod cache;
pub mod config;
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
pub mod runtime;
pub mod serve;
pub mod token_cache;
mod value;
mod wasi_config;
mod wit;

pub use backend::{Backend, BackendError};
pub use name::{MAX_NAME_LEN, fold, is_valid_name};
pub use policy::grants::{self, Grant, Grants};
pub use policy::{Error, ErrorKind, Keys, SecretInfo, SecretsCtx, Unresolved, Vaults};
pub use value::SecretValue;
pub use wasi_config::add_wasi_config_to_linker;
pub use wit::{SecretsView, add_to_linker, wit_store, wit_types};
