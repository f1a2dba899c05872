//! Public keys are cached like secret metadata: for the TTL, and past it for the
//! stale-if-error window while the vault fails. Operations are never cached: each one is the
//! vault's to do.

use super::{CachedBackend, key, lock};
use crate::BackendError;
use crate::backend::keys::{KeyAnswer, KeyBackend, KeyRequest, PublicKey};
use futures::future::{BoxFuture, FutureExt};
use tokio::time::Instant;

impl KeyBackend for CachedBackend {
    fn public_key<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PublicKey, BackendError>> {
        async move {
            let Some(vault) = self.inner.backend.keys() else {
                return Err(no_keys());
            };
            let config = &self.inner.config;
            let cache_key = key(name, version).into_owned();
            let held = lock(&self.inner.public_keys)
                .get(&cache_key)
                .map(|(at, k)| (at.elapsed(), k.clone()));
            if let Some((age, k)) = &held
                && *age < config.ttl
            {
                return Ok(k.clone());
            }
            match vault.public_key(name, version).await {
                Ok(k) => {
                    lock(&self.inner.public_keys).put(cache_key, (Instant::now(), k.clone()));
                    Ok(k)
                }
                // A key the vault no longer has, or may no longer be read, is not served.
                Err(e @ (BackendError::NotFound(_) | BackendError::Forbidden(_))) => {
                    lock(&self.inner.public_keys).pop(&cache_key);
                    Err(e)
                }
                Err(e) => match held {
                    Some((age, k)) if age < config.ttl + config.stale_if_error => Ok(k),
                    _ => Err(e),
                },
            }
        }
        .boxed()
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
