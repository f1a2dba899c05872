//! The WIT host implementation: the `wasm-secrets:secrets` interfaces, `store` over a
//! [`SecretsCtx`] and `keys` over its [`Keys`](crate::Keys), each a thin adapter over the policy
//! point that maps its [`Error`] once.
//!
//! Shaped like wasmtime's `wasi-config` crate: an owned state type ([`SecretsCtx`]) that the
//! embedder keeps in its store data, a borrowed view ([`SecretsView`]) that implements the
//! generated `Host` trait, and one [`add_to_linker`].

use crate::{Error, ErrorKind, SecretInfo, SecretsCtx};
use wasmtime::component::{HasData, Linker};

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasm-secrets:secrets/app",
        imports: { default: async | trappable },
    });
}

/// The generated bindings, for embedders that want the raw WIT types.
pub use generated::wasm_secrets::secrets::{
    keys as wit_keys, store as wit_store, types as wit_types,
};

/// A borrowed view of a component's [`SecretsCtx`], handed to the generated bindings.
pub struct SecretsView<'a> {
    pub(crate) ctx: &'a SecretsCtx,
}

impl<'a> SecretsView<'a> {
    /// A view of `ctx`.
    pub fn new(ctx: &'a SecretsCtx) -> Self {
        Self { ctx }
    }
}

impl<'a> From<&'a SecretsCtx> for SecretsView<'a> {
    fn from(ctx: &'a SecretsCtx) -> Self {
        Self { ctx }
    }
}

/// Adds the `wasm-secrets:secrets` interfaces (`types`, `store` and `keys`) to `linker`. `f` picks the component's
/// [`SecretsCtx`] out of the store data.
///
/// The host functions are async: call the component with the `*_async` APIs. `store.get` and
/// `get-version` lower a value straight from its zeroizing buffer (defined over the generated
/// ones, with the linker's shadowing on for the moment; it is left off).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    wit_types::add_to_linker::<T, HasSecrets>(linker, f)?;
    wit_store::add_to_linker::<T, HasSecrets>(linker, f)?;
    // `get` and `get-version` again, lowering values from their zeroizing buffers.
    crate::revealed::add_zeroizing_gets::<T, wit_types::Error, _>(
        linker,
        "wasm-secrets:secrets/store@0.1.0",
        false,
        move |t: &mut T| f(t).ctx.clone(),
    )?;
    wit_keys::add_to_linker::<T, HasSecrets>(linker, f)?;
    Ok(())
}

struct HasSecrets;

impl HasData for HasSecrets {
    type Data<'a> = SecretsView<'a>;
}

/// The `store` interface's mapping of the policy point's [`Error`].
impl From<Error> for wit_types::Error {
    fn from(e: Error) -> Self {
        let message = e.message().to_owned();
        match e.kind() {
            ErrorKind::InvalidName => Self::InvalidName(message),
            ErrorKind::NotGranted => Self::NotGranted(message),
            ErrorKind::NotFound => Self::NotFound(message),
            ErrorKind::Forbidden => Self::Forbidden(message),
            // No secret request refuses an input; were one to, it fails closed.
            ErrorKind::Unavailable | ErrorKind::OverBudget | ErrorKind::InvalidArgument => {
                Self::Unavailable(message)
            }
        }
    }
}

impl From<SecretInfo> for wit_types::SecretInfo {
    fn from(i: SecretInfo) -> Self {
        Self {
            name: i.name,
            version: i.meta.version,
            content_type: i.meta.content_type,
            enabled: i.meta.enabled,
            not_before: i.meta.not_before,
            expires: i.meta.expires,
            created: i.meta.created,
            updated: i.meta.updated,
            tags: i.meta.tags,
        }
    }
}

impl wit_types::Host for SecretsView<'_> {}

impl wit_store::Host for SecretsView<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, wit_types::Error>> {
        // Not what a guest linked by `add_to_linker` calls: that `get` is `revealed`'s, which
        // lowers the value from its zeroizing buffer. This one (for the trait) makes a plain
        // copy, because the generated bindings lower a `String`.
        Ok(self
            .ctx
            .get(&name)
            .await
            .map(|v| v.expose().to_owned())
            .map_err(Into::into))
    }

    async fn get_version(
        &mut self,
        name: String,
        version: String,
    ) -> wasmtime::Result<Result<String, wit_types::Error>> {
        Ok(self
            .ctx
            .get_version(&name, &version)
            .await
            .map(|v| v.expose().to_owned())
            .map_err(Into::into))
    }

    async fn info(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<wit_types::SecretInfo, wit_types::Error>> {
        Ok(self
            .ctx
            .info(&name)
            .await
            .map(Into::into)
            .map_err(Into::into))
    }

    async fn list(&mut self) -> wasmtime::Result<Result<Vec<String>, wit_types::Error>> {
        Ok(self.ctx.list().await.map_err(Into::into))
    }
}

/// The `keys` interface's mapping of the policy point's [`Error`].
impl From<Error> for wit_keys::KeyError {
    fn from(e: Error) -> Self {
        let message = e.message().to_owned();
        match e.kind() {
            ErrorKind::InvalidName => Self::InvalidName(message),
            ErrorKind::NotGranted => Self::NotGranted(message),
            ErrorKind::NotFound => Self::NotFound(message),
            ErrorKind::Forbidden => Self::Forbidden(message),
            ErrorKind::Unavailable | ErrorKind::OverBudget => Self::Unavailable(message),
            ErrorKind::InvalidArgument => Self::InvalidArgument(message),
        }
    }
}

impl From<wit_keys::SignatureAlgorithm> for crate::keys::SignatureAlgorithm {
    fn from(a: wit_keys::SignatureAlgorithm) -> Self {
        use wit_keys::SignatureAlgorithm as W;
        match a {
            W::Rs256 => Self::Rs256,
            W::Rs384 => Self::Rs384,
            W::Rs512 => Self::Rs512,
            W::Ps256 => Self::Ps256,
            W::Ps384 => Self::Ps384,
            W::Ps512 => Self::Ps512,
            W::Es256 => Self::Es256,
            W::Es384 => Self::Es384,
            W::Es512 => Self::Es512,
            W::Es256k => Self::Es256k,
        }
    }
}

impl From<wit_keys::EncryptionAlgorithm> for crate::keys::EncryptionAlgorithm {
    fn from(a: wit_keys::EncryptionAlgorithm) -> Self {
        use wit_keys::EncryptionAlgorithm as W;
        match a {
            W::RsaOaep => Self::RsaOaep,
            W::RsaOaep256 => Self::RsaOaep256,
            W::Rsa15 => Self::Rsa1_5,
        }
    }
}

type KeyResult<T> = wasmtime::Result<Result<T, wit_keys::KeyError>>;

impl wit_keys::Host for SecretsView<'_> {
    async fn sign(
        &mut self,
        name: String,
        algorithm: wit_keys::SignatureAlgorithm,
        digest: Vec<u8>,
    ) -> KeyResult<Vec<u8>> {
        Ok(self
            .ctx
            .keys()
            .sign(&name, algorithm.into(), &digest)
            .await
            .map_err(Into::into))
    }

    async fn verify(
        &mut self,
        name: String,
        algorithm: wit_keys::SignatureAlgorithm,
        digest: Vec<u8>,
        signature: Vec<u8>,
    ) -> KeyResult<bool> {
        Ok(self
            .ctx
            .keys()
            .verify(&name, algorithm.into(), &digest, &signature)
            .await
            .map_err(Into::into))
    }

    async fn wrap_key(
        &mut self,
        name: String,
        algorithm: wit_keys::EncryptionAlgorithm,
        key: Vec<u8>,
    ) -> KeyResult<Vec<u8>> {
        let key = zeroize::Zeroizing::new(key);
        Ok(self
            .ctx
            .keys()
            .wrap_key(&name, algorithm.into(), &key)
            .await
            .map_err(Into::into))
    }

    async fn unwrap_key(
        &mut self,
        name: String,
        algorithm: wit_keys::EncryptionAlgorithm,
        wrapped: Vec<u8>,
    ) -> KeyResult<Vec<u8>> {
        // As with secret values, the plain Vec handed to the bindings is what they lower.
        Ok(self
            .ctx
            .keys()
            .unwrap_key(&name, algorithm.into(), &wrapped)
            .await
            .map(|k| k.to_vec())
            .map_err(Into::into))
    }

    async fn encrypt(
        &mut self,
        name: String,
        algorithm: wit_keys::EncryptionAlgorithm,
        plaintext: Vec<u8>,
    ) -> KeyResult<Vec<u8>> {
        let plaintext = zeroize::Zeroizing::new(plaintext);
        Ok(self
            .ctx
            .keys()
            .encrypt(&name, algorithm.into(), &plaintext)
            .await
            .map_err(Into::into))
    }

    async fn decrypt(
        &mut self,
        name: String,
        algorithm: wit_keys::EncryptionAlgorithm,
        ciphertext: Vec<u8>,
    ) -> KeyResult<Vec<u8>> {
        Ok(self
            .ctx
            .keys()
            .decrypt(&name, algorithm.into(), &ciphertext)
            .await
            .map(|k| k.to_vec())
            .map_err(Into::into))
    }

    async fn public_key(&mut self, name: String) -> KeyResult<String> {
        Ok(self.ctx.keys().public_key(&name).await.map_err(Into::into))
    }
}
