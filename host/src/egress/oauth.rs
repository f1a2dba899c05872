//! OAuth 2 client credentials for use-only grants `as oauth2 TOKEN-URL [SCOPE]`: the host
//! exchanges the client id and client secret from the vault for an access token at the
//! grant's token URL (RFC 6749 section 4.4), and keeps it in a [`TokenCache`] (refreshed
//! early, one exchange in flight at a time, the old token served while a refresh fails), so
//! 10,000 requests cost one exchange per token lifetime. Neither the client secret nor the
//! token ever reaches the guest.

use crate::SecretValue;
use crate::credential::{AccessToken, CredentialError, TokenCredential};
use crate::http::HttpClient;
use crate::policy::UseValues;
use crate::policy::uses::TokenEndpoint;
use crate::token_cache::TokenCache;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One component's OAuth 2 clients: a token cache per grant and token endpoint.
#[derive(Default)]
pub(super) struct OAuthClients {
    http: Mutex<Option<HttpClient>>,
    clients: Mutex<HashMap<(String, TokenEndpoint), Client>>,
}

#[derive(Clone)]
struct Client {
    credential: Arc<ClientCredentials>,
    tokens: Arc<TokenCache>,
}

impl OAuthClients {
    /// Clients that reach token endpoints through `http`.
    pub(super) fn with_http(http: HttpClient) -> Self {
        Self {
            http: Mutex::new(Some(http)),
            clients: Mutex::default(),
        }
    }

    /// An access token for the grant `grant` (its folded guest name), whose values and token
    /// endpoint are `values`: from the cache, or from one exchange.
    pub(super) async fn token(
        &self,
        grant: &str,
        values: &UseValues,
    ) -> Result<AccessToken, CredentialError> {
        let endpoint = values.token_endpoint.as_ref().ok_or_else(|| {
            CredentialError::NotConfigured("an oauth2 grant without a token URL".into())
        })?;
        let (Some(client_secret), client_id) = (&values.second, &values.value) else {
            return Err(CredentialError::NotConfigured(
                "an oauth2 grant takes a client id and a client secret".into(),
            ));
        };
        let client = {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            let key = (grant.to_owned(), endpoint.clone());
            match clients.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let credential = Arc::new(ClientCredentials {
                        endpoint: endpoint.clone(),
                        http: self.http()?,
                        current: Mutex::new(None),
                    });
                    let c = Client {
                        tokens: Arc::new(TokenCache::new(credential.clone())),
                        credential,
                    };
                    clients.insert(key, c.clone());
                    c
                }
            }
        };
        // The values as read for this request: a rotated client secret is used at the next
        // exchange.
        *client
            .credential
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((client_id.clone(), client_secret.clone()));
        client.tokens.token(endpoint.url.as_str()).await
    }

    fn http(&self) -> Result<HttpClient, CredentialError> {
        let mut http = self.http.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = &*http {
            return Ok(h.clone());
        }
        let built = HttpClient::builder()
            .loopback_only(crate::http::loopback_only_from_env())
            .build()
            .map_err(|e| CredentialError::NotConfigured(e.to_string()))?;
        *http = Some(built.clone());
        Ok(built)
    }
}

/// The client credentials grant at one token endpoint, with the values last read.
struct ClientCredentials {
    endpoint: TokenEndpoint,
    http: HttpClient,
    current: Mutex<Option<(SecretValue, SecretValue)>>,
}

impl TokenCredential for ClientCredentials {
    fn kind(&self) -> &'static str {
        "oauth2"
    }

    fn get_token<'a>(
        &'a self,
        _resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            let Some((id, secret)) = self
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            else {
                return Err(CredentialError::NotConfigured(
                    "no client credentials read yet".into(),
                ));
            };
            exchange(&self.http, &self.endpoint, &id, &secret).await
        })
    }

    fn cache_key(&self) -> String {
        format!("oauth2/{}", self.endpoint.url)
    }
}

/// One client credentials exchange (RFC 6749 section 4.4) at `endpoint` through `http`: the
/// access token for `client_id` and `client_secret`, or why there is none (the endpoint's
/// status, never its body: it may echo what it was sent). `wasm-secrets check` calls it to
/// probe an `oauth2` grant; requests get their tokens through a cache instead.
pub async fn exchange(
    http: &HttpClient,
    endpoint: &TokenEndpoint,
    client_id: &SecretValue,
    client_secret: &SecretValue,
) -> Result<AccessToken, CredentialError> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id.expose()),
        ("client_secret", client_secret.expose()),
    ];
    if let Some(scope) = &endpoint.scope {
        form.push(("scope", scope));
    }
    let now = SystemTime::now();
    let response = http
        .send(
            http.request(reqwest::Method::POST, endpoint.url.clone())
                .form(&form),
        )
        .await
        .map_err(|e| CredentialError::Unavailable(format!("the token endpoint: {e}")))?;
    if !response.status.is_success() {
        let detail = format!(
            "the token endpoint {} answered HTTP {}",
            endpoint.url,
            response.status.as_u16()
        );
        return Err(if response.status.is_client_error() {
            CredentialError::Rejected(detail)
        } else {
            CredentialError::Unavailable(detail)
        });
    }
    crate::credential::parse_token(&response, now)
}
