//! `wasmcloud:secrets@0.1.0-draft` (`store.get` handing out an opaque `secret`, then
//! `reveal.reveal`) over the same grants, so a component written for wasmCloud's secrets
//! reads them unchanged.
//!
//! A key is a secret name, read as `wasi:config` keys are (`_` as `-` when the key is not a
//! valid name as it stands). `get` asks the policy point at once and the handle holds the
//! value (wiped when the guest drops it), so `reveal` cannot fail, as its signature requires.
//! A use-only secret is refused at `get`: `reveal` has no error case to refuse it with, and a
//! use-only secret never crosses into the guest. Errors: `not-found` for a key this component
//! has no grant for, or that its vault does not hold; `upstream` with the policy point's
//! message for everything else (a use-only secret, an invalid name, a vault refusing or out
//! of reach). No error holds a value.

use crate::{Error, ErrorKind, SecretValue, SecretsCtx};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/deps/secrets-wasmcloud",
        world: "wasmcloud:secrets/imports",
        imports: { default: async | trappable },
        with: { "wasmcloud:secrets/store.secret": super::Revealable },
    });
}

use generated::wasmcloud::secrets::{reveal, store};

/// The host side of a guest's `secret` handle: the value `get` read.
pub struct Revealable(SecretValue);

/// What `wasmcloud:secrets` needs of a store: the component's secrets and the table its
/// handles live in.
pub struct WasmcloudSecretsView<'a> {
    /// The component's secrets.
    pub ctx: &'a SecretsCtx,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

/// Adds `wasmcloud:secrets/store` and `reveal` (`0.1.0-draft`) to `linker`, answering from
/// the component's [`SecretsCtx`].
pub fn add_wasmcloud_secrets_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> WasmcloudSecretsView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasSecrets>(linker, f)?;
    reveal::add_to_linker::<T, HasSecrets>(linker, f)
}

struct HasSecrets;

impl HasData for HasSecrets {
    type Data<'a> = WasmcloudSecretsView<'a>;
}

impl store::Host for WasmcloudSecretsView<'_> {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Revealable>, store::SecretsError>> {
        let name = crate::wasi_config::key_to_name(&key);
        match self.ctx.get(&name).await {
            Ok(value) => Ok(Ok(self.table.push(Revealable(value))?)),
            Err(e) => Ok(Err(secrets_error(e))),
        }
    }
}

impl store::HostSecret for WasmcloudSecretsView<'_> {
    async fn drop(&mut self, secret: Resource<Revealable>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}

impl reveal::Host for WasmcloudSecretsView<'_> {
    async fn reveal(
        &mut self,
        secret: Resource<Revealable>,
    ) -> wasmtime::Result<store::SecretValue> {
        let Revealable(value) = self.table.get(&secret)?;
        Ok(store::SecretValue::String(value.expose().to_owned()))
    }
}

/// wasmCloud's error for the policy point's `e`.
fn secrets_error(e: Error) -> store::SecretsError {
    match e.kind() {
        ErrorKind::NotFound => store::SecretsError::NotFound,
        ErrorKind::NotGranted if !e.message().contains("use-only") => store::SecretsError::NotFound,
        _ => store::SecretsError::Upstream(e.message().to_owned()),
    }
}
