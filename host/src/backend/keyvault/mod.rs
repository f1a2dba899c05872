//! The Azure Key Vault client: a [`Backend`] over the Key Vault REST API.
//!
//! The first request goes without a token; the vault's 401 challenge names the resource to
//! get a token for, which must be a Key Vault audience matching the vault's domain (loopback
//! vaults skip the domain match, never the audience check). Tokens
//! come from a [`TokenCache`] and go only over https (plain http to loopback alone). 429s are
//! retried after `Retry-After`, or after 1, 2, 4, 8, 16 s; 5xx and transport failures a few
//! times. Every failure maps to a [`BackendError`] whose text holds a status and Key Vault's
//! error code, never a body.

mod challenge;
mod keys;
pub(crate) mod wire;

pub use challenge::{KEY_VAULT_RESOURCES, parse_resource, vault_may_ask_for};

use crate::BackendError;
use crate::backend::{Backend, Secret, SecretMeta, same_name};
use crate::http::{HttpClient, HttpError, HttpResponse, is_loopback_url};
use crate::token_cache::TokenCache;
use futures::future::{BoxFuture, FutureExt};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use url::Url;
use wire::{Page, SecretBundle, id_parts};

/// The api-version sent when none is configured.
pub const DEFAULT_API_VERSION: &str = "2025-07-01";

/// Settings of a [`KeyVault`].
#[derive(Debug, Clone)]
pub struct KeyVaultOptions {
    /// The REST api-version.
    pub api_version: String,
    /// Waits between throttled (429) attempts without `Retry-After`.
    pub throttle_backoff: Vec<Duration>,
    /// The longest `Retry-After` honoured; longer ones fail at once as unavailable.
    pub max_retry_after: Duration,
    /// Waits between attempts after a 5xx or a transport failure.
    pub error_backoff: Vec<Duration>,
    /// Most pages read for one listing.
    pub max_pages: usize,
    /// `maxresults` asked for per page (Key Vault allows 1 to 25).
    pub page_size: u8,
}

impl Default for KeyVaultOptions {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            api_version: DEFAULT_API_VERSION.to_owned(),
            throttle_backoff: vec![s(1), s(2), s(4), s(8), s(16)],
            max_retry_after: s(30),
            error_backoff: vec![Duration::from_millis(200), Duration::from_millis(800)],
            max_pages: 1000,
            page_size: 25,
        }
    }
}

/// One Key Vault.
pub struct KeyVault {
    url: Url,
    loopback: bool,
    http: HttpClient,
    tokens: Arc<TokenCache>,
    options: KeyVaultOptions,
    resource: tokio::sync::RwLock<Option<String>>,
    /// The end of the vault's last `Retry-After`: throttling is per vault, so no request for
    /// any secret goes out before it.
    throttled_until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVault")
            .field("url", &self.url.as_str())
            .field("api_version", &self.options.api_version)
            .finish_non_exhaustive()
    }
}

impl KeyVault {
    /// A client for the vault at `url` (such as `https://my-vault.vault.azure.net`).
    ///
    /// Refuses a plain-http URL unless it is a loopback address (bearer tokens go over https).
    pub fn new(
        url: &str,
        http: HttpClient,
        tokens: Arc<TokenCache>,
        options: KeyVaultOptions,
    ) -> anyhow::Result<Self> {
        let mut parsed =
            Url::parse(url).map_err(|e| anyhow::anyhow!("vault URL {url:?} is not a URL: {e}"))?;
        let loopback = is_loopback_url(&parsed);
        anyhow::ensure!(
            parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback),
            "vault URL {url:?} must use https (plain http is allowed for loopback addresses only)"
        );
        anyhow::ensure!(
            parsed.query().is_none() && parsed.fragment().is_none() && parsed.username().is_empty(),
            "vault URL {url:?} must be just the vault's address, such as https://my-vault.vault.azure.net"
        );
        if !parsed.path().ends_with('/') {
            let path = format!("{}/", parsed.path());
            parsed.set_path(&path);
        }
        Ok(Self {
            url: parsed,
            loopback,
            http,
            tokens,
            options,
            resource: tokio::sync::RwLock::new(None),
            throttled_until: std::sync::Mutex::new(None),
        })
    }

    /// The vault URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn endpoint(&self, path: &str, extra: &[(&str, &str)]) -> Url {
        let mut url = self.url.join(path).unwrap_or_else(|_| self.url.clone());
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", &self.options.api_version);
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// GET `url` with the challenge, token, retry and error rules. Returns a 2xx response.
    async fn get_json(&self, url: Url) -> Result<HttpResponse, BackendError> {
        self.call(Method::GET, url, None).await
    }

    /// A request with the challenge, token, retry and error rules; `body` is JSON. Returns a
    /// 2xx response.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, BackendError> {
        let mut challenged_again = false;
        loop {
            let resource = self.resource.read().await.clone();
            let response = match &resource {
                None => self.send(&method, &url, None, body).await?,
                Some(r) => {
                    let token = self.tokens.token(r).await.map_err(BackendError::from)?;
                    self.send(&method, &url, Some(token.secret()), body).await?
                }
            };
            if response.status != StatusCode::UNAUTHORIZED {
                return check_status(response);
            }
            let Some(named) = response.header("www-authenticate").and_then(parse_resource) else {
                return Err(BackendError::Forbidden(
                    "Key Vault answered 401 without a Bearer challenge".into(),
                ));
            };
            if resource.as_deref() == Some(named.as_str()) {
                // We sent a token for exactly what it asks for and it was refused.
                if challenged_again {
                    return Err(BackendError::Forbidden(format!(
                        "Key Vault rejected the host's token ({})",
                        error_codes(&response)
                    )));
                }
                challenged_again = true;
                continue;
            }
            if !vault_may_ask_for(&self.url, &named, self.loopback) {
                return Err(BackendError::Forbidden(format!(
                    "the vault's challenge asks for a token for {named}, which is not this vault's own Key Vault audience; no token was requested"
                )));
            }
            tracing::debug!(vault = %self.url, resource = %named, "Key Vault challenge");
            *self.resource.write().await = Some(named);
        }
    }

    /// Waits out the vault's last `Retry-After`, or fails at once if that is too long.
    async fn wait_for_throttle(&self) -> Result<(), BackendError> {
        let until = *self
            .throttled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(until) = until else { return Ok(()) };
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let waits = left <= self.options.max_retry_after;
        crate::metrics::global().throttle_stop(self.url.host_str().unwrap_or(""), waits);
        if !waits {
            return Err(BackendError::Unavailable(format!(
                "Key Vault asked for no requests for another {} s (Retry-After)",
                left.as_secs()
            )));
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    /// One request with retries for 429, 5xx and transport failures.
    async fn send(
        &self,
        method: &Method,
        url: &Url,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, BackendError> {
        let mut throttled = 0;
        let mut failed = 0;
        loop {
            self.wait_for_throttle().await?;
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec());
            }
            let sent = self.http.send(request).await;
            crate::metrics::global().vault_request(
                url.host_str().unwrap_or(""),
                sent.as_ref().ok().map(|r| r.status.as_u16()),
            );
            let wait = match sent {
                Ok(r) if r.status == StatusCode::TOO_MANY_REQUESTS => {
                    let asked = r.retry_after();
                    if let Some(asked) = asked {
                        *self
                            .throttled_until
                            .lock()
                            .unwrap_or_else(|e| e.into_inner()) =
                            Some(tokio::time::Instant::now() + asked);
                    }
                    let wait =
                        asked.or_else(|| self.options.throttle_backoff.get(throttled).copied());
                    throttled += 1;
                    match wait {
                        Some(w)
                            if w <= self.options.max_retry_after
                                && throttled <= self.options.throttle_backoff.len() =>
                        {
                            w
                        }
                        _ => {
                            return Err(BackendError::Unavailable(format!(
                                "Key Vault is throttling requests (429 {}) and retries ran out",
                                error_codes(&r)
                            )));
                        }
                    }
                }
                Ok(r) if r.status.is_server_error() => match self.options.error_backoff.get(failed)
                {
                    Some(w) => {
                        failed += 1;
                        *w
                    }
                    None => {
                        return Err(BackendError::Unavailable(format!(
                            "Key Vault answered {} ({})",
                            r.status.as_u16(),
                            error_codes(&r)
                        )));
                    }
                },
                Ok(r) => return Ok(r),
                // Not worth repeating: a refused destination, a bad setup, or an answer that
                // was too large or not HTTP (a retry would download it again).
                Err(
                    e @ (HttpError::Refused(_)
                    | HttpError::Setup(_)
                    | HttpError::TooLarge(_)
                    | HttpError::Malformed(_)),
                ) => {
                    return Err(BackendError::Unavailable(format!("Key Vault: {e}")));
                }
                Err(e) => match self.options.error_backoff.get(failed) {
                    Some(w) => {
                        failed += 1;
                        tracing::debug!(vault = %self.url, error = %e, "Key Vault request failed; retrying");
                        *w
                    }
                    None => return Err(BackendError::Unavailable(format!("Key Vault: {e}"))),
                },
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn bundle(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<SecretBundle, BackendError> {
        let path = match version {
            Some(v) => format!("secrets/{name}/{v}"),
            None => format!("secrets/{name}"),
        };
        let response = self.get_json(self.endpoint(&path, &[])).await?;
        response.json::<SecretBundle>().map_err(|e| {
            BackendError::Unavailable(format!("Key Vault sent a malformed secret: {e}"))
        })
    }

    /// Every item of a paged listing, following `nextLink` within this vault only.
    async fn pages(&self, first: Url) -> Result<Vec<wire::Item>, BackendError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > self.options.max_pages {
                return Err(BackendError::Unavailable(format!(
                    "Key Vault listing ran past {} pages",
                    self.options.max_pages
                )));
            }
            let page: Page = self.get_json(url).await?.json().map_err(|e| {
                BackendError::Unavailable(format!("Key Vault sent a malformed page: {e}"))
            })?;
            items.extend(page.value);
            if let Some(link) = page.next_link.filter(|l| !l.is_empty()) {
                let link = Url::parse(&link).map_err(|_| {
                    BackendError::Unavailable("Key Vault sent a nextLink that is not a URL".into())
                })?;
                if link.origin() != self.url.origin() {
                    return Err(BackendError::Unavailable(
                        "Key Vault sent a nextLink to another host; not following it".into(),
                    ));
                }
                next = Some(link);
            }
        }
        Ok(items)
    }

    /// The listing of secret `name`'s versions (metadata, no values).
    async fn version_items(&self, name: &str) -> Result<Vec<wire::Item>, BackendError> {
        let size = self.options.page_size.clamp(1, 25).to_string();
        let url = self.endpoint(
            &format!("secrets/{name}/versions"),
            &[("maxresults", &size)],
        );
        self.pages(url).await
    }

    /// The metadata of one version of `name`: from reading it, or, when Key Vault will not
    /// let it be read (a disabled version answers 403 SecretDisabled), from the version
    /// listing. Never another version's.
    async fn version_meta(&self, name: &str, version: &str) -> Result<SecretMeta, BackendError> {
        let refused = match self.bundle(name, Some(version)).await {
            Ok(bundle) => return Ok(bundle.meta()),
            Err(e @ BackendError::NotFound(_)) => e,
            Err(e) => return Err(e),
        };
        // Disabled, or no such version: the listing says which. If it cannot be read (an
        // identity with get but not list), the read's own answer stands.
        let items = match self.version_items(name).await {
            Ok(items) => items,
            Err(BackendError::NotFound(_) | BackendError::Forbidden(_)) => return Err(refused),
            Err(e) => return Err(e),
        };
        items
            .iter()
            .map(wire::Item::meta)
            .find(|m| m.version.eq_ignore_ascii_case(version))
            .ok_or(refused)
    }
}

/// The answer's error codes as `Code/InnerCode`, for messages.
fn error_codes(r: &HttpResponse) -> String {
    let codes = r.error_codes();
    if codes.is_empty() {
        "no error code".to_owned()
    } else {
        codes.join("/")
    }
}

/// Maps a non-401 answer to success or a typed failure.
fn check_status(r: HttpResponse) -> Result<HttpResponse, BackendError> {
    let status = r.status;
    if status.is_success() {
        return Ok(r);
    }
    let codes = error_codes(&r);
    Err(match status {
        StatusCode::NOT_FOUND => {
            BackendError::NotFound(format!("Key Vault answered 404 ({codes})"))
        }
        StatusCode::FORBIDDEN
            if codes.contains("SecretDisabled") || codes.ends_with("Disabled") =>
        {
            BackendError::NotFound(format!("the secret is disabled (403 {codes})"))
        }
        StatusCode::FORBIDDEN => {
            BackendError::Forbidden(format!("Key Vault answered 403 ({codes})"))
        }
        StatusCode::BAD_REQUEST => {
            BackendError::Invalid(format!("Key Vault answered 400 ({codes})"))
        }
        _ => BackendError::Unavailable(format!("Key Vault answered {} ({codes})", status.as_u16())),
    })
}

impl Backend for KeyVault {
    fn describe(&self) -> String {
        format!("key vault {}", self.url.as_str().trim_end_matches('/'))
    }

    fn keys(&self) -> Option<&dyn crate::backend::keys::KeyBackend> {
        Some(self)
    }

    fn get<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Secret, BackendError>> {
        async move {
            let bundle = self.bundle(name, version).await?;
            if bundle.attributes.enabled == Some(false) {
                return Err(BackendError::NotFound("the secret is disabled".into()));
            }
            let (answered, version) = id_parts(&bundle.id).unzip();
            let value = bundle.value.ok_or_else(|| {
                BackendError::Unavailable("Key Vault sent a secret without a value".into())
            })?;
            let secret = Secret::new(value, version.flatten().unwrap_or_default());
            Ok(match same_name(name, answered) {
                Some(spelled) => secret.named(spelled),
                None => secret,
            })
        }
        .boxed()
    }

    fn info<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
        async move {
            // The value comes along (Key Vault has no metadata-only read); it is wiped on drop.
            let mut meta = match version {
                None => self.bundle(name, None).await?.meta(),
                Some(v) => self.version_meta(name, v).await?,
            };
            meta.name = same_name(name, meta.name.take());
            Ok(meta)
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        async move {
            let size = self.options.page_size.clamp(1, 25).to_string();
            let url = self.endpoint("secrets", &[("maxresults", &size)]);
            let mut names: Vec<String> = self
                .pages(url)
                .await?
                .into_iter()
                .filter(|i| i.attributes.enabled.unwrap_or(true))
                .filter_map(|i| id_parts(&i.id).map(|(n, _)| n))
                .collect();
            names.sort_unstable();
            names.dedup();
            Ok(names)
        }
        .boxed()
    }
}
