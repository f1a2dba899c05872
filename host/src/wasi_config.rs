//! `wasi:config/store` over the same grants, so components written for wasi:config (Spin,
//! wasmtime's wasi-config) read granted secrets unchanged.
//!
//! A key is a secret name; `_` is read as `-` when the key is not a valid name as it stands
//! (wasi:config keys are conventionally `snake_case`, vault names `kebab-case`). A key that is
//! invalid, not granted or not found is simply absent (`none`), as wasi:config expects; a
//! vault that refuses or is unreachable is an `upstream` error.

use crate::{ErrorKind, SecretError, SecretsView};
use std::borrow::Cow;
use wasmtime::component::{HasData, Linker};

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/deps/config",
        world: "wasi:config/imports",
        imports: { default: async | trappable },
    });
}

use generated::wasi::config::store as wit;

/// Adds `wasi:config/store` to `linker`, answering from the component's [`SecretsCtx`].
pub fn add_wasi_config_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasConfig>(linker, f)
}

struct HasConfig;

impl HasData for HasConfig {
    type Data<'a> = SecretsView<'a>;
}

fn key_to_name(key: &str) -> Cow<'_, str> {
    if !crate::is_valid_name(key) && key.contains('_') {
        Cow::Owned(key.replace('_', "-"))
    } else {
        Cow::Borrowed(key)
    }
}

/// `Ok(None)` for what a config store would call missing; an upstream error otherwise.
fn absent_or_error<T>(e: SecretError) -> Result<Option<T>, wit::Error> {
    match e.kind() {
        ErrorKind::InvalidName | ErrorKind::NotGranted | ErrorKind::NotFound => Ok(None),
        ErrorKind::Forbidden | ErrorKind::Unavailable => {
            Err(wit::Error::Upstream(e.message().to_owned()))
        }
    }
}

impl wit::Host for SecretsView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, wit::Error>> {
        let name = key_to_name(&key);
        Ok(match self.ctx.get(&name).await {
            Ok(v) => Ok(Some(v.expose().to_owned())),
            Err(e) => absent_or_error(e),
        })
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, wit::Error>> {
        let names = match self.ctx.list().await {
            Ok(n) => n,
            Err(e) => return Ok(Err(wit::Error::Upstream(e.message().to_owned()))),
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.ctx.get(&name).await {
                Ok(v) => out.push((name, v.expose().to_owned())),
                Err(e) => match absent_or_error::<()>(e) {
                    Ok(_) => {}
                    Err(upstream) => return Ok(Err(upstream)),
                },
            }
        }
        Ok(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::file::FileBackend;
    use crate::{Grants, SecretsCtx, Vaults};
    use wit::Host as _;

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

    #[tokio::test]
    async fn granted_keys_read_and_the_rest_are_absent() {
        let ctx = ctx();
        let mut view = SecretsView::new(&ctx);
        let get = async |view: &mut SecretsView<'_>, key: &str| {
            view.get(key.into()).await.unwrap().ok().unwrap()
        };
        assert_eq!(get(&mut view, "db-password").await.as_deref(), Some("pw"));
        assert_eq!(get(&mut view, "db_password").await.as_deref(), Some("pw"));
        for absent in ["api-key", "api_key", "missing", "../x", ""] {
            assert_eq!(get(&mut view, absent).await, None, "{absent}");
        }
        let all = view.get_all().await.unwrap().ok().unwrap();
        assert_eq!(all, vec![("db-password".to_string(), "pw".to_string())]);
    }
}
