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

/// The key operations of [`crate::keys`], as `async fn`s (`wasm-secrets:secrets/keys@0.2.0`):
/// the vault signs and decrypts while the instance's other tasks go on. Same answers and errors.
///
/// ```no_run
/// # async fn handler() -> Result<(), wasm_secrets_guest::keys::KeyError> {
/// use wasm_secrets_guest::keys::SignatureAlgorithm;
/// let signature =
///     wasm_secrets_guest::p3::keys::sign("jwt-signing", SignatureAlgorithm::Es256, &[7; 32]).await?;
/// # drop(signature);
/// # Ok(())
/// # }
/// ```
pub mod keys {
    use super::bindings::wasm_secrets::secrets0_2_0::keys as wit;
    use crate::keys::{EncryptionAlgorithm, KeyError, SignatureAlgorithm};

    /// Signs `digest` with the key granted as `name` (see [`crate::keys::sign`]).
    pub async fn sign(
        name: &str,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        Ok(wit::sign(name.to_owned(), algorithm, digest.to_vec()).await?)
    }

    /// Whether `signature` is `digest`'s signature by the key granted as `name` (see
    /// [`crate::keys::verify`]).
    pub async fn verify(
        name: &str,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<bool, KeyError> {
        Ok(wit::verify(
            name.to_owned(),
            algorithm,
            digest.to_vec(),
            signature.to_vec(),
        )
        .await?)
    }

    /// Wraps the symmetric key `key` with the key granted as `name`.
    pub async fn wrap_key(
        name: &str,
        algorithm: EncryptionAlgorithm,
        key: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        Ok(wit::wrap_key(name.to_owned(), algorithm, key.to_vec()).await?)
    }

    /// Unwraps a key wrapped by [`wrap_key`].
    pub async fn unwrap_key(
        name: &str,
        algorithm: EncryptionAlgorithm,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        Ok(wit::unwrap_key(name.to_owned(), algorithm, wrapped.to_vec()).await?)
    }

    /// Encrypts a short `plaintext` with the key granted as `name`.
    pub async fn encrypt(
        name: &str,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        Ok(wit::encrypt(name.to_owned(), algorithm, plaintext.to_vec()).await?)
    }

    /// Decrypts a ciphertext made by [`encrypt`].
    pub async fn decrypt(
        name: &str,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        Ok(wit::decrypt(name.to_owned(), algorithm, ciphertext.to_vec()).await?)
    }

    /// The public JSON Web Key of the key granted as `name` (never private parts).
    pub async fn public_key(name: &str) -> Result<String, KeyError> {
        Ok(wit::public_key(name.to_owned()).await?)
    }
}
