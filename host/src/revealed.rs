//! A secret value handed to a guest straight from its zeroizing buffer: `store.get` and
//! `store.get-version` return [`Revealed`], which wasmtime lowers into the guest's memory
//! exactly as it lowers a `string`, with no plain `String` copy on the way (the generated
//! bindings would make one: their `get` returns `String`).
//!
//! [`add_zeroizing_gets`] defines the two functions over the ones bindgen generated (wasmtime's
//! linker allows it with shadowing on): same names, same types, same answers.

use crate::SecretValue;
use crate::wit::{SecretsView as View, wit_types};
use std::mem::MaybeUninit;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentType, Linker, Lower};
use wasmtime::{StoreContextMut, ValRaw};

/// A secret value, lowered as a WIT `string` from the value's own (zeroizing) memory.
pub(crate) struct Revealed(SecretValue);

// SAFETY: `Revealed` is lowered as the `str` it exposes, with `str`'s layout and checks.
unsafe impl ComponentType for Revealed {
    type Lower = <str as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <str as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <str as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: delegates to `str`'s lowering, on the value's bytes.
unsafe impl Lower for Revealed {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; 2]>,
    ) -> wasmtime::Result<()> {
        self.0.expose().linear_lower_to_flat(cx, ty, dst)
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        self.0.expose().linear_lower_to_memory(cx, ty, offset)
    }
}

/// The `store` interface's instance names: 0.1.0 (synchronous in WIT) and 0.2.0 (`async func`).
const STORE: &str = "wasm-secrets:secrets/store@0.1.0";
const STORE_ASYNC: &str = "wasm-secrets:secrets/store@0.2.0";

type Answer = Result<Revealed, wit_types::Error>;

/// Defines `store.get` and `store.get-version` in `linker` (over the generated ones) to answer
/// with [`Revealed`] values.
pub(crate) fn add_zeroizing_gets<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> View<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut store = linker.instance(STORE)?;
    store.func_wrap_async(
        "get",
        move |mut cx: StoreContextMut<'_, T>, (name,): (String,)| {
            let ctx = f(cx.data_mut()).ctx.clone();
            Box::new(async move {
                let answer: Answer = ctx.get(&name).await.map(Revealed).map_err(Into::into);
                Ok((answer,))
            })
        },
    )?;
    store.func_wrap_async(
        "get-version",
        move |mut cx: StoreContextMut<'_, T>, (name, version): (String, String)| {
            let ctx = f(cx.data_mut()).ctx.clone();
            Box::new(async move {
                let answer: Answer = ctx
                    .get_version(&name, &version)
                    .await
                    .map(Revealed)
                    .map_err(Into::into);
                Ok((answer,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// [`add_zeroizing_gets`] for the 0.2.0 `store`, whose functions are `async func`s: a guest
/// task waiting for the vault does not hold up the instance's other tasks.
pub(crate) fn add_zeroizing_async_gets<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> View<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut store = linker.instance(STORE_ASYNC)?;
    store.func_wrap_concurrent("get", move |accessor, (name,): (String,)| {
        let ctx = accessor.with(|mut access| f(access.get()).ctx.clone());
        Box::pin(async move {
            let answer: Answer = ctx.get(&name).await.map(Revealed).map_err(Into::into);
            Ok((answer,))
        })
    })?;
    store.func_wrap_concurrent(
        "get-version",
        move |accessor, (name, version): (String, String)| {
            let ctx = accessor.with(|mut access| f(access.get()).ctx.clone());
            Box::pin(async move {
                let answer: Answer = ctx
                    .get_version(&name, &version)
                    .await
                    .map(Revealed)
                    .map_err(Into::into);
                Ok((answer,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
