//! The policy point for secrets and keys (design section 2): every request of a guest, through
//! whichever interface, is checked and audited here, on one path, before any vault call.
//!
//! - [`grants`]: one table of this component's grants, secret and key grants alike.
//! - `point`: the one path: validate the name, resolve the grant, find the vault, then audit.
//! - `secrets`: [`SecretsCtx`], reading secrets (and handing use-only ones to egress);
//!   `keys`: [`Keys`], using keys.
//! - [`uses`]: use-only grants: where a secret the guest never reads may be sent, and how.
//! - [`budget`]: what a component's vault calls may spend, and its share of each vault's.
//! - `error`: the one [`Error`] that the guest interfaces map to their own variants.
//! - `vaults`: [`Vaults`], the backends grants lead to.
//!
//! Below it: the cache ([`crate::cache`]) and the vaults ([`crate::backend`]). Nothing here
//! knows about wasmtime; the interfaces over it are [`crate::wit`] and [`crate::wasi_config`].

mod apply;
pub mod budget;
mod error;
pub mod grants;
mod keys;
mod point;
mod secrets;
pub mod uses;
mod vaults;

pub use apply::{UseRecord, UseValues};
pub use error::{Error, ErrorKind};
pub use keys::Keys;
pub use secrets::{SecretInfo, SecretsCtx, Unresolved};
pub use vaults::Vaults;
