//! A secret value handed to a guest straight from its zeroizing buffer: `store.get` and
//! `store.get-version` return [`Revealed`], which wasmtime lowers into the guest's memory
//! exactly as it lowers a `string`, with no plain `String` copy on the way (the generated
//! bindings would make one: their `get` returns `String`).
//!
//! [`add_zeroizing_gets`] defines the two functions over the ones bindgen generated (wasmtime's
//! linker allows it with shadowing on): same names, same types, same answers. It knows nothing
//! of the generated bindings: `crate::wit` and `crate::wit_async` pass their error type.

use crate::{Error, SecretValue, SecretsCtx};
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

/// Defines `get` and `get-version` of the `store` instance `interface` in `linker` (over the
/// generated ones) to answer with [`Revealed`] values, the errors as `E` (the interface's
/// `error` type). `concurrent`: the functions are `async func`s in WIT (the 0.2.0 store), so a
/// guest task waiting for the vault does not hold up the instance's other tasks.
pub(crate) fn add_zeroizing_gets<T, E, C>(
    linker: &mut Linker<T>,
    interface: &str,
    concurrent: bool,
    ctx_of: C,
) -> wasmtime::Result<()>
where
    T: Send + 'static,
    E: From<Error> + ComponentType + Lower + Send + 'static,
    C: Fn(&mut T) -> SecretsCtx + Copy + Send + Sync + 'static,
{
    linker.allow_shadowing(true);
    let mut store = linker.instance(interface)?;
    if concurrent {
        store.func_wrap_concurrent("get", move |accessor, (name,): (String,)| {
            let ctx = accessor.with(|mut access| ctx_of(access.get()));
            Box::pin(async move { Ok((get::<E>(&ctx, &name, None).await,)) })
        })?;
        store.func_wrap_concurrent(
            "get-version",
            move |accessor, (name, version): (String, String)| {
                let ctx = accessor.with(|mut access| ctx_of(access.get()));
                Box::pin(async move { Ok((get::<E>(&ctx, &name, Some(&version)).await,)) })
            },
        )?;
    } else {
        store.func_wrap_async(
            "get",
            move |mut cx: StoreContextMut<'_, T>, (name,): (String,)| {
                let ctx = ctx_of(cx.data_mut());
                Box::new(async move { Ok((get::<E>(&ctx, &name, None).await,)) })
            },
        )?;
        store.func_wrap_async(
            "get-version",
            move |mut cx: StoreContextMut<'_, T>, (name, version): (String, String)| {
                let ctx = ctx_of(cx.data_mut());
                Box::new(async move { Ok((get::<E>(&ctx, &name, Some(&version)).await,)) })
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// `get` (or `get-version`, with `version`) through the policy point.
async fn get<E: From<Error>>(
    ctx: &SecretsCtx,
    name: &str,
    version: Option<&str>,
) -> Result<Revealed, E> {
    let value = match version {
        None => ctx.get(name).await,
        Some(v) => ctx.get_version(name, v).await,
    };
    value.map(Revealed).map_err(E::from)
}
