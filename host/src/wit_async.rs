//! `wasm-secrets:secrets@0.2.0`: the `store` and `keys` interfaces as `async func`s, for WASI
//! 0.3 guests. A guest task waiting for the vault waits alone: the instance's other tasks go
//! on. The types are 0.1.0's own, and each function answers exactly as its 0.1.0 twin in
//! [`crate::wit`] does (it calls it): same grants, errors, audit and limits.

use crate::wit::{wit_keys, wit_store, wit_types};
use crate::{SecretsCtx, SecretsView};
use wasmtime::component::{Accessor, HasData, Linker};

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/secrets-async",
        world: "wasm-secrets:secrets/app@0.2.0",
        imports: { default: trappable },
        with: {
            "wasm-secrets:secrets/types@0.1.0": crate::wit::wit_types,
            "wasm-secrets:secrets/keys@0.1.0": crate::wit::wit_keys,
        },
    });
}

use generated::wasm_secrets::secrets0_2_0::keys as keys2;
use generated::wasm_secrets::secrets0_2_0::store as store2;

/// Adds `wasm-secrets:secrets/store@0.2.0` and `keys@0.2.0` to `linker`. `f` picks the
/// component's [`SecretsCtx`] out of the store data. Guests calling them run with
/// `run_concurrent` (WASI 0.3).
pub fn add_async_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    store2::add_to_linker::<T, HasAsync>(linker, f)?;
    // `get` and `get-version` again, lowering values from their zeroizing buffers.
    crate::revealed::add_zeroizing_gets::<T, wit_types::Error, _>(
        linker,
        "wasm-secrets:secrets/store@0.2.0",
        true,
        move |t: &mut T| f(t).ctx.clone(),
    )?;
    keys2::add_to_linker::<T, HasAsync>(linker, f)
}

struct HasAsync;

impl HasData for HasAsync {
    type Data<'a> = SecretsView<'a>;
}

impl store2::Host for SecretsView<'_> {}
impl keys2::Host for SecretsView<'_> {}

/// The component's context, out of the store (cheap to clone: the policy is shared).
fn ctx<T>(accessor: &Accessor<T, HasAsync>) -> SecretsCtx {
    accessor.with(|mut view| view.get().ctx.clone())
}

type Answer<T> = wasmtime::Result<Result<T, wit_types::Error>>;
type KeyAnswer<T> = wasmtime::Result<Result<T, wit_keys::KeyError>>;

impl<T> store2::HostWithStore<T> for HasAsync {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> Answer<String> {
        let ctx = ctx(accessor);
        wit_store::Host::get(&mut SecretsView::new(&ctx), name).await
    }

    async fn get_version(
        accessor: &Accessor<T, Self>,
        name: String,
        version: String,
    ) -> Answer<String> {
        let ctx = ctx(accessor);
        wit_store::Host::get_version(&mut SecretsView::new(&ctx), name, version).await
    }

    async fn info(accessor: &Accessor<T, Self>, name: String) -> Answer<wit_types::SecretInfo> {
        let ctx = ctx(accessor);
        wit_store::Host::info(&mut SecretsView::new(&ctx), name).await
    }

    async fn list(accessor: &Accessor<T, Self>) -> Answer<Vec<String>> {
        let ctx = ctx(accessor);
        wit_store::Host::list(&mut SecretsView::new(&ctx)).await
    }
}

impl<T> keys2::HostWithStore<T> for HasAsync {
    async fn sign(
        accessor: &Accessor<T, Self>,
        name: String,
        algorithm: wit_keys::SignatureAlgorithm,
        digest: Vec<u8>,
    ) -> KeyAnswer<Vec<u8>> {
        let ctx = ctx(accessor);
        wit_keys::Host::sign(&mut SecretsView::new(&ctx), name, algorithm, digest).await
    }

    async fn verify(
        accessor: &Accessor<T, Self>,
        name: String,
        algorithm: wit_keys::SignatureAlgorithm,
        digest: Vec<u8>,
        signature: Vec<u8>,
    ) -> KeyAnswer<bool> {
        let ctx = ctx(accessor);
        let mut view = SecretsView::new(&ctx);
        wit_keys::Host::verify(&mut view, name, algorithm, digest, signature).await
    }

    async fn wrap_key(
        accessor: &Accessor<T, Self>,
        name: String,
        algorithm: wit_keys::EncryptionAlgorithm,
        key: Vec<u8>,
    ) -> KeyAnswer<Vec<u8>> {
        let ctx = ctx(accessor);
        wit_keys::Host::wrap_key(&mut SecretsView::new(&ctx), name, algorithm, key).await
    }

    async fn unwrap_key(
        accessor: &Accessor<T, Self>,
        name: String,
        algorithm: wit_keys::EncryptionAlgorithm,
        wrapped: Vec<u8>,
    ) -> KeyAnswer<Vec<u8>> {
        let ctx = ctx(accessor);
        wit_keys::Host::unwrap_key(&mut SecretsView::new(&ctx), name, algorithm, wrapped).await
    }

    async fn encrypt(
        accessor: &Accessor<T, Self>,
        name: String,
        algorithm: wit_keys::EncryptionAlgorithm,
        plaintext: Vec<u8>,
    ) -> KeyAnswer<Vec<u8>> {
        let ctx = ctx(accessor);
        wit_keys::Host::encrypt(&mut SecretsView::new(&ctx), name, algorithm, plaintext).await
    }

    async fn decrypt(
        accessor: &Accessor<T, Self>,
        name: String,
        algorithm: wit_keys::EncryptionAlgorithm,
        ciphertext: Vec<u8>,
    ) -> KeyAnswer<Vec<u8>> {
        let ctx = ctx(accessor);
        wit_keys::Host::decrypt(&mut SecretsView::new(&ctx), name, algorithm, ciphertext).await
    }

    async fn public_key(accessor: &Accessor<T, Self>, name: String) -> KeyAnswer<String> {
        let ctx = ctx(accessor);
        wit_keys::Host::public_key(&mut SecretsView::new(&ctx), name).await
    }
}
