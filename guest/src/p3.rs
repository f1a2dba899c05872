//! The same functions for WASI 0.3 components, as `async fn`s (`wasm-secrets:secrets@0.2.0`,
//! whose `store` functions are `async func`s): a task waiting for the vault waits alone, and
//! the instance's other tasks (say, other requests it is serving) go on. Same answers and
//! errors as the functions at the crate's root.
//!
//! ```no_run
//! # async fn handler() -> Result<(), wasm_secrets_guest::Error> {
//! let password = wasm_secrets_guest::p3::get("db-password").await?;
//! # drop(password);
//! # Ok(())
//! # }
//! ```

use crate::{Error, SecretInfo};

/// The bindings generated from `wit/secrets-async` (world `app@0.2.0`), over the types of
/// 0.1.0.
pub mod bindings {
    wit_bindgen::generate!({
        world: "wasm-secrets:secrets/app@0.2.0",
        path: "../wit/secrets-async",
        with: {
            "wasm-secrets:secrets/types@0.1.0": crate::bindings::wasm_secrets::secrets::types,
            "wasm-secrets:secrets/keys@0.1.0": crate::bindings::wasm_secrets::secrets::keys,
        },
    });
}

use bindings::wasm_secrets::secrets0_2_0::store;

/// The current value of the secret granted as `name` (see [`crate::get`]).
pub async fn get(name: &str) -> Result<String, Error> {
    store::get(name.to_owned()).await.map_err(Into::into)
}

/// The value of version `version` of the secret granted as `name` (see [`crate::get_version`]).
pub async fn get_version(name: &str, version: &str) -> Result<String, Error> {
    store::get_version(name.to_owned(), version.to_owned())
        .await
        .map_err(Into::into)
}

/// What the vault knows about the secret granted as `name`, never its value (see
/// [`crate::info`]).
pub async fn info(name: &str) -> Result<SecretInfo, Error> {
    store::info(name.to_owned())
        .await
        .map(Into::into)
        .map_err(Into::into)
}

/// The granted names that exist, sorted (see [`crate::list`]).
pub async fn list() -> Result<Vec<String>, Error> {
    store::list().await.map_err(Into::into)
}
