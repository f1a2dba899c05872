//! A service principal's client secret, exchanged at Microsoft Entra.

use std::fmt;

use futures::future::BoxFuture;
use url::Url;
use zeroize::Zeroizing;

use super::entra::{request_token, token_url};
use super::{AccessToken, CredentialError, TokenCredential};
use crate::http::HttpClient;

/// Tokens for a service principal. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ClientSecretCredential {
    /// The token URL, `{authority}/{tenant}/oauth2/v2.0/token`.
    pub token_url: Url,
    /// The application (client) id.
    pub client_id: String,
    secret: Zeroizing<String>,
    http: HttpClient,
    /// Keeps the endpoint out of guests' egress while the credential lives.
    _registration: std::sync::Arc<crate::net::identity_endpoints::Registration>,
}

impl fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecretCredential")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ClientSecretCredential {
    /// The application `client_id` in `tenant` at `authority`, with `secret`.
    pub fn new(
        http: HttpClient,
        authority: &str,
        tenant: &str,
        client_id: &str,
        secret: Zeroizing<String>,
    ) -> Result<Self, CredentialError> {
        let token_url = token_url(authority, tenant)?;
        http.check_url(&token_url)?;
        let registration = std::sync::Arc::new(crate::net::identity_endpoints::register_authority(
            &token_url,
        ));
        Ok(Self {
            token_url,
            client_id: client_id.to_owned(),
            secret,
            http,
            _registration: registration,
        })
    }
}

impl TokenCredential for ClientSecretCredential {
    fn kind(&self) -> &'static str {
        "client-secret"
    }

    fn get_token<'a>(
        &'a self,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            let form = [
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.secret.as_str()),
            ];
            request_token(&self.http, &self.token_url, resource, &form)
                .await
                .map_err(|e| e.context("client-secret"))
        })
    }

    fn cache_key(&self) -> String {
        format!("{}/client_id={}", self.kind(), self.client_id)
    }
}
