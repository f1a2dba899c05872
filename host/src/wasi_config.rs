//! `wasi:config/store` over the same grants, so components written for wasi:config (Spin,
//! wasmtime's wasi-config, wasmCloud) read granted secrets unchanged. The three versions guests
//! are built against today are linked: `0.2.0-rc.1` (wasmtime-wasi-config), `0.2.0-draft`
//! (wasmCloud's component SDK, `wasmcloud-component` 0.2) and `0.2.0-draft-2024-09-27` (Spin).
//! They have the same shape and the same answers: each is one more binding of the same
//! implementation below.
//!
//! A key is a secret name; `_` is read as `-` when the key is not a valid name as it stands
//! (wasi:config keys are conventionally `snake_case`, vault names `kebab-case`). A key that is
//! invalid, not granted or not found is simply absent (`none`), as wasi:config expects; a
//! vault that refuses or is unreachable is an `upstream` error.

use crate::{Error, ErrorKind, SecretsView};
use std::borrow::Cow;
use wasmtime::component::{HasData, Linker};

#[allow(missing_docs)]
mod generated {
    pub mod rc1 {
        wasmtime::component::bindgen!({
            path: "../wit/deps/config",
            world: "wasi:config/imports",
            imports: { default: async | trappable },
        });
    }
    pub mod draft {
        wasmtime::component::bindgen!({
            path: "../wit/deps/config-draft",
            world: "wasi:config/imports",
            imports: { default: async | trappable },
        });
    }
    pub mod wasmcloud {
        wasmtime::component::bindgen!({
            path: "../wit/deps/config-wasmcloud",
            world: "wasi:config/imports",
            imports: { default: async | trappable },
        });
    }
}

use generated::draft::wasi::config::store as draft;
use generated::rc1::wasi::config::store as rc1;
use generated::wasmcloud::wasi::config::store as wasmcloud;

/// Adds `wasi:config/store` (all three versions) to `linker`, answering from the component's
/// [`SecretsCtx`](crate::SecretsCtx).
pub fn add_wasi_config_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    rc1::add_to_linker::<T, HasConfig>(linker, f)?;
    wasmcloud::add_to_linker::<T, HasConfig>(linker, f)?;
    draft::add_to_linker::<T, HasConfig>(linker, f)
}

struct HasConfig;

impl HasData for HasConfig {
    type Data<'a> = SecretsView<'a>;
}

pub(crate) fn key_to_name(key: &str) -> Cow<'_, str> {
    if !crate::is_valid_name(key) && key.contains('_') {
        Cow::Owned(key.replace('_', "-"))
    } else {
        Cow::Borrowed(key)
    }
}

/// An `upstream` error's message: the vault refused or could not be reached.
struct Upstream(String);

/// wasi:config's mapping of the policy point's [`Error`]: `Ok(None)` for what a config store
/// would call missing; an upstream error otherwise.
fn absent_or_error<T>(e: Error) -> Result<Option<T>, Upstream> {
    match e.kind() {
        ErrorKind::InvalidName | ErrorKind::NotGranted | ErrorKind::NotFound => Ok(None),
        ErrorKind::Forbidden
        | ErrorKind::Unavailable
        | ErrorKind::OverBudget
        | ErrorKind::InvalidArgument => Err(Upstream(e.message().to_owned())),
    }
}

impl SecretsView<'_> {
    async fn config_get(&mut self, key: &str) -> Result<Option<String>, Upstream> {
        let name = key_to_name(key);
        match self.ctx.get(&name).await {
            Ok(v) => Ok(Some(v.expose().to_owned())),
            Err(e) => absent_or_error(e),
        }
    }

    async fn config_get_all(&mut self) -> Result<Vec<(String, String)>, Upstream> {
        let names = self
            .ctx
            .list()
            .await
            .map_err(|e| Upstream(e.message().to_owned()))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.ctx.get(&name).await {
                Ok(v) => out.push((name, v.expose().to_owned())),
                Err(e) => {
                    absent_or_error::<()>(e)?;
                }
            }
        }
        Ok(out)
    }
}

/// The `Host` trait of one version of `wasi:config/store`, over the shared answers.
macro_rules! impl_store_host {
    ($version:ident) => {
        impl $version::Host for SecretsView<'_> {
            async fn get(
                &mut self,
                key: String,
            ) -> wasmtime::Result<Result<Option<String>, $version::Error>> {
                Ok(self
                    .config_get(&key)
                    .await
                    .map_err(|Upstream(m)| $version::Error::Upstream(m)))
            }

            async fn get_all(
                &mut self,
            ) -> wasmtime::Result<Result<Vec<(String, String)>, $version::Error>> {
                Ok(self
                    .config_get_all()
                    .await
                    .map_err(|Upstream(m)| $version::Error::Upstream(m)))
            }
        }
    };
}

impl_store_host!(rc1);
impl_store_host!(wasmcloud);
impl_store_host!(draft);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::file::FileBackend;
    use crate::{Grants, SecretsCtx, Vaults};

    fn ctx() -> SecretsCtx {
        let file = FileBackend::new(
            "t",
            [
                ("db-password".to_string(), "pw".into()),
                ("api-key".to_string(), "k".into()),
            ],
        );
        SecretsCtx::new(
            "c",
            Grants::parse(["db-password", "missing"]).unwrap(),
            Vaults::new().with("default", file),
        )
    }

    /// Holds one version of the interface to the same answers.
    macro_rules! check_version {
        ($version:ident) => {{
            let ctx = ctx();
            let mut view = SecretsView::new(&ctx);
            let version = stringify!($version);
            for key in ["db-password", "db_password"] {
                let got = $version::Host::get(&mut view, key.into()).await.unwrap();
                assert_eq!(got.ok().flatten().as_deref(), Some("pw"), "{version} {key}");
            }
            for absent in ["api-key", "api_key", "missing", "../x", ""] {
                let got = $version::Host::get(&mut view, absent.into()).await.unwrap();
                assert_eq!(got.ok().unwrap(), None, "{version} {absent}");
            }
            let all = $version::Host::get_all(&mut view).await.unwrap();
            let expected = vec![("db-password".to_string(), "pw".to_string())];
            assert_eq!(all.ok().unwrap(), expected, "{version}");
        }};
    }

    #[tokio::test]
    async fn granted_keys_read_and_the_rest_are_absent_in_every_version() {
        check_version!(rc1);
        check_version!(wasmcloud);
        check_version!(draft);
    }
}
