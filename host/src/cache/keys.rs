//! Public keys go through the vault cache's one policy, like everything else read from a
//! vault. Operations are never cached: each one is the vault's to do.

use super::table::Served;
use super::{Admit, CachedBackend, Unlimited, key};
use crate::BackendError;
use crate::backend::keys::{KeyAnswer, KeyBackend, KeyRequest, PublicKey};
use futures::future::{BoxFuture, FutureExt};

impl CachedBackend {
    /// The public key of `name` (or of `version`), with how the cache served it.
    pub async fn read_public_key(
        &self,
        name: &str,
        version: Option<&str>,
        admit: &dyn Admit,
    ) -> Served<PublicKey> {
        let fetch = move || {
            let backend = self.inner.backend.clone();
            let (name, version) = (name.to_owned(), version.map(str::to_owned));
            async move {
                match backend.keys() {
                    Some(vault) => vault.public_key(&name, version.as_deref()).await,
                    None => Err(no_keys()),
                }
            }
            .boxed()
        };
        self.inner
            .public_keys
            .get(&key(name, version), fetch, admit)
            .await
    }
}

impl KeyBackend for CachedBackend {
    fn public_key<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PublicKey, BackendError>> {
        async move { Ok(self.read_public_key(name, version, &Unlimited).await?.0) }.boxed()
    }

    fn operate<'a>(
        &'a self,
        request: KeyRequest<'a>,
    ) -> BoxFuture<'a, Result<KeyAnswer, BackendError>> {
        match self.inner.backend.keys() {
            Some(vault) => vault.operate(request),
            None => futures::future::ready(Err(no_keys())).boxed(),
        }
    }
}

fn no_keys() -> BackendError {
    BackendError::Unavailable("this vault has no keys (only Key Vault does)".into())
}
