//! `spin:variables/variables@3.0.0` over the same grants, so a component built with Spin's SDK
//! (spin-sdk 7, WASI 0.3) reads its variables from the vaults its grants name, unchanged. Its
//! `get` is an `async func`: a guest task waiting for the vault does not hold up the other
//! tasks of its instance.
//!
//! A variable name is a secret name; `_` is read as `-` when the name is not a valid secret
//! name as it stands (Spin's variable names are `snake_case`, Key Vault's names `kebab-case`;
//! Spin's own Azure Key Vault provider passes the name through unchanged, so a name with `_`
//! can never be read there). Errors map from the policy point's: `invalid-name`; `undefined`
//! for a name this component has no grant for, or that its vault does not hold; `provider` when
//! the vault refuses or cannot be reached (or the component is over its vault-call budget);
//! `other` for anything else. No error holds a value.

use crate::{Error, ErrorKind, SecretsCtx, SecretsView};
use wasmtime::component::{Accessor, HasData, Linker};

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/deps/spin-variables",
        world: "spin:variables/imports",
    });
}

use generated::spin::variables::variables as v3;

/// Adds `spin:variables/variables@3.0.0` to `linker`, answering from the component's
/// [`SecretsCtx`]. The store must run its guests with `run_concurrent` (WASI 0.3).
pub fn add_spin_variables_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    v3::add_to_linker::<T, HasVariables>(linker, f)
}

struct HasVariables;

impl HasData for HasVariables {
    type Data<'a> = SecretsView<'a>;
}

impl v3::Host for SecretsView<'_> {}

impl<T> v3::HostWithStore<T> for HasVariables {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> Result<String, v3::Error> {
        let ctx: SecretsCtx = accessor.with(|mut view| view.get().ctx.clone());
        let secret = crate::wasi_config::key_to_name(&name);
        ctx.get(&secret)
            .await
            .map(|v| v.expose().to_owned())
            .map_err(variable_error)
    }
}

/// Spin's error for the policy point's `e`.
fn variable_error(e: Error) -> v3::Error {
    let message = e.message().to_owned();
    match e.kind() {
        ErrorKind::InvalidName => v3::Error::InvalidName(message),
        ErrorKind::NotGranted | ErrorKind::NotFound => v3::Error::Undefined(message),
        ErrorKind::Forbidden | ErrorKind::Unavailable | ErrorKind::OverBudget => {
            v3::Error::Provider(message)
        }
        ErrorKind::InvalidArgument => v3::Error::Other(message),
    }
}
