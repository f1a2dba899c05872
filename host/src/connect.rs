//! Building vault backends from settings: HTTP client, credential, token cache, Key Vault
//! client and secret cache, wired together. The CLI and embedders use this; tests too.

use crate::backend::keyvault::{KeyVault, KeyVaultOptions};
use crate::cache::CacheConfig;
use crate::cache::CachedBackend;
use crate::credential::CredentialKind;
use crate::credential::{self, Env, UserAssigned};
use crate::http::HttpClient;
use crate::token_cache::TokenCache;
use anyhow::Context as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How to reach one Key Vault.
#[derive(Debug, Clone, Default)]
pub struct VaultSettings {
    /// The vault URL.
    pub url: String,
    /// Which credential the host uses.
    pub credential: CredentialKind,
    /// A user-assigned identity, if any.
    pub identity: UserAssigned,
    /// An extra PEM root for the vault's (and Entra's) TLS.
    pub ca_cert: Option<PathBuf>,
    /// The Key Vault api-version; the default when `None`.
    pub api_version: Option<String>,
}

/// Builds Key Vault backends and egress token caches for a whole process: one HTTP client per
/// trust setting, one token cache per credential, shared by every vault, every component's
/// `azure-http` egress and every reload that uses them. Clones share all of it.
#[derive(Clone)]
pub struct Connector {
    env: Env,
    cache: CacheConfig,
    options: KeyVaultOptions,
    loopback_only: bool,
    shared: Arc<Mutex<Shared>>,
}

/// What a [`Connector`] has built, for reuse.
#[derive(Default)]
struct Shared {
    /// By extra CA file and loopback guard.
    clients: HashMap<(Option<PathBuf>, bool), HttpClient>,
    /// By credential (source and identity) and extra CA file.
    token_caches: HashMap<String, Arc<TokenCache>>,
}

impl Connector {
    /// A connector reading credential variables from `env`, caching secrets per `cache`.
    pub fn new(env: Env, cache: CacheConfig) -> Self {
        Self {
            env,
            cache,
            options: KeyVaultOptions::default(),
            loopback_only: false,
            shared: Arc::default(),
        }
    }

    /// Refuses every destination outside loopback, whatever `WASM_SECRETS_LOOPBACK_ONLY` says.
    pub fn loopback_only(mut self, on: bool) -> Self {
        self.loopback_only = on;
        self
    }

    /// Uses `options` for the Key Vault clients built from now on.
    pub fn with_options(mut self, options: KeyVaultOptions) -> Self {
        self.options = options;
        self
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The credential `settings` would use, resolved from the environment (for reports).
    pub fn credential_kind(&self, settings: &VaultSettings) -> anyhow::Result<&'static str> {
        let http = self.http_client(settings)?;
        let c = credential::from_env(settings.credential, &settings.identity, &http, &self.env)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(c.kind())
    }

    /// The one HTTP client for `settings`' trust roots (its extra CA file) and this
    /// connector's loopback guard: what its vaults and credentials use, and what a host gives
    /// the token URLs of `oauth2` use-only grants ([`EgressPolicy::with_token_http`]).
    ///
    /// [`EgressPolicy::with_token_http`]: crate::egress::EgressPolicy::with_token_http
    pub fn http_client(&self, settings: &VaultSettings) -> anyhow::Result<HttpClient> {
        let key = (settings.ca_cert.clone(), self.loopback_only);
        if let Some(client) = self.shared().clients.get(&key) {
            return Ok(client.clone());
        }
        let mut http = HttpClient::builder().loopback_only(self.loopback_only);
        if let Some(ca) = &settings.ca_cert {
            http = http.extra_ca(ca.clone());
        }
        let client = http
            .build()
            .with_context(|| format!("vault {}", settings.url))?;
        Ok(self.shared().clients.entry(key).or_insert(client).clone())
    }

    /// The token cache for the credential `settings` name (its URL is not used), shared with
    /// every vault and egress rule using the same credential.
    pub fn token_cache(&self, settings: &VaultSettings) -> anyhow::Result<Arc<TokenCache>> {
        let http = self.http_client(settings)?;
        let credential =
            credential::from_env(settings.credential, &settings.identity, &http, &self.env)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = format!("{}|{:?}", credential.cache_key(), settings.ca_cert);
        Ok(self
            .shared()
            .token_caches
            .entry(key)
            .or_insert_with(|| Arc::new(TokenCache::new(credential)))
            .clone())
    }

    /// A cached Key Vault backend for `settings`.
    pub fn key_vault(&self, settings: &VaultSettings) -> anyhow::Result<CachedBackend> {
        let tokens = self
            .token_cache(settings)
            .with_context(|| format!("vault {}", settings.url))?;
        let mut options = self.options.clone();
        if let Some(v) = &settings.api_version {
            options.api_version = v.clone();
        }
        let vault = KeyVault::new(&settings.url, self.http_client(settings)?, tokens, options)?;
        Ok(CachedBackend::new(Arc::new(vault), self.cache))
    }
}
