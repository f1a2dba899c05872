//! Kubernetes workload identity: a federated token file exchanged at Microsoft Entra.
//!
//! `POST {authority}/{tenant}/oauth2/v2.0/token` with `client_assertion=<file contents>`. The
//! file is read again for every token request, because the kubelet rotates it.

use std::path::PathBuf;

use futures::future::BoxFuture;
use url::Url;
use zeroize::Zeroizing;

use super::entra::{request_token, token_url};
use super::{AccessToken, CredentialError, TokenCredential};
use crate::http::HttpClient;

pub use super::entra::DEFAULT_AUTHORITY;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The largest token file accepted.
const MAX_FILE: u64 = 64 * 1024;

/// Tokens for a federated identity.
#[derive(Debug, Clone)]
pub struct WorkloadIdentityCredential {
    /// The token URL, `{authority}/{tenant}/oauth2/v2.0/token`.
    pub token_url: Url,
    /// The application (client) id.
    pub client_id: String,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    pub token_file: PathBuf,
    http: HttpClient,
    /// Keeps the endpoint out of guests' egress while the credential lives.
    _registration: std::sync::Arc<crate::net::identity_endpoints::Registration>,
}

impl WorkloadIdentityCredential {
    /// The identity `client_id` in `tenant` at `authority`, asserting with `token_file`.
    pub fn new(
        http: HttpClient,
        authority: &str,
        tenant: &str,
        client_id: &str,
        token_file: PathBuf,
    ) -> Result<Self, CredentialError> {
        let token_url = token_url(authority, tenant)?;
        http.check_url(&token_url)?;
        let registration = std::sync::Arc::new(crate::net::identity_endpoints::register_authority(
            &token_url,
        ));
        Ok(Self {
            token_url,
            client_id: client_id.to_owned(),
            token_file,
            http,
            _registration: registration,
        })
    }

    async fn assertion(&self) -> Result<Zeroizing<String>, CredentialError> {
        let bad = |why: String| {
            CredentialError::Unavailable(format!(
                "federated token file {}: {why}",
                self.token_file.display()
            ))
        };
        let meta = tokio::fs::metadata(&self.token_file)
            .await
            .map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_FILE {
            return Err(bad(format!("larger than {MAX_FILE} bytes")));
        }
        let bytes = Zeroizing::new(
            tokio::fs::read(&self.token_file)
                .await
                .map_err(|e| bad(e.to_string()))?,
        );
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text".into()))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(bad("empty".into()));
        }
        Ok(Zeroizing::new(text.to_owned()))
    }

    async fn fetch(&self, resource: &str) -> Result<AccessToken, CredentialError> {
        let assertion = self.assertion().await?;
        let form = [
            ("client_assertion", assertion.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_id", self.client_id.as_str()),
        ];
        request_token(&self.http, &self.token_url, resource, &form).await
    }
}

impl TokenCredential for WorkloadIdentityCredential {
    fn kind(&self) -> &'static str {
        "workload-identity"
    }

    fn get_token<'a>(
        &'a self,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            self.fetch(resource)
                .await
                .map_err(|e| e.context("workload-identity"))
        })
    }

    fn cache_key(&self) -> String {
        format!("{}/client_id={}", self.kind(), self.client_id)
    }
}
