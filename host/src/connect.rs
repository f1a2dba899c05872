//! Building vault backends from settings: HTTP client, credential, token cache, Key Vault
//! client and secret cache, wired together. The CLI and embedders use this; tests too.

use crate::backend::keyvault::{KeyVault, KeyVaultOptions};
use crate::cache::CachedBackend;
use crate::config::{CacheConfig, CredentialKind};
use crate::credential::{self, Env, UserAssigned};
use crate::http::HttpClient;
use crate::token_cache::TokenCache;
use anyhow::Context as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

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

/// Builds Key Vault backends, sharing one token cache per credential.
pub struct Connector {
    env: Env,
    cache: CacheConfig,
    options: KeyVaultOptions,
    loopback_only: bool,
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
            token_caches: HashMap::new(),
        }
    }

    /// Refuses every destination outside loopback, whatever `WASM_SECRETS_LOOPBACK_ONLY` says.
    pub fn loopback_only(mut self, on: bool) -> Self {
        self.loopback_only = on;
        self
    }

    /// The credential `settings` would use, resolved from the environment (for reports).
    pub fn credential_kind(&self, settings: &VaultSettings) -> anyhow::Result<&'static str> {
        let http = self.http(settings)?;
        let c =
            credential::from_env_with(settings.credential, &settings.identity, &http, &self.env)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(c.kind())
    }

    fn http(&self, settings: &VaultSettings) -> anyhow::Result<HttpClient> {
        let mut http = HttpClient::builder().loopback_only(self.loopback_only);
        if let Some(ca) = &settings.ca_cert {
            http = http.extra_ca(ca.clone());
        }
        http.build()
            .with_context(|| format!("vault {}", settings.url))
    }

    /// Uses `options` for the Key Vault clients built from now on.
    pub fn with_options(mut self, options: KeyVaultOptions) -> Self {
        self.options = options;
        self
    }

    /// The token cache for the credential `settings` name (its URL is not used), shared with
    /// any vault using the same credential.
    pub fn token_cache(&mut self, settings: &VaultSettings) -> anyhow::Result<Arc<TokenCache>> {
        let http = self.http(settings)?;
        let credential =
            credential::from_env_with(settings.credential, &settings.identity, &http, &self.env)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = format!("{}|{:?}", credential.cache_key(), settings.ca_cert);
        Ok(self
            .token_caches
            .entry(key)
            .or_insert_with(|| Arc::new(TokenCache::new(credential)))
            .clone())
    }

    /// A cached Key Vault backend for `settings`.
    pub fn key_vault(&mut self, settings: &VaultSettings) -> anyhow::Result<CachedBackend> {
        let http = self.http(settings)?;
        let credential =
            credential::from_env_with(settings.credential, &settings.identity, &http, &self.env)
                .map_err(|e| anyhow::anyhow!("vault {}: {e}", settings.url))?;
        let key = format!("{}|{:?}", credential.cache_key(), settings.ca_cert);
        let tokens = self
            .token_caches
            .entry(key)
            .or_insert_with(|| Arc::new(TokenCache::new(credential)))
            .clone();
        let mut options = self.options.clone();
        if let Some(v) = &settings.api_version {
            options.api_version = v.clone();
        }
        let vault = KeyVault::new(&settings.url, http, tokens, options)?;
        Ok(CachedBackend::new(Arc::new(vault), self.cache))
    }
}
